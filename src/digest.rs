//! SHA-256 digests as ringnet's protocols carry them and its logs and replies print them.
//! Below every service, so that file in, the transfer protocol and HTTP share one form.

use core::fmt;

/// Bytes of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest.
pub type Digest = [u8; DIGEST_LEN];

/// A digest written as 64 lowercase hex digits, the form `sha256sum` prints: for logs and
/// text replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestHex<'a>(pub &'a Digest);

impl fmt::Display for DigestHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_written_as_lowercase_hex() {
        let mut digest = [0u8; DIGEST_LEN];
        digest[0] = 0xab;
        digest[31] = 0x0f;
        let text = std::format!("{}", DigestHex(&digest));
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("ab00"), "{text}");
        assert!(text.ends_with("000f"), "{text}");
    }
}
