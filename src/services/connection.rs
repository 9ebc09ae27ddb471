//! What a TCP service's connection keeps whatever its protocol: the socket, the bytes
//! queued for it, and when the peer was last heard from. The transfer and HTTP servers
//! build their per-connection state machines on it, so that both flush, time out and give
//! up the same way.
//!
//! | step | what it does |
//! |---|---|
//! | [`Connection::flush`] | writes the queued bytes (a frame, a response head) as the tx ring takes them |
//! | [`Connection::send_chunk`] | sends the next piece of a body, read straight into the tx ring's free room |
//! | [`Connection::idle_expired`] | says (and logs) when the peer has been silent past the timeout |
//! | [`Connection::too_slow`] | says (logs and counts) when a data phase is below its minimum rate |
//! | [`Connection::give_up`] | aborts the upload in progress, then resets or closes the socket |

use crate::convert::elapsed;
use heapless::Vec;

use super::idle::{MinRate, RateWatch};
use super::tx_room_or_error;
use crate::handle::SocketHandle;
use crate::observe::{EventKind, LogText, Timer};
use crate::socket::tcp::SendError;
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// A protocol state that may hold an upload in progress, which giving up must abort so
/// that nothing half-written stays in the store.
pub(crate) trait HoldsUpload {
    /// The store's upload.
    type Upload;
    /// Takes the upload out, if one is in progress.
    fn take_upload(&mut self) -> Option<Self::Upload>;
}

/// How a connection that is given up on ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A reset (`RST`, as `SO_LINGER` with a zero timeout): nothing queued is sent.
    Abort,
    /// One last try at sending what is queued, then a close (`FIN`).
    Close,
}

/// Whether [`Connection::flush`] got everything out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Nothing is left queued.
    Done,
    /// The tx ring is full; the rest waits for the next poll.
    Pending,
}

/// What [`Connection::send_chunk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// The first this many bytes of the buffer were read and queued on the socket.
    Sent(usize),
    /// The tx ring has no room now (or queued bytes still wait to go first).
    NoRoom,
    /// The socket took nothing (`WouldBlock`).
    Blocked,
    /// The body's source could not be read.
    Unreadable,
    /// The socket failed.
    Failed(SendError),
}

/// One connection of a TCP service: its socket, up to `OUT` bytes queued for it, the
/// instant of the last progress either way, and what its data phase has moved.
pub(crate) struct Connection<const OUT: usize> {
    socket: SocketHandle,
    out: Vec<u8, OUT>,
    out_sent: usize,
    last_activity: Instant,
    rate: RateWatch,
}

impl<const OUT: usize> Connection<OUT> {
    /// A connection accepted on `socket` at `now`, with nothing queued.
    pub(crate) fn new(stack: &Stack<'_>, socket: SocketHandle, now: Instant) -> Self {
        Connection {
            socket,
            out: Vec::new(),
            out_sent: 0,
            last_activity: now,
            rate: RateWatch::new(stack, socket, now),
        }
    }

    /// A data phase (a body either way) begins at `now`: its minimum rate counts from here.
    pub(crate) fn start_rate(&mut self, stack: &Stack<'_>, now: Instant) {
        self.rate = RateWatch::new(stack, self.socket, now);
    }

    /// When the data phase falls below its minimum rate unless it moves more, as of the
    /// last look ([`RateWatch::deadline`]), for `poll_at`.
    pub(crate) fn rate_deadline(&self) -> Instant {
        self.rate.deadline()
    }

    /// Whether the data phase is below `rule` ([`RateWatch::too_slow`]: logged, with
    /// `what`, and counted as slow when it is).
    pub(crate) fn too_slow(
        &mut self,
        stack: &mut Stack<'_>,
        rule: &MinRate,
        what: LogText,
    ) -> bool {
        self.rate.too_slow(stack, self.socket, rule, what)
    }

    /// The connection's socket.
    pub(crate) fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// The queue, to append to after anything still unsent (once all of it is out, the
    /// queue starts again from empty).
    pub(crate) fn queue(&mut self) -> &mut Vec<u8, OUT> {
        if self.is_flushed() {
            self.discard_queue();
        }
        &mut self.out
    }

    /// Drops whatever is queued, sent or not.
    pub(crate) fn discard_queue(&mut self) {
        self.out.clear();
        self.out_sent = 0;
    }

    /// Whether everything queued is out.
    pub(crate) fn is_flushed(&self) -> bool {
        self.out_sent == self.out.len()
    }

