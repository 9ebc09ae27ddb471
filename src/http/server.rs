//! The HTTP server: its settings, its connection table, and the poll that accepts new
//! connections and moves each one forward ([`connection`](super::connection)).

use heapless::{String, Vec};

use super::connection::advance;
use super::response::Answer;
use super::state::{Conn, Phase, Shared, Snapshot, SNAPSHOT_DEFAULT, TOKEN_MAX};
use super::state::{DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT};
use crate::handle::SocketHandle;
use crate::services::{listen_for_service, retain_connections, ServiceError};
use crate::services::{MinRate, DEFAULT_MIN_RATE};
use crate::stack::Stack;
use crate::transfer::Store;
use smoltcp::time::{Duration, Instant};

/// A bearer token longer than [`TOKEN_MAX`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTooLong;

impl core::fmt::Display for TokenTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the token is longer than {TOKEN_MAX} bytes")
    }
}

impl core::error::Error for TokenTooLong {}

/// The HTTP/1.1 server: up to `CONNS` connections, one of them kept to say `503`, and
/// `SNAPSHOT` bytes for a generated body (a stats table longer than that is cut at a row
/// boundary and says `"complete":false`).
pub struct HttpServer<S: Store, const CONNS: usize, const SNAPSHOT: usize = SNAPSHOT_DEFAULT> {
    listener: SocketHandle,
    store: S,
    connections: Vec<Conn<S::Upload, S::Reader>, CONNS>,
    snapshot: Snapshot<SNAPSHOT>,
    idle_timeout: Duration,
    head_timeout: Duration,
    min_rate: MinRate,
    token: Option<String<TOKEN_MAX>>,
    served: u32,
}

impl<S: Store, const CONNS: usize, const SNAPSHOT: usize> HttpServer<S, CONNS, SNAPSHOT> {
    /// Listens on `port` with `backlog` (at most `CONNS` fresh stream sockets), serving
    /// the files of `store`.
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
        store: S,
    ) -> Result<Self, ServiceError> {
        Ok(HttpServer {
            listener: listen_for_service(stack, port, backlog, CONNS)?,
            store,
            connections: Vec::new(),
            snapshot: Snapshot {
                bytes: Vec::new(),
                owner: None,
                progress: Instant::ZERO,
            },
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
            token: None,
            served: 0,
        })
    }

    /// Changes the idle timeout.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Changes how long a whole request head may take from its first byte.
    pub fn set_head_timeout(&mut self, timeout: Duration) {
        self.head_timeout = timeout;
    }

    /// Changes the rate a request's body, or a response's, must keep once the head is in
    /// (default [`DEFAULT_MIN_RATE`]): an upload below it is answered `408`, a response
    /// below it (its head already queued) is reset. [`MinRate::OFF`] leaves bodies to the
    /// idle timeout.
    pub fn set_min_rate(&mut self, rule: MinRate) {
        self.min_rate = rule;
    }

    /// Requires `Authorization: Bearer TOKEN` on every write (`PUT`, `POST`, `DELETE`):
    /// without it they are answered `401`. `None` (the default) leaves writes open.
    /// Refused when longer than [`TOKEN_MAX`].
    pub fn set_token(&mut self, token: Option<&str>) -> Result<(), TokenTooLong> {
        self.token = match token {
            Some(token) => Some(String::try_from(token).map_err(|_| TokenTooLong)?),
            None => None,
        };
        Ok(())
    }

    /// The store.
    pub fn store(&mut self) -> &mut S {
        &mut self.store
    }

    /// Responses sent so far.
    pub fn served(&self) -> u32 {
        self.served
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.connections.len()
    }

    /// When the server needs a poll even if nothing arrives: the soonest a silent client
    /// times out, a lingering close gives up, or a body falls below the minimum rate
    /// (`None` without connections). Like [`Stack::poll_at`], for a caller that sleeps
    /// between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        let head_timeout = self.head_timeout;
        self.connections
            .iter()
            .map(|conn| {
                let idle = conn.io.deadline(timeout);
                match conn.phase {
                    Phase::Linger { until, cap, .. } => until.min(cap),
                    Phase::Head { since: Some(since) } => (since + head_timeout).min(idle),
                    Phase::Head { since: None } => idle,
                    Phase::Upload { .. } | Phase::Respond { .. } => {
                        conn.io.rate_deadline().min(idle)
                    }
                }
            })
            .min()
    }

    /// Accepts, reads, answers; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((socket, _)) = stack.accept(self.listener) {
            if self.connections.is_full() {
                let _ = stack.abort(socket);
                continue;
            }
            // Built where it lies in the table: a connection is kilobytes of buffers.
            let _ = self.connections.push(Conn::new(stack, socket, now));
            if self.connections.len() >= CONNS {
                net_warn!(
                    "{}: http tcp{}: every connection busy: 503",
                    stack.name(),
                    socket
                );
                if let Some(conn) = self.connections.last_mut() {
                    conn.answer(Answer::Busy, false);
                }
            }
        }
        let mut shared = Shared {
            store: &mut self.store,
            snapshot: &mut self.snapshot,
            served: &mut self.served,
            token: self.token.as_deref(),
            timeouts: (self.idle_timeout, self.head_timeout),
            min_rate: self.min_rate,
        };
        retain_connections(&mut self.connections, |conn| {
            let keep = advance(stack, &mut shared, conn, now);
            if !keep && shared.snapshot.owner == Some(conn.io.socket()) {
                shared.snapshot.owner = None;
            }
            keep
        });
    }
}
