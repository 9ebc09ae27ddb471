//! The transfer server: one state machine per connection, polled like the other services.

use core::ops::ControlFlow::{self, Break, Continue};

use heapless::{String, Vec};
use sha2::{Digest as _, Sha256};

use super::store::{Store, StoreError};
use super::wire::{
    emit_version1_refusal, validate_token, Digest, Message, Status, TokenError, WireError,
    MAX_FRAME, MAX_NAME, MAX_TOKEN, TRAILER_FRAME,
};
use crate::convert::{room, wide};
use crate::framing::LengthPrefixDecoder;
use crate::handle::SocketHandle;
use crate::services::connection::{self, Ending, Flush, HoldsUpload};
use crate::services::{listen_for_service, ServiceError, MAX_CONNECTIONS};
use crate::socket::tcp::{RecvError, SendError};
use crate::stack::Stack;
use crate::text::Text;
use smoltcp::time::{Duration, Instant};

/// How long a connection may stay silent before the server gives up on it: longer than
/// two of smoltcp's largest retransmission backoffs (60 s), so a lossy link is not
/// mistaken for a dead peer.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of a resumed file's prefix hashed per poll, so one resume cannot stall the rest.
const PREFIX_HASH_PER_POLL: usize = 16 * 1024;

/// How soon an upload whose store had no room ([`Store::upload_room`]) is polled again,
/// if nothing arrives meanwhile: its data waits in the rx ring, whose window is closed.
const STORE_RETRY: Duration = Duration::from_millis(1);

enum Phase<U, R> {
    /// Reading the request frame.
    Request,
    /// Receiving a put's data, hashed as it arrives: by the server (`hasher`), or by a
    /// store that [`Store::hashes`] the upload itself (`None`). `store_full`: since when
    /// the store has had no room ([`Store::upload_room`]), and when to ask it again.
    Receiving {
        upload: Option<U>,
        size: u64,
        received: u64,
        hasher: Option<Sha256>,
        store_full: Option<(Instant, Instant)>,
    },
    /// The data is in and hashed (`digest`; `None` while the store that hashes it has it);
    /// reading the trailer frame, byte for byte (`frame[..have]`), never past it. The
    /// upload stays staged until the trailer's digest is checked.
    Trailer {
        upload: Option<U>,
        size: u64,
        digest: Option<Digest>,
        frame: [u8; TRAILER_FRAME],
        have: usize,
    },
    /// Sending a get's data (after hashing the skipped prefix, for a resume), from the
    /// version of the file opened when the request came; hashed by the server (`hasher`),
    /// or by a store that [`Store::reads_hashed`] the file itself (`None`).
    Sending {
        name: String<MAX_NAME>,
        reader: R,
        size: u64,
        start: u64,
        hashed: u64,
        sent: u64,
        hasher: Option<Sha256>,
    },
    /// Flushing the final frame, then closing. After a refusal the peer may still be
    /// sending (a refused upload): its bytes are read and dropped until it closes or
    /// pauses for [`DRAIN_PAUSE`] (`drain_until`), so that unread data cannot reset the
    /// connection and destroy the status before the peer reads it.
    Closing { drain_until: Option<Instant> },
}

/// How long a refused peer's silence ends the draining of its data.
const DRAIN_PAUSE: Duration = Duration::from_secs(2);

impl<U, R> HoldsUpload for Phase<U, R> {
    type Upload = U;

    fn take_upload(&mut self) -> Option<U> {
        match self {
            Phase::Receiving { upload, .. } | Phase::Trailer { upload, .. } => upload.take(),
            _ => None,
        }
    }
}

/// Frames not yet sent: room for two (an accept and, for an empty file, its status).
const OUT_MAX: usize = 2 * (MAX_FRAME + 4);

