//! The log's view of the events: one line per event worth a line (`debug` for
//! transitions and blocks, `warn` for loss), transitions, zero windows and drops within
//! the socket's [`LogLimit`](super::LogLimit).

#[cfg(feature = "blocking")]
use super::event::Unblocked;
use super::event::{EventKind, Source, Timer};
use super::record::Recorder;
use super::{Fill, LogThrottle, Ring, SocketStats};
use crate::handle::{SocketHandle, SocketType};

/// Writes `kind`'s line, if it has one. `stats` are the socket's counters after the
/// event was counted (a drop line quotes the total).
pub(crate) fn log_event(
    rec: &Recorder<'_>,
    source: Source,
    kind: &EventKind,
    throttle: Option<&mut LogThrottle>,
    stats: &SocketStats,
) {
    let Source::Socket {
        handle,
        kind: socket_type,
    } = source
    else {
        // The interface's discards are logged per reason by the stack's discard account.
        return;
    };
    let name = rec.stack;
    let who = Who {
        stack: name,
        kind: socket_type,
        handle,
    };
    // Transitions and drops come in bursts: they go through the socket's log limit.
    let admitted = |throttle: Option<&mut LogThrottle>| {
        throttle.is_none_or(|t| t.admit(rec, socket_type, handle))
    };
    match *kind {
        EventKind::Ring { .. } | EventKind::Window { .. } | EventKind::State { .. } => {}
        EventKind::Level {
            ring,
            from,
            to,
            used,
            capacity,
        } => {
            if admitted(throttle) {
                let why = log_level_change(socket_type, ring, from, to);
                net_debug!("{} {} ring {}/{}: {}", who, ring, used, capacity, why);
            }
        }
        EventKind::ZeroWindow {
            closed,
            advertised,
            rx_used,
            rx_capacity,
        } => {
            if !admitted(throttle) {
                return;
            }
            if closed {
                net_debug!(
                    "{}: tcp{} zero window advertised (rx {}/{}): peer must wait",
                    name,
                    handle,
                    rx_used,
                    rx_capacity
                );
            } else {
                net_debug!(
                    "{}: tcp{} window reopened to {} (rx {}/{}): peer may send",
                    name,
                    handle,
                    advertised,
                    rx_used,
                    rx_capacity
                );
            }
        }
        #[cfg(feature = "blocking")]
        EventKind::BlockStart {
            call,
            ring,
            used,
            capacity,
        } => net_debug!(
            "{} {} BLOCKS: {} ring {}/{}, {}",
            who,
            call.log_name(),
            ring,
            used,
            capacity,
            call.log_waits_for()
        ),
        #[cfg(feature = "blocking")]
        EventKind::BlockEnd {
            call,
            ring,
            waited,
            polls,
            outcome,
            used,
            capacity,
            ..
        } => {
            let call = call.log_name();
            match outcome {
                Unblocked::Completed(why) => net_debug!(
                    "{} {} unblocked after {} ({} polls): {}; {} ring {}/{}",
                    who,
                    call,
                    waited,
                    polls,
                    why,
                    ring,
                    used,
                    capacity
                ),
                Unblocked::Stalled => net_warn!(
                    "{} {} gives up after {} ({} polls): nothing can unblock it",
                    who,
                    call,
                    waited,
                    polls
                ),
                Unblocked::TimedOut => net_warn!(
                    "{} {} timed out after {} ({} polls); {} ring {}/{}",
                    who,
                    call,
                    waited,
                    polls,
                    ring,
                    used,
                    capacity
                ),
            }
        }
        // Only the blocking calls start a block: without them there is none to log.
        #[cfg(not(feature = "blocking"))]
        EventKind::BlockStart { .. } | EventKind::BlockEnd { .. } => {}
        EventKind::Drop {
            bytes,
            from,
            rx_used,
            rx_capacity,
            ..
        } => {
            if !admitted(throttle) {
                return;
            }
            let drops = stats.rx_drops;
            match from {
                Some(from) => net_warn!(
                    "{} dropped a {}-byte datagram from {}: rx ring {}/{} has no room (drops: {})",
                    who,
                    bytes,
                    from,
                    rx_used,
                    rx_capacity,
                    drops
                ),
                None => net_warn!(
                    "{} dropped a {}-byte datagram: rx ring {}/{} has no room (drops: {})",
                    who,
                    bytes,
                    rx_used,
                    rx_capacity,
                    drops
                ),
            }
        }
        EventKind::Truncated { kept, lost, from } => net_warn!(
            "{} datagram from {} truncated: {} of {} bytes fit, {} lost (MSG_TRUNC)",
            who,
            from,
            kept,
            kept + lost,
            lost
        ),
        EventKind::Timer(timer) => log_timer(name, handle, timer),
    }
}

