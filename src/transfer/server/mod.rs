//! The transfer server: one state machine per connection, polled like the other services.

//!
//! One file per concern: `phase` (a connection's state), `request` (the request frame,
//! a put's or a get's start), `upload` and `trailer` (a put's data and its check),
//! `download` (a get's data), `reply` and `closing` (refusals, and how a connection
//! ends).

mod closing;
mod download;
mod phase;
mod reply;
mod request;
mod trailer;
mod upload;

use crate::convert::elapsed;
use core::ops::ControlFlow;

use heapless::{String, Vec};

use super::store::Store;
use super::wire::{validate_token, Status, TokenError, MAX_TOKEN};
use crate::framing::LengthPrefixDecoder;
use crate::handle::SocketHandle;
use crate::services::connection::{self, Flush};
use crate::services::{listen_for_service, retain_connections, ServiceError, MAX_CONNECTIONS};
use crate::services::{MinRate, DEFAULT_MIN_RATE};
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

use closing::{close_when_flushed, give_up};
use download::send_data;
use phase::{Connection, Phase};
use reply::refuse;
use request::read_request;
use trailer::read_trailer;
use upload::receive_data;

/// How long a connection may stay silent before the server gives up on it: longer than
/// two of smoltcp's largest retransmission backoffs (60 s), so a lossy link is not
/// mistaken for a dead peer.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What one poll of a connection decided.
enum Next {
    Keep,
    Drop,
}

/// The transfer protocol's server on a [`Store`] (see the module docs for the protocol),
/// with room for `CONNS` connections at once: like a listening socket's backlog, the
/// sockets it is given are capped at that, so a small device need not hold state for
/// connections it has no socket for.
pub struct TransferServer<S: Store, const CONNS: usize = MAX_CONNECTIONS> {
    listener: SocketHandle,
    store: S,
    connections: Vec<Connection<S::Upload, S::Reader>, CONNS>,
    idle_timeout: Duration,
    min_rate: MinRate,
    token: Option<String<MAX_TOKEN>>,
    completed: u32,
}

impl<S: Store, const CONNS: usize> TransferServer<S, CONNS> {
    /// Listens on `port` with `backlog`, keeping files in `store`. A backlog of more than
    /// `CONNS` sockets is refused ([`ServiceError::TooManySockets`]).
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
        store: S,
    ) -> Result<Self, ServiceError> {
        Ok(TransferServer {
            listener: listen_for_service(stack, port, backlog, CONNS)?,
            store,
            connections: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
            token: None,
            completed: 0,
        })
    }

    /// Requires `token` on every put (a [`Message::PutWithToken`](crate::transfer::Message::PutWithToken) carrying it): any other
    /// put is answered [`Status::Unauthorized`] and nothing is stored. `None` (the
    /// default) leaves puts open. Gets stay open either way, as HTTP's GETs do. Refused
    /// unless 1 to [`MAX_TOKEN`] bytes of visible ASCII ([`validate_token`]).
    pub fn set_token(&mut self, token: Option<&str>) -> Result<(), TokenError> {
        self.token = match token {
            Some(token) => {
                let token = validate_token(token.as_bytes())?;
                // Cannot fail: `validate_token` bounds the length.
                Some(String::try_from(token).map_err(|_| TokenError::TooLong)?)
            }
            None => None,
        };
        Ok(())
    }

    /// Changes how long a silent peer is waited for.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Changes the rate a put's or a get's data must keep (default [`DEFAULT_MIN_RATE`]):
    /// a put below it is answered [`Status::TimedOut`], a get below it is reset (its data
    /// flowing, no status can follow). [`MinRate::OFF`] leaves data to the idle timeout.
    pub fn set_min_rate(&mut self, rule: MinRate) {
        self.min_rate = rule;
    }

    /// The store.
    pub fn store(&mut self) -> &mut S {
        &mut self.store
    }

    /// Transfers completed with a matching digest.
    pub fn completed(&self) -> u32 {
        self.completed
    }

    /// Connections in progress.
    pub fn active(&self) -> usize {
        self.connections.len()
    }

    /// When the server needs a poll even if nothing arrives: the soonest a silent peer
    /// times out, an upload asks its full store again, or a put's or get's data falls below
    /// the minimum rate (`None` without connections). Like [`Stack::poll_at`], for a
    /// caller that sleeps between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|conn| {
                let idle = conn.io.deadline(timeout);
                match conn.phase {
                    Phase::Closing { drain: Some(drain) } => drain.until.min(idle),
                    Phase::Receiving {
                        store_full: Some((_, retry)),
                        ..
                    } => retry.min(idle),
                    Phase::Receiving { .. } | Phase::Sending { .. } => {
                        conn.io.rate_deadline().min(idle)
                    }
                    _ => idle,
                }
            })
            .min()
    }

    /// Accepts and advances every transfer; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((socket, peer)) = stack.accept(self.listener) {
            net_info!(
                "{}: transfer tcp{}: connection from {}",
                stack.name(),
                socket,
                peer
            );
            let _ = self.connections.push(Connection {
                io: connection::Connection::new(stack, socket, now),
                phase: Phase::Request { since: now },
                decoder: LengthPrefixDecoder::new(),
            });
        }
        let mut shared = Shared {
            store: &mut self.store,
            token: self.token.as_deref(),
            completed: &mut self.completed,
        };
        let limits = (self.idle_timeout, self.min_rate);
        retain_connections(&mut self.connections, |conn| {
            matches!(advance(stack, &mut shared, conn, now, limits), Next::Keep)
        })
    }
}

