//! Watches that turn a ring's occupancy and a socket's advertised window into events.

use super::event::{EventKind, Source};
use super::record::{Account, Recorder};
use super::{Fill, Ring};

/// Follows one ring's occupancy: an event for every change of it, and one for every
/// change of its [`Fill`] level.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingWatch {
    level: Fill,
    used: usize,
}

impl RingWatch {
    /// Records the ring's occupancy; an event if it changed, another if its level did.
    pub(crate) fn update(
        &mut self,
        rec: &Recorder<'_>,
        source: Source,
        account: &mut Account<'_>,
        ring: Ring,
        (used, capacity): (usize, usize),
    ) {
        if used == self.used {
            return;
        }
        self.used = used;
        rec.record(
            source,
            Some(account),
            EventKind::Ring {
                ring,
                used,
                capacity,
            },
        );
        let level = Fill::of(used, capacity);
        if level == self.level {
            return;
        }
        let from = core::mem::replace(&mut self.level, level);
        rec.record(
            source,
            Some(account),
            EventKind::Level {
                ring,
                from,
                to: level,
                used,
                capacity,
            },
        );
    }

    /// The level last recorded.
    pub fn level(&self) -> Fill {
        self.level
    }

    /// The occupancy last recorded: [`RingWatch::update`] with the same figure records
    /// nothing.
    pub(crate) fn used(&self) -> usize {
        self.used
    }
}

/// Follows the window a TCP socket advertises: an event for every new value, and one
/// when it closes to zero or opens again.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowWatch {
    closed: bool,
    advertised: Option<u16>,
}

impl WindowWatch {
    /// Records the window of a segment this socket sent.
    pub(crate) fn segment_sent(
        &mut self,
        rec: &Recorder<'_>,
        source: Source,
        account: &mut Account<'_>,
        advertised: u16,
        (rx_used, rx_capacity): (usize, usize),
    ) {
        if self.advertised != Some(advertised) {
            self.advertised = Some(advertised);
            // Only a trace wants every value; spare the search through the event
            // otherwise, as a bulk transfer changes it with every segment.
            if rec.has_sink() {
                rec.record(source, Some(account), EventKind::Window { advertised });
            }
        }
        let closed = advertised == 0;
        if closed == self.closed {
            return;
        }
        self.closed = closed;
        rec.record(
            source,
            Some(account),
            EventKind::ZeroWindow {
                closed,
                advertised,
                rx_used,
                rx_capacity,
            },
        );
    }

    /// Whether the last segment sent advertised a zero window.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{SocketHandle, SocketType};
    use crate::observe::{LogThrottle, SocketStats};
    use smoltcp::time::Instant;

    fn recorder() -> Recorder<'static> {
        Recorder {
            stack: "t",
            now: Instant::ZERO,
            limit: None,
            sink: None,
        }
    }

    const SOURCE: Source = Source::Socket {
        handle: SocketHandle(1),
        kind: SocketType::Stream,
    };

    #[test]
    fn ring_watch_counts_full_transitions_once() {
        let mut watch = RingWatch::default();
        let (mut stats, mut throttle) = (SocketStats::default(), LogThrottle::default());
        let mut account = Account::new(&mut stats, &mut throttle);
        for used in [0, 4, 8, 8, 8, 3, 8, 0] {
            watch.update(&recorder(), SOURCE, &mut account, Ring::Tx, (used, 8));
        }
        assert_eq!(stats.tx_full_events, 2);
        assert_eq!(stats.tx_high_water, 8);
        assert_eq!(stats.rx_full_events, 0);
        assert_eq!(watch.level(), Fill::Empty);
    }

    #[test]
    fn window_watch_counts_each_closing() {
        let mut watch = WindowWatch::default();
        let (mut stats, mut throttle) = (SocketStats::default(), LogThrottle::default());
        let mut account = Account::new(&mut stats, &mut throttle);
        for window in [100, 0, 0, 50, 0, 10] {
            watch.segment_sent(&recorder(), SOURCE, &mut account, window, (0, 8));
        }
        assert_eq!(stats.zero_windows, 2);
        assert!(!watch.is_closed());
    }
}