struct Connection<U, R> {
    io: connection::Connection<OUT_MAX>,
    phase: Phase<U, R>,
    decoder: LengthPrefixDecoder<MAX_FRAME>,
}

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
            token: None,
            completed: 0,
        })
    }

    /// Requires `token` on every put (a [`Message::PutWithToken`] carrying it): any other
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
    /// times out, or an upload asks its full store again (`None` without connections).
    /// Like [`Stack::poll_at`], for a caller that sleeps between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|conn| match conn.phase {
                Phase::Closing {
                    drain_until: Some(until),
                } => until.min(conn.io.deadline(timeout)),
                Phase::Receiving {
                    store_full: Some((_, retry)),
                    ..
                } => retry.min(conn.io.deadline(timeout)),
                _ => conn.io.deadline(timeout),
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
                io: connection::Connection::new(socket, now),
                phase: Phase::Request,
                decoder: LengthPrefixDecoder::new(),
            });
        }
        let mut shared = Shared {
            store: &mut self.store,
            token: self.token.as_deref(),
            completed: &mut self.completed,
        };
        let timeout = self.idle_timeout;
        self.connections.retain_mut(|conn| {
            matches!(advance(stack, &mut shared, conn, now, timeout), Next::Keep)
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

fn queue_frame<U, R>(conn: &mut Connection<U, R>, message: Message<'_>) {
    let mut frame = [0u8; MAX_FRAME + 4];
    if let Ok(n) = message.emit(&mut frame) {
        // Cannot overflow: at most two frames are ever pending.
        let _ = conn.io.queue().extend_from_slice(&frame[..n]);
    }
}

fn refuse<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    status: Status,
    reason: &str,
) {
    net_warn!(
        "{}: transfer tcp{}: {}: {}",
        stack.name(),
        conn.io.socket(),
        status,
        reason
    );
    if let Some(upload) = conn.phase.take_upload() {
        store.abort(upload);
    }
    queue_frame(
        conn,
        Message::Status {
            status,
            digest: [0; 32],
            reason,
        },
    );
    conn.phase = Phase::Closing {
        drain_until: Some(stack.now() + DRAIN_PAUSE),
    };
}

fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::NotFound => Status::NotFound,
        StoreError::NoSpace => Status::NoSpace,
        StoreError::Busy => Status::Busy,
        StoreError::Conflict => Status::Conflict,
        StoreError::Replaced => Status::Replaced,
        StoreError::Io | StoreError::Unreadable | StoreError::ReadOnly => Status::Storage,
    }
}

/// Drops the connection without a reply (reset or silence): the upload is discarded.
fn give_up<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
) -> Next {
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Abort);
    Next::Drop
}

/// Moves one connection forward: flushes what is queued, then takes the step of its phase.
fn advance<S: Store>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    timeout: Duration,
) -> Next {
    let (store, token, completed) = (&mut *shared.store, shared.token, &mut *shared.completed);
    // Flush the pending frame first.
    let flushed = match conn.io.flush(stack, now) {
        Ok(flush) => flush == Flush::Done,
        Err(_) => return give_up(stack, store, conn),
    };
    let step = match conn.phase {
        Phase::Request => read_request(stack, store, token, conn, now, completed),
        Phase::Receiving { .. } => receive_data(stack, store, conn, now, completed),
        Phase::Trailer { .. } => read_trailer(stack, store, conn, now, completed),
        Phase::Sending { .. } => send_data(stack, store, conn, now, flushed, completed),
        Phase::Closing { drain_until } => {
            close_when_flushed(stack, conn, now, flushed, drain_until)
        }
    };
    if let ControlFlow::Break(next) = step {
        return next;
    }
    if conn
        .io
        .idle_expired(stack, now, timeout, "transfer", "giving up")
    {
        return give_up(stack, store, conn);
    }
    Next::Keep
}

/// What a phase's step decided: `Break` ends this poll of the connection with its
/// verdict; `Continue` means it waits on the peer, so the idle timeout applies.
type Step = ControlFlow<Next>;

