//! Reading a request: where its head ends, what it asks for (the small [`Request`] the
//! server acts on), the file it names and the range it wants.

use core::num::ParseIntError;

use heapless::{String, Vec};

use crate::handle::SocketHandle;
use crate::stack::Stack;
use crate::transfer::validate_name;

/// Headers parsed per request.
const MAX_HEADERS: usize = 16;

/// Where the head waiting in `head` ends, once it is complete: at the first empty line,
/// whether lines end in CRLF or, as RFC 9112 (2.2) lets a server accept, a bare LF.
/// Empty lines before the request line are dropped first, as that section asks.
pub(super) fn complete_head<const N: usize>(head: &mut Vec<u8, N>) -> Option<usize> {
    let blank = head
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        let rest = head.len() - blank;
        head.copy_within(blank.., 0);
        head.truncate(rest);
    }
    (0..head.len()).find_map(|i| match (head[i], head.get(i + 1), head.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// Percent-decodes a request path into a store name; `None` if malformed.
fn decode_name(path: &str) -> Option<String<128>> {
    let path = path.split('?').next()?.strip_prefix('/')?;
    let mut name: Vec<u8, 128> = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let hex = core::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            i += 3;
            u8::from_str_radix(hex, 16).ok()?
        } else {
            i += 1;
            bytes[i - 1]
        };
        name.push(byte).ok()?;
    }
    let name = validate_name(&name).ok()?;
    String::try_from(name).ok()
}

/// One range of a `Range` header, before the file's length is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RangeSpec {
    /// `bytes=A-`
    From(u64),
    /// `bytes=A-B` (B inclusive)
    FromTo(u64, u64),
    /// `bytes=-N`: the last N bytes.
    Last(u64),
}

/// A range that selects no byte of the file (`416 Range Not Satisfiable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsatisfiable;

impl RangeSpec {
    /// The bytes `start..end` of a file of `len` bytes.
    pub(super) fn resolve(self, len: u64) -> Result<(u64, u64), Unsatisfiable> {
        let (start, end) = match self {
            RangeSpec::Last(0) => return Err(Unsatisfiable),
            RangeSpec::Last(n) => (len.saturating_sub(n), len),
            RangeSpec::From(s) => (s, len),
            RangeSpec::FromTo(s, e) => (s, e.saturating_add(1).min(len)),
        };
        if start >= len {
            return Err(Unsatisfiable);
        }
        Ok((start, end))
    }
}

/// Parses `bytes=A-B`, `bytes=A-`, `bytes=-N`; `None` to ignore the header (another unit,
/// several ranges, or a malformed one), as RFC 9110 allows.
fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    match (start.trim(), end.trim()) {
        ("", suffix) => suffix.parse().ok().map(RangeSpec::Last),
        (s, "") => s.parse().ok().map(RangeSpec::From),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            (e >= s).then_some(RangeSpec::FromTo(s, e))
        }
    }
}

/// A request's method, as far as the server tells them apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `PUT`.
    Put,
    /// `OPTIONS`.
    Options,
    /// A method HTTP defines that this server does not allow (`405`).
    NotAllowed,
    /// Anything else (`501`).
    Unknown,
}

/// A body the server generates rather than reads from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Generated {
    /// `/`: the file list.
    Listing,
    /// `/stats`: the socket counters, as JSON.
    Stats,
}

/// What the server acts on, taken out of a request head so that the head's buffer can
/// be reused before the response is built.
pub(super) struct Request {
    pub method: Method,
    /// The `x` of `HTTP/1.x`.
    pub version: u8,
    /// `/` or `/stats`: a snapshot of the file list or of the stats.
    pub generated: Option<Generated>,
    /// The path as a store name, if it is one.
    pub name: Option<String<128>>,
    /// `Connection: close`.
    pub wants_close: bool,
    /// `Content-Length`, if given, as far as it parses.
    pub content_length: Option<Result<u64, ParseIntError>>,
    /// `Transfer-Encoding` of any kind.
    pub chunked: bool,
    /// A single `Range` the server honours.
    pub range: Option<RangeSpec>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl Request {
    /// Parses a complete request head at the start of `head`, and says how many bytes it
    /// took; `None` if it is malformed. Logs the request line.
    pub(super) fn parse(
        head: &[u8],
        stack: &Stack<'_>,
        socket: SocketHandle,
    ) -> Option<(Request, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(length)) = request.parse(head) else {
            return None;
        };
        let method = request.method.unwrap_or("");
        let path = request.path.unwrap_or("/");
        let version = request.version.unwrap_or(0);
        log::info!(
            "{}: http tcp{socket} {method} {path} HTTP/1.{version}",
            stack.name()
        );
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| core::str::from_utf8(h.value).ok())
        };
        let request = Request {
            method: match method {
                "GET" => Method::Get,
                "HEAD" => Method::Head,
                "PUT" => Method::Put,
                "OPTIONS" => Method::Options,
                "POST" | "DELETE" | "PATCH" | "TRACE" | "CONNECT" => Method::NotAllowed,
                _ => Method::Unknown,
            },
            version,
            generated: match path {
                "/" => Some(Generated::Listing),
                "/stats" => Some(Generated::Stats),
                _ => None,
            },
            name: decode_name(path),
            wants_close: header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            content_length: header("Content-Length").map(|v| v.trim().parse::<u64>()),
            chunked: header("Transfer-Encoding").is_some(),
            range: header("Range").and_then(parse_range),
            expect_continue: header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        };
        Some((request, length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_and_traversal_is_refused() {
        assert_eq!(decode_name("/a%20b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(decode_name("/file?x=1").as_deref(), Some("file"));
        for bad in [
            "/../etc/passwd",
            "/%2e%2e%2fetc%2fpasswd",
            "/..%2Fx",
            "/a/b",
            "/%zz",
            "/%2",
            "/",
            "/.hidden",
        ] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let range = |value: &str, len: u64| parse_range(value).map(|r| r.resolve(len));
        assert_eq!(range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(range("bytes=-10", 100), Some(Ok((90, 100))));
        assert_eq!(range("bytes=-500", 100), Some(Ok((0, 100))));
        assert_eq!(range("bytes=50-500", 100), Some(Ok((50, 100))));
        assert_eq!(range("bytes=100-", 100), Some(Err(Unsatisfiable)));
        assert_eq!(
            range("bytes=-0", 100),
            Some(Err(Unsatisfiable)),
            "an empty suffix"
        );
        assert_eq!(
            range("bytes=0-18446744073709551615", 100),
            Some(Ok((0, 100))),
            "the largest end does not overflow"
        );
        assert_eq!(
            range("bytes=0-1,5-6", 100),
            None,
            "multiple ranges: served whole"
        );
        assert_eq!(range("bytes=9-3", 100), None, "backwards: ignored");
        assert_eq!(range("items=0-1", 100), None);
    }
}
