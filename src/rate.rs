//! A token bucket: how much a host may send of something it answers on a peer's behalf,
//! whoever the peer claims to be.
//!
//! Linux bounds the ICMP errors it sends with one such bucket for the whole host
//! (`icmp_global_allow`: `net.ipv4.icmp_msgs_per_sec` = 1000 refilled a second, at most
//! `icmp_msgs_burst` = 50 held), so that a flood of datagrams with spoofed sources cannot
//! make it reflect one answer per datagram. ringnet uses the same bucket for its ICMP
//! errors (in messages, [`phy`](crate::phy)) and for the stats query's answers (in bytes,
//! [`StatsQuery`](crate::services::StatsQuery)).
//!
//! As Linux's, the bucket is asked before an answer is made and charged for what was
//! sent: an answer is allowed while any credit is left, and its cost may take the credit
//! below zero (an answer of several datagrams is sent whole, and the debt is repaid by
//! the refill before the next one). So over any interval `t` a bucket lets out at most
//! `burst + per_second · t` plus one answer.

use crate::convert::elapsed;
use smoltcp::time::Instant;

const MICROS_PER_SECOND: u32 = 1_000_000;

/// A token bucket of `burst` tokens refilled at `per_second` (Linux's
/// `icmp_global_allow`); see the [module](self). Starts full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Credit left: below zero while an answer's cost is being repaid.
    tokens: i32,
    /// Credit the bucket holds at most.
    burst: i32,
    /// Microseconds a token takes to come (0: none comes, the bucket allows its burst
    /// and then nothing).
    micros_per_token: u32,
    /// The time up to which the refill has been credited.
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at most `i32::MAX`), refilled at `per_second`:
    /// one token every `1 000 000 / per_second` µs, rounded down (at most a million a
    /// second; 0 refills nothing).
    pub const fn new(burst: u32, per_second: u32) -> TokenBucket {
        let burst = if burst > i32::MAX as u32 {
            i32::MAX
        } else {
            burst as i32
        };
        let micros_per_token = match per_second {
            0 => 0,
            n if n >= MICROS_PER_SECOND => 1,
            n => MICROS_PER_SECOND / n,
        };
        TokenBucket {
            tokens: burst,
            burst,
            micros_per_token,
            at: Instant::ZERO,
        }
    }

    /// Whether an answer may be made at `now`: some credit is left after the refill.
    // Out of line: the ICMP limit and the stats query share it.
    #[inline(never)]
    pub fn allows(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens > 0
    }

    /// Charges `cost` tokens for an answer sent (credit may go below zero).
    pub fn spend(&mut self, cost: u32) {
        let cost = i32::try_from(cost).unwrap_or(i32::MAX);
        self.tokens = self.tokens.saturating_sub(cost);
    }

    /// Credit left now (below zero while a debt is repaid), as of the last refill.
    pub fn tokens(&self) -> i32 {
        self.tokens
    }

    /// Credits the refill since the last one: whole tokens only, the time of a fraction
    /// kept for the next.
    fn refill(&mut self, now: Instant) {
        // A clock that went back credits nothing, and counts from there.
        if now < self.at || self.micros_per_token == 0 {
            self.at = self.at.min(now);
            return;
        }
        let step = u64::from(self.micros_per_token);
        let add = elapsed(now, self.at).total_micros() / step;
        let room = (self.burst as i64 - self.tokens as i64) as u64;
        if add >= room {
            self.tokens = self.burst;
            self.at = now;
        } else {
            // Less than `room`, so within i32.
            self.tokens += add as i32;
            self.at += smoltcp::time::Duration::from_micros(add * step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: i64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_the_refill_only() {
        // Linux's ICMP figures: 50 at once, then one per millisecond.
        let mut bucket = TokenBucket::new(50, 1000);
        let mut allowed = 0;
        for _ in 0..200 {
            if bucket.allows(ms(10)) {
                bucket.spend(1);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 50);
        assert!(!bucket.allows(ms(10)));
        // 0.5 ms later: no whole token yet; at 1 ms, one.
        assert!(!bucket.allows(Instant::from_micros(10_500)));
        assert!(bucket.allows(ms(11)));
        bucket.spend(1);
        assert!(!bucket.allows(ms(11)));
        // Asked every 0.6 ms, it still makes one a millisecond: no fraction is lost.
        let mut more = 0;
        for step in 1..=100 {
            if bucket.allows(ms(11) + smoltcp::time::Duration::from_micros(600 * step)) {
                bucket.spend(1);
                more += 1;
            }
        }
        assert_eq!(more, 60);
        // A long pause refills to the burst, never beyond.
        assert!(bucket.allows(ms(60_000)));
        assert_eq!(bucket.tokens(), 50);
    }

    #[test]
    fn an_answer_larger_than_the_credit_is_a_debt_the_refill_repays_first() {
        // Bytes: 4 KiB held, 1000 a second; an answer of 3000 bytes.
        let mut bucket = TokenBucket::new(4096, 1000);
        assert!(bucket.allows(ms(0)));
        bucket.spend(3000);
        assert!(bucket.allows(ms(0)), "1096 bytes of credit left");
        bucket.spend(3000);
        assert_eq!(bucket.tokens(), -1904);
        assert!(!bucket.allows(ms(1000)), "1000 repaid of 1904");
        assert!(!bucket.allows(ms(1904)), "all repaid, none to spend");
        assert!(bucket.allows(ms(1905)));
        bucket.spend(u32::MAX);
        bucket.spend(u32::MAX);
        assert_eq!(bucket.tokens(), i32::MIN, "saturates, never wraps");
        assert!(!bucket.allows(ms(1906)));
    }

    #[test]
    fn no_refill_keeps_the_burst_only_and_a_clock_going_back_adds_nothing() {
        let mut bucket = TokenBucket::new(2, 0);
        for _ in 0..2 {
            assert!(bucket.allows(ms(5)));
            bucket.spend(1);
        }
        assert!(!bucket.allows(ms(1_000_000)));
        let mut back = TokenBucket::new(1, 1000);
        assert!(back.allows(ms(100)));
        back.spend(1);
        assert!(!back.allows(ms(50)), "earlier than the last refill");
        assert!(back.allows(ms(51)));
    }
}
