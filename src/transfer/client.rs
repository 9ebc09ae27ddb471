//! The transfer client: put and get over any blocking byte stream with the `embedded-io`
//! traits: a ringnet `blocking::TcpStream` (feature `blocking`; every block shows in the
//! log), or a kernel socket on the host through an `embedded-io` adapter.

use core::fmt;

use heapless::String;
use sha2::{Digest as _, Sha256};

use super::wire::{Digest, Message, Status, WireError, MAX_FRAME, MAX_REASON};
use embedded_io::{ErrorKind, Read, ReadExactError, Write};

use crate::convert::{room, wide};
use crate::framing::PREFIX_LEN;
use crate::services::{FileSource, ReadError};

/// A transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferError {
    /// The stream failed: the connection broke, or a timeout expired.
    Io(ErrorKind),
    /// The peer closed the connection in the middle of the transfer.
    UnexpectedEnd,
    /// The peer sent a malformed frame.
    Wire(WireError),
    /// The peer sent a frame that does not fit the protocol's sequence.
    UnexpectedMessage,
    /// The peer refused or failed the transfer, and said why.
    Refused {
        /// Its status.
        status: Status,
        /// Its reason.
        reason: String<MAX_REASON>,
    },
    /// The data received does not match the digest the peer announced.
    DigestMismatch,
    /// The local file could not be read.
    Source,
    /// The received data could not be written locally.
    Sink,
    /// The local name is invalid (see [`super::validate_name`]).
    BadName,
    /// The peer answered in protocol version 1 (`RNT1`): a server from before the digest
    /// moved to the trailer, which cannot take a version 2 request.
    Version1Peer,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Io(kind) => write!(f, "connection failed: {kind:?}"),
            TransferError::UnexpectedEnd => f.write_str("the peer closed mid-transfer"),
            TransferError::Wire(e) => write!(f, "malformed frame: {e}"),
            TransferError::UnexpectedMessage => f.write_str("unexpected frame"),
            TransferError::Refused { status, reason } => write!(f, "peer said {status}: {reason}"),
            TransferError::DigestMismatch => f.write_str("SHA-256 mismatch: data is corrupt"),
            TransferError::Source => f.write_str("local file unreadable"),
            TransferError::Sink => f.write_str("local file unwritable"),
            TransferError::BadName => f.write_str("invalid file name"),
            TransferError::Version1Peer => f.write_str(
                "the peer speaks transfer protocol version 1 only (RNT1); this client speaks version 2",
            ),
        }
    }
}

impl core::error::Error for TransferError {}

fn io<E: embedded_io::Error>(error: E) -> TransferError {
    TransferError::Io(error.kind())
}

fn read_exact<S: Read>(stream: &mut S, buf: &mut [u8]) -> Result<(), TransferError> {
    stream.read_exact(buf).map_err(|e| match e {
        ReadExactError::UnexpectedEof => TransferError::UnexpectedEnd,
        ReadExactError::Other(e) => io(e),
    })
}

impl From<ReadError> for TransferError {
    fn from(_: ReadError) -> Self {
        TransferError::Source
    }
}

/// A frame read off the stream, owned so that the stream can move on.
#[derive(Debug)]
enum Reply {
    Accept {
        size: u64,
        offset: u64,
    },
    Status {
        status: Status,
        digest: Digest,
        reason: String<MAX_REASON>,
    },
}

fn send_frame<S: Write>(stream: &mut S, message: Message<'_>) -> Result<(), TransferError> {
    let mut frame = [0u8; MAX_FRAME + PREFIX_LEN];
    let n = message.emit(&mut frame).map_err(|e| match e {
        WireError::BadName(_) => TransferError::BadName,
        other => TransferError::Wire(other),
    })?;
    stream.write_all(&frame[..n]).map_err(io)
}

/// Reads exactly one frame, and not a byte more (data may follow it).
fn read_frame<S: Read>(stream: &mut S) -> Result<Reply, TransferError> {
    let mut prefix = [0u8; PREFIX_LEN];
    read_exact(stream, &mut prefix)?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(TransferError::Wire(WireError::TooLong));
    }
    let mut payload = [0u8; MAX_FRAME];
    read_exact(stream, &mut payload[..len])?;
    let message = Message::parse(&payload[..len]).map_err(|e| match e {
        WireError::Version1 => TransferError::Version1Peer,
        other => TransferError::Wire(other),
    })?;
    match message {
        Message::Accept { size, offset } => Ok(Reply::Accept { size, offset }),
        Message::Status {
            status,
            digest,
            reason,
        } => Ok(Reply::Status {
            status,
            digest,
            reason: String::try_from(reason).unwrap_or_default(),
        }),
        _ => Err(TransferError::UnexpectedMessage),
    }
}

