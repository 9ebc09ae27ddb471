//! The idle timeout of the small services (echo, discard, file out, file in): a
//! connection that moves no byte for the timeout is reset, so that clients that connect
//! and go silent cannot hold a fixed backlog for ever. (A kernel keeps such a connection;
//! its server process would have to time it out, as these services do.)
//!
//! Beside it the minimum rate of a data phase ([`MinRate`]), for every service that moves
//! a body (file out, file in, the transfer and HTTP servers): a byte sent or read just
//! before each idle timeout keeps the idle timeout away for ever, the rate does not.

use crate::convert::elapsed;
use smoltcp::time::{Duration, Instant};

use super::connection::count_slow_request;
use crate::handle::SocketHandle;
use crate::observe::{EventKind, LogText, Timer};
use crate::stack::Stack;

/// The idle timeout of every service unless set otherwise: Linux's `tcp_fin_timeout`, the
/// longest a kernel-side wait of the TCP lifecycle lasts by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Follows one connection's progress: bytes received or sent, or the tx ring draining.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleWatch {
    since: Instant,
    seen: (u64, u64, usize),
}

impl IdleWatch {
    /// A connection that has just started, at `now`.
    pub(crate) fn new(stack: &Stack<'_>, conn: SocketHandle, now: Instant) -> IdleWatch {
        IdleWatch {
            since: now,
            seen: progress(stack, conn),
        }
    }

    /// When the connection times out unless it moves.
    pub(crate) fn deadline(&self, timeout: Duration) -> Instant {
        self.since + timeout
    }

    /// Notes progress since the last look; if there was none for `timeout`, resets the
    /// connection (logged, counted on its socket's row) and returns `true`.
    pub(crate) fn expired(
        &mut self,
        stack: &mut Stack<'_>,
        conn: SocketHandle,
        timeout: Duration,
        service: LogText,
    ) -> bool {
        let now = stack.now();
        let seen = progress(stack, conn);
        if seen != self.seen {
            *self = IdleWatch { since: now, seen };
            return false;
        }
        if now < self.deadline(timeout) {
            return false;
        }
        net_warn!(
            "{}: {} tcp{}: no byte moved for {} ms: reset (idle timeout)",
            stack.name(),
            service,
            conn,
            elapsed(now, self.since).total_millis()
        );
        stack.record(
            conn,
            EventKind::Timer(Timer::IdleTimeout {
                silent: elapsed(now, self.since),
            }),
        );
        let _ = stack.abort(conn);
        true
    }
}

/// What a connection has moved: bytes in, bytes out, and bytes still in its tx ring.
fn progress(stack: &Stack<'_>, conn: SocketHandle) -> (u64, u64, usize) {
    let (bytes_in, bytes_out) = stack
        .stats(conn)
        .map_or((0, 0), |s| (s.bytes_in, s.bytes_out));
    let queued = stack.ring_usage(conn).map_or(0, |(_, (used, _))| used);
    (bytes_in, bytes_out, queued)
}

/// The rate a connection's data phase (an upload's body, a download to its reader) must
/// keep: after `grace` it must have moved, on average since the phase began, at least
/// `bytes_per_sec` bytes a second, or it is cut off as too slow. As Apache's
/// `mod_reqtimeout` (`body=20,MinRate=500`): the phase's deadline starts `grace` after
/// its start and moves one second later for every `bytes_per_sec` bytes moved. A kernel
/// has no such rule; servers do (nginx's `send_timeout`, `client_body_timeout` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// How long a phase may move nothing before its rate counts.
    pub grace: Duration,
    /// The least average rate after the grace, bytes a second; 0 turns the rule off.
    pub bytes_per_sec: u32,
}

/// The minimum rate of every data phase unless set otherwise: `mod_reqtimeout`'s
/// `body=20,MinRate=500`, 20 s and then 500 bytes a second.
pub const DEFAULT_MIN_RATE: MinRate = MinRate {
    grace: Duration::from_secs(20),
    bytes_per_sec: 500,
};

impl MinRate {
    /// No minimum rate: only the idle timeout bounds a data phase.
    pub const OFF: MinRate = MinRate {
        grace: Duration::ZERO,
        bytes_per_sec: 0,
    };

    /// When a phase begun at `since` that has moved `moved` bytes falls below the rate
    /// (`None` when the rule is off).
    pub fn deadline(&self, since: Instant, moved: u64) -> Option<Instant> {
        let rate = u64::from(self.bytes_per_sec);
        if rate == 0 {
            return None;
        }
        // Capped far beyond any run (about 146 years), so that the sum cannot overflow.
        let credit = (moved.saturating_mul(1_000_000) / rate).min(1 << 52);
        Some(since + self.grace + Duration::from_micros(credit))
    }
}