fn log_timer(name: &str, counted_on: SocketHandle, timer: Timer) {
    match timer {
        Timer::HalfOpenExpired {
            socket,
            waited,
            port,
        } => net_warn!("{}: tcp{} half-open for {} ms, its SYN-ACK unanswered: back to listening on port {}", name, socket, waited.total_millis(), port),
        Timer::OrphanExpired {
            socket,
            state,
            idle,
            retransmits,
        } => net_warn!("{}: tcp{} orphan in {} without progress for {} ms ({} retransmissions): the peer never finished closing, sending RST", name, socket, state, idle.total_millis(), retransmits),
        Timer::GaveWay {
            socket,
            half_open,
            state,
            peer,
            port,
        } => {
            // Under defmt each text is an interned symbol, whose code reads alike for every text.
            #[allow(clippy::if_same_then_else)]
            let what = if half_open {
                log_text!("a half-open connection")
            } else {
                log_text!("an orphan")
            };
            match peer {
                Some(peer) => net_warn!("{}: listen{} port {} has no socket listening: tcp{} ({} in {} with {}) gives way to a new SYN", name, counted_on, port, socket, what, state, peer),
                None => net_warn!("{}: listen{} port {} has no socket listening: tcp{} ({} in {}) gives way to a new SYN", name, counted_on, port, socket, what, state),
            }
        }
        // The service that timed the connection out says so, naming itself.
        Timer::IdleTimeout { .. } | Timer::SlowRequest { .. } | Timer::RateLimited => {}
    }
}

texts! {
    /// What a change of a ring's fill level means, in the words of its log line.
    pub fn level_change / log_level_change(
        kind: SocketType,
        ring: Ring,
        before: Fill,
        level: Fill
    ) {
        match (ring, before, level) {
            (Ring::Rx, _, Fill::Full) => "FULL: the peer is told to stop sending",
            (Ring::Rx, Fill::Empty, Fill::Partial) => "data arrived",
            (Ring::Rx, Fill::Full, Fill::Empty) => "drained after full: recv would block",
            (Ring::Rx, Fill::Full, _) => "room again after full",
            (Ring::Rx, _, Fill::Empty) => "drained: recv would block",
            (Ring::Tx, _, Fill::Full) => "FULL: send would block",
            (Ring::Tx, Fill::Empty, Fill::Partial) => "data queued",
            (Ring::Tx, Fill::Full, Fill::Empty) if kind == SocketType::Datagram =>
                "empty after full: all datagrams sent",
            (Ring::Tx, Fill::Full, Fill::Empty) =>
                "empty after full: all acknowledged, send can proceed",
            (Ring::Tx, Fill::Full, _) => "room again after full: send can proceed",
            (Ring::Tx, _, Fill::Empty) if kind == SocketType::Datagram =>
                "empty: all datagrams sent",
            (Ring::Tx, _, Fill::Empty) => "empty: everything sent and acknowledged",
            _ => "changed",
        }
    }
}

/// A socket as its lines name it, `<stack>: <type><number>`: one argument for the three,
/// so that each line's call passes one value instead of three (the log's text is the same).
pub(crate) struct Who<'n> {
    pub(crate) stack: &'n str,
    pub(crate) kind: SocketType,
    pub(crate) handle: SocketHandle,
}

impl core::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}{}", self.stack, self.kind, self.handle)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Who<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}: {}{}", self.stack, self.kind, self.handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's form of a transition's words (`texts!`'s second function, the one the log
    /// lines call) is the text `level_change` gives, for every socket type, ring and pair
    /// of levels, the guarded arms included.
    #[test]
    fn the_logged_transition_words_are_level_changes_words() {
        let fills = [Fill::Empty, Fill::Partial, Fill::Full];
        let mut texts = 0;
        for kind in [
            SocketType::Stream,
            SocketType::Listener,
            SocketType::Datagram,
        ] {
            for ring in [Ring::Rx, Ring::Tx] {
                for before in fills {
                    for level in fills {
                        assert_eq!(
                            log_level_change(kind, ring, before, level),
                            level_change(kind, ring, before, level)
                        );
                        texts += 1;
                    }
                }
            }
        }
        assert_eq!(texts, 54);
        assert_eq!(
            level_change(SocketType::Datagram, Ring::Tx, Fill::Full, Fill::Empty),
            "empty after full: all datagrams sent"
        );
        assert_eq!(
            level_change(SocketType::Stream, Ring::Tx, Fill::Full, Fill::Empty),
            "empty after full: all acknowledged, send can proceed"
        );
    }
}
