//! The HTTP server: its connection table, and each connection's state machine (read a
//! head, take an upload, send a response, linger) on the shared connection skeleton.

use core::fmt::Write as _;

use heapless::{String, Vec};

use super::request::{complete_head, Generated, Method, Request, Unsatisfiable};
use super::response::{head_start, text_response, write_listing, write_stats, ALLOW};
use crate::handle::SocketHandle;
use crate::services::connection::{self, Chunk, Ending, Flush, HoldsUpload};
use crate::services::{listen_for_service, ServiceError};
use crate::socket::tcp::{RecvError, SendError};
use crate::stack::Stack;
use crate::transfer::{Store, StoreError};
use smoltcp::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted.
pub const HEAD_MAX: usize = 1024;
/// How long a client may stay silent (mid-request, or idle between requests).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// Room for a response head or a short generated body.
const OUT_MAX: usize = 512;

/// What a response's body is.
enum Body {
    None,
    /// Bytes `next..end` of a stored file.
    File {
        name: String<128>,
        next: u64,
        end: u64,
    },
    /// Bytes `next..` of the server's snapshot (the file list, or the stats).
    Snapshot {
        next: usize,
    },
}

enum Phase<U> {
    /// Reading a request head.
    Head,
    /// Receiving a PUT body into the store.
    Upload {
        upload: Option<U>,
        remaining: u64,
        keep_alive: bool,
    },
    /// Sending `out` and then the body.
    Respond { body: Body, keep_alive: bool },
    /// The response is out and writing is shut down: reading and discarding what the
    /// client still sends until it closes, so that closing with unread data (which resets
    /// the connection) cannot destroy the response in flight.
    Linger { until: Instant },
}

impl<U> HoldsUpload for Phase<U> {
    type Upload = U;

    fn take_upload(&mut self) -> Option<U> {
        match self {
            Phase::Upload { upload, .. } => upload.take(),
            _ => None,
        }
    }
}

struct Connection<U> {
    io: connection::Connection<OUT_MAX>,
    phase: Phase<U>,
    head: Vec<u8, HEAD_MAX>,
}

/// Default room for a generated body (the file list, the stats), taken whole when the
/// request arrives so that its `Content-Length` is exact even as the counters move on.
pub const SNAPSHOT_DEFAULT: usize = 4096;

/// The generated body being sent, and to whom.
struct Snapshot<const N: usize> {
    bytes: Vec<u8, N>,
    owner: Option<SocketHandle>,
}

/// The HTTP/1.1 server: up to `CONNS` connections, one of them kept to say `503`, and
/// `SNAPSHOT` bytes for a generated body (a stats table longer than that is cut at a row
/// boundary and says `"complete":false`).
pub struct HttpServer<S: Store, const CONNS: usize, const SNAPSHOT: usize = SNAPSHOT_DEFAULT> {
    listener: SocketHandle,
    store: S,
    connections: Vec<Connection<S::Upload>, CONNS>,
    snapshot: Snapshot<SNAPSHOT>,
    idle_timeout: Duration,
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
            },
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            served: 0,
        })
    }

    /// Changes the idle timeout.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
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
    /// times out or a lingering close gives up (`None` without connections). Like
    /// [`Stack::poll_at`], for a caller that sleeps between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|conn| match conn.phase {
                Phase::Linger { until } => until,
                _ => conn.io.deadline(timeout),
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
            let _ = self.connections.push(Connection {
                io: connection::Connection::new(socket, now),
                phase: Phase::Head,
                head: Vec::new(),
            });
            if self.connections.len() >= CONNS {
                log::warn!(
                    "{}: http tcp{socket}: every connection busy: 503",
                    stack.name()
                );
                if let Some(conn) = self.connections.last_mut() {
                    respond(conn, 503, false, "all connections are busy\n");
                }
            }
        }
        let mut shared = Shared {
            store: &mut self.store,
            snapshot: &mut self.snapshot,
            served: &mut self.served,
        };
        let timeout = self.idle_timeout;
        self.connections.retain_mut(|conn| {
            let keep = advance(stack, &mut shared, conn, now, timeout);
            if !keep && shared.snapshot.owner == Some(conn.io.socket()) {
                shared.snapshot.owner = None;
            }
            keep
        });
    }
}

