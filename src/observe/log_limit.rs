//! Caps on log lines: [`LogLimit`], a burst of transition lines per interval after
//! Linux's `net_ratelimit()`, and [`IntervalLog`], a count logged at most once an interval.

use super::record::Recorder;
use crate::handle::{SocketHandle, SocketType};
use smoltcp::time::Duration;
use smoltcp::time::Instant;

/// A cap on how many transition lines (ring levels, zero windows, datagrams dropped for
/// want of ring room) one socket logs, the
/// way Linux's `net_ratelimit()` caps its network messages: at most `burst` lines per
/// `interval`, then one line saying how many were left out. The counters still count
/// every transition. Off by default; meant for a slow log such as a UART, which a bulk
/// transfer (a transition every few kilobytes) would otherwise turn into the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimit {
    /// Lines logged per interval before the rest are only counted.
    pub burst: u16,
    /// The length of an interval.
    pub interval: Duration,
}

/// One socket's account under a [`LogLimit`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogThrottle {
    since: Option<Instant>,
    logged: u16,
    left_out: u32,
}

impl LogThrottle {
    /// Whether a transition or drop line may be logged now; counts it as left out if not.
    /// Not inlined: the event log asks it for four kinds of line.
    #[inline(never)]
    pub(crate) fn admit(
        &mut self,
        gate: &Recorder<'_>,
        kind: SocketType,
        socket: SocketHandle,
    ) -> bool {
        let Some(limit) = gate.limit else {
            return true;
        };
        self.flush(gate, kind, socket);
        if self.since.is_none() {
            self.since = Some(gate.now);
        }
        if self.logged < limit.burst {
            self.logged += 1;
            true
        } else {
            self.left_out += 1;
            false
        }
    }

    /// Whether lines were left out in this interval: only then has [`LogThrottle::flush`]
    /// a line to write. Otherwise ending an interval that is over only resets it, which
    /// [`LogThrottle::admit`] does itself before it counts the next line.
    pub(crate) fn has_left_out(&self) -> bool {
        self.left_out > 0
    }

    /// Ends the interval if it is over, with a line saying how many lines it left out.
    pub(crate) fn flush(&mut self, gate: &Recorder<'_>, kind: SocketType, socket: SocketHandle) {
        let (Some(limit), Some(since)) = (gate.limit, self.since) else {
            return;
        };
        if gate.now < since + limit.interval {
            return;
        }
        if self.left_out > 0 {
            let who = super::Who {
                stack: gate.stack,
                kind,
                handle: socket,
            };
            net_debug!("{} {} transition lines left out in the last {} ms (limit {} per {} ms); the stats table counts them all", who, self.left_out, (gate.now - since).total_millis(), limit.burst, limit.interval.total_millis());
        }
        *self = LogThrottle::default();
    }
}

/// A count that a line reports at most once per interval, each line saying how many are
/// new since the last (the interface's discards per reason, the stats queries over the
/// rate limit): what the count was at the last line, and when that line was written.
/// Which line, at what level, stays the caller's.
///
/// Packed to 12 bytes (16 with the `Instant`'s alignment): the stack keeps one per
/// discard reason, and the firmware's stack lives in `main`'s frame. Fields are only
/// ever copied, never borrowed, so the packing costs nothing but a load.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
pub(crate) struct IntervalLog {
    /// The count as of the last line (0: no line yet).
    logged: u32,
    /// When the last line was written.
    at: Instant,
}

impl IntervalLog {
    /// No line written yet: the first is due at once.
    pub(crate) const NEW: IntervalLog = IntervalLog {
        logged: 0,
        at: Instant::ZERO,
    };

    /// Whether the count has reached `total` since the last line.
    pub(crate) fn behind(&self, total: u32) -> bool {
        self.logged != total
    }

