//! The transfer protocol's frames (version 2, magic `RNT2`), as zero-copy views:
//! [`Message::parse`] checks a whole frame and borrows the name from it; [`Message::emit`]
//! writes one with its length prefix. A version 1 frame (magic `RNT1`) is told apart
//! ([`WireError::Version1`]) so that it can be answered in words its sender reads
//! ([`emit_version1_refusal`]).

use core::fmt;

use crate::framing::{encode_length_prefixed, FrameError};
use crate::text::{self, Text};

/// First bytes of every frame's payload: protocol version 2.
pub const MAGIC: [u8; 4] = *b"RNT2";
/// First bytes of a version 1 frame (the digest in the request): refused, in a status
/// frame of its own version.
pub const MAGIC_V1: [u8; 4] = *b"RNT1";
/// Length of a whole [`Message::Trailer`] frame, prefix included: 4 + magic 4 + kind 1 +
/// SHA-256 32.
pub const TRAILER_FRAME: usize = 4 + 4 + 1 + DIGEST_LEN;
/// The reason a version 1 request is refused with (status 1, bad request, in an `RNT1`
/// frame, which a version 1 client can read).
pub const VERSION1_REFUSAL: &str = "protocol version 1 is not served: this server speaks RNT2";
/// Largest frame payload: a request with the longest name fits with room to spare.
pub const MAX_FRAME: usize = 256;
/// Longest file name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest reason text in a status frame.
pub const MAX_REASON: usize = 64;
/// Longest token in a put with a token.
pub const MAX_TOKEN: usize = 64;

pub use crate::digest::{Digest, DIGEST_LEN};

const KIND_PUT: u8 = 1;
const KIND_GET: u8 = 2;
const KIND_ACCEPT: u8 = 3;
const KIND_STATUS: u8 = 4;
const KIND_PUT_WITH_TOKEN: u8 = 5;
const KIND_TRAILER: u8 = 6;

/// The outcome a status frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The transfer completed and the digest matched.
    Ok = 0,
    /// The request frame was malformed (bad magic, unknown kind, truncated).
    BadRequest = 1,
    /// The name broke the naming rules.
    BadName = 2,
    /// No file of that name.
    NotFound = 3,
    /// The store has no room for the announced size.
    NoSpace = 4,
    /// The data's SHA-256 differs from the announced one; nothing was stored.
    DigestMismatch = 5,
    /// A resume offset lies beyond the end of the file.
    OffsetBeyondEnd = 6,
    /// The peer ended the data before the announced size.
    SizeMismatch = 7,
    /// The store failed (I/O error).
    Storage = 8,
    /// The store is busy with another upload.
    Busy = 9,
    /// The peer fell silent for longer than the idle timeout.
    TimedOut = 10,
    /// A newer upload of the same name began while this one was in progress: the newer
    /// one wins, this one was discarded.
    Conflict = 11,
    /// The version being sent was replaced and cannot be read to its end (a get is cut
    /// short; sent where a status still fits).
    Replaced = 12,
    /// The server takes puts only with its token: the put had none, or another one.
    Unauthorized = 13,
}

impl Status {
    fn from_u8(code: u8) -> Option<Status> {
        use Status::*;
        [
            Ok,
            BadRequest,
            BadName,
            NotFound,
            NoSpace,
            DigestMismatch,
            OffsetBeyondEnd,
            SizeMismatch,
            Storage,
            Busy,
            TimedOut,
            Conflict,
            Replaced,
            Unauthorized,
        ]
        .into_iter()
        .find(|s| *s as u8 == code)
    }
}

