//! Writing a response head into a connection's queue: the status line, the framing
//! fields, and the short text answers, one table of status and body for every refusal
//! and every small success, so that each is a byte of data at its call site rather than
//! a copy of the code that writes it.

use crate::text::{Sink, Text};

/// The methods the server allows, as the `Allow` field of `204` (`OPTIONS`), `405` and
/// `501`.
pub(super) const ALLOW_FIELD: &str = "Allow: GET, HEAD, PUT, POST, DELETE, OPTIONS\r\n";
/// `Content-Type` of a short text answer, of the file list.
pub(super) const TEXT_PLAIN: &str = "Content-Type: text/plain\r\n";
/// `Content-Type` of the stats.
pub(super) const JSON: &str = "Content-Type: application/json\r\n";
/// The fields before the length of a stored file's response.
pub(super) const OCTETS: &str =
    "Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n";
/// The interim answer to `Expect: 100-continue`.
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Declares [`Answer`] and its table: each variant's status, and its body as a slice of
/// one string of all the bodies (each ends with a newline), so that an answer costs the
/// table two bytes and its text, not a pointer and a length.
macro_rules! answers {
    ($($(#[$doc:meta])* $name:ident = $status:literal $body:literal,)*) => {
        /// A short text answer: its status and its body (`text/plain`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(super) enum Answer {
            $($(#[$doc])* $name,)*
        }

        /// Each [`Answer`]'s status, in the enum's order.
        const STATUS: &[u16] = &[$($status,)*];
        /// Each [`Answer`]'s body, in the enum's order, one after the other.
        const BODIES: &str = concat!($($body,)*);
        /// Every [`Answer`], in order.
        #[cfg(test)]
        const ALL: &[Answer] = &[$(Answer::$name,)*];
    };
}

answers! {
    /// `201`: an upload is stored.
    Stored = 201 "stored\n",
    /// `400`: a head `httparse` refuses.
    Malformed = 400 "malformed request\n",
    /// `400`: a `Content-Length` that cannot be trusted (RFC 9112 6.3).
    BadLength = 400 "bad Content-Length\n",
    /// `400`: `Content-Length` with `Transfer-Encoding`.
    LengthAndChunked = 400 "Content-Length with Transfer-Encoding\n",
    /// `400`: an upload to a path that is no store name.
    BadName = 400 "bad file name\n",
    /// `401`: a write without the bearer token (with `WWW-Authenticate`).
    Unauthorized = 401 "a bearer token is required\n",
    /// `403`: a write to a read-only file.
    ReadOnly = 403 "read-only file\n",
    /// `404`.
    NotFound = 404 "not found\n",
    /// `405`: a write to `/` or `/stats`.
    Generated = 405 "generated, not a file\n",
    /// `405`: `PATCH`, `TRACE`, `CONNECT`.
    NotAllowed = 405 "method not allowed\n",
    /// `408`: silent past the idle timeout, or a head past the head timeout.
    Timeout = 408 "request timeout\n",
    /// `409`: `POST` of a name that exists.
    Exists = 409 "the file exists (PUT replaces)\n",
    /// `409`: a newer upload of the same name won.
    Conflict = 409 "a newer upload of this name won\n",
    /// `411`: an upload without `Content-Length`.
    LengthRequired = 411 "Content-Length required\n",
    /// `413`: an upload larger than the store takes.
    TooLarge = 413 "the file does not fit\n",
    /// `414`: the request line alone fills the head buffer.
    LineTooLong = 414 "request line too long\n",
    /// `431`: a head longer than the head buffer.
    HeadTooLarge = 431 "request head too large\n",
    /// `431`: more header fields than the server parses.
    TooManyHeaders = 431 "too many header fields\n",
    /// `500`: the store failed.
    StoreFailed = 500 "the store failed\n",
    /// `500`: the store cannot open a file it has.
    Unreadable = 500 "the store cannot read the file\n",
    /// `501`: a method never heard of.
    NotImplemented = 501 "method not implemented\n",
    /// `501`: a chunked upload.
    Chunked = 501 "chunked uploads are not supported\n",
    /// `503`: every connection busy.
    Busy = 503 "all connections are busy\n",
    /// `503`: another response is sending the snapshot.
    SnapshotBusy = 503 "busy with another listing\n",
    /// `503`: the store takes one upload at a time.
    UploadBusy = 503 "another upload is in progress\n",
    /// `507`: the store filled up mid-body.
    StoreFull = 507 "the store is full\n",
}

/// Line `index` of `lines` (each ends with a newline), with its newline; `""` past the end.
fn nth_line(lines: &'static str, index: usize) -> &'static str {
    let mut start = 0;
    let mut skip = index;
    for (at, byte) in lines.bytes().enumerate() {
        if byte == b'\n' {
            if skip == 0 {
                return lines.get(start..=at).unwrap_or("");
            }
            skip -= 1;
            start = at + 1;
        }
    }
    ""
}

/// The status and the body of `answer`.
fn status_and_body(answer: Answer) -> (u16, &'static str) {
    let index = usize::from(answer as u8);
    let status = STATUS.get(index).copied().unwrap_or(500);
    (status, nth_line(BODIES, index))
}

/// Each status the server sends, and (in [`REASONS`], a line each) its reason phrase.
const REASON_CODES: [u16; 20] = [
    200, 201, 204, 206, 400, 401, 403, 404, 405, 408, 409, 411, 413, 414, 416, 431, 500, 501, 503,
    507,
];
/// The reason phrases of [`REASON_CODES`].
const REASONS: &str = concat!(
    "OK\n",
    "Created\n",
    "No Content\n",
    "Partial Content\n",
    "Bad Request\n",
    "Unauthorized\n",
    "Forbidden\n",
    "Not Found\n",
    "Method Not Allowed\n",
    "Request Timeout\n",
    "Conflict\n",
    "Length Required\n",
    "Content Too Large\n",
    "URI Too Long\n",
    "Range Not Satisfiable\n",
    "Request Header Fields Too Large\n",
    "Internal Server Error\n",
    "Not Implemented\n",
    "Service Unavailable\n",
    "Insufficient Storage\n",
);

/// The reason phrase of `status`.
fn reason(status: u16) -> &'static str {
    let line = match REASON_CODES.iter().position(|&code| code == status) {
        Some(index) => nth_line(REASONS, index),
        None => "Unknown\n",
    };
    line.strip_suffix('\n').unwrap_or(line)
}

/// Starts a response head in `out` (a connection's queue): the status line, `Server`
/// and `Connection`; the rest of the head goes on through the writer it returns.
pub(super) fn head_start(out: &mut dyn Sink, status: u16, keep_alive: bool) -> Text<'_> {
    let mut head = Text::new(out);
    let connection = if keep_alive {
        "keep-alive\r\n"
    } else {
        "close\r\n"
    };
    head.str("HTTP/1.1 ")
        .num(status.into())
        .str(" ")
        .str(reason(status))
        .str("\r\nServer: ringnet\r\nConnection: ")
        .str(connection);
    head
}

/// Writes `fields` (whole lines) and then `Content-Length: length`.
pub(super) fn length_field(head: &mut Text<'_>, fields: &str, length: u64) {
    head.str(fields)
        .str("Content-Length: ")
        .num(length)
        .str("\r\n");
}

/// Writes a whole head whose last fields are `fields` and the length, ending it.
pub(super) fn head(out: &mut dyn Sink, status: u16, keep_alive: bool, fields: &str, length: u64) {
    let mut head = head_start(out, status, keep_alive);
    length_field(&mut head, fields, length);
    head.str("\r\n");
}

/// Writes `answer`, head and body, into `out`.
pub(super) fn text_response(out: &mut dyn Sink, answer: Answer, keep_alive: bool) {
    let (status, body) = status_and_body(answer);
    let mut head = head_start(out, status, keep_alive);
    if answer == Answer::Unauthorized {
        head.str("WWW-Authenticate: Bearer realm=\"ringnet\"\r\n");
    }
    length_field(&mut head, TEXT_PLAIN, body.len() as u64);
    if status == 405 || status == 501 {
        head.str(ALLOW_FIELD);
    }
    head.str("\r\n").str(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_has_a_reason_and_its_status() {
        assert_eq!(BODIES.matches('\n').count(), STATUS.len());
        assert_eq!(ALL.len(), STATUS.len());
        for (&answer, &status) in ALL.iter().zip(STATUS) {
            assert_ne!(reason(status), "Unknown", "{status}");
            let (got, body) = status_and_body(answer);
            assert_eq!(got, status, "{answer:?}");
            assert!(body.ends_with('\n') && body.len() > 1, "{body:?}");
        }
        assert_eq!(status_and_body(Answer::Stored), (201, "stored\n"));
        assert_eq!(
            status_and_body(Answer::Busy),
            (503, "all connections are busy\n")
        );
        assert_eq!(
            status_and_body(Answer::StoreFull),
            (507, "the store is full\n")
        );
    }

    #[test]
    fn a_text_answer_is_a_whole_response() {
        let mut out: heapless::Vec<u8, 512> = heapless::Vec::new();
        text_response(&mut out, Answer::NotAllowed, true);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: ringnet\r\nConnection: keep-alive\r\n\
             Content-Type: text/plain\r\nContent-Length: 19\r\n\
             Allow: GET, HEAD, PUT, POST, DELETE, OPTIONS\r\n\r\nmethod not allowed\n"
        );
    }
}
