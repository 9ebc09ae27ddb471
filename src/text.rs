//! Text written into fixed buffers without `core::fmt`: the stats table, HTTP heads and
//! JSON, the UDP report line, the beacon and the hex digests.
//!
//! `core::fmt` costs a firmware image several KiB of flash (its machinery, a `Display`
//! impl per type, padding logic), and every service answers in text. [`Text`] appends
//! strings and decimal numbers to any [`Sink`]: a `heapless` string or byte
//! vector, or a `core::fmt` writer, so that the `Display` impls a host uses are written
//! from the same code as the bytes a device sends. Like `write!` into a full `heapless`
//! string, each piece goes in whole or not at all, and nothing goes in after the first
//! piece that did not fit.

use core::fmt;

use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

/// A buffer that text is appended to.
pub trait Sink {
    /// Appends `s` whole, or nothing and `Err(Full)`.
    fn append(&mut self, s: &str) -> Result<(), Full>;
}

/// The text did not fit its buffer (what `write!` into a full buffer reports as
/// `fmt::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the text does not fit its buffer")
    }
}

impl core::error::Error for Full {}

// Every capacity's append is the same function on the buffer's view, so that a firmware
// has one copy of it rather than one per buffer size.
impl<const N: usize> Sink for heapless::String<N> {
    fn append(&mut self, s: &str) -> Result<(), Full> {
        self.as_mut_view().append(s)
    }
}

impl Sink for heapless::string::StringView {
    #[inline(never)]
    fn append(&mut self, s: &str) -> Result<(), Full> {
        self.push_str(s).map_err(|_| Full)
    }
}

impl<const N: usize> Sink for heapless::Vec<u8, N> {
    fn append(&mut self, s: &str) -> Result<(), Full> {
        self.as_mut_view().append(s)
    }
}

impl Sink for heapless::vec::VecView<u8> {
    #[inline(never)]
    fn append(&mut self, s: &str) -> Result<(), Full> {
        self.extend_from_slice(s.as_bytes()).map_err(|_| Full)
    }
}

/// A `core::fmt` writer (a `Formatter`, a `String`) as a [`Sink`], for `Display` impls.
pub struct FmtSink<'w>(pub &'w mut dyn fmt::Write);

impl Sink for FmtSink<'_> {
    fn append(&mut self, s: &str) -> Result<(), Full> {
        self.0.write_str(s).map_err(|_| Full)
    }
}

/// Writes `write` through a `Formatter`: the body of a `Display` impl whose text a
/// [`Text`] writer makes.
pub fn display(f: &mut fmt::Formatter<'_>, write: impl FnOnce(&mut Text<'_>)) -> fmt::Result {
    let mut sink = FmtSink(f);
    let mut text = Text::new(&mut sink);
    write(&mut text);
    text.result().map_err(|_| fmt::Error)
}

/// Appends text to a [`Sink`]; each call returns the writer, so that a line reads as a
/// chain: `Text::new(&mut out).str("Content-Length: ").num(len).str("\r\n")`.
pub struct Text<'s> {
    sink: &'s mut dyn Sink,
    full: bool,
}

impl<'s> Text<'s> {
    /// A writer appending to `sink`.
    pub fn new(sink: &'s mut dyn Sink) -> Self {
        Text { sink, full: false }
    }

    /// `Err(Full)` once a piece did not fit (and nothing after it was written).
    pub fn result(&self) -> Result<(), Full> {
        if self.full {
            Err(Full)
        } else {
            Ok(())
        }
    }

    /// Appends `s`. Never inlined: text is written in chains of many pieces, and each
    /// inlined copy of this check and call costs flash at every one of them (so are the
    /// other pieces below, for the same reason).
    #[inline(never)]
    pub fn str(&mut self, s: &str) -> &mut Self {
        if !self.full && self.sink.append(s).is_err() {
            self.full = true;
        }
        self
    }

    /// Appends `n` in decimal (`{}`).
    #[inline(never)]
    pub fn num(&mut self, n: u64) -> &mut Self {
        let mut digits = [0; 20];
        self.str(decimal(n, &mut digits))
    }

    /// Appends `n` in decimal, padded with spaces to `width` on the left (`{:>width$}`)
    /// or, with `left` set, on the right (`{:<width$}`).
    #[inline(never)]
    pub fn num_padded(&mut self, n: u64, width: usize, left: bool) -> &mut Self {
        let mut digits = [0; 20];
        let s = decimal(n, &mut digits);
        let pad = width.saturating_sub(s.len());
        if left {
            self.str(s).spaces(pad)
        } else {
            self.spaces(pad).str(s)
        }
    }

    /// Appends `s`, padded with spaces on the right to `width` (`{:<width$}`).
    #[inline(never)]
    pub fn str_padded(&mut self, s: &str, width: usize) -> &mut Self {
        self.str(s).spaces(width.saturating_sub(s.len()))
    }

    /// Appends `count` spaces.
    #[inline(never)]
    pub fn spaces(&mut self, mut count: usize) -> &mut Self {
        const SPACES: &str = "                ";
        while count > 0 {
            let now = count.min(SPACES.len());
            self.str(SPACES.get(..now).unwrap_or(""));
            count -= now;
        }
        self
    }

    /// Appends `byte` as two hex digits, lowercase (`{:02x}`) or uppercase (`{:02X}`).
    #[inline(never)]
    pub fn hex_byte(&mut self, byte: u8, upper: bool) -> &mut Self {
        let digits: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let pair = [
            digits[usize::from(byte >> 4)],
            digits[usize::from(byte & 0xf)],
        ];
        self.str(core::str::from_utf8(&pair).unwrap_or("??"))
    }