impl Status {
    texts! {
        /// The status in words (the `Display` text).
        pub const fn as_str / log_text(self) {
            match self {
                Status::Ok => "ok",
                Status::BadRequest => "bad request",
                Status::BadName => "bad name",
                Status::NotFound => "not found",
                Status::NoSpace => "no space",
                Status::DigestMismatch => "digest mismatch",
                Status::OffsetBeyondEnd => "offset beyond end",
                Status::SizeMismatch => "size mismatch",
                Status::Storage => "storage error",
                Status::Busy => "busy",
                Status::TimedOut => "timed out",
                Status::Conflict => "conflict",
                Status::Replaced => "replaced while read",
                Status::Unauthorized => "unauthorized",
            }
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

format_interned!(Status, log_text);

error_enum! {
    /// Why a name is refused.
    pub enum NameError {
        /// The name is empty.
        Empty => "empty name",
        /// The name is longer than [`MAX_NAME`].
        TooLong => "name longer than 128 bytes",
        /// The name contains `/` or `\`.
        Separator => "name contains a path separator",
        /// The name contains `..`, starts with `.`, or ends with `.part` (the suffix of
        /// uploads in progress).
        Reserved => "name contains '..', starts with '.' or ends with '.part'",
        /// The name has a byte outside printable ASCII.
        NotPrintable => "name is not printable ASCII",
    }
}

/// Checks a file name: 1 to [`MAX_NAME`] printable ASCII bytes, no path separator, no
/// `..`, no leading `.`, no `.part` suffix. Names can then never leave a store's folder.
pub fn validate_name(name: &[u8]) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if !name.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(NameError::NotPrintable);
    }
    if text::contains_byte(name, b'/') || text::contains_byte(name, b'\\') {
        return Err(NameError::Separator);
    }
    if name.starts_with(b".") || name.windows(2).any(|w| w == b"..") || name.ends_with(b".part") {
        return Err(NameError::Reserved);
    }
    core::str::from_utf8(name).map_err(|_| NameError::NotPrintable)
}

error_enum! {
    /// Why a token is refused.
    pub enum TokenError {
        /// The token is empty.
        Empty => "empty token",
        /// The token is longer than [`MAX_TOKEN`].
        TooLong => "token longer than 64 bytes",
        /// The token has a byte outside visible ASCII (a space included).
        NotPrintable => "token is not visible ASCII",
    }
}

/// Checks a token: 1 to [`MAX_TOKEN`] bytes of visible ASCII (`!` to `~`), the bytes an
/// HTTP bearer token is made of, so one token serves both.
pub fn validate_token(token: &[u8]) -> Result<&str, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.len() > MAX_TOKEN {
        return Err(TokenError::TooLong);
    }
    if !token.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(TokenError::NotPrintable);
    }
    core::str::from_utf8(token).map_err(|_| TokenError::NotPrintable)
}

/// A malformed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The payload does not start with [`MAGIC`].
    BadMagic,
    /// The payload starts with [`MAGIC_V1`]: a frame of protocol version 1, which carried
    /// the digest in the request.
    Version1,
    /// The kind byte is unknown.
    UnknownKind(u8),
    /// The payload ends before its fields do.
    Truncated,
    /// Bytes follow the last field.
    TrailingBytes,
    /// The name breaks the rules.
    BadName(NameError),
    /// The token breaks the rules.
    BadToken(TokenError),
    /// The status code is unknown.
    UnknownStatus(u8),
    /// The frame would exceed [`MAX_FRAME`] or the output buffer.
    TooLong,
}

impl WireError {
    /// Writes the error as its `Display` does, without `core::fmt` (for a refusal).
    pub fn write_text(&self, out: &mut Text<'_>) {
        match self {
            WireError::BadMagic => out.str("bad magic"),
            WireError::Version1 => out.str("a frame of transfer protocol version 1 (RNT1)"),
            WireError::UnknownKind(k) => out.str("unknown frame kind ").num((*k).into()),
            WireError::Truncated => out.str("truncated frame"),
            WireError::TrailingBytes => out.str("trailing bytes in frame"),
            WireError::BadName(e) => out.str(e.as_str()),
            WireError::BadToken(e) => out.str(e.as_str()),
            WireError::UnknownStatus(s) => out.str("unknown status ").num((*s).into()),
            WireError::TooLong => out.str("frame too long"),
        };
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
    }
}

impl core::error::Error for WireError {}

#[cfg(feature = "defmt")]
impl defmt::Format for WireError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            WireError::BadMagic => defmt::write!(f, "bad magic"),
            WireError::Version1 => {
                defmt::write!(f, "a frame of transfer protocol version 1 (RNT1)")
            }
            WireError::UnknownKind(k) => defmt::write!(f, "unknown frame kind {=u8}", k),
            WireError::Truncated => defmt::write!(f, "truncated frame"),
            WireError::TrailingBytes => defmt::write!(f, "trailing bytes in frame"),
            WireError::BadName(e) => defmt::write!(f, "{}", e),
            WireError::BadToken(e) => defmt::write!(f, "{}", e),
            WireError::UnknownStatus(s) => defmt::write!(f, "unknown status {=u8}", s),
            WireError::TooLong => defmt::write!(f, "frame too long"),
        }
    }
}

impl From<FrameError> for WireError {
    fn from(_: FrameError) -> Self {
        WireError::TooLong
    }
}

