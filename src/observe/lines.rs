//! The log's view of the events: one line per event worth a line (`debug` for
//! transitions and blocks, `warn` for loss), transitions, zero windows and drops within
//! the socket's [`LogLimit`](super::LogLimit).

use super::event::{EventKind, Source, Timer, Unblocked};
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
                let why = level_change(socket_type, ring, from, to);
                log::debug!("{name}: {socket_type}{handle} {ring} ring {used}/{capacity}: {why}");
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
                log::debug!(
                    "{name}: tcp{handle} zero window advertised (rx {rx_used}/{rx_capacity}): peer must wait"
                );
            } else {
                log::debug!(
                    "{name}: tcp{handle} window reopened to {advertised} (rx {rx_used}/{rx_capacity}): peer may send"
                );
            }
        }
        EventKind::BlockStart {
            call,
            ring,
            used,
            capacity,
        } => log::debug!(
            "{name}: {socket_type}{handle} {} BLOCKS: {ring} ring {used}/{capacity}, {}",
            call.name(),
            call.waits_for()
        ),
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
            let call = call.name();
            match outcome {
                Unblocked::Completed(why) => log::debug!(
                    "{name}: {socket_type}{handle} {call} unblocked after {waited} ({polls} polls): {why}; {ring} ring {used}/{capacity}"
                ),
                Unblocked::Stalled => log::warn!(
                    "{name}: {socket_type}{handle} {call} gives up after {waited} ({polls} polls): nothing can unblock it"
                ),
                Unblocked::TimedOut => log::warn!(
                    "{name}: {socket_type}{handle} {call} timed out after {waited} ({polls} polls); {ring} ring {used}/{capacity}"
                ),
            }
        }
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
                Some(from) => log::warn!(
                    "{name}: {socket_type}{handle} dropped a {bytes}-byte datagram from {from}: rx ring {rx_used}/{rx_capacity} has no room (drops: {drops})"
                ),
                None => log::warn!(
                    "{name}: {socket_type}{handle} dropped a {bytes}-byte datagram: rx ring {rx_used}/{rx_capacity} has no room (drops: {drops})"
                ),
            }
        }
        EventKind::Truncated { kept, lost, from } => log::warn!(
            "{name}: {socket_type}{handle} datagram from {from} truncated: {kept} of {} bytes fit, {lost} lost (MSG_TRUNC)",
            kept + lost
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
        } => log::warn!(
            "{name}: tcp{socket} half-open for {} ms, its SYN-ACK unanswered: back to listening on port {port}",
            waited.total_millis()
        ),
        Timer::OrphanExpired {
            socket,
            state,
            idle,
        } => log::warn!(
            "{name}: tcp{socket} orphan in {state} without progress for {} ms: the peer never finished closing, sending RST (fin timeout)",
            idle.total_millis()
        ),
        Timer::GaveWay {
            socket,
            half_open,
            state,
            peer,
            port,
        } => {
            let what = if half_open {
                "a half-open connection"
            } else {
                "an orphan"
            };
            match peer {
                Some(peer) => log::warn!(
                    "{name}: listen{counted_on} port {port} has no socket listening: tcp{socket} ({what} in {state} with {peer}) gives way to a new SYN"
                ),
                None => log::warn!(
                    "{name}: listen{counted_on} port {port} has no socket listening: tcp{socket} ({what} in {state}) gives way to a new SYN"
                ),
            }
        }
        // The service that timed the connection out says so, naming itself.
        Timer::IdleTimeout { .. } => {}
    }
}

/// What a change of a ring's fill level means, in the words of its log line.
pub fn level_change(kind: SocketType, ring: Ring, before: Fill, level: Fill) -> &'static str {
    match (ring, before, level) {
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
        (Ring::Tx, _, Fill::Empty) if kind == SocketType::Datagram => "empty: all datagrams sent",
        (Ring::Tx, _, Fill::Empty) => "empty: everything sent and acknowledged",
        _ => "changed",
    }
}