/// What every connection of a server shares.
struct Shared<'s, S: Store, const N: usize> {
    store: &'s mut S,
    snapshot: &'s mut Snapshot<N>,
    served: &'s mut u32,
}

/// Queues a complete response with a short text body.
fn respond<U>(conn: &mut Connection<U>, status: u16, keep_alive: bool, body: &str) {
    text_response(conn.io.queue(), status, keep_alive, body);
    conn.phase = Phase::Respond {
        body: Body::None,
        keep_alive,
    };
}

/// Acts on the complete request head at the start of `conn.head`, which ends after
/// `head_end` bytes.
fn start<S: Store, const N: usize>(
    stack: &Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    head_end: usize,
) {
    let store = &mut *shared.store;
    let parsed = Request::parse(&conn.head, stack, conn.io.socket());
    // Keep what followed the head: a PUT body's start, or a pipelined request.
    let consumed = parsed.as_ref().map_or(head_end, |(_, length)| *length);
    let rest = conn.head.len() - consumed;
    conn.head.copy_within(consumed.., 0);
    conn.head.truncate(rest);
    let Some((request, _)) = parsed else {
        respond(conn, 400, false, "malformed request\n");
        return;
    };
    let method = request.method;
    let chunked = request.chunked;
    let content_length = request.content_length;
    let has_body = chunked
        || matches!(content_length, Some(Ok(n)) if n > 0)
        || matches!(content_length, Some(Err(_)));
    // A body we will not read makes the stream unusable for a next request.
    let mut keep_alive = request.version == 1 && !request.wants_close;

    match method {
        Method::Get | Method::Head => {
            keep_alive &= !has_body;
            let generated = match request.generated {
                Some(generated) => generated,
                None => {
                    let Some(name) = request.name else {
                        respond(conn, 404, keep_alive, "not found\n");
                        return;
                    };
                    let Ok(len) = store.size(&name) else {
                        respond(conn, 404, keep_alive, "not found\n");
                        return;
                    };
                    let range = request.range.map(|r| r.resolve(len));
                    let (status, start, end) = match range {
                        Some(Err(Unsatisfiable)) => {
                            let mut out = head_start(conn.io.queue(), 416, keep_alive);
                            let _ = write!(
                                out,
                                "Content-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n"
                            );
                            conn.phase = Phase::Respond {
                                body: Body::None,
                                keep_alive,
                            };
                            return;
                        }
                        Some(Ok((s, e))) => (206, s, e),
                        None => (200, 0, len),
                    };
                    let mut out = head_start(conn.io.queue(), status, keep_alive);
                    let _ = write!(out, "Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n", end - start);
                    if status == 206 {
                        let _ = write!(
                            out,
                            "Content-Range: bytes {start}-{}/{len}\r\n",
                            end.saturating_sub(1)
                        );
                    }
                    let _ = out.write_str("\r\n");
                    let body = if method == Method::Head {
                        Body::None
                    } else {
                        Body::File {
                            name,
                            next: start,
                            end,
                        }
                    };
                    conn.phase = Phase::Respond { body, keep_alive };
                    return;
                }
            };
            if shared
                .snapshot
                .owner
                .is_some_and(|owner| owner != conn.io.socket())
            {
                respond(conn, 503, keep_alive, "busy with another listing\n");
                return;
            }
            let snapshot = &mut *shared.snapshot;
            snapshot.bytes.clear();
            let kind = match generated {
                Generated::Stats => {
                    write_stats(stack, &mut snapshot.bytes);
                    "application/json"
                }
                Generated::Listing => {
                    write_listing(store, &mut snapshot.bytes);
                    "text/plain"
                }
            };
            let len = snapshot.bytes.len();
            let mut out = head_start(conn.io.queue(), 200, keep_alive);
            let _ = write!(out, "Content-Type: {kind}\r\nContent-Length: {len}\r\n\r\n");
            let body = if method == Method::Head {
                Body::None
            } else {
                snapshot.owner = Some(conn.io.socket());
                Body::Snapshot { next: 0 }
            };
            conn.phase = Phase::Respond { body, keep_alive };
        }
        Method::Put => {
            let Some(name) = request.name else {
                respond(conn, 400, false, "bad file name\n");
                return;
            };
            if chunked {
                respond(conn, 501, false, "chunked uploads are not supported\n");
                return;
            }
            let length = match content_length {
                Some(Ok(n)) => n,
                Some(Err(_)) => return respond(conn, 400, false, "bad Content-Length\n"),
                None => return respond(conn, 411, false, "Content-Length required\n"),
            };
            match store.begin(&name, length) {
                Ok(upload) => {
                    if request.expect_continue {
                        let _ = conn
                            .io
                            .queue()
                            .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    conn.phase = Phase::Upload {
                        upload: Some(upload),
                        remaining: length,
                        keep_alive,
                    };
                }
                Err(StoreError::NoSpace) => respond(conn, 413, false, "the file does not fit\n"),
                Err(StoreError::Busy) => {
                    respond(conn, 503, false, "another upload is in progress\n")
                }
                Err(_) => respond(conn, 500, false, "the store failed\n"),
            }
        }
        Method::Options => {
            keep_alive &= !has_body;
            let mut out = head_start(conn.io.queue(), 204, keep_alive);
            let _ = write!(out, "Allow: {ALLOW}\r\nContent-Length: 0\r\n\r\n");
            conn.phase = Phase::Respond {
                body: Body::None,
                keep_alive,
            };
        }
        Method::NotAllowed => respond(conn, 405, keep_alive && !has_body, "method not allowed\n"),
        Method::Unknown => respond(conn, 501, false, "method not implemented\n"),
    }
}

/// What one step of a connection decided.
enum Step {
    /// Go round again: flush, then the step of the (maybe new) phase.
    Again,
    /// Waiting on the client, so the idle timeout applies.
    Wait,
    /// This poll is over: keep the connection (`true`) or it is finished (`false`).
    Done(bool),
}

/// Moves one connection forward; `false` when it is finished.
fn advance<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    timeout: Duration,
) -> bool {
    loop {
        // Flush the pending head (or short body) first.
        match conn.io.flush(stack, now) {
            Ok(Flush::Done) => {}
            Ok(Flush::Pending) => return true,
            Err(_) => return drop_connection(stack, &mut *shared.store, conn),
        }
        let step = match conn.phase {
            Phase::Head => read_head(stack, shared, conn, now),
            Phase::Upload { .. } => receive_body(stack, shared, conn, now),
            Phase::Respond { .. } => send_response(stack, shared, conn, now),
            Phase::Linger { until } => linger(stack, conn, now, until),
        };
        match step {
            Step::Again => {}
            Step::Wait => break,
            Step::Done(keep) => return keep,
        }
    }
    check_timeout(stack, &mut *shared.store, conn, now, timeout)
}