/// One frame of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Client → server: store `size` bytes under `name`; once the server accepts, the
    /// data follows, then a [`Message::Trailer`] with its SHA-256.
    Put {
        /// The file name.
        name: &'a str,
        /// The size in bytes.
        size: u64,
    },
    /// Client → server: a [`Message::Put`] with the token a server may require for writes
    /// (kind 5; a server without a token takes it as a plain put).
    PutWithToken {
        /// The file name.
        name: &'a str,
        /// The size in bytes.
        size: u64,
        /// The token.
        token: &'a str,
    },
    /// Client → server, right after a put's data: the SHA-256 of that data, hashed while
    /// it was sent. The server commits the upload only if its own digest is the same.
    Trailer {
        /// The SHA-256 of the data.
        sha256: Digest,
    },
    /// Client → server: send `name` from `offset` on (0 for all; more to resume).
    Get {
        /// The file name.
        name: &'a str,
        /// Where to start.
        offset: u64,
    },
    /// Server → client: go ahead. For a get, `size` bytes in all, `size - offset` follow.
    Accept {
        /// The whole file's size.
        size: u64,
        /// Where the data starts.
        offset: u64,
    },
    /// Server → client (and client → server, for a refused get): the outcome.
    Status {
        /// The outcome.
        status: Status,
        /// The SHA-256 of the whole file when `status` is `Ok`; zeros otherwise.
        digest: Digest,
        /// Human-readable detail.
        reason: &'a str,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn digest(&mut self) -> Result<Digest, WireError> {
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(self.take(DIGEST_LEN)?);
        Ok(d)
    }

    fn name(&mut self) -> Result<&'a str, WireError> {
        let len = usize::from(self.u8()?);
        validate_name(self.take(len)?).map_err(WireError::BadName)
    }

    fn token(&mut self) -> Result<&'a str, WireError> {
        let len = usize::from(self.u8()?);
        validate_token(self.take(len)?).map_err(WireError::BadToken)
    }
}

impl<'a> Message<'a> {
    /// Parses one frame payload (without its length prefix).
    pub fn parse(payload: &'a [u8]) -> Result<Message<'a>, WireError> {
        let mut r = Reader { bytes: payload };
        match r.take(MAGIC.len()).map_err(|_| WireError::BadMagic)? {
            magic if magic == MAGIC => {}
            magic if magic == MAGIC_V1 => return Err(WireError::Version1),
            _ => return Err(WireError::BadMagic),
        }
        let message = match r.u8()? {
            KIND_PUT => Message::Put {
                name: r.name()?,
                size: r.u64()?,
            },
            KIND_PUT_WITH_TOKEN => Message::PutWithToken {
                name: r.name()?,
                size: r.u64()?,
                token: r.token()?,
            },
            KIND_TRAILER => Message::Trailer {
                sha256: r.digest()?,
            },
            KIND_GET => Message::Get {
                name: r.name()?,
                offset: r.u64()?,
            },
            KIND_ACCEPT => Message::Accept {
                size: r.u64()?,
                offset: r.u64()?,
            },
            KIND_STATUS => {
                let code = r.u8()?;
                let status = Status::from_u8(code).ok_or(WireError::UnknownStatus(code))?;
                let digest = r.digest()?;
                let len = usize::from(r.u8()?);
                // What `emit` never writes is not a status either.
                if len > MAX_REASON {
                    return Err(WireError::TooLong);
                }
                let reason = core::str::from_utf8(r.take(len)?).unwrap_or("(unreadable reason)");
                Message::Status {
                    status,
                    digest,
                    reason,
                }
            }
            kind => return Err(WireError::UnknownKind(kind)),
        };
        if !r.bytes.is_empty() {
            return Err(WireError::TrailingBytes);
        }
        Ok(message)
    }

    /// Writes the frame, length prefix included, into `out`; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut payload = Payload::new()?;
        match *self {
            Message::Put { name, size } => {
                let name = validate_name(name.as_bytes()).map_err(WireError::BadName)?;
                payload.put(&[KIND_PUT, name.len() as u8])?;
                payload.put(name.as_bytes())?;
                payload.put(&size.to_be_bytes())?;
            }
            Message::PutWithToken { name, size, token } => {
                let name = validate_name(name.as_bytes()).map_err(WireError::BadName)?;
                let token = validate_token(token.as_bytes()).map_err(WireError::BadToken)?;
                payload.put(&[KIND_PUT_WITH_TOKEN, name.len() as u8])?;
                payload.put(name.as_bytes())?;
                payload.put(&size.to_be_bytes())?;
                payload.put(&[token.len() as u8])?;
                payload.put(token.as_bytes())?;
            }
            Message::Trailer { sha256 } => {
                payload.put(&[KIND_TRAILER])?;
                payload.put(&sha256)?;
            }
            Message::Get { name, offset } => {
                let name = validate_name(name.as_bytes()).map_err(WireError::BadName)?;
                payload.put(&[KIND_GET, name.len() as u8])?;
                payload.put(name.as_bytes())?;
                payload.put(&offset.to_be_bytes())?;
            }
            Message::Accept { size, offset } => return emit_accept(size, offset, out),
            Message::Status {
                status,
                digest,
                reason,
            } => return emit_status(status, &digest, reason, out),
        }
        payload.finish(out)
    }
}

