//! What a kernel does not show: ring occupancy, transitions and per-socket counters.
//!
//! Each socket carries a [`SocketStats`] and two [`RingWatch`]es. The stack feeds the
//! watches the occupancy of each ring after every poll and every call; a watch logs a line
//! only when the ring's [`Fill`] level changes (empty, holding data, full), never once per
//! poll. Levels: `debug` for transitions, `info` for lifecycle, `warn` for loss.

use core::fmt;

use crate::socket::{SocketHandle, SocketType};
use crate::{Duration, Instant};

/// How full a ring is, coarsely: the three states whose changes are worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fill {
    /// Nothing queued.
    #[default]
    Empty,
    /// Some bytes queued, some room left.
    Partial,
    /// No room left: a sender blocks (tx) or the peer is told to stop (rx, zero window).
    Full,
}

impl Fill {
    /// The level of a ring holding `used` of `capacity` bytes.
    pub fn of(used: usize, capacity: usize) -> Fill {
        if used == 0 {
            Fill::Empty
        } else if used >= capacity {
            Fill::Full
        } else {
            Fill::Partial
        }
    }
}

/// Which of a socket's two rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// The receive ring: filled by the network, drained by `recv`.
    Rx,
    /// The transmit ring: filled by `send`, drained as the peer acknowledges (TCP) or as
    /// datagrams leave (UDP).
    Tx,
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ring::Rx => "rx",
            Ring::Tx => "tx",
        })
    }
}

/// Per-socket counters, the figures of the stats table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Bytes handed to the application by `recv`/`recv_from`.
    pub bytes_in: u64,
    /// Bytes accepted from the application by `send`/`send_to`.
    pub bytes_out: u64,
    /// Datagrams returned by `recv_from` (UDP).
    pub datagrams_in: u64,
    /// Datagrams queued by `send_to` (UDP).
    pub datagrams_out: u64,
    /// Calls that returned `WouldBlock` because the rx ring was empty.
    pub rx_would_block: u64,
    /// Calls that returned `WouldBlock` because the tx ring was full.
    pub tx_would_block: u64,
    /// Blocking calls that had to wait for the rx ring (or for a connection).
    pub rx_blocks: u32,
    /// Blocking calls that had to wait for room in the tx ring.
    pub tx_blocks: u32,
    /// Total time spent blocked, both directions.
    pub time_blocked: Duration,
    /// Times the rx ring became full.
    pub rx_full_events: u32,
    /// Times the tx ring became full.
    pub tx_full_events: u32,
    /// Highest rx ring occupancy seen, in bytes.
    pub rx_high_water: usize,
    /// Highest tx ring occupancy seen, in bytes.
    pub tx_high_water: usize,
    /// Times this socket advertised a zero receive window to its peer (TCP).
    pub zero_windows: u32,
    /// Datagrams that arrived for this socket but were dropped because its rx ring had no
    /// room (UDP; Linux counts these as `RcvbufErrors`).
    pub rx_drops: u32,
    /// Datagrams that `recv_from` cut short because the caller's buffer was smaller
    /// (UDP; Linux `MSG_TRUNC`).
    pub truncations: u32,
    /// Bytes lost to those truncations.
    pub truncated_bytes: u64,
}

/// A cap on how many transition lines (ring levels, zero windows) one socket logs, the
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

/// What a watch needs to log a line: the stack's name, the time, and the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogGate<'n> {
    pub stack: &'n str,
    pub now: Instant,
    pub limit: Option<LogLimit>,
}

/// One socket's account under a [`LogLimit`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogThrottle {
    since: Option<Instant>,
    logged: u16,
    left_out: u32,
}

