//! What a kernel does not show: ring occupancy, transitions and per-socket counters.
//!
//! Each socket carries a [`SocketStats`] and two [`RingWatch`]es. The stack feeds the
//! watches the occupancy of each ring after every poll and every call; a watch logs a line
//! only when the ring's [`Fill`] level changes (empty, holding data, full), never once per
//! poll. Levels: `debug` for transitions, `info` for lifecycle, `warn` for loss.
//!
//! - `event`: [`Event`], the typed, fixed-size record of one observed change, and the
//!   [`EventSink`] a host may give the stack to receive every one (a trace file).
//! - `record`: the one path of every event: counted in [`SocketStats`], logged, handed
//!   to the sink, so the stats table, the log and a trace are views of the same events.
//! - `lines`: the log's view: the line of each event.
//! - `watch`: [`RingWatch`] and [`WindowWatch`], which turn occupancy into events.
//! - `log_limit`: [`LogLimit`], the `net_ratelimit()`-style cap on transition lines, and
//!   `IntervalLog`, a count logged at most once an interval.
//! - `table`: [`StatsRow`] and [`StatsTable`], the stats table.
//!
//! This layer knows sockets only by their [`SocketHandle`](crate::SocketHandle) and
//! [`SocketType`](crate::SocketType): it sits
//! below the stack, which feeds it.

mod event;
mod lines;
mod log_limit;
mod record;
mod table;
mod watch;

pub use event::{Call, DropReason, Event, EventKind, EventSink, Source, Timer, Unblocked};
pub use lines::level_change;
pub(crate) use lines::Who;
pub use log_limit::LogLimit;

/// A fixed text a log line names (`log_text!`): interned under `defmt`, so that its bytes
/// stay in the ELF and out of a firmware's flash.
#[cfg(feature = "defmt")]
pub(crate) type LogText = defmt::Str;
/// A fixed text a log line names (`log_text!`): the `&str` itself without `defmt`.
#[cfg(not(feature = "defmt"))]
pub(crate) type LogText = &'static str;
pub(crate) use log_limit::{IntervalLog, LogThrottle};
pub(crate) use record::{Account, Recorder};
pub use table::{StatField, StatValue, StatsRow, StatsTable};
pub use watch::{RingWatch, WindowWatch};

use core::fmt;

use smoltcp::time::Duration;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ring {
    /// The receive ring: filled by the network, drained by `recv`.
    Rx,
    /// The transmit ring: filled by `send`, drained as the peer acknowledges (TCP) or as
    /// datagrams leave (UDP).
    Tx,
}

impl Ring {
    texts! {
        /// The ring's name in log lines and traces.
        pub fn name / log_text(self) {
            match self {
                Ring::Rx => "rx",
                Ring::Tx => "tx",
            }
        }
    }
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

format_interned!(Ring, log_text);

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
    /// Bytes queued by `send_to` and dropped unsent because the datagram at the head of
    /// the tx ring waited [`UNRESOLVED_AFTER`](crate::stack::UNRESOLVED_AFTER) for its
    /// next hop to answer ARP, and every datagram behind it with it (UDP; Linux drops
    /// what it queued for a neighbour whose resolution failed: `unresolved_discards`).
    pub unresolved_dropped_bytes: u64,
    /// Half-open connections (SYN-RECEIVED, the SYN-ACK unanswered) that went back to
    /// listening when their timer ran out (TCP; counted on the listener's row).
    pub half_open_expired: u32,
    /// Half-open connections that gave their place in the backlog to a new SYN (TCP;
    /// on the listener's row): ringnet's answer to a SYN flood, where Linux has syncookies.
    pub half_open_evicted: u32,
    /// Orphans (connections after `close()`) reset after making no progress for the fin
    /// timeout (TCP; on the listener's row for a backlog socket).
    pub orphans_expired: u32,
    /// Orphans in TIME-WAIT or FIN-WAIT-2 that gave their place in the backlog to a new
    /// SYN (TCP; on the listener's row), as Linux cuts TIME-WAIT short when it must.
    pub orphans_evicted: u32,
    /// Connections a service reset after they idled past its idle timeout (on the
    /// connection's own row; a backlog socket keeps its row from one connection to the
    /// next, so a service's rows add up to its total).
    pub idle_timeouts: u32,
    /// Connections a service cut off because a request begun was not whole within its
    /// deadline (HTTP's head deadline, answered `408`; the transfer server's frame
    /// deadline, answered status 10), bytes trickling in or not, or because a body either
    /// way fell below its minimum rate ([`MinRate`](crate::services::MinRate)): slowloris
    /// clients, which the idle timeout never meets. On the connection's own row, as
    /// `idle_timeouts`.
    pub slow_requests: u32,
    /// Requests a service left unanswered because its rate limit had no credit left (the
    /// stats query's, on its socket's row; Linux counts its rate-limited ICMP errors in
    /// `IcmpOutRateLimitGlobal`).
    pub rate_limited: u32,
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
}
