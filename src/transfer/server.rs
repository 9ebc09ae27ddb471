//! The transfer server: one state machine per connection, polled like the other services.

use core::ops::ControlFlow::{self, Break, Continue};

use heapless::{String, Vec};
use sha2::{Digest as _, Sha256};

use super::store::{Store, StoreError};
use super::wire::{Digest, Message, Status, MAX_FRAME, MAX_NAME};
use crate::framing::LengthPrefixDecoder;
use crate::handle::SocketHandle;
use crate::services::connection::{self, Chunk, Ending, Flush, HoldsUpload};
use crate::services::{listen_for_service, ServiceError, MAX_CONNECTIONS};
use crate::socket::tcp::RecvError;
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// How long a connection may stay silent before the server gives up on it: longer than
/// two of smoltcp's largest retransmission backoffs (60 s), so a lossy link is not
/// mistaken for a dead peer.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of a resumed file's prefix hashed per poll, so one resume cannot stall the rest.
const PREFIX_HASH_PER_POLL: usize = 16 * 1024;

enum Phase<U> {
    /// Reading the request frame.
    Request,
    /// Receiving a put's data.
    Receiving {
        upload: Option<U>,
        size: u64,
        received: u64,
        expected: Digest,
        hasher: Sha256,
    },
    /// Sending a get's data (after hashing the skipped prefix, for a resume).
    Sending {
        name: String<MAX_NAME>,
        size: u64,
        start: u64,
        hashed: u64,
        sent: u64,
        hasher: Sha256,
    },
    /// Flushing the final frame, then closing.
    Closing,
}

impl<U> HoldsUpload for Phase<U> {
    type Upload = U;

    fn take_upload(&mut self) -> Option<U> {
        match self {
            Phase::Receiving { upload, .. } => upload.take(),
            _ => None,
        }
    }
}

/// Frames not yet sent: room for two (an accept and, for an empty file, its status).
const OUT_MAX: usize = 2 * (MAX_FRAME + 4);

struct Connection<U> {
    io: connection::Connection<OUT_MAX>,
    phase: Phase<U>,
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
    connections: Vec<Connection<S::Upload>, CONNS>,
    idle_timeout: Duration,
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
            completed: 0,
        })
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
    /// times out (`None` without connections). Like [`Stack::poll_at`], for a caller that
    /// sleeps between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|conn| conn.io.deadline(timeout))
            .min()
    }

    /// Accepts and advances every transfer; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((socket, peer)) = stack.accept(self.listener) {
            log::info!(
                "{}: transfer tcp{socket}: connection from {peer}",
                stack.name()
            );
            let _ = self.connections.push(Connection {
                io: connection::Connection::new(socket, now),
                phase: Phase::Request,
                decoder: LengthPrefixDecoder::new(),
            });
        }
        let store = &mut self.store;
        let timeout = self.idle_timeout;
        let completed = &mut self.completed;
        self.connections.retain_mut(|conn| {
            matches!(
                advance(stack, store, conn, now, timeout, completed),
                Next::Keep
            )
        })
    }
}

fn queue_frame<U>(conn: &mut Connection<U>, message: Message<'_>) {
    let mut frame = [0u8; MAX_FRAME + 4];
    if let Ok(n) = message.emit(&mut frame) {
        // Cannot overflow: at most two frames are ever pending.
        let _ = conn.io.queue().extend_from_slice(&frame[..n]);
    }
}

fn refuse<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    status: Status,
    reason: &str,
) {
    log::warn!(
        "{}: transfer tcp{}: {status}: {reason}",
        stack.name(),
        conn.io.socket()
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
    conn.phase = Phase::Closing;
}

fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::NotFound => Status::NotFound,
        StoreError::NoSpace => Status::NoSpace,
        StoreError::Busy => Status::Busy,
        StoreError::Io | StoreError::Unreadable => Status::Storage,
    }
}

/// Drops the connection without a reply (reset or silence): the upload is discarded.
fn give_up<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
) -> Next {
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Abort);
    Next::Drop
}