/// [`Phase::Request`]: reads until the request frame is whole, then acts on it.
fn read_request<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    token: Option<&str>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    completed: &mut u32,
) -> Step {
    let socket = conn.io.socket();
    let mut buf = [0u8; 2048];
    loop {
        let n = match stack.recv(socket, &mut buf) {
            // A request cut short by the peer's FIN still gets its status.
            Ok(0) if !conn.decoder.is_idle() => {
                refuse(stack, store, conn, Status::BadRequest, "truncated frame");
                return Break(Next::Keep);
            }
            Ok(0) => {
                let _ = stack.close(socket);
                return Break(Next::Drop);
            }
            Err(RecvError::ConnectionReset) => return Break(give_up(stack, store, conn)),
            Ok(n) => n,
            Err(RecvError::WouldBlock) => return Continue(()),
            Err(_) => return Break(give_up(stack, store, conn)),
        };
        conn.io.touch(now);
        let mut used = 0;
        while used < n {
            let (consumed, frame) = match conn.decoder.decode(&buf[used..n]) {
                Ok(result) => result,
                Err(e) => {
                    let mut reason: String<64> = String::new();
                    e.write_text(&mut Text::new(&mut reason));
                    refuse(stack, store, conn, Status::BadRequest, &reason);
                    return Break(Next::Keep);
                }
            };
            used += consumed;
            let Some(frame) = frame else { continue };
            let mut frame_copy = [0u8; MAX_FRAME];
            frame_copy[..frame.len()].copy_from_slice(frame);
            let frame = &frame_copy[..frame.len()];
            start(stack, store, token, conn, frame, used < n);
            if let Phase::Receiving { .. } = conn.phase {
                // Data (and a trailer) that came with the request belong to the upload.
                receive(stack, store, conn, &buf[used..n], completed);
            }
            return Break(Next::Keep);
        }
    }
}

/// [`Phase::Receiving`]: hashes and stores a put's data until the announced size is in,
/// then goes on to its trailer.
fn receive_data<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    completed: &mut u32,
) -> Step {
    let Phase::Receiving { size, received, .. } = &conn.phase else {
        return Continue(());
    };
    let want = room(*size - *received);
    if want == 0 && end_of_data(conn) {
        return read_trailer(stack, store, conn, now, completed);
    }
    let socket = conn.io.socket();
    let Some(want) = store_room(stack.name(), socket, store, &mut conn.phase, want, now) else {
        return Continue(());
    };
    // Hashed and stored where the bytes lie in the rx ring: no copy.
    let mut failed = None;
    let phase = &mut conn.phase;
    let got = stack.recv_with(socket, want, |bytes| {
        if failed.is_none() {
            failed = absorb(store, phase, bytes).err();
        }
    });
    match got {
        Ok(0) => {
            let reason = "the peer closed before the announced size";
            refuse(stack, store, conn, Status::SizeMismatch, reason);
        }
        Ok(_) => {
            conn.io.touch(now);
            match failed {
                Some(e) => refuse(
                    stack,
                    store,
                    conn,
                    store_status(e),
                    "the store failed during the upload",
                ),
                None if end_of_data(conn) => {
                    // The trailer may be in the ring already, and nothing else may come
                    // to wake this connection: read it in the same turn.
                    return read_trailer(stack, store, conn, now, completed);
                }
                None => {}
            }
        }
        Err(RecvError::WouldBlock) => {}
        Err(e) => {
            net_warn!(
                "{}: transfer tcp{}: {} during upload, discarded",
                stack.name(),
                socket,
                e
            );
            return Break(give_up(stack, store, conn));
        }
    }
    Continue(())
}

/// How much of `want` the store of a [`Phase::Receiving`] upload takes now; `None` while it
/// has no room, which is logged as the block starts and ends (the data stays in the rx
/// ring meanwhile, and its window closes).
fn store_room<S: Store>(
    name: &str,
    socket: SocketHandle,
    store: &mut S,
    phase: &mut Phase<S::Upload, S::Reader>,
    want: usize,
    now: Instant,
) -> Option<usize> {
    let Phase::Receiving {
        upload: Some(upload),
        store_full,
        ..
    } = phase
    else {
        return Some(want);
    };
    let take = want.min(store.upload_room(upload));
    match (take, *store_full) {
        (0, Some((since, _))) => {
            *store_full = Some((since, now + STORE_RETRY));
            None
        }
        (0, None) => {
            net_debug!(
                "{}: transfer tcp{}: store behind, upload data left in the rx ring",
                name,
                socket
            );
            *store_full = Some((now, now + STORE_RETRY));
            None
        }
        (_, Some((since, _))) => {
            net_debug!(
                "{}: transfer tcp{}: store took data again after {} ms",
                name,
                socket,
                (now - since).total_millis()
            );
            *store_full = None;
            Some(take)
        }
        (_, None) => Some(take),
    }
}