/// A frame's payload as it is written, the magic first.
struct Payload(heapless::Vec<u8, MAX_FRAME>);

impl Payload {
    fn new() -> Result<Self, WireError> {
        let mut payload = Payload(heapless::Vec::new());
        payload.put(&MAGIC)?;
        Ok(payload)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.0
            .extend_from_slice(bytes)
            .map_err(|_| WireError::TooLong)
    }

    /// The frame, length prefix included, in `out`; returns its length.
    fn finish(&self, out: &mut [u8]) -> Result<usize, WireError> {
        Ok(encode_length_prefixed(&self.0, out)?)
    }
}

/// Writes [`Message::Accept`] into `out` (as [`Message::emit`]); a server, which sends
/// only accepts and statuses, calls this and [`emit_status`] without the requests'
/// encoders.
pub fn emit_accept(size: u64, offset: u64, out: &mut [u8]) -> Result<usize, WireError> {
    let mut payload = Payload::new()?;
    payload.put(&[KIND_ACCEPT])?;
    payload.put(&size.to_be_bytes())?;
    payload.put(&offset.to_be_bytes())?;
    payload.finish(out)
}

/// Writes [`Message::Status`] into `out` (as [`Message::emit`]): the reason cut to
/// [`MAX_REASON`] bytes at a character boundary.
pub fn emit_status(
    status: Status,
    digest: &Digest,
    reason: &str,
    out: &mut [u8],
) -> Result<usize, WireError> {
    let mut cut = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Payload::new()?;
    payload.put(&[KIND_STATUS, status as u8])?;
    payload.put(digest)?;
    payload.put(&[cut as u8])?;
    payload.put(&reason.as_bytes()[..cut])?;
    payload.finish(out)
}