    /// Whether a line about the count, now `total`, is due at `now`: the first always, a
    /// later one once `interval` has passed since the last. If it is, it is taken as
    /// written (at `now`, with `total`), and the count new since the last line is
    /// returned for the caller to log; otherwise `None`, and nothing changes.
    pub(crate) fn due(&mut self, total: u32, now: Instant, interval: Duration) -> Option<u32> {
        let (logged, at) = (self.logged, self.at);
        if logged != 0 && now < at + interval {
            return None;
        }
        self.logged = total;
        self.at = now;
        // Counts only grow (they saturate), so this is the count since the last line.
        Some(total.wrapping_sub(logged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::record::Account;
    use crate::observe::{Ring, RingWatch, SocketStats, Source};

    #[test]
    fn an_interval_log_writes_a_line_at_most_once_an_interval_with_the_count_since_the_last() {
        let second = Duration::from_secs(1);
        let at = Instant::from_millis;
        let mut log = IntervalLog::NEW;
        assert!(log.behind(1));
        // The first line is due at once, whenever it comes.
        assert_eq!(log.due(1, at(5000), second), Some(1));
        assert!(!log.behind(1));
        // Within the interval nothing is due, and nothing is taken as written.
        assert_eq!(log.due(2, at(5100), second), None);
        assert_eq!(log.due(7, at(5999), second), None);
        assert!(log.behind(7));
        // At its end, one line with the six since the first; the next interval starts
        // from this line, not from the first.
        assert_eq!(log.due(7, at(6000), second), Some(6));
        assert_eq!(log.due(9, at(6999), second), None);
        assert_eq!(log.due(9, at(7000), second), Some(2));
        // Another interval, another figure: the next line comes that much later.
        let tenth = Duration::from_millis(100);
        assert_eq!(log.due(10, at(7050), tenth), None);
        assert_eq!(log.due(10, at(7100), tenth), Some(1));
        assert_eq!(core::mem::size_of::<IntervalLog>(), 12);
    }

    #[test]
    fn a_log_limit_admits_its_burst_per_interval_and_counts_the_rest() {
        let limit = LogLimit {
            burst: 3,
            interval: Duration::from_millis(1000),
        };
        let mut throttle = LogThrottle::default();
        let h = SocketHandle(3);
        let at = |ms| Recorder {
            stack: "t",
            now: Instant::from_millis(ms),
            limit: Some(limit),
            sink: None,
        };
        let admitted: usize = (0..10)
            .filter(|&i| throttle.admit(&at(i * 10), SocketType::Stream, h))
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(throttle.left_out, 7);
        assert!(throttle.has_left_out());
        // Within the interval nothing changes; after it, a fresh burst.
        throttle.flush(&at(999), SocketType::Stream, h);
        assert_eq!(throttle.left_out, 7);
        assert!(throttle.admit(&at(1000), SocketType::Stream, h));
        assert_eq!(throttle.left_out, 0);
        assert!(!throttle.has_left_out());
        assert_eq!(throttle.logged, 1);
    }

    #[test]
    fn an_interval_over_with_nothing_left_out_is_reset_by_the_next_admit() {
        // What lets a socket's observation skip the flush while nothing was left out.
        let limit = LogLimit {
            burst: 2,
            interval: Duration::from_millis(1000),
        };
        let at = |ms| Recorder {
            stack: "t",
            now: Instant::from_millis(ms),
            limit: Some(limit),
            sink: None,
        };
        let h = SocketHandle(3);
        let (mut flushed, mut lazy) = (LogThrottle::default(), LogThrottle::default());
        for throttle in [&mut flushed, &mut lazy] {
            assert!(throttle.admit(&at(0), SocketType::Stream, h));
            assert!(throttle.admit(&at(10), SocketType::Stream, h));
            assert!(!throttle.has_left_out());
        }
        flushed.flush(&at(1500), SocketType::Stream, h);
        for throttle in [&mut flushed, &mut lazy] {
            assert!(throttle.admit(&at(1600), SocketType::Stream, h));
            assert!(throttle.admit(&at(1700), SocketType::Stream, h));
            assert!(!throttle.admit(&at(1800), SocketType::Stream, h));
            assert_eq!(
                (throttle.since, throttle.logged),
                (Some(Instant::from_millis(1600)), 2)
            );
        }
    }

    #[test]
    fn without_a_log_limit_every_transition_is_admitted() {
        let mut throttle = LogThrottle::default();
        let gate = Recorder {
            stack: "t",
            now: Instant::ZERO,
            limit: None,
            sink: None,
        };
        assert!((0..1000).all(|_| throttle.admit(&gate, SocketType::Datagram, SocketHandle(0))));
    }

    #[test]
    fn a_throttled_watch_still_counts_every_full_transition() {
        let gate = Recorder {
            stack: "t",
            now: Instant::ZERO,
            limit: Some(LogLimit {
                burst: 1,
                interval: Duration::from_secs(1),
            }),
            sink: None,
        };
        let mut throttle = LogThrottle::default();
        let mut watch = RingWatch::default();
        let mut stats = SocketStats::default();
        let source = Source::Socket {
            handle: SocketHandle(4),
            kind: SocketType::Stream,
        };
        let mut account = Account::new(&mut stats, &mut throttle);
        for _ in 0..50 {
            for used in [8, 3] {
                watch.update(&gate, source, &mut account, Ring::Tx, (used, 8));
            }
        }
        assert_eq!(stats.tx_full_events, 50);
        assert_eq!(throttle.left_out, 99);
    }
}