/// [`Phase::Sending`]: for a resume, hashes the prefix the client kept first (a slice
/// per poll); then, once the accept is out, sends the data as the tx ring takes it and
/// the final status after it.
fn send_data<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    flushed: bool,
    completed: &mut u32,
) -> Step {
    let name = stack.name();
    let socket = conn.io.socket();
    let Phase::Sending {
        name: file,
        reader,
        size,
        start,
        hashed,
        sent,
        hasher,
    } = &mut conn.phase
    else {
        return Continue(());
    };
    if *hashed < *start {
        let mut buf = [0u8; 2048];
        let want = room(*start - *hashed).min(PREFIX_HASH_PER_POLL);
        let mut done = 0;
        while done < want {
            let chunk = (want - done).min(buf.len());
            match store.read_at(reader, *hashed, &mut buf[..chunk]) {
                Ok(n) if n > 0 => {
                    if let Some(hasher) = hasher {
                        hasher.update(&buf[..n]);
                    }
                    *hashed += wide(n);
                    done += n;
                }
                // Nothing is sent yet: the status still fits.
                Ok(_) => {
                    let reason = "the file ended early";
                    refuse(stack, store, conn, Status::Storage, reason);
                    return Break(Next::Keep);
                }
                Err(e) => {
                    refuse(stack, store, conn, store_status(e), e.as_str());
                    return Break(Next::Keep);
                }
            }
        }
        conn.io.touch(now);
        return Continue(());
    }
    if !flushed {
        return Continue(());
    }
    loop {
        if *sent == *size {
            let digest: Digest = match hasher.take() {
                Some(hasher) => hasher.finalize().into(),
                None => match store.read_digest(reader) {
                    Ok(digest) => digest,
                    Err(e) => {
                        // After the data, a status still tells the client why.
                        refuse(stack, store, conn, store_status(e), e.as_str());
                        return Break(Next::Keep);
                    }
                },
            };
            net_info!(
                "{}: transfer tcp{}: sent {} ({} bytes)",
                name,
                socket,
                file,
                size
            );
            *completed += 1;
            queue_frame(
                conn,
                Message::Status {
                    status: Status::Ok,
                    digest,
                    reason: "",
                },
            );
            conn.phase = Phase::Closing { drain_until: None };
            return Break(Next::Keep);
        }
        // Read from the store straight into the tx ring's free room, and hashed there:
        // no copy, and one read per piece of room rather than per small buffer.
        let mut at = *sent;
        let mut failure = None;
        let queued = stack.send_with(socket, room(*size - *sent), |room| {
            if failure.is_some() {
                return 0;
            }
            match store.read_at(reader, at, room) {
                Ok(n) => {
                    let n = n.min(room.len());
                    if let Some(hasher) = hasher {
                        hasher.update(&room[..n]);
                    }
                    at += wide(n);
                    n
                }
                Err(e) => {
                    failure = Some(e);
                    0
                }
            }
        });
        match queued {
            Ok(n) if n > 0 => {
                *sent += wide(n);
                conn.io.touch(now);
            }
            Err(SendError::WouldBlock) => return Continue(()),
            Ok(_) => {
                // Data is flowing: no status can be told apart from it any more, so the
                // get is cut short with a reset, never finished with another version.
                let why = failure.map_or("it ended early", StoreError::as_str);
                net_warn!(
                    "{}: transfer tcp{}: {} unreadable at {}: {}",
                    name,
                    socket,
                    file,
                    sent,
                    why
                );
                return Break(give_up(stack, store, conn));
            }
            Err(_) => return Break(give_up(stack, store, conn)),
        }
    }
}