/// What every connection's step may use of the server.
struct Shared<'s, S> {
    store: &'s mut S,
    /// The token puts need, if any.
    token: Option<&'s str>,
    /// Transfers completed with a matching digest.
    completed: &'s mut u32,
}

/// Moves one connection forward: flushes what is queued, takes the step of its phase, and
/// flushes what that step queued.
fn advance<S: Store>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    limits: (Duration, MinRate),
) -> Next {
    let next = take_step(stack, shared, conn, now, limits);
    // What the step queued (an Accept, a Status) goes into the tx ring in this poll: left
    // for the next one, it waited for whatever polled the host next, the delayed ACK's
    // timer (an Accept, 10 ms) or the host's longest sleep (a put's last Status, 100 ms
    // on the tap, while the client waits for it with nothing more to send).
    if matches!(next, Next::Keep) && !conn.io.is_flushed() && conn.io.flush(stack, now).is_err() {
        return give_up(stack, shared.store, conn);
    }
    next
}

/// The body of [`advance`]: flushes what is queued, then takes the step of its phase.
fn take_step<S: Store>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    (timeout, rule): (Duration, MinRate),
) -> Next {
    let (store, token, completed) = (&mut *shared.store, shared.token, &mut *shared.completed);
    // Flush the pending frame first.
    let flushed = match conn.io.flush(stack, now) {
        Ok(flush) => flush == Flush::Done,
        Err(_) => return give_up(stack, store, conn),
    };
    let step = match conn.phase {
        Phase::Request { .. } => read_request(stack, store, token, conn, now, completed),
        Phase::Receiving { .. } => receive_data(stack, store, conn, now, completed),
        Phase::Trailer { .. } => read_trailer(stack, store, conn, now, completed),
        Phase::Sending { .. } => send_data(stack, store, conn, now, flushed, completed),
        Phase::Closing { drain } => close_when_flushed(stack, conn, now, flushed, drain),
    };
    if let ControlFlow::Break(next) = step {
        return next;
    }
    // A request or trailer frame begun must be whole within the idle timeout of its
    // phase's start: each byte of one trickled keeps the idle timeout away. A peer that
    // sent none of it is left to the idle timeout.
    let frame_since = match conn.phase {
        Phase::Request { since } if !conn.decoder.is_idle() => Some(since),
        Phase::Trailer { since, have, .. } if have > 0 => Some(since),
        _ => None,
    };
    let reason = match frame_since.filter(|since| now > *since + timeout) {
        Some(since) => {
            connection::count_slow_request(stack, conn.io.socket(), elapsed(now, since));
            "frame too slow"
        }
        None => {
            let idle = conn.io.idle_expired(
                stack,
                now,
                timeout,
                log_text!("transfer"),
                log_text!("giving up"),
            );
            // A put's or a get's data below the minimum rate: one byte just inside each
            // idle timeout keeps that away, and would hold the socket for ever. A put is
            // told why; a get's data is flowing, so no status can follow it: it is reset.
            let put = matches!(conn.phase, Phase::Receiving { .. });
            let data = put || matches!(conn.phase, Phase::Sending { .. });
            // Under defmt each text is an interned symbol, whose code reads alike for every text.
            #[allow(clippy::if_same_then_else)]
            let what = if put {
                log_text!("transfer: status 10")
            } else {
                log_text!("transfer: reset")
            };
            let slow = !idle && data && conn.io.too_slow(stack, &rule, what);
            if idle || (slow && !put) {
                return give_up(stack, store, conn);
            }
            if !slow {
                return Next::Keep;
            }
            "data too slow"
        }
    };
    refuse(stack, store, conn, Status::TimedOut, reason);
    Next::Keep
}

/// What a phase's step decided: `Break` ends this poll of the connection with its
/// verdict; `Continue` means it waits on the peer, so the idle timeout applies.
type Step = ControlFlow<Next>;