impl LogThrottle {
    /// Whether a transition line may be logged now; counts it as left out if not.
    fn admit(&mut self, gate: &LogGate<'_>, kind: SocketType, socket: SocketHandle) -> bool {
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

    /// Ends the interval if it is over, with a line saying how many lines it left out.
    pub(crate) fn flush(&mut self, gate: &LogGate<'_>, kind: SocketType, socket: SocketHandle) {
        let (Some(limit), Some(since)) = (gate.limit, self.since) else {
            return;
        };
        if gate.now < since + limit.interval {
            return;
        }
        if self.left_out > 0 {
            log::debug!(
                "{}: {kind}{socket} {} transition lines left out in the last {} ms (limit {} per {} ms); the stats table counts them all",
                gate.stack,
                self.left_out,
                (gate.now - since).total_millis(),
                limit.burst,
                limit.interval.total_millis()
            );
        }
        *self = LogThrottle::default();
    }
}

/// Follows one ring's fill level and logs each change of level.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingWatch {
    level: Fill,
}

impl RingWatch {
    /// Records the ring's occupancy; logs and counts if the level changed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        gate: &LogGate<'_>,
        throttle: &mut LogThrottle,
        socket: SocketHandle,
        kind: SocketType,
        ring: Ring,
        (used, capacity): (usize, usize),
        stats: &mut SocketStats,
    ) {
        let high_water = match ring {
            Ring::Rx => &mut stats.rx_high_water,
            Ring::Tx => &mut stats.tx_high_water,
        };
        *high_water = (*high_water).max(used);
        let level = Fill::of(used, capacity);
        if level == self.level {
            return;
        }
        let before = core::mem::replace(&mut self.level, level);
        let why = match (ring, before, level) {
            (Ring::Rx, _, Fill::Full) => "FULL: the peer is told to stop sending",
            (Ring::Rx, Fill::Empty, Fill::Partial) => "data arrived",
            (Ring::Rx, Fill::Full, Fill::Empty) => "drained after full: recv would block",
            (Ring::Rx, Fill::Full, _) => "room again after full",
            (Ring::Rx, _, Fill::Empty) => "drained: recv would block",
            (Ring::Tx, _, Fill::Full) => "FULL: send would block",
            (Ring::Tx, Fill::Empty, Fill::Partial) => "data queued",
            (Ring::Tx, Fill::Full, Fill::Empty) if kind == SocketType::Datagram => {
                "empty after full: all datagrams sent"
            }
            (Ring::Tx, Fill::Full, Fill::Empty) => {
                "empty after full: all acknowledged, send can proceed"
            }
            (Ring::Tx, Fill::Full, _) => "room again after full: send can proceed",
            (Ring::Tx, _, Fill::Empty) if kind == SocketType::Datagram => {
                "empty: all datagrams sent"
            }
            (Ring::Tx, _, Fill::Empty) => "empty: everything sent and acknowledged",
            _ => "changed",
        };
        if level == Fill::Full {
            match ring {
                Ring::Rx => stats.rx_full_events += 1,
                Ring::Tx => stats.tx_full_events += 1,
            }
        }
        if throttle.admit(gate, kind, socket) {
            log::debug!(
                "{}: {kind}{socket} {ring} ring {used}/{capacity}: {why}",
                gate.stack
            );
        }
    }

    /// The level last recorded.
    pub fn level(&self) -> Fill {
        self.level
    }
}

/// Follows whether a TCP socket is advertising a zero window, and logs each change.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowWatch {
    closed: bool,
}

impl WindowWatch {
    /// Records the window of a segment this socket sent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn segment_sent(
        &mut self,
        gate: &LogGate<'_>,
        throttle: &mut LogThrottle,
        socket: SocketHandle,
        window: u16,
        rx_used: usize,
        rx_capacity: usize,
        stats: &mut SocketStats,
    ) {
        let closed = window == 0;
        if closed == self.closed {
            return;
        }
        self.closed = closed;
        if closed {
            stats.zero_windows += 1;
        }
        if !throttle.admit(gate, SocketType::Stream, socket) {
            return;
        }
        let stack = gate.stack;
        if closed {
            log::debug!(
                "{stack}: tcp{socket} zero window advertised (rx {rx_used}/{rx_capacity}): peer must wait"
            );
        } else {
            log::debug!(
                "{stack}: tcp{socket} window reopened to {window} (rx {rx_used}/{rx_capacity}): peer may send"
            );
        }
    }

    /// Whether the last segment sent advertised a zero window.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// One row of the stats table: a socket's identity, ring occupancy and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRow {
    /// The socket.
    pub handle: SocketHandle,
    /// Its type.
    pub kind: SocketType,
    /// Its local port (0 when unbound).
    pub local_port: u16,
    /// Bytes in the rx ring now, and its capacity.
    pub rx: (usize, usize),
    /// Bytes in the tx ring now, and its capacity.
    pub tx: (usize, usize),
    /// The counters.
    pub stats: SocketStats,
}

