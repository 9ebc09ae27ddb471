//! The idle timeout of the small services (echo, discard, file out, file in): a
//! connection that moves no byte for the timeout is reset, so that clients that connect
//! and go silent cannot hold a fixed backlog for ever. (A kernel keeps such a connection;
//! its server process would have to time it out, as these services do.)

use smoltcp::time::{Duration, Instant};

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
            (now - self.since).total_millis()
        );
        stack.record(
            conn,
            EventKind::Timer(Timer::IdleTimeout {
                silent: now - self.since,
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
