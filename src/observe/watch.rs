//! Watches that turn a ring's occupancy and a socket's advertised window into logged,
//! counted transitions.

use super::{Fill, LogGate, LogThrottle, Ring, SocketStats};
use crate::handle::{SocketHandle, SocketType};

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

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Instant;

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
}
