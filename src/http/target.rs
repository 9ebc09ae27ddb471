//! A request's target: its path (the origin form, or the absolute form without scheme
//! and authority), and the store name it percent-decodes to, if it is one.
//!
//! Written over bytes: `str::find` with a string pattern links core's two-way searcher,
//! and indexing a `str` its char-boundary panic, each a kilobyte or more of firmware
//! flash for work a byte loop does.

use heapless::{String, Vec};

use crate::transfer::validate_name;

/// Where `needle` first starts in `bytes`.
fn position(bytes: &[u8], needle: impl Fn(u8) -> bool) -> Option<usize> {
    bytes.iter().position(|&b| needle(b))
}

/// The path of a request target: the origin form as it is, the absolute form
/// (`http://host/file`, which RFC 9112 3.2.2 says a server must accept) without its scheme
/// and authority; the query (and a fragment) cut off.
pub(super) fn target_path(target: &str) -> &str {
    let bytes = target.as_bytes();
    let mut path = target;
    if bytes.first() != Some(&b'/') {
        if let Some(scheme) = bytes.windows(3).position(|w| w == b"://") {
            let rest = target.get(scheme + 3..).unwrap_or("");
            path = position(rest.as_bytes(), |b| b == b'/')
                .and_then(|slash| rest.get(slash..))
                .unwrap_or("/");
        }
    }
    match position(path.as_bytes(), |b| b == b'?' || b == b'#') {
        // Every offset found is of an ASCII byte, so `get` always finds a boundary.
        Some(end) => path.get(..end).unwrap_or(path),
        None => path,
    }
}

/// The value of an ASCII hex digit.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a request target's path into a store name; `None` if it is none
/// (malformed, or refused by the transfer protocol's naming rules).
pub(super) fn decode_name(target: &str) -> Option<String<128>> {
    let path = target_path(target).strip_prefix('/')?;
    let mut name: Vec<u8, 128> = Vec::new();
    let mut bytes = path.bytes();
    while let Some(byte) = bytes.next() {
        let byte = if byte == b'%' {
            let high = hex_digit(bytes.next()?)?;
            high << 4 | hex_digit(bytes.next()?)?
        } else {
            byte
        };
        name.push(byte).ok()?;
    }
    let name = validate_name(&name).ok()?;
    String::try_from(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_and_traversal_is_refused() {
        assert_eq!(decode_name("/a%20b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(decode_name("/%41%4a%4A").as_deref(), Some("AJJ"));
        assert_eq!(decode_name("/file?x=1").as_deref(), Some("file"));
        assert_eq!(decode_name("/file#top").as_deref(), Some("file"));
        for bad in [
            "/../etc/passwd",
            "/%2e%2e%2fetc%2fpasswd",
            "/..%2Fx",
            "/a/b",
            "/%zz",
            "/%2",
            "/%",
            "/%+4x",
            "/",
            "/.hidden",
            "file",
        ] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn absolute_form_targets_name_the_same_files() {
        assert_eq!(target_path("http://host:8080/file?x"), "/file");
        assert_eq!(target_path("http://host"), "/");
        assert_eq!(target_path("http://host?x"), "/");
        assert_eq!(target_path("/stats?x=1"), "/stats");
        assert_eq!(target_path("/a://b"), "/a://b");
        assert_eq!(target_path("*"), "*");
        assert_eq!(decode_name("http://h/a.txt").as_deref(), Some("a.txt"));
    }
}