impl StatsRow {
    /// The table's header line, matching [`StatsRow`]'s `Display`.
    pub const HEADER: &'static str = "socket       port  rx used/cap   tx used/cap      bytes in     bytes out  rx-hw  tx-hw  blk-rx blk-tx  blocked-ms  full-rx full-tx  zwin  drops  trunc";

    /// The row's figures after the socket's name, in the table's column order: the one
    /// list both the table and the JSON of `GET /stats` are written from.
    pub fn fields(&self) -> [StatField; 15] {
        let s = &self.stats;
        let field = |name, width, value| StatField { name, width, value };
        let count = |n: u64| StatValue::Count(n);
        [
            field("port", 6, count(self.local_port.into())),
            field("rx", 6, StatValue::Ring(self.rx.0, self.rx.1)),
            field("tx", 6, StatValue::Ring(self.tx.0, self.tx.1)),
            field("bytes_in", 12, count(s.bytes_in)),
            field("bytes_out", 13, count(s.bytes_out)),
            field("rx_high_water", 6, count(s.rx_high_water as u64)),
            field("tx_high_water", 6, count(s.tx_high_water as u64)),
            field("rx_blocks", 7, count(s.rx_blocks.into())),
            field("tx_blocks", 6, count(s.tx_blocks.into())),
            field("blocked_ms", 11, count(s.time_blocked.total_millis())),
            field("rx_full", 8, count(s.rx_full_events.into())),
            field("tx_full", 7, count(s.tx_full_events.into())),
            field("zero_windows", 5, count(s.zero_windows.into())),
            field("drops", 6, count(s.rx_drops.into())),
            field("truncations", 6, count(s.truncations.into())),
        ]
    }
}

/// One figure of a [`StatsRow`], as [`StatsRow::fields`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatField {
    /// Its name in JSON.
    pub name: &'static str,
    /// Its column's width in the table (each half's, for a ring).
    pub width: usize,
    /// The figure.
    pub value: StatValue,
}

/// The value of a [`StatField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatValue {
    /// A count or an amount.
    Count(u64),
    /// A ring's bytes in use and its capacity.
    Ring(usize, usize),
}

