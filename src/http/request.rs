//! Reading a request: where its head ends, what it asks for (the small [`Request`] the
//! server acts on), the file it names and the range it wants.

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

/// The path of a request target: the origin form as it is, the absolute form
/// (`http://host/file`, which RFC 9112 3.2.2 says a server must accept) without its scheme
/// and authority; the query cut off.
fn target_path(target: &str) -> &str {
    let path = match target.find("://") {
        // `get`, not indexing: the offsets are ASCII boundaries found above, but an index
        // would link core's char-boundary panic and its Unicode tables (about 3 KiB of
        // firmware flash) for a case that cannot happen.
        Some(scheme_end) if !target.starts_with('/') => {
            let rest = target.get(scheme_end + 3..).unwrap_or("");
            rest.find('/')
                .and_then(|slash| rest.get(slash..))
                .unwrap_or("/")
        }
        _ => target,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Percent-decodes a request path into a store name; `None` if malformed.
fn decode_name(path: &str) -> Option<String<128>> {
    let path = target_path(path).strip_prefix('/')?;
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

/// A decimal of digits only (no sign, no space: RFC 9110's `1*DIGIT`), saturating at
/// `u64::MAX` past it: a position beyond any file is still a position.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parses `bytes=A-B`, `bytes=A-`, `bytes=-N`; `None` to ignore the header (another unit,
/// several ranges, or a malformed one), as RFC 9110 allows.
fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim_ascii().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    match (start.trim_ascii(), end.trim_ascii()) {
        ("", suffix) => digits(suffix).map(RangeSpec::Last),
        (s, "") => digits(s).map(RangeSpec::From),
        (s, e) => {
            let (s, e) = (digits(s)?, digits(e)?);
            (e >= s).then_some(RangeSpec::FromTo(s, e))
        }
    }
}

/// A `Content-Length` that cannot be trusted: malformed (`+3`, `3 4`), or given twice
/// with different values. RFC 9112 6.3: answer `400` and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadLength;

/// The one length every `Content-Length` header (and every item of a list in one) says.
fn content_length<'h>(values: impl Iterator<Item = &'h [u8]>) -> Option<Result<u64, BadLength>> {
    let mut length = None;
    for value in values {
        let Ok(value) = core::str::from_utf8(value) else {
            return Some(Err(BadLength));
        };
        for item in value.split(',') {
            let item = item.trim_matches([' ', '\t']);
            // Digits only; an overflowing length is malformed too.
            let n = match item.parse::<u64>() {
                Ok(n) if item.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Some(Err(BadLength)),
            };
            match length {
                Some(seen) if seen != n => return Some(Err(BadLength)),
                _ => length = Some(n),
            }
        }
    }
    length.map(Ok)
}

/// Why a complete head is not a request the server can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    /// Not HTTP (`400`).
    Malformed,
    /// More header fields than the server parses (`431`).
    TooManyHeaders,
}

/// A request's method, as far as the server tells them apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `PUT`: store the body under the name, replacing any file.
    Put,
    /// `POST`: store the body under the name only if no file has it (`409` otherwise).
    Post,
    /// `DELETE`: remove the file.
    Delete,
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
    /// `Content-Length`, if given: one trustworthy length, or [`BadLength`].
    pub content_length: Option<Result<u64, BadLength>>,
    /// `Authorization: Bearer …` carried the token the server was given.
    pub authorized: bool,
    /// `Transfer-Encoding` of any kind.
    pub chunked: bool,
    /// A single `Range` the server honours.
    pub range: Option<RangeSpec>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl Request {
    /// Parses a complete request head at the start of `head`, and says how many bytes it
    /// took. Logs the request line. `token` is the bearer token writes need, if any.
    pub(super) fn parse(
        head: &[u8],
        stack: &Stack<'_>,
        socket: SocketHandle,
        token: Option<&str>,
    ) -> Result<(Request, usize), HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let length = match request.parse(head) {
            Ok(httparse::Status::Complete(length)) => length,
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
            _ => return Err(HeadError::Malformed),
        };
        let method = request.method.unwrap_or("");
        let path = request.path.unwrap_or("/");
        let version = request.version.unwrap_or(0);
        net_info!(
            "{}: http tcp{} {} {} HTTP/1.{}",
            stack.name(),
            socket,
            method,
            path,
            version
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
                "POST" => Method::Post,
                "DELETE" => Method::Delete,
                "OPTIONS" => Method::Options,
                "PATCH" | "TRACE" | "CONNECT" => Method::NotAllowed,
                _ => Method::Unknown,
            },
            version,
            generated: match target_path(path) {
                "/" => Some(Generated::Listing),
                "/stats" => Some(Generated::Stats),
                _ => None,
            },
            name: decode_name(path),
            wants_close: header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            content_length: content_length(
                request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
                    .map(|h| h.value),
            ),
            authorized: token.is_none_or(|token| {
                header("Authorization")
                    .and_then(|v| v.trim_ascii().strip_prefix("Bearer "))
                    .is_some_and(|given| {
                        constant_time_eq(given.trim_ascii().as_bytes(), token.as_bytes())
                    })
            }),
            chunked: header("Transfer-Encoding").is_some(),
            range: header("Range").and_then(parse_range),
            expect_continue: header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        };
        Ok((request, length))
    }
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
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
        assert_eq!(
            range("bytes=99999999999999999999999-", 100),
            Some(Err(Unsatisfiable)),
            "a first position past any file is unsatisfiable (416), not ignored"
        );
        assert_eq!(range("bytes=+1-+2", 100), None, "signs are not digits");
        assert_eq!(range("bytes= 1-2", 100), Some(Ok((1, 3))));
        assert_eq!(range("items=0-1", 100), None);
    }

    #[test]
    fn content_length_is_one_plain_number() {
        let cl = |values: &[&str]| content_length(values.iter().map(|v| v.as_bytes()));
        assert_eq!(cl(&["3"]), Some(Ok(3)));
        assert_eq!(cl(&[]), None);
        assert_eq!(cl(&["3", "3"]), Some(Ok(3)), "identical duplicates agree");
        assert_eq!(cl(&["3, 3"]), Some(Ok(3)));
        for bad in [
            &["3", "5"][..],
            &["+3"],
            &["-1"],
            &["3 4"],
            &[""],
            &["0x10"],
        ] {
            assert_eq!(cl(bad), Some(Err(BadLength)), "{bad:?}");
        }
        assert_eq!(cl(&["99999999999999999999999"]), Some(Err(BadLength)));
    }

    #[test]
    fn absolute_form_targets_name_the_same_files() {
        assert_eq!(target_path("http://host:8080/file?x"), "/file");
        assert_eq!(target_path("http://host"), "/");
        assert_eq!(target_path("/stats?x=1"), "/stats");
        assert_eq!(decode_name("http://h/a.txt").as_deref(), Some("a.txt"));
    }
}