/// [`Phase::Head`]: reads until the head is complete, then acts on the request.
fn read_head<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    now: Instant,
) -> Step {
    if let Some(head_end) = complete_head(&mut conn.head) {
        start(stack, shared, conn, head_end);
        return Step::Again;
    }
    if conn.head.is_full() {
        let line_ends = conn.head.contains(&b'\n');
        let (status, why) = if line_ends {
            (431, "request head too large\n")
        } else {
            (414, "request line too long\n")
        };
        respond(conn, status, false, why);
        return Step::Again;
    }
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    let room = (HEAD_MAX - conn.head.len()).min(buf.len());
    match stack.recv(socket, &mut buf[..room]) {
        Ok(0) => {
            let _ = stack.close(socket);
            Step::Done(false)
        }
        Ok(n) => {
            let _ = conn.head.extend_from_slice(&buf[..n]);
            conn.io.touch(now);
            Step::Again
        }
        Err(RecvError::WouldBlock) => Step::Wait,
        Err(_) => Step::Done(drop_connection(stack, &mut *shared.store, conn)),
    }
}

/// [`Phase::Upload`]: stores a PUT's body (what came with the head first), then commits
/// it and answers `201`.
fn receive_body<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    now: Instant,
) -> Step {
    let Phase::Upload {
        upload,
        remaining,
        keep_alive,
    } = &mut conn.phase
    else {
        return Step::Again;
    };
    // Body bytes that came with the head first.
    let take = (conn.head.len() as u64).min(*remaining) as usize;
    if take > 0 {
        let mut chunk = [0u8; 512];
        let part = take.min(chunk.len());
        chunk[..part].copy_from_slice(&conn.head[..part]);
        conn.head.copy_within(part.., 0);
        let left = conn.head.len() - part;
        conn.head.truncate(left);
        if !store_body(&mut *shared.store, upload, &chunk[..part], remaining) {
            respond(conn, 500, false, "the store failed\n");
        }
        return Step::Again;
    }
    if *remaining == 0 {
        let keep_alive = *keep_alive;
        if let Some(up) = upload.take() {
            if shared.store.commit(up).is_err() {
                respond(conn, 500, false, "the store could not commit\n");
                return Step::Again;
            }
        }
        respond(conn, 201, keep_alive, "stored\n");
        return Step::Again;
    }
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    let want = (*remaining).min(buf.len() as u64) as usize;
    match stack.recv(socket, &mut buf[..want]) {
        Ok(0) => {
            log::warn!(
                "{}: http tcp{socket}: upload cut short, discarded",
                stack.name()
            );
            Step::Done(drop_connection(stack, &mut *shared.store, conn))
        }
        Ok(n) => {
            conn.io.touch(now);
            if !store_body(&mut *shared.store, upload, &buf[..n], remaining) {
                respond(conn, 500, false, "the store failed\n");
            }
            Step::Again
        }
        Err(RecvError::WouldBlock) => Step::Wait,
        Err(_) => Step::Done(drop_connection(stack, &mut *shared.store, conn)),
    }
}