impl fmt::Display for StatsRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut socket = heapless::String::<16>::new();
        // Cannot overflow: a type name and a 16-bit number fit in 16 bytes.
        let _ = fmt::Write::write_fmt(&mut socket, format_args!("{}{}", self.kind, self.handle));
        write!(f, "{socket:<10}")?;
        for StatField { width, value, .. } in self.fields() {
            match value {
                StatValue::Count(n) => write!(f, " {n:>width$}")?,
                StatValue::Ring(used, capacity) => write!(f, " {used:>width$}/{capacity:<width$}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_levels() {
        assert_eq!(Fill::of(0, 10), Fill::Empty);
        assert_eq!(Fill::of(1, 10), Fill::Partial);
        assert_eq!(Fill::of(10, 10), Fill::Full);
    }

    #[test]
    fn ring_watch_counts_full_transitions_once() {
        let mut watch = RingWatch::default();
        let mut stats = SocketStats::default();
        let h = SocketHandle(1);
        let gate = LogGate {
            stack: "t",
            now: Instant::ZERO,
            limit: None,
        };
        let mut throttle = LogThrottle::default();
        for used in [0, 4, 8, 8, 8, 3, 8, 0] {
            watch.update(
                &gate,
                &mut throttle,
                h,
                SocketType::Stream,
                Ring::Tx,
                (used, 8),
                &mut stats,
            );
        }
        assert_eq!(stats.tx_full_events, 2);
        assert_eq!(stats.tx_high_water, 8);
        assert_eq!(watch.level(), Fill::Empty);
    }

    #[test]
    fn window_watch_counts_each_closing() {
        let mut watch = WindowWatch::default();
        let mut stats = SocketStats::default();
        let h = SocketHandle(2);
        let gate = LogGate {
            stack: "t",
            now: Instant::ZERO,
            limit: None,
        };
        let mut throttle = LogThrottle::default();
        for window in [100, 0, 0, 50, 0, 10] {
            watch.segment_sent(&gate, &mut throttle, h, window, 0, 8, &mut stats);
        }
        assert_eq!(stats.zero_windows, 2);
        assert!(!watch.is_closed());
    }

    #[test]
    fn a_log_limit_admits_its_burst_per_interval_and_counts_the_rest() {
        let limit = LogLimit {
            burst: 3,
            interval: Duration::from_millis(1000),
        };
        let mut throttle = LogThrottle::default();
        let h = SocketHandle(3);
        let at = |ms| LogGate {
            stack: "t",
            now: Instant::from_millis(ms),
            limit: Some(limit),
        };
        let admitted: usize = (0..10)
            .filter(|&i| throttle.admit(&at(i * 10), SocketType::Stream, h))
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(throttle.left_out, 7);
        // Within the interval nothing changes; after it, a fresh burst.
        throttle.flush(&at(999), SocketType::Stream, h);
        assert_eq!(throttle.left_out, 7);
        assert!(throttle.admit(&at(1000), SocketType::Stream, h));
        assert_eq!(throttle.left_out, 0);
        assert_eq!(throttle.logged, 1);
    }

    #[test]
    fn without_a_log_limit_every_transition_is_admitted() {
        let mut throttle = LogThrottle::default();
        let gate = LogGate {
            stack: "t",
            now: Instant::ZERO,
            limit: None,
        };
        assert!((0..1000).all(|_| throttle.admit(&gate, SocketType::Datagram, SocketHandle(0))));
    }

    #[test]
    fn a_throttled_watch_still_counts_every_full_transition() {
        let gate = LogGate {
            stack: "t",
            now: Instant::ZERO,
            limit: Some(LogLimit {
                burst: 1,
                interval: Duration::from_secs(1),
            }),
        };
        let mut throttle = LogThrottle::default();
        let mut watch = RingWatch::default();
        let mut stats = SocketStats::default();
        for _ in 0..50 {
            for used in [8, 3] {
                watch.update(
                    &gate,
                    &mut throttle,
                    SocketHandle(4),
                    SocketType::Stream,
                    Ring::Tx,
                    (used, 8),
                    &mut stats,
                );
            }
        }
        assert_eq!(stats.tx_full_events, 50);
        assert_eq!(throttle.left_out, 99);
    }

    #[test]
    fn a_table_row_keeps_its_columns() {
        let row = StatsRow {
            handle: SocketHandle(3),
            kind: SocketType::Stream,
            local_port: 7003,
            rx: (10, 4096),
            tx: (0, 2048),
            stats: SocketStats {
                bytes_in: 123_456,
                bytes_out: 7,
                rx_high_water: 4096,
                tx_high_water: 512,
                rx_blocks: 2,
                tx_blocks: 1,
                time_blocked: Duration::from_millis(1500),
                rx_full_events: 4,
                tx_full_events: 5,
                zero_windows: 6,
                rx_drops: 8,
                truncations: 9,
                ..SocketStats::default()
            },
        };
        let expected = "tcp#3        7003     10/4096        0/2048         123456             7   4096    512       2      1        1500        4       5     6      8      9";
        assert_eq!(std::format!("{row}"), expected);
    }
}