/// Follows the bytes a connection's data phase has moved, for its [`MinRate`]: what the
/// peer sent that arrived (read or still in the rx ring, so that a store behind is not the
/// peer's fault) and what it acknowledged of what was sent to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateWatch {
    since: Instant,
    base: u64,
    deadline: Instant,
}

/// No deadline: a phase not yet looked at, one that has moved nothing (the idle timeout's
/// to judge), or a rule that is off.
const NEVER: Instant = Instant::from_micros_const(i64::MAX);

impl RateWatch {
    /// A data phase that begins at `now`.
    pub(crate) fn new(stack: &Stack<'_>, conn: SocketHandle, now: Instant) -> RateWatch {
        RateWatch {
            since: now,
            base: moved(stack, conn),
            deadline: NEVER,
        }
    }

    /// When the phase falls below its rule unless more moves, as of the last look (a later
    /// look only moves it later), for a service's `poll_at`: never before a first look, nor
    /// while the phase has moved nothing.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Notes what the phase has moved; if that is below `rule`, logs it (with `what`: the
    /// service and the outcome, as `"file-in: reset"`), counts it as slow on the socket's
    /// row and returns `true`: the caller then ends the connection as its protocol says. A
    /// phase that has moved nothing at all is left to the idle timeout: a silent peer is
    /// idle, not slow.
    #[inline(never)]
    pub(crate) fn too_slow(
        &mut self,
        stack: &mut Stack<'_>,
        conn: SocketHandle,
        rule: &MinRate,
        what: LogText,
    ) -> bool {
        let moved = moved(stack, conn).wrapping_sub(self.base);
        self.deadline = match moved {
            0 => NEVER,
            _ => rule.deadline(self.since, moved).unwrap_or(NEVER),
        };
        let now = stack.now();
        if now < self.deadline {
            return false;
        }
        let took = elapsed(now, self.since);
        net_warn!(
            "{}: tcp{}: {} bytes in {}, below the minimum rate: {}",
            stack.name(),
            conn,
            moved,
            took,
            what
        );
        count_slow_request(stack, conn, took);
        true
    }

    /// [`RateWatch::too_slow`] for a protocol with no status to tell it: a phase below
    /// `rule` is reset. Returns `true` when it was.
    pub(crate) fn reset_if_slow(
        &mut self,
        stack: &mut Stack<'_>,
        conn: SocketHandle,
        rule: &MinRate,
        what: LogText,
    ) -> bool {
        let slow = self.too_slow(stack, conn, rule, what);
        if slow {
            let _ = stack.abort(conn);
        }
        slow
    }
}

/// Bytes a connection has moved: read and still in the rx ring, plus sent and no longer
/// in the tx ring (acknowledged). Never falls while the connection lasts.
fn moved(stack: &Stack<'_>, conn: SocketHandle) -> u64 {
    let (bytes_in, bytes_out) = stack
        .stats(conn)
        .map_or((0, 0), |s| (s.bytes_in, s.bytes_out));
    let ((rx, _), (tx, _)) = stack.ring_usage(conn).unwrap_or_default();
    bytes_in
        .wrapping_add(rx as u64)
        .wrapping_add(bytes_out)
        .wrapping_sub(tx as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_starts_after_the_grace_and_moves_a_second_per_rate_of_bytes() {
        let rule = MinRate {
            grace: Duration::from_secs(20),
            bytes_per_sec: 500,
        };
        let since = Instant::from_secs(100);
        assert_eq!(rule.deadline(since, 0), Some(Instant::from_secs(120)));
        assert_eq!(rule.deadline(since, 500), Some(Instant::from_secs(121)));
        assert_eq!(
            rule.deadline(since, 250),
            Some(Instant::from_millis(120_500))
        );
        assert_eq!(MinRate::OFF.deadline(since, 0), None);
    }

    #[test]
    fn a_huge_count_of_bytes_moves_the_deadline_far_without_overflow() {
        let rule = MinRate {
            grace: Duration::from_secs(1),
            bytes_per_sec: 1,
        };
        let far = rule.deadline(Instant::from_secs(5), u64::MAX).unwrap();
        assert!(far > Instant::from_secs(5 + 100 * 365 * 86_400_i64));
    }
}
