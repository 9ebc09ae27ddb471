//! One path for every event: counted, logged, and handed to the host's sink.
//!
//! [`Recorder::record`] is the only place an [`Event`] is made. It updates the socket's
//! counters ([`SocketStats::count`]), writes the event's log line (`lines`, within the
//! socket's [`LogLimit`]), and passes the event to the [`EventSink`], so the stats
//! table, the log and a trace cannot disagree.

#[cfg(feature = "events")]
use super::event::Event;
use super::event::{EventKind, EventSink, Source, Timer};
use super::{lines, Fill, LogLimit, LogThrottle, Ring, SocketStats};
use smoltcp::time::Instant;

/// What recording an event needs from the stack: its name, the time, the log limit and
/// the sink. Copied out of the stack for each batch of events, so that the socket table
/// can be borrowed beside it.
#[derive(Clone, Copy)]
pub(crate) struct Recorder<'s> {
    pub stack: &'static str,
    pub now: Instant,
    pub limit: Option<LogLimit>,
    pub sink: Option<&'s dyn EventSink>,
}

/// A socket's counters and log account, which its events update.
pub(crate) struct Account<'x> {
    pub stats: &'x mut SocketStats,
    pub throttle: &'x mut LogThrottle,
}

impl<'x> Account<'x> {
    pub(crate) fn new(stats: &'x mut SocketStats, throttle: &'x mut LogThrottle) -> Self {
        Account { stats, throttle }
    }
}

impl Recorder<'_> {
    /// Records `kind` on `source`: counts it in `account`'s stats, logs it, and hands it
    /// to the sink.
    pub(crate) fn record(
        &self,
        source: Source,
        account: Option<&mut Account<'_>>,
        kind: EventKind,
    ) {
        match account {
            Some(account) => {
                account.stats.count(&kind);
                lines::log_event(
                    self,
                    source,
                    &kind,
                    Some(&mut *account.throttle),
                    account.stats,
                );
            }
            None => lines::log_event(self, source, &kind, None, &SocketStats::default()),
        }
        #[cfg(feature = "events")]
        if let Some(sink) = self.sink {
            sink.record(
                self.stack,
                &Event {
                    at: self.now,
                    source,
                    kind,
                },
            );
        }
    }

    /// Whether anything beyond the counters and the log wants the events (never without
    /// feature `events`, which alone lets a host give the stack a sink).
    pub(crate) fn has_sink(&self) -> bool {
        cfg!(feature = "events") && self.sink.is_some()
    }
}

impl SocketStats {
    /// The counters' view of an event: the one place each counter of the stats table
    /// that an event stands for is incremented.
    pub fn count(&mut self, kind: &EventKind) {
        match *kind {
            EventKind::Ring { ring, used, .. } => {
                let high_water = match ring {
                    Ring::Rx => &mut self.rx_high_water,
                    Ring::Tx => &mut self.tx_high_water,
                };
                *high_water = (*high_water).max(used);
            }
            EventKind::Level {
                ring,
                to: Fill::Full,
                ..
            } => match ring {
                Ring::Rx => self.rx_full_events += 1,
                Ring::Tx => self.tx_full_events += 1,
            },
            EventKind::Level { .. } | EventKind::Window { .. } | EventKind::State { .. } => {}
            EventKind::ZeroWindow { closed, .. } => {
                if closed {
                    self.zero_windows += 1;
                }
            }
            EventKind::BlockStart { ring, .. } => match ring {
                Ring::Rx => self.rx_blocks += 1,
                Ring::Tx => self.tx_blocks += 1,
            },
            EventKind::BlockEnd { waited, .. } => self.time_blocked += waited,
            EventKind::Drop { .. } => self.rx_drops += 1,
            EventKind::Truncated { lost, .. } => {
                self.truncations += 1;
                self.truncated_bytes += lost as u64;
            }
            EventKind::Timer(timer) => match timer {
                Timer::HalfOpenExpired { .. } => self.half_open_expired += 1,
                Timer::OrphanExpired { .. } => self.orphans_expired += 1,
                Timer::GaveWay {
                    half_open: true, ..
                } => self.half_open_evicted += 1,
                Timer::GaveWay { .. } => self.orphans_evicted += 1,
                Timer::IdleTimeout { .. } => self.idle_timeouts += 1,
                Timer::SlowRequest { .. } => self.slow_requests += 1,
                Timer::RateLimited => self.rate_limited += 1,
            },
        }
    }
}
