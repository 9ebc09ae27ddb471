//! What the HTTP server keeps: each connection's phase (reading a head, taking an upload,
//! responding, lingering) with its buffers, the snapshot buffer the generated bodies
//! share, and the limits they are sized by.

use heapless::Vec;

use super::response::{text_response, Answer};
use crate::handle::SocketHandle;
use crate::services::connection::{self, HoldsUpload};
use crate::services::MinRate;
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted.
pub const HEAD_MAX: usize = 1024;
/// How long a client may stay silent (mid-request, or idle between requests), and how long
/// a response may wait for a client that does not read it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request head may take from its first byte, however steadily it
/// trickles in (a slowloris client resets the idle timer with every byte).
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest bearer token.
pub const TOKEN_MAX: usize = 64;
/// Default room for a generated body (the file list, the stats), taken whole when the
/// request arrives so that its `Content-Length` is exact even as the counters move on.
pub const SNAPSHOT_DEFAULT: usize = 4096;
/// Room for a response head or a short generated body.
pub(super) const OUT_MAX: usize = 512;
/// The most a connection moves through its stack buffer at a time (a body piece read or
/// sent, what a lingering close drains).
pub(super) const CHUNK: usize = 512;

/// What a response's body is.
pub(super) enum Body<R> {
    None,
    /// Bytes `next..end` of a stored file, from the version opened for the request.
    File {
        reader: R,
        next: u64,
        end: u64,
    },
    /// Bytes `next..` of the server's snapshot (the file list, or the stats).
    Snapshot {
        next: usize,
    },
}

/// Where a connection is in its exchange.
pub(super) enum Phase<U, R> {
    /// Reading a request head, whose first byte came at `since` (`None`: none yet).
    Head { since: Option<Instant> },
    /// Receiving a PUT body into the store.
    Upload {
        upload: Option<U>,
        remaining: u64,
        keep_alive: bool,
    },
    /// Sending `out` and then the body.
    Respond { body: Body<R>, keep_alive: bool },
    /// The response is queued whole and writing is shut down: reading and discarding
    /// what the client still sends until it closes (or pauses until `until`, or `cap`
    /// passes), so that closing with unread data (which resets the connection) cannot
    /// destroy the response in flight. `room`: the tx ring's free room when last
    /// looked at; more of it (the client acknowledged more of the response's tail)
    /// moves `until` on.
    Linger {
        until: Instant,
        cap: Instant,
        room: usize,
    },
}

impl<U, R> HoldsUpload for Phase<U, R> {
    type Upload = U;

    fn take_upload(&mut self) -> Option<U> {
        match self {
            Phase::Upload { upload, .. } => upload.take(),
            _ => None,
        }
    }
}

/// One connection: its socket and queue, its phase, and the head being read (and what
/// came after it: a body's start, a pipelined request).
pub(super) struct Conn<U, R> {
    pub io: connection::Connection<OUT_MAX>,
    pub phase: Phase<U, R>,
    pub head: Vec<u8, HEAD_MAX>,
}

impl<U, R> Conn<U, R> {
    /// A connection accepted on `socket` at `now`, waiting for a head.
    pub fn new(stack: &Stack<'_>, socket: SocketHandle, now: Instant) -> Self {
        Conn {
            io: connection::Connection::new(stack, socket, now),
            phase: Phase::Head { since: None },
            head: Vec::new(),
        }
    }

    /// Sends what is queued and then `body`.
    pub fn respond(&mut self, body: Body<R>, keep_alive: bool) {
        self.phase = Phase::Respond { body, keep_alive };
    }

    /// Queues `answer`, a whole response.
    pub fn answer(&mut self, answer: Answer, keep_alive: bool) {
        text_response(self.io.queue(), answer, keep_alive);
        self.respond(Body::None, keep_alive);
    }

    /// Drops the first `n` bytes of the head buffer.
    pub fn consume_head(&mut self, n: usize) {
        let rest = self.head.len() - n;
        self.head.copy_within(n.., 0);
        self.head.truncate(rest);
    }
}

/// The generated body being sent, to whom, and when its owner last sent some of it.
pub(super) struct Snapshot<const N: usize> {
    pub bytes: Vec<u8, N>,
    pub owner: Option<SocketHandle>,
    pub progress: Instant,
}

/// What every connection of a server shares.
pub(super) struct Shared<'s, S, const N: usize> {
    pub store: &'s mut S,
    pub snapshot: &'s mut Snapshot<N>,
    pub served: &'s mut u32,
    pub token: Option<&'s str>,
    /// The idle and the head timeouts.
    pub timeouts: (Duration, Duration),
    /// The rate a body must keep, either way.
    pub min_rate: MinRate,
}
