//! Reading a request: where its head ends, what it asks for (the small [`Request`] the
//! server acts on), the file it names and the range it wants.

use heapless::{String, Vec};

use super::target::{decode_name, target_path};

use crate::handle::SocketHandle;
use crate::stack::Stack;

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

/// A decimal of digits only (RFC 9110's `1*DIGIT`), saturating.
fn digits(text: &[u8]) -> Option<u64> {
    crate::text::decimal_digits(text).map(|(n, _)| n)
}

/// `text` without the spaces and tabs around it (RFC 9110's `OWS`): a field value that
/// `httparse` took holds no other ASCII whitespace.
#[inline(never)]
fn trim_ows(text: &[u8]) -> &[u8] {
    text.trim_ascii()
}

/// `text` cut at its first `byte`: what comes before and after it.
fn split_at_byte(text: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&b| b == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// Parses `bytes=A-B`, `bytes=A-`, `bytes=-N`; `None` to ignore the header (another unit,
/// several ranges, or a malformed one), as RFC 9110 allows.
fn parse_range(value: &[u8]) -> Option<RangeSpec> {
    let spec = trim_ows(value).strip_prefix(b"bytes=")?;
    if crate::text::contains_byte(spec, b',') {
        return None;
    }
    let (start, end) = split_at_byte(spec, b'-')?;
    match (trim_ows(start), trim_ows(end)) {
        (b"", suffix) => digits(suffix).map(RangeSpec::Last),
        (s, b"") => digits(s).map(RangeSpec::From),
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

/// Takes one `Content-Length` field's `value` (a list of lengths, maybe) into `length`,
/// the one length all those seen so far say (or [`BadLength`] once two disagree or one
/// is malformed: digits only, within `u64`).
fn add_content_length(length: &mut Option<Result<u64, BadLength>>, value: &[u8]) {
    for item in value.split(|&b| b == b',') {
        let said = match crate::text::decimal_digits(trim_ows(item)) {
            Some((n, true)) => Ok(n),
            _ => Err(BadLength),
        };
        *length = match *length {
            None => Some(said),
            Some(Ok(seen)) if said == Ok(seen) => Some(said),
            _ => Some(Err(BadLength)),
        };
    }
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

/// The methods the server tells apart, and what each is.
const METHODS: [(&str, Method); 9] = [
    ("GET", Method::Get),
    ("HEAD", Method::Head),
    ("PUT", Method::Put),
    ("POST", Method::Post),
    ("DELETE", Method::Delete),
    ("OPTIONS", Method::Options),
    ("PATCH", Method::NotAllowed),
    ("TRACE", Method::NotAllowed),
    ("CONNECT", Method::NotAllowed),
];

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
    /// `Transfer-Encoding` of any kind (any value, UTF-8 or not).
    pub chunked: bool,
    /// A single `Range` the server honours.
    pub range: Option<RangeSpec>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// The fields the server reads, in the order of [`FIELDS`]. Of each but
/// `Content-Length` only the first counts, as a lookup by name finds it.
const FIELDS: [&str; 6] = [
    "Connection",
    "Authorization",
    "Transfer-Encoding",
    "Range",
    "Expect",
    "Content-Length",
];

impl Request {
    /// Parses a complete request head at the start of `head`, and says how many bytes it
    /// took. Logs the request line. `token` is the bearer token writes need, if any.
    #[inline(never)]
    pub(super) fn parse(
        head: &[u8],
        stack: &Stack<'_>,
        socket: SocketHandle,
        token: Option<&str>,
    ) -> Result<(Request, usize), HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let length = match parsed.parse(head) {
            Ok(httparse::Status::Complete(length)) => length,
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
            _ => return Err(HeadError::Malformed),
        };
        let method = parsed.method.unwrap_or("");
        let path = parsed.path.unwrap_or("/");
        let version = parsed.version.unwrap_or(0);
        net_info!(
            "{}: http tcp{} {} {} HTTP/1.{}",
            stack.name(),
            socket,
            method,
            path,
            version
        );
        let mut request = Request {
            method: METHODS
                .iter()
                .find(|&&(name, _)| name == method)
                .map_or(Method::Unknown, |&(_, method)| method),
            version,
            generated: match target_path(path) {
                "/" => Some(Generated::Listing),
                "/stats" => Some(Generated::Stats),
                _ => None,
            },
            name: decode_name(path),
            wants_close: false,
            content_length: None,
            authorized: token.is_none(),
            chunked: false,
            range: None,
            expect_continue: false,
        };
        // One pass over the fields; `seen` marks those whose first instance was read.
        let mut seen = 0u8;
        for field in parsed.headers.iter() {
            let Some(which) = FIELDS
                .iter()
                .position(|name| same_ignoring_case(field.name.as_bytes(), name.as_bytes()))
            else {
                continue;
            };
            if which == 5 {
                add_content_length(&mut request.content_length, field.value);
                continue;
            }
            if which == 0 {
                // A list, which may span several fields (RFC 9110 7.6.1): `TE, close` closes.
                request.wants_close |= field
                    .value
                    .split(|b| *b == b',')
                    .any(|option| same_ignoring_case(trim_ows(option), b"close"));
                continue;
            }
            if seen & 1 << which != 0 {
                continue;
            }
            seen |= 1 << which;
            let value = field.value;
            match which {
                // The scheme is case-insensitive (RFC 9110 11.1).
                1 => {
                    request.authorized = token.is_none_or(|token| {
                        let value = trim_ows(value);
                        value.len() > 7
                            && same_ignoring_case(&value[..7], b"bearer ")
                            && constant_time_eq(trim_ows(&value[7..]), token.as_bytes())
                    })
                }
                // Any value, whatever its bytes, is a coding the server cannot frame: a
                // proxy in front may read it as chunked (RFC 9112 6.1, 6.3).
                2 => request.chunked = true,
                3 => request.range = parse_range(value),
                _ => request.expect_continue = same_ignoring_case(value, b"100-continue"),
            }
        }
        Ok((request, length))
    }
}

/// `a.eq_ignore_ascii_case(b)`, built once for the head's four comparisons (field names,
/// `close`, `bearer `, `100-continue`) instead of inlined into each.
#[inline(never)]
fn same_ignoring_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let range = |value: &str, len: u64| parse_range(value.as_bytes()).map(|r| r.resolve(len));
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
        let cl = |values: &[&str]| {
            let mut length = None;
            for value in values {
                add_content_length(&mut length, value.as_bytes());
            }
            length
        };
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
}