    /// Appends an IPv4 address in dotted decimal, as its `Display` does.
    #[inline(never)]
    pub fn ipv4(&mut self, addr: Ipv4Address) -> &mut Self {
        for (i, octet) in addr.octets().into_iter().enumerate() {
            if i > 0 {
                self.str(".");
            }
            self.num(octet.into());
        }
        self
    }

    /// Appends an address as its `Display` does (ringnet speaks IPv4 only).
    pub fn ip(&mut self, addr: IpAddress) -> &mut Self {
        match addr {
            IpAddress::Ipv4(v4) => self.ipv4(v4),
        }
    }

    /// Appends an endpoint as its `Display` does: `ADDRESS:PORT`.
    #[inline(never)]
    pub fn endpoint(&mut self, endpoint: IpEndpoint) -> &mut Self {
        self.ip(endpoint.addr).str(":").num(endpoint.port.into())
    }
}

/// `text` as a decimal `u64`, as `str::parse` reads it (an optional `+`, then digits, no
/// overflow), or `None`. Built once: file out's size line and the firmware's pattern names
/// both read one; read by `decimal_digits`, which HTTP's numbers use too, instead of
/// core's parser (184 B of flash in the firmware).
#[inline(never)]
pub fn parse_u64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    match decimal_digits(bytes.strip_prefix(b"+").unwrap_or(bytes)) {
        Some((n, true)) => Some(n),
        _ => None,
    }
}

/// A decimal of digits only (no sign, no space), and whether it fits a `u64`; past
/// `u64::MAX` it saturates there (for HTTP, a position beyond any file is still a
/// position, a length beyond any is not a length).
#[inline(never)]
pub(crate) fn decimal_digits(text: &[u8]) -> Option<(u64, bool)> {
    if text.is_empty() {
        return None;
    }
    let mut n = 0u64;
    let mut exact = true;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(next) => n = next,
            None => (n, exact) = (u64::MAX, false),
        }
    }
    Some((n, exact))
}

/// Whether `bytes` holds `byte`, by a plain loop: `<[u8]>::contains` goes through core's
/// word-at-a-time `memchr` (154 B of flash in the firmware), and what is searched here is
/// short (a file name, a header value, a request head).
#[allow(clippy::manual_contains)]
pub(crate) fn contains_byte(bytes: &[u8], byte: u8) -> bool {
    bytes.iter().any(|&b| b == byte)
}

/// `n` in decimal, written into the end of `digits` (20 places: `u64::MAX` has 20 digits),
/// a digit a time from the last.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &str {
    let mut start = digits.len();
    for place in digits.iter_mut().rev() {
        *place = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written: never the empty fallback.
    core::str::from_utf8(&digits[start..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;
    use std::string::String as StdString;

    use super::*;

    /// `parse_u64` reads what `str::parse::<u64>` reads, and refuses what it refuses.
    #[test]
    fn parse_u64_agrees_with_str_parse() {
        for text in [
            "",
            "+",
            "-",
            "0",
            "+0",
            "-0",
            "00",
            "7",
            "+7",
            " 7",
            "7 ",
            "1_000",
            "1048576",
            "18446744073709551615",
            "+18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "018446744073709551615",
            "1e3",
            "0x10",
            "++1",
            "+-1",
            "١٢",
        ] {
            assert_eq!(parse_u64(text), text.parse::<u64>().ok(), "{text:?}");
        }
    }

    fn written(write: impl FnOnce(&mut Text<'_>)) -> StdString {
        let mut out: heapless::String<256> = heapless::String::new();
        write(&mut Text::new(&mut out));
        StdString::from(out.as_str())
    }

    #[test]
    fn numbers_read_as_core_fmt_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            4096,
            999_999,
            1_000_000,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(
                written(|t| {
                    t.num(n);
                }),
                format!("{n}")
            );
            for width in [0, 1, 5, 12, 25] {
                assert_eq!(
                    written(|t| {
                        t.num_padded(n, width, false);
                    }),
                    format!("{n:>width$}")
                );
                assert_eq!(
                    written(|t| {
                        t.num_padded(n, width, true);
                    }),
                    format!("{n:<width$}")
                );
            }
        }
        for width in [0, 2, 10, 40] {
            assert_eq!(
                written(|t| {
                    t.str_padded("tcp#3", width);
                }),
                format!("{:<width$}", "tcp#3")
            );
        }
    }

    #[test]
    fn bytes_and_addresses_read_as_core_fmt_writes_them() {
        for byte in [0u8, 7, 0x0a, 0xab, 0xff] {
            assert_eq!(
                written(|t| {
                    t.hex_byte(byte, false);
                }),
                format!("{byte:02x}")
            );
            assert_eq!(
                written(|t| {
                    t.hex_byte(byte, true);
                }),
                format!("{byte:02X}")
            );
        }
        let endpoint = IpEndpoint::new(IpAddress::v4(10, 0, 2, 255), 65535);
        assert_eq!(
            written(|t| {
                t.endpoint(endpoint);
            }),
            format!("{endpoint}")
        );
        let addr = Ipv4Address::new(0, 0, 0, 0);
        assert_eq!(
            written(|t| {
                t.ipv4(addr);
            }),
            format!("{addr}")
        );
    }

    #[test]
    fn nothing_goes_in_after_a_piece_that_did_not_fit() {
        let mut out: heapless::String<8> = heapless::String::new();
        let mut text = Text::new(&mut out);
        text.str("1234").str("56789").str("0");
        assert_eq!(text.result(), Err(Full));
        assert_eq!(out.as_str(), "1234");
        let mut out: heapless::String<8> = heapless::String::new();
        let mut text = Text::new(&mut out);
        text.str("1234").num(5678);
        assert_eq!(text.result(), Ok(()));
        assert_eq!(out.as_str(), "12345678");
    }
}