/// Moves one connection forward: flushes what is queued, then takes the step of its phase.
fn advance<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    timeout: Duration,
    completed: &mut u32,
) -> Next {
    // Flush the pending frame first.
    let flushed = match conn.io.flush(stack, now) {
        Ok(flush) => flush == Flush::Done,
        Err(_) => return give_up(stack, store, conn),
    };
    let step = match conn.phase {
        Phase::Request => read_request(stack, store, conn, now, completed),
        Phase::Receiving { .. } => receive_data(stack, store, conn, now, completed),
        Phase::Sending { .. } => send_data(stack, store, conn, now, flushed, completed),
        Phase::Closing => close_when_flushed(stack, conn, flushed),
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
    conn: &mut Connection<S::Upload>,
    now: Instant,
    completed: &mut u32,
) -> Step {
    let socket = conn.io.socket();
    let mut buf = [0u8; 2048];
    loop {
        let n = match stack.recv(socket, &mut buf) {
            Ok(0) | Err(RecvError::ConnectionReset) => return Break(give_up(stack, store, conn)),
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
                    let _ = core::fmt::write(&mut reason, format_args!("{e}"));
                    refuse(stack, store, conn, Status::BadRequest, &reason);
                    return Break(Next::Keep);
                }
            };
            used += consumed;
            let Some(frame) = frame else { continue };
            let mut frame_copy = [0u8; MAX_FRAME];
            frame_copy[..frame.len()].copy_from_slice(frame);
            let frame = &frame_copy[..frame.len()];
            start(stack, store, conn, frame);
            if let Phase::Receiving { .. } = conn.phase {
                // Data that came with the request belongs to the upload.
                receive(stack, store, conn, &buf[used..n], completed);
            } else if used < n {
                refuse(
                    stack,
                    store,
                    conn,
                    Status::BadRequest,
                    "data after the request",
                );
            }
            return Break(Next::Keep);
        }
    }
}

/// [`Phase::Receiving`]: hashes and stores a put's data until the announced size is in,
/// then answers.
fn receive_data<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    completed: &mut u32,
) -> Step {
    let Phase::Receiving { size, received, .. } = &conn.phase else {
        return Continue(());
    };
    let want = usize::try_from(*size - *received).unwrap_or(usize::MAX);
    if want == 0 {
        return Continue(());
    }
    let socket = conn.io.socket();
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
                None => finish_upload(stack, store, conn, completed),
            }
        }
        Err(RecvError::WouldBlock) => {}
        Err(e) => {
            log::warn!(
                "{}: transfer tcp{socket}: {e} during upload, discarded",
                stack.name()
            );
            return Break(give_up(stack, store, conn));
        }
    }
    Continue(())
}