    /// Records progress: the peer is not silent.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// Writes the queued bytes to the socket's tx ring, as many as it has room for.
    pub(crate) fn flush(
        &mut self,
        stack: &mut Stack<'_>,
        now: Instant,
    ) -> Result<Flush, SendError> {
        while !self.is_flushed() {
            match stack.send(self.socket, &self.out[self.out_sent..]) {
                Ok(n) => {
                    self.out_sent += n;
                    self.touch(now);
                }
                Err(SendError::WouldBlock) => return Ok(Flush::Pending),
                Err(e) => return Err(e),
            }
        }
        Ok(Flush::Done)
    }

    /// Sends `bytes` (not queued: a body kept elsewhere), as many as the tx ring takes.
    pub(crate) fn send(
        &mut self,
        stack: &mut Stack<'_>,
        now: Instant,
        bytes: &[u8],
    ) -> Result<usize, SendError> {
        let sent = stack.send(self.socket, bytes)?;
        self.touch(now);
        Ok(sent)
    }

    /// Sends the next piece of a body, at most `limit` bytes: `read` fills the start of
    /// `buf` with no more than the tx ring has room for and says how much (`None` when the
    /// source fails or has nothing), and that much is sent. Body bytes wait until the
    /// queue is out.
    pub(crate) fn send_chunk(
        &mut self,
        stack: &mut Stack<'_>,
        now: Instant,
        buf: &mut [u8],
        limit: usize,
        read: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Chunk {
        let room = if self.is_flushed() {
            match tx_room_or_error(stack, self.socket) {
                Ok(room) => room.min(buf.len()).min(limit),
                Err(e) => return Chunk::Failed(e),
            }
        } else {
            0
        };
        if room == 0 {
            return Chunk::NoRoom;
        }
        let Some(n) = read(&mut buf[..room]) else {
            return Chunk::Unreadable;
        };
        match self.send(stack, now, &buf[..n]) {
            Ok(sent) => Chunk::Sent(sent),
            Err(SendError::WouldBlock) => Chunk::Blocked,
            Err(e) => Chunk::Failed(e),
        }
    }

    /// The first instant at which the peer counts as silent for longer than `timeout`:
    /// when [`Connection::idle_expired`] will say so, for a server's `poll_at`.
    pub(crate) fn deadline(&self, timeout: Duration) -> Instant {
        self.last_activity + timeout + Duration::from_micros(1)
    }

    /// Whether the peer has been silent for longer than `timeout`; logs a warning naming
    /// the `service` and the `outcome` when it has, and counts it on the socket's row.
    pub(crate) fn idle_expired(
        &self,
        stack: &mut Stack<'_>,
        now: Instant,
        timeout: Duration,
        service: LogText,
        outcome: LogText,
    ) -> bool {
        let silent = elapsed(now, self.last_activity);
        if silent <= timeout {
            return false;
        }
        idle_timed_out(stack, self.socket, silent, service, outcome);
        true
    }

    /// Ends the connection without finishing its protocol: aborts the upload `phase` holds
    /// (with `abort`, the store's), then resets or closes the socket as `ending` says.
    pub(crate) fn give_up<P: HoldsUpload>(
        &mut self,
        stack: &mut Stack<'_>,
        phase: &mut P,
        abort: impl FnOnce(P::Upload),
        ending: Ending,
    ) {
        if let Some(upload) = phase.take_upload() {
            abort(upload);
        }
        match ending {
            Ending::Abort => {
                let _ = stack.abort(self.socket);
            }
            Ending::Close => {
                let _ = stack.send(self.socket, &self.out[self.out_sent..]);
                let _ = stack.close(self.socket);
            }
        }
    }
}

/// Counts a connection cut off for a request not whole within its deadline (a slowloris
/// client; the service logs it with its answer): one call for every server, out of
/// their polls.
#[inline(never)]
pub(crate) fn count_slow_request(stack: &mut Stack<'_>, socket: SocketHandle, took: Duration) {
    stack.record(socket, EventKind::Timer(Timer::SlowRequest { took }));
}

/// Logs and counts a connection's idle timeout: not generic over the queue's size, so
/// built once for every server (and out of their polls, where it is the rare case).
#[inline(never)]
fn idle_timed_out(
    stack: &mut Stack<'_>,
    socket: SocketHandle,
    silent: Duration,
    service: LogText,
    outcome: LogText,
) {
    net_warn!(
        "{}: {} tcp{}: silent for {}: {}",
        stack.name(),
        service,
        socket,
        silent,
        outcome
    );
    stack.record(socket, EventKind::Timer(Timer::IdleTimeout { silent }));
}