/// Writes the answer to a version 1 request into `out` and returns its length: a status
/// frame of version 1 (magic `RNT1`, status 1, bad request, reason [`VERSION1_REFUSAL`]),
/// the one frame a version 1 client can read and show.
pub fn emit_version1_refusal(out: &mut [u8]) -> Result<usize, WireError> {
    let n = emit_status(Status::BadRequest, &[0; DIGEST_LEN], VERSION1_REFUSAL, out)?;
    // The same layout in both versions: only the magic differs.
    out[4..8].copy_from_slice(&MAGIC_V1);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message<'_>) {
        let mut buf = [0u8; 300];
        let n = message.emit(&mut buf).unwrap();
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, n - 4);
        assert_eq!(Message::parse(&buf[4..n]), Ok(message));
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Message::Put {
            name: "notes.txt",
            size: 1 << 40,
        });
        round_trip(Message::PutWithToken {
            name: &"n".repeat(MAX_NAME),
            size: 7,
            token: &"t".repeat(MAX_TOKEN),
        });
        round_trip(Message::Trailer { sha256: [9; 32] });
        round_trip(Message::Get {
            name: "a",
            offset: 12345,
        });
        round_trip(Message::Accept {
            size: u64::MAX,
            offset: 3,
        });
        round_trip(Message::Status {
            status: Status::DigestMismatch,
            digest: [0; 32],
            reason: "the data's digest differs",
        });
    }

    #[test]
    fn a_put_request_has_the_documented_bytes() {
        let mut buf = [0u8; 64];
        let n = Message::Put {
            name: "hi",
            size: 5,
        }
        .emit(&mut buf)
        .unwrap();
        let mut expected = std::vec![0, 0, 0, 16, b'R', b'N', b'T', b'2', 1, 2, b'h', b'i'];
        expected.extend_from_slice(&5u64.to_be_bytes());
        assert_eq!(&buf[..n], &expected[..]);
    }

    #[test]
    fn a_trailer_has_the_documented_bytes_and_is_an_error_at_every_cut() {
        let mut buf = [0u8; 64];
        let n = Message::Trailer { sha256: [0xcd; 32] }
            .emit(&mut buf)
            .unwrap();
        assert_eq!(n, TRAILER_FRAME);
        let mut expected = std::vec![0, 0, 0, 37, b'R', b'N', b'T', b'2', 6];
        expected.extend_from_slice(&[0xcd; 32]);
        assert_eq!(&buf[..n], &expected[..]);
        for cut in 4..n - 1 {
            assert_eq!(
                Message::parse(&buf[4..cut]).map(|_| ()),
                Err(if cut < 8 {
                    WireError::BadMagic
                } else {
                    WireError::Truncated
                }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_version_1_frame_is_told_apart_and_refused_in_version_1_words() {
        // A version 1 put of "hi": its magic, its kind, the digest in the request.
        let mut v1 = std::vec![b'R', b'N', b'T', b'1', 1, 2, b'h', b'i'];
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(&[0xab; 32]);
        assert_eq!(Message::parse(&v1), Err(WireError::Version1));
        let mut out = [0u8; MAX_FRAME + 4];
        let n = emit_version1_refusal(&mut out).unwrap();
        assert_eq!(&out[4..9], b"RNT1\x04", "a version 1 status frame");
        assert_eq!(out[9], Status::BadRequest as u8);
        assert_eq!(usize::from(out[42]), VERSION1_REFUSAL.len());
        assert_eq!(&out[43..n], VERSION1_REFUSAL.as_bytes());
        assert!(VERSION1_REFUSAL.len() <= MAX_REASON, "sent whole");
        assert_eq!(Message::parse(&out[4..n]), Err(WireError::Version1));
    }

    #[test]
    fn bad_names_are_refused() {
        for (name, error) in [
            (&b""[..], NameError::Empty),
            (b"../x", NameError::Separator),
            (b"a/b", NameError::Separator),
            (b"a\\b", NameError::Separator),
            (b"..", NameError::Reserved),
            (b".hidden", NameError::Reserved),
            (b"x.part", NameError::Reserved),
            (b"tab\there", NameError::NotPrintable),
            (&[b'x'; 300][..], NameError::TooLong),
        ] {
            assert_eq!(
                validate_name(name),
                Err(error),
                "{:?}",
                core::str::from_utf8(name)
            );
        }
        assert_eq!(validate_name(b"report 2026.txt"), Ok("report 2026.txt"));
    }

    #[test]
    fn malformed_frames_are_errors_at_every_cut() {
        let mut buf = [0u8; 300];
        let n = Message::Get {
            name: "file",
            offset: 9,
        }
        .emit(&mut buf)
        .unwrap();
        for cut in 4..n - 1 {
            assert!(Message::parse(&buf[4..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = buf;
        bad[4] = b'X';
        assert_eq!(Message::parse(&bad[4..n]), Err(WireError::BadMagic));
        bad = buf;
        bad[8] = 99;
        assert_eq!(Message::parse(&bad[4..n]), Err(WireError::UnknownKind(99)));
        let mut longer = [0u8; 300];
        longer[..n].copy_from_slice(&buf[..n]);
        assert_eq!(
            Message::parse(&longer[4..n + 1]),
            Err(WireError::TrailingBytes)
        );
    }

    #[test]
    fn a_put_with_a_token_has_the_documented_bytes_and_bad_tokens_are_refused() {
        let mut buf = [0u8; 80];
        let n = Message::PutWithToken {
            name: "hi",
            size: 5,
            token: "s3cret",
        }
        .emit(&mut buf)
        .unwrap();
        let mut expected = std::vec![0, 0, 0, 23, b'R', b'N', b'T', b'2', 5, 2, b'h', b'i'];
        expected.extend_from_slice(&5u64.to_be_bytes());
        expected.extend_from_slice(b"\x06s3cret");
        assert_eq!(&buf[..n], &expected[..]);
        for cut in 4..n - 1 {
            assert!(Message::parse(&buf[4..cut]).is_err(), "cut at {cut}");
        }
        for (token, error) in [
            (&b""[..], TokenError::Empty),
            (b"with space", TokenError::NotPrintable),
            (b"tab\t", TokenError::NotPrintable),
            (&[b'x'; 65][..], TokenError::TooLong),
        ] {
            assert_eq!(validate_token(token), Err(error));
            let mut frame = expected[4..n - 7].to_vec();
            frame.push(token.len() as u8);
            frame.extend_from_slice(token);
            assert_eq!(
                Message::parse(&frame),
                Err(WireError::BadToken(error)),
                "{token:?}"
            );
        }
    }
}