/// [`Phase::Sending`]: for a resume, hashes the prefix the client kept first (a slice
/// per poll); then, once the accept is out, sends the data as the tx ring takes it and
/// the final status after it.
fn send_data<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    flushed: bool,
    completed: &mut u32,
) -> Step {
    let name = stack.name();
    let socket = conn.io.socket();
    let Phase::Sending {
        name: file,
        size,
        start,
        hashed,
        sent,
        hasher,
    } = &mut conn.phase
    else {
        return Continue(());
    };
    let mut buf = [0u8; 2048];
    if *hashed < *start {
        let want = ((*start - *hashed) as usize).min(PREFIX_HASH_PER_POLL);
        let mut done = 0;
        while done < want {
            let chunk = (want - done).min(buf.len());
            match store.read_at(file, *hashed, &mut buf[..chunk]) {
                Ok(n) if n > 0 => {
                    hasher.update(&buf[..n]);
                    *hashed += n as u64;
                    done += n;
                }
                _ => return Break(give_up(stack, store, conn)),
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
            let digest: Digest = core::mem::take(hasher).finalize().into();
            log::info!("{name}: transfer tcp{socket}: sent {file} ({size} bytes)");
            *completed += 1;
            queue_frame(
                conn,
                Message::Status {
                    status: Status::Ok,
                    digest,
                    reason: "",
                },
            );
            conn.phase = Phase::Closing;
            return Break(Next::Keep);
        }
        let at = *sent;
        let read = |into: &mut [u8]| store.read_at(file, at, into).ok().filter(|&n| n > 0);
        match conn.io.send_chunk(stack, now, &mut buf, usize::MAX, read) {
            Chunk::Sent(queued) => {
                hasher.update(&buf[..queued]);
                *sent += queued as u64;
            }
            Chunk::NoRoom | Chunk::Blocked => return Continue(()),
            Chunk::Unreadable => {
                log::warn!("{name}: transfer tcp{socket}: {file} unreadable at {sent}");
                return Break(give_up(stack, store, conn));
            }
            Chunk::Failed(_) => return Break(give_up(stack, store, conn)),
        }
    }
}

/// [`Phase::Closing`]: closes once the final frame is out.
fn close_when_flushed<U>(stack: &mut Stack<'_>, conn: &Connection<U>, flushed: bool) -> Step {
    if !flushed {
        return Continue(());
    }
    let _ = stack.close(conn.io.socket());
    Break(Next::Drop)
}

/// Acts on a request frame.
fn start<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    frame: &[u8],
) {
    let message = match Message::parse(frame) {
        Ok(m) => m,
        Err(e) => {
            let mut reason: String<64> = String::new();
            let _ = core::fmt::write(&mut reason, format_args!("{e}"));
            let status = if matches!(e, super::wire::WireError::BadName(_)) {
                Status::BadName
            } else {
                Status::BadRequest
            };
            refuse(stack, store, conn, status, &reason);
            return;
        }
    };
    match message {
        Message::Put { name, size, sha256 } => match store.begin_verified(name, size, &sha256) {
            Ok(upload) => {
                log::info!(
                    "{}: transfer tcp{}: receiving {name} ({size} bytes)",
                    stack.name(),
                    conn.io.socket()
                );
                queue_frame(conn, Message::Accept { size, offset: 0 });
                conn.phase = Phase::Receiving {
                    upload: Some(upload),
                    size,
                    received: 0,
                    expected: sha256,
                    hasher: Sha256::new(),
                };
            }
            Err(e) => refuse(
                stack,
                store,
                conn,
                store_status(e),
                "the store refused the upload",
            ),
        },
        Message::Get { name, offset } => match store.size(name) {
            Ok(size) if offset > size => refuse(
                stack,
                store,
                conn,
                Status::OffsetBeyondEnd,
                "resume offset beyond the end",
            ),
            // A store that cannot read the file back says so before the data starts:
            // once it has, a failure can only end the connection.
            Ok(_) if let Err(e) = store.read_at(name, 0, &mut [0; 1]) => {
                refuse(stack, store, conn, store_status(e), e.as_str())
            }
            Ok(size) => {
                log::info!(
                    "{}: transfer tcp{}: sending {name} from {offset} of {size}",
                    stack.name(),
                    conn.io.socket()
                );
                queue_frame(conn, Message::Accept { size, offset });
                conn.phase = Phase::Sending {
                    name: String::try_from(name).unwrap_or_default(),
                    size,
                    start: offset,
                    hashed: 0,
                    sent: offset,
                    hasher: Sha256::new(),
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

/// Takes upload data that came with the request, and answers if that was all of it.
fn receive<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    data: &[u8],
    completed: &mut u32,
) {
    let Phase::Receiving { size, received, .. } = &conn.phase else {
        return;
    };
    let take = data.len().min((*size - *received) as usize);
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
    finish_upload(stack, store, conn, completed);
}

/// Hashes and stores `data` where it lies (in the rx ring), for [`Stack::recv_with`];
/// the store's error, if it failed. The caller takes at most what the upload still lacks.
fn absorb<S: Store>(
    store: &mut S,
    phase: &mut Phase<S::Upload>,
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
    hasher.update(data);
    *received += data.len() as u64;
    match upload.as_mut() {
        Some(up) => store.write(up, data),
        None => Ok(()),
    }
}

/// Once the announced size is in: checks the digest, then commits or refuses.
fn finish_upload<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    completed: &mut u32,
) {
    let Phase::Receiving {
        upload,
        size,
        received,
        expected,
        hasher,
    } = &mut conn.phase
    else {
        return;
    };
    if *received < *size {
        return;
    }
    let digest: Digest = core::mem::take(hasher).finalize().into();
    let expected = *expected;
    let size = *size;
    let Some(upload) = upload.take() else {
        return;
    };
    if digest != expected {
        store.abort(upload);
        refuse(
            stack,
            store,
            conn,
            Status::DigestMismatch,
            "data differs from the announced SHA-256",
        );
        return;
    }
    match store.commit(upload) {
        Ok(()) => {
            log::info!(
                "{}: transfer tcp{}: stored {size} bytes, digest verified",
                stack.name(),
                conn.io.socket()
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
            conn.phase = Phase::Closing;
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