/// [`Phase::Closing`]: closes once the final frame is out; with `drain`, first reads and
/// drops what the peer still sends, until it closes or pauses.
fn close_when_flushed<U, R>(
    stack: &mut Stack<'_>,
    conn: &mut Connection<U, R>,
    now: Instant,
    flushed: bool,
    drain_until: Option<Instant>,
) -> Step {
    let socket = conn.io.socket();
    if let Some(mut until) = drain_until {
        let mut buf = [0u8; 512];
        loop {
            match stack.recv(socket, &mut buf) {
                Ok(0) => break,
                Ok(_) => until = now + DRAIN_PAUSE,
                Err(RecvError::WouldBlock) if now < until => {
                    conn.phase = Phase::Closing {
                        drain_until: Some(until),
                    };
                    return Break(Next::Keep);
                }
                Err(_) => break,
            }
        }
    }
    if !flushed {
        return Continue(());
    }
    let _ = stack.close(socket);
    Break(Next::Drop)
}

/// Acts on a request frame.
fn start<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    token: Option<&str>,
    conn: &mut Connection<S::Upload, S::Reader>,
    frame: &[u8],
    more: bool,
) {
    let message = match Message::parse(frame) {
        Ok(m) => m,
        Err(WireError::Version1) => {
            net_warn!(
                "{}: transfer tcp{}: a version 1 request, refused",
                stack.name(),
                conn.io.socket()
            );
            let mut out = [0u8; MAX_FRAME + 4];
            if let Ok(n) = emit_version1_refusal(&mut out) {
                let _ = conn.io.queue().extend_from_slice(&out[..n]);
            }
            conn.phase = Phase::Closing {
                drain_until: Some(stack.now() + DRAIN_PAUSE),
            };
            return;
        }
        Err(e) => {
            let mut reason: String<64> = String::new();
            e.write_text(&mut Text::new(&mut reason));
            let status = if matches!(e, WireError::BadName(_)) {
                Status::BadName
            } else {
                Status::BadRequest
            };
            refuse(stack, store, conn, status, &reason);
            return;
        }
    };
    let (given, put) = match message {
        Message::Put { name, size } => (None, Some((name, size))),
        Message::PutWithToken { name, size, token } => (Some(token), Some((name, size))),
        _ => (None, None),
    };
    if put.is_some() && !token_matches(token, given) {
        let reason = match given {
            None => "puts need a token",
            Some(_) => "wrong token",
        };
        refuse(stack, store, conn, Status::Unauthorized, reason);
        return;
    }
    if let Some((name, size)) = put {
        // Staged apart until the trailer's digest matches the data's.
        match store.begin_verified(name, size) {
            Ok(upload) => {
                net_info!(
                    "{}: transfer tcp{}: receiving {} ({} bytes)",
                    stack.name(),
                    conn.io.socket(),
                    name,
                    size
                );
                queue_frame(conn, Message::Accept { size, offset: 0 });
                // One pass over the data: the store's, if it hashes as it writes.
                let hasher = (!store.hashes(&upload)).then(Sha256::new);
                conn.phase = Phase::Receiving {
                    upload: Some(upload),
                    size,
                    received: 0,
                    hasher,
                    store_full: None,
                };
            }
            Err(e) => refuse(
                stack,
                store,
                conn,
                store_status(e),
                "the store refused the upload",
            ),
        }
        return;
    }
    match message {
        // A get is the whole request: bytes after it are refused before any accept.
        Message::Get { .. } if more => refuse(
            stack,
            store,
            conn,
            Status::BadRequest,
            "data after the request",
        ),
        // The version opened here is the one sent, to its end. A whole get may be read
        // ahead and hashed by the store; a resume's prefix is hashed here, a slice per
        // poll, so that it cannot stall the other connections while a store reads it.
        Message::Get { name, offset } => match if offset == 0 {
            store.open_verified(name)
        } else {
            store.open(name)
        } {
            Ok((_, size)) if offset > size => refuse(
                stack,
                store,
                conn,
                Status::OffsetBeyondEnd,
                "resume offset beyond the end",
            ),
            Ok((reader, size)) => {
                net_info!(
                    "{}: transfer tcp{}: sending {} from {} of {}",
                    stack.name(),
                    conn.io.socket(),
                    name,
                    offset,
                    size
                );
                queue_frame(conn, Message::Accept { size, offset });
                // One pass over the file: the store's, if it hashes as it reads.
                let hasher = (!store.reads_hashed(&reader)).then(Sha256::new);
                conn.phase = Phase::Sending {
                    name: String::try_from(name).unwrap_or_default(),
                    reader,
                    size,
                    start: offset,
                    hashed: if hasher.is_some() { 0 } else { offset },
                    sent: offset,
                    hasher,
                };
            }
            Err(e) => refuse(stack, store, conn, store_status(e), e.as_str()),
        },
        _ => refuse(
            stack,
            store,
            conn,
            Status::BadRequest,
            "expected a put or get request",
        ),
    }
}