fn expect_ok(reply: Reply) -> Result<Digest, TransferError> {
    match reply {
        Reply::Status {
            status: Status::Ok,
            digest,
            ..
        } => Ok(digest),
        Reply::Status { status, reason, .. } => Err(TransferError::Refused { status, reason }),
        Reply::Accept { .. } => Err(TransferError::UnexpectedMessage),
    }
}

/// Puts `source` under `name` on the peer at the other end of `stream`, and returns the
/// SHA-256 both sides agreed on. `progress` is told the bytes sent so far.
pub fn put<S: Read + Write>(
    stream: &mut S,
    name: &str,
    source: &dyn FileSource,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Digest, TransferError> {
    put_with_token(stream, name, None, source, progress)
}

/// [`put`] with the token a server may require for writes (sent in a
/// [`Message::PutWithToken`]; `None` sends a plain put). A wrong or missing token is
/// [`TransferError::Refused`] with [`Status::Unauthorized`]; a token that breaks the
/// rules ([`super::validate_token`]) is `Wire(BadToken)`, before anything is sent.
pub fn put_with_token<S: Read + Write>(
    stream: &mut S,
    name: &str,
    token: Option<&str>,
    source: &dyn FileSource,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Digest, TransferError> {
    let mut buf = [0u8; 4096];
    put_with_buffer(stream, name, token, source, &mut buf, progress)
}

/// [`put_with_token`] moving the data through `buf` (at least 1 byte): on a kernel
/// socket a larger buffer means fewer system calls (the host's client passes 1 MiB).
pub fn put_with_buffer<S: Read + Write>(
    stream: &mut S,
    name: &str,
    token: Option<&str>,
    source: &dyn FileSource,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Digest, TransferError> {
    if buf.is_empty() {
        return Err(TransferError::Source);
    }
    let size = source.len();
    put_request(stream, name, token, size)?;
    // One pass over the file: each piece is hashed as it is sent, and the digest follows
    // the data in the trailer.
    let mut hasher = Sha256::new();
    let mut sent = 0;
    while sent < size {
        let want = room(size - sent).min(buf.len());
        let n = source.read_at(sent, &mut buf[..want])?;
        if n == 0 {
            return Err(TransferError::Source);
        }
        hasher.update(&buf[..n]);
        stream.write_all(&buf[..n]).map_err(io)?;
        sent += wide(n);
        progress(sent, size);
    }
    put_trailer(stream, hasher.finalize().into())
}

/// The first half of a put, for a client that moves and hashes the data itself (the
/// host's client reads and hashes the file in a thread beside the one that writes the
/// socket): sends the request for `size` bytes under `name` and reads the accept (or the
/// refusal, as [`put_with_token`] reports it; an accept of another size or from another
/// offset than 0 is [`TransferError::UnexpectedMessage`]). Exactly `size` bytes of data must follow,
/// written to `stream` as they are, then [`put_trailer`] with their SHA-256.
pub fn put_request<S: Read + Write>(
    stream: &mut S,
    name: &str,
    token: Option<&str>,
    size: u64,
) -> Result<(), TransferError> {
    let request = match token {
        Some(token) => Message::PutWithToken { name, size, token },
        None => Message::Put { name, size },
    };
    send_frame(stream, request)?;
    match read_frame(stream)? {
        // An accept of another size, or from another offset, accepts some other upload.
        Reply::Accept {
            size: accepted,
            offset: 0,
        } if accepted == size => Ok(()),
        Reply::Accept { .. } => Err(TransferError::UnexpectedMessage),
        other => Err(expect_ok(other)
            .err()
            .unwrap_or(TransferError::UnexpectedMessage)),
    }
}

/// The second half of a put begun with [`put_request`], once all its data is written:
/// sends the trailer with `digest` (the data's SHA-256), reads the status, and returns the
/// digest both sides agreed on.
pub fn put_trailer<S: Read + Write>(
    stream: &mut S,
    digest: Digest,
) -> Result<Digest, TransferError> {
    send_frame(stream, Message::Trailer { sha256: digest })?;
    stream.flush().map_err(io)?;
    let agreed = expect_ok(read_frame(stream)?)?;
    if agreed != digest {
        return Err(TransferError::DigestMismatch);
    }
    Ok(digest)
}

/// What a [`get`]'s sink says when it could not keep the bytes it was given (a local
/// write failed; the sink keeps the reason): the get stops with [`TransferError::Sink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkError;

/// Gets `name` from the peer at the other end of `stream` into `sink`, from `resume.0`
/// on, where `resume.1` holds the SHA-256 state of the bytes already kept (a fresh hasher
/// for a whole file). Returns the file's size and verified SHA-256; on any error the
/// caller must not keep the file under its final name.
pub fn get<S: Read + Write>(
    stream: &mut S,
    name: &str,
    resume: (u64, Sha256),
    sink: &mut dyn FnMut(&[u8]) -> Result<(), SinkError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, Digest), TransferError> {
    let mut buf = [0u8; 4096];
    get_with_buffer(stream, name, resume, &mut buf, sink, progress)
}

/// [`get`] moving the data through `buf` (at least 1 byte), as [`put_with_buffer`].
pub fn get_with_buffer<S: Read + Write>(
    stream: &mut S,
    name: &str,
    resume: (u64, Sha256),
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> Result<(), SinkError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, Digest), TransferError> {
    if buf.is_empty() {
        return Err(TransferError::Sink);
    }
    let (offset, mut hasher) = resume;
    let size = get_request(stream, name, offset)?;
    let mut received = offset;
    while received < size {
        let want = room(size - received).min(buf.len());
        let n = stream.read(&mut buf[..want]).map_err(io)?;
        if n == 0 {
            return Err(TransferError::UnexpectedEnd);
        }
        hasher.update(&buf[..n]);
        sink(&buf[..n]).map_err(|SinkError| TransferError::Sink)?;
        received += wide(n);
        progress(received, size);
    }
    let digest: Digest = hasher.finalize().into();
    get_status(stream, digest)?;
    Ok((size, digest))
}

/// The first half of a get, for a client that moves and hashes the data itself (the
/// host's client hashes and writes in a thread beside the one that reads the socket):
/// asks for `name` from `offset` on and reads the accept; returns the file's size (an
/// accept from another offset, or of a file shorter than `offset`, is
/// [`TransferError::UnexpectedMessage`]). Its
/// bytes from `offset` to the size follow on `stream` as they are, then
/// [`get_status`].
pub fn get_request<S: Read + Write>(
    stream: &mut S,
    name: &str,
    offset: u64,
) -> Result<u64, TransferError> {
    send_frame(stream, Message::Get { name, offset })?;
    match read_frame(stream)? {
        // A file shorter than the offset has no bytes from there: an ok status after
        // such an accept would verify bytes that were never sent.
        Reply::Accept {
            size,
            offset: start,
        } if start == offset && offset <= size => Ok(size),
        Reply::Accept { .. } => Err(TransferError::UnexpectedMessage),
        other => Err(expect_ok(other)
            .err()
            .unwrap_or(TransferError::UnexpectedMessage)),
    }
}

/// The second half of a get begun with [`get_request`], once all its data is read: reads
/// the final status and checks its digest against `digest`, the SHA-256 of the whole
/// file as the client hashed it ([`TransferError::DigestMismatch`] if they differ).
pub fn get_status<S: Read + Write>(stream: &mut S, digest: Digest) -> Result<(), TransferError> {
    let announced = expect_ok(read_frame(stream)?)?;
    if announced != digest {
        return Err(TransferError::DigestMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A peer that answers from a script: reads come from `reply`, writes are kept.
    struct Scripted {
        reply: Vec<u8>,
        at: usize,
        sent: Vec<u8>,
    }

    impl embedded_io::ErrorType for Scripted {
        type Error = ErrorKind;
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            let n = buf.len().min(self.reply.len() - self.at);
            buf[..n].copy_from_slice(&self.reply[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    fn frames(messages: &[Message<'_>]) -> Scripted {
        let mut reply = Vec::new();
        for message in messages {
            let mut frame = [0u8; MAX_FRAME + PREFIX_LEN];
            let n = message.emit(&mut frame).unwrap();
            reply.extend_from_slice(&frame[..n]);
        }
        Scripted {
            reply,
            at: 0,
            sent: Vec::new(),
        }
    }

    #[test]
    fn an_accept_that_does_not_answer_the_request_is_refused_not_verified() {
        // A resume from 100 answered with a file of 50 bytes, and an ok status whose
        // digest is that of the 100 bytes kept: no byte of the 50 was ever received.
        let kept = [7u8; 100];
        let mut prefix = Sha256::new();
        prefix.update(kept);
        let digest: Digest = prefix.clone().finalize().into();
        let mut peer = frames(&[
            Message::Accept {
                size: 50,
                offset: 100,
            },
            Message::Status {
                status: Status::Ok,
                digest,
                reason: "",
            },
        ]);
        let got = get(
            &mut peer,
            "f",
            (100, prefix),
            &mut |_| Ok(()),
            &mut |_, _| {},
        );
        assert_eq!(got, Err(TransferError::UnexpectedMessage));
        // A put accepted for another size, or from another offset, is no accept of it.
        for (size, offset) in [(4, 0), (5, 1)] {
            let mut peer = frames(&[Message::Accept { size, offset }]);
            assert_eq!(
                put_request(&mut peer, "f", None, 5),
                Err(TransferError::UnexpectedMessage),
                "accept of {size} from {offset}"
            );
        }
        let mut peer = frames(&[Message::Accept { size: 5, offset: 0 }]);
        assert_eq!(put_request(&mut peer, "f", None, 5), Ok(()));
    }
}