/// [`Phase::Respond`]: sends the body once the head is out, then waits for the next
/// request or, without keep-alive, shuts down writing and lingers.
fn send_response<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    now: Instant,
) -> Step {
    let Phase::Respond { body, keep_alive } = &mut conn.phase else {
        return Step::Again;
    };
    let keep_alive = *keep_alive;
    let mut buf = [0u8; 512];
    match body {
        Body::None => {}
        Body::File { name, next, end } => {
            while *next < *end {
                let (at, store) = (*next, &mut *shared.store);
                let read = |into: &mut [u8]| store.read_at(name, at, into).ok().filter(|&n| n > 0);
                let limit = (*end - *next) as usize;
                match conn.io.send_chunk(stack, now, &mut buf, limit, read) {
                    Chunk::Sent(sent) => *next += sent as u64,
                    Chunk::NoRoom => return Step::Wait,
                    Chunk::Blocked => return Step::Done(true),
                    Chunk::Unreadable | Chunk::Failed(_) => {
                        return Step::Done(drop_connection(stack, &mut *shared.store, conn))
                    }
                }
            }
        }
        Body::Snapshot { next } => {
            let bytes = &shared.snapshot.bytes;
            while *next < bytes.len() {
                match conn.io.send(stack, now, &bytes[*next..]) {
                    Ok(n) => *next += n,
                    Err(SendError::WouldBlock) => return Step::Done(true),
                    Err(_) => return Step::Done(drop_connection(stack, &mut *shared.store, conn)),
                }
            }
            shared.snapshot.owner = None;
        }
    }
    *shared.served += 1;
    if keep_alive {
        conn.phase = Phase::Head;
        return Step::Again;
    }
    let _ = stack.shutdown_write(conn.io.socket());
    conn.phase = Phase::Linger {
        until: now + LINGER,
    };
    Step::Again
}

/// [`Phase::Linger`]: reads and drops what the client still sends, until it closes or
/// the linger time is up.
fn linger<U>(stack: &mut Stack<'_>, conn: &Connection<U>, now: Instant, until: Instant) -> Step {
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    match stack.recv(socket, &mut buf) {
        Ok(0) => {
            let _ = stack.close(socket);
            Step::Done(false)
        }
        Ok(_) => Step::Again,
        Err(RecvError::WouldBlock) if now < until => Step::Done(true),
        Err(_) => {
            let _ = stack.abort(socket);
            Step::Done(false)
        }
    }
}

fn store_body<S: Store>(
    store: &mut S,
    upload: &mut Option<S::Upload>,
    data: &[u8],
    remaining: &mut u64,
) -> bool {
    *remaining -= data.len() as u64;
    match upload.as_mut() {
        Some(up) => store.write(up, data).is_ok(),
        None => false,
    }
}

/// Answers `408` and closes once the client has been silent past the timeout; `false`
/// when it has.
fn check_timeout<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    timeout: Duration,
) -> bool {
    if !conn.io.idle_expired(stack, now, timeout, "http", "408") {
        return true;
    }
    conn.io.discard_queue();
    text_response(conn.io.queue(), 408, false, "request timeout\n");
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Close);
    false
}

fn drop_connection<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload>,
) -> bool {
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Abort);
    false
}