/// Whether a put with `given` may go ahead on a server that needs `required`: always
/// without a required token (a token sent anyway is ignored); otherwise only with the
/// same bytes, compared in time that does not depend on where they differ.
fn token_matches(required: Option<&str>, given: Option<&str>) -> bool {
    let Some(required) = required else {
        return true;
    };
    let Some(given) = given else {
        return false;
    };
    let (a, b) = (required.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Takes upload data that came with the request, then the trailer if it came too; bytes
/// after the trailer make the put a bad request (nothing may follow it).
fn receive<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    data: &[u8],
    completed: &mut u32,
) {
    let Phase::Receiving { size, received, .. } = &conn.phase else {
        return;
    };
    let take = data.len().min(room(*size - *received));
    if take > 0 {
        if let Err(e) = absorb(store, &mut conn.phase, &data[..take]) {
            refuse(
                stack,
                store,
                conn,
                store_status(e),
                "the store failed during the upload",
            );
            return;
        }
    }
    if !end_of_data(conn) {
        return;
    }
    let rest = &data[take..];
    let used = take_trailer(conn, rest);
    if used < rest.len() {
        let reason = "bytes after the trailer";
        refuse(stack, store, conn, Status::BadRequest, reason);
        return;
    }
    check_trailer(stack, store, conn, completed);
}

/// Once all `size` bytes are in: the digest of the data is final, and the trailer comes
/// next. Says whether the connection is now waiting for the trailer.
fn end_of_data<U, R>(conn: &mut Connection<U, R>) -> bool {
    match &mut conn.phase {
        Phase::Receiving {
            upload,
            size,
            received,
            hasher,
            ..
        } if *received == *size => {
            conn.phase = Phase::Trailer {
                upload: upload.take(),
                size: *size,
                digest: hasher.take().map(|h| h.finalize().into()),
                frame: [0; TRAILER_FRAME],
                have: 0,
            };
            true
        }
        Phase::Trailer { .. } => true,
        _ => false,
    }
}

/// Copies what the trailer frame still lacks from `bytes`; returns how many it took.
fn take_trailer<U, R>(conn: &mut Connection<U, R>, bytes: &[u8]) -> usize {
    let Phase::Trailer { frame, have, .. } = &mut conn.phase else {
        return 0;
    };
    let n = bytes.len().min(TRAILER_FRAME - *have);
    frame[*have..*have + n].copy_from_slice(&bytes[..n]);
    *have += n;
    n
}

/// [`Phase::Trailer`]: reads the trailer frame (and not a byte more), then checks it.
fn read_trailer<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
    completed: &mut u32,
) -> Step {
    let socket = conn.io.socket();
    loop {
        let Phase::Trailer { have, .. } = &conn.phase else {
            return Break(Next::Keep);
        };
        let want = TRAILER_FRAME - *have;
        if want == 0 {
            check_trailer(stack, store, conn, completed);
            return Break(Next::Keep);
        }
        let mut buf = [0u8; TRAILER_FRAME];
        match stack.recv(socket, &mut buf[..want]) {
            Ok(0) => {
                let reason = "the peer closed before the trailer";
                refuse(stack, store, conn, Status::BadRequest, reason);
                return Break(Next::Keep);
            }
            Ok(n) => {
                conn.io.touch(now);
                take_trailer(conn, &buf[..n]);
            }
            Err(RecvError::WouldBlock) => return Continue(()),
            Err(e) => {
                net_warn!(
                    "{}: transfer tcp{}: {} before the trailer, upload discarded",
                    stack.name(),
                    socket,
                    e
                );
                return Break(give_up(stack, store, conn));
            }
        }
    }
}

