//! SHA-256 digests as ringnet's protocols carry them and its logs and replies print them.
//! Below every service, so that file in, the transfer protocol and HTTP share one form.

use core::fmt;

use sha2::{Digest as _, Sha256};

use crate::text::{self, Text};

/// Bytes of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest.
pub type Digest = [u8; DIGEST_LEN];

/// Hashes `data` into `hasher`. Built once: file in, the transfer server's uploads and the
/// digest store each hash what they take, and each inlined copy of SHA-256's block
/// buffering cost flash; the call is one per piece of a ring, not per byte.
#[inline(never)]
pub fn update(hasher: &mut Sha256, data: &[u8]) {
    hasher.update(data);
}

/// The digest of what `hasher` took. Built once: file in, the transfer server and the
/// digest store each end a hash, and every inlined copy of SHA-256's padding and last
/// block costs flash.
#[inline(never)]
pub fn finish(hasher: Sha256) -> Digest {
    hasher.finalize().into()
}

/// A digest written as 64 lowercase hex digits, the form `sha256sum` prints: for logs and
/// text replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestHex<'a>(pub &'a Digest);

impl DigestHex<'_> {
    /// Writes the digits as its `Display` does, without `core::fmt`.
    pub fn write_text(&self, out: &mut Text<'_>) {
        for &byte in self.0 {
            out.hex_byte(byte, false);
        }
    }
}

impl fmt::Display for DigestHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
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
