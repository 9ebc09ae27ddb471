//! Checked conversions between the wire's and the files' `u64` and the memory's `usize`.
//!
//! A file may be larger than a 32-bit address space (`GET /pattern-4294967296` on the
//! firmware), so a `u64 as usize` can silently wrap there. Every place a `u64` meets a
//! `usize` goes through one of these instead. And [`elapsed`], the time between two
//! instants, built once.

use smoltcp::time::{Duration, Instant};

/// `n` as a `usize`, saturating at `usize::MAX` where it does not fit (a 32-bit target):
/// for a count that is then bounded by a buffer's length, as in `room(n).min(buf.len())`.
pub const fn room(n: u64) -> usize {
    if n > usize::MAX as u64 {
        usize::MAX
    } else {
        n as usize
    }
}

/// `n` as a `u64`: lossless on every target ringnet builds for (`usize` is at most 64 bits).
pub const fn wide(n: usize) -> u64 {
    n as u64
}

/// How long from `then` to `now` (smoltcp's `now - then`, which is its distance either
/// way). Built once: inlined, each of its dozen callers' copies was about 24 B of flash.
#[inline(never)]
pub fn elapsed(now: Instant, then: Instant) -> Duration {
    now - then
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        assert_eq!(room(5), 5);
        assert_eq!(room(u64::MAX), usize::MAX);
        let four_gib = 1u64 << 32;
        // On a 32-bit target `four_gib as usize` is 0; here it must never be.
        assert!(room(four_gib) > 0);
        assert_eq!(room(four_gib).min(2048), 2048);
        assert_eq!(wide(usize::MAX) as usize, usize::MAX);
    }

    #[test]
    fn elapsed_is_the_time_between_two_instants() {
        let (then, now) = (Instant::from_millis(2_000), Instant::from_millis(5_250));
        assert_eq!(elapsed(now, then), Duration::from_millis(3_250));
        assert_eq!(elapsed(now, now), Duration::ZERO);
    }
}