/// Once the trailer frame is whole: compares its digest with the data's, then commits or
/// refuses. Nothing was visible under the name before this.
fn check_trailer<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    completed: &mut u32,
) {
    let Phase::Trailer {
        upload,
        size,
        digest,
        frame,
        have,
    } = &mut conn.phase
    else {
        return;
    };
    if *have < TRAILER_FRAME {
        return;
    }
    let (known, size) = (*digest, *size);
    let announced = match frame[..4] == (TRAILER_FRAME as u32 - 4).to_be_bytes() {
        true => Message::parse(&frame[4..]),
        false => Err(WireError::Truncated),
    };
    // Bytes already behind the trailer: the client broke the protocol, and a close with
    // them unread would be a reset that hides the answer.
    let stray = stack
        .ring_usage(conn.io.socket())
        .is_some_and(|((rx_used, _), _)| rx_used > 0);
    let Some(mut upload) = upload.take() else {
        return;
    };
    // A store that hashes the upload has the digest: it waits for its last bytes.
    let digest = match known.map_or_else(|| store.upload_digest(&mut upload), Ok) {
        Ok(digest) => digest,
        Err(e) => {
            store.abort(upload);
            let reason = "the store failed during the upload";
            refuse(stack, store, conn, store_status(e), reason);
            return;
        }
    };
    let reason = match announced {
        Ok(Message::Trailer { .. }) if stray => {
            Some((Status::BadRequest, "bytes after the trailer"))
        }
        Ok(Message::Trailer { sha256 }) if sha256 == digest => None,
        Ok(Message::Trailer { .. }) => Some((
            Status::DigestMismatch,
            "data differs from the trailer's SHA-256",
        )),
        _ => Some((
            Status::BadRequest,
            "expected the trailer frame after the data",
        )),
    };
    if let Some((status, reason)) = reason {
        store.abort(upload);
        refuse(stack, store, conn, status, reason);
        return;
    }
    match store.commit_verified(upload, &digest) {
        Ok(()) => {
            net_info!(
                "{}: transfer tcp{}: stored {} bytes, digest verified",
                stack.name(),
                conn.io.socket(),
                size
            );
            *completed += 1;
            queue_frame(
                conn,
                Message::Status {
                    status: Status::Ok,
                    digest,
                    reason: "",
                },
            );
            conn.phase = Phase::Closing { drain_until: None };
        }
        Err(e) => refuse(
            stack,
            store,
            conn,
            store_status(e),
            "the store could not commit",
        ),
    }
}

/// Hashes and stores `data` where it lies (in the rx ring), for [`Stack::recv_with`];
/// the store's error, if it failed. The caller takes at most what the upload still lacks.
fn absorb<S: Store>(
    store: &mut S,
    phase: &mut Phase<S::Upload, S::Reader>,
    data: &[u8],
) -> Result<(), StoreError> {
    let Phase::Receiving {
        upload,
        received,
        hasher,
        ..
    } = phase
    else {
        return Ok(());
    };
    if let Some(hasher) = hasher {
        hasher.update(data);
    }
    *received += wide(data.len());
    match upload.as_mut() {
        Some(up) => store.write(up, data),
        None => Ok(()),
    }
}
