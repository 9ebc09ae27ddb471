//! The HTTP server: its connection table, and each connection's state machine (read a
//! head, take an upload, send a response, linger) on the shared connection skeleton.

use heapless::{String, Vec};

use super::request::{complete_head, Generated, HeadError, Method, Request, Unsatisfiable};
use super::response::{head_start, text_response, write_listing, write_stats, ALLOW};
use crate::convert::{room, wide};
use crate::handle::SocketHandle;
use crate::services::connection::{self, Chunk, Ending, Flush, HoldsUpload};
use crate::services::{listen_for_service, ServiceError};
use crate::socket::tcp::{RecvError, SendError};
use crate::stack::Stack;
use crate::transfer::{Store, StoreError};
use smoltcp::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted.
pub const HEAD_MAX: usize = 1024;
/// How long a client may stay silent (mid-request, or idle between requests), and how long
/// a response may wait for a client that does not read it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request head may take from its first byte, however steadily it
/// trickles in (a slowloris client resets the idle timer with every byte).
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection waits for the client to close its side, from the last
/// byte it sent.
const LINGER: Duration = Duration::from_secs(2);
/// The longest a closing connection drains a client that keeps sending.
const LINGER_MAX: Duration = Duration::from_secs(30);
/// How long a response may hold the generated-body buffer without sending a byte before
/// a client that needs the buffer takes it (and the stalled response is reset).
const SNAPSHOT_HOLD: Duration = Duration::from_secs(1);
/// Longest bearer token.
pub const TOKEN_MAX: usize = 64;
/// Room for a response head or a short generated body.
const OUT_MAX: usize = 512;

/// A bearer token longer than [`TOKEN_MAX`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTooLong;

impl core::fmt::Display for TokenTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the token is longer than {TOKEN_MAX} bytes")
    }
}

impl core::error::Error for TokenTooLong {}

/// What a response's body is.
enum Body<R> {
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

enum Phase<U, R> {
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
    /// The response is out and writing is shut down: reading and discarding what the
    /// client still sends until it closes (or pauses until `until`, or `cap` passes), so
    /// that closing with unread data (which resets the connection) cannot destroy the
    /// response in flight.
    Linger { until: Instant, cap: Instant },
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

struct Connection<U, R> {
    io: connection::Connection<OUT_MAX>,
    phase: Phase<U, R>,
    head: Vec<u8, HEAD_MAX>,
}

/// Default room for a generated body (the file list, the stats), taken whole when the
/// request arrives so that its `Content-Length` is exact even as the counters move on.
pub const SNAPSHOT_DEFAULT: usize = 4096;

/// The generated body being sent, to whom, and when its owner last sent some of it.
struct Snapshot<const N: usize> {
    bytes: Vec<u8, N>,
    owner: Option<SocketHandle>,
    progress: Instant,
}

/// The HTTP/1.1 server: up to `CONNS` connections, one of them kept to say `503`, and
/// `SNAPSHOT` bytes for a generated body (a stats table longer than that is cut at a row
/// boundary and says `"complete":false`).
pub struct HttpServer<S: Store, const CONNS: usize, const SNAPSHOT: usize = SNAPSHOT_DEFAULT> {
    listener: SocketHandle,
    store: S,
    connections: Vec<Connection<S::Upload, S::Reader>, CONNS>,
    snapshot: Snapshot<SNAPSHOT>,
    idle_timeout: Duration,
    head_timeout: Duration,
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
    /// times out or a lingering close gives up (`None` without connections). Like
    /// [`Stack::poll_at`], for a caller that sleeps between polls.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        let head_timeout = self.head_timeout;
        self.connections
            .iter()
            .map(|conn| match conn.phase {
                Phase::Linger { until, cap } => until.min(cap),
                Phase::Head { since: Some(since) } => {
                    (since + head_timeout).min(conn.io.deadline(timeout))
                }
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
                phase: Phase::Head { since: None },
                head: Vec::new(),
            });
            if self.connections.len() >= CONNS {
                net_warn!(
                    "{}: http tcp{}: every connection busy: 503",
                    stack.name(),
                    socket
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
            token: self.token.as_deref(),
            timeouts: (self.idle_timeout, self.head_timeout),
        };
        self.connections.retain_mut(|conn| {
            let keep = advance(stack, &mut shared, conn, now);
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
    token: Option<&'s str>,
    /// The idle and the head timeouts.
    timeouts: (Duration, Duration),
}

/// Queues a complete response with a short text body.
fn respond<U, R>(conn: &mut Connection<U, R>, status: u16, keep_alive: bool, body: &str) {
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
    conn: &mut Connection<S::Upload, S::Reader>,
    head_end: usize,
    now: Instant,
) {
    let parsed = Request::parse(&conn.head, stack, conn.io.socket(), shared.token);
    // Keep what followed the head: a PUT body's start, or a pipelined request.
    let consumed = parsed.as_ref().map_or(head_end, |(_, length)| *length);
    let rest = conn.head.len() - consumed;
    conn.head.copy_within(consumed.., 0);
    conn.head.truncate(rest);
    let request = match parsed {
        Ok((request, _)) => request,
        Err(HeadError::TooManyHeaders) => {
            return respond(conn, 431, false, "too many header fields\n")
        }
        Err(HeadError::Malformed) => return respond(conn, 400, false, "malformed request\n"),
    };
    // RFC 9112 6.3: a length that cannot be trusted leaves no way to find the next
    // request (a smuggling primitive behind a proxy): 400, and the connection closes.
    let content_length = match request.content_length {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return respond(conn, 400, false, "bad Content-Length\n"),
        None => None,
    };
    if request.chunked && content_length.is_some() {
        return respond(conn, 400, false, "Content-Length with Transfer-Encoding\n");
    }
    let method = request.method;
    let has_body = request.chunked || content_length.is_some_and(|n| n > 0);
    // A body we will not read makes the stream unusable for a next request.
    let keep_alive = request.version == 1 && !request.wants_close;
    let writes = matches!(method, Method::Put | Method::Post | Method::Delete);
    if writes && !request.authorized {
        let mut out = head_start(conn.io.queue(), 401, false);
        let body = "a bearer token is required\n";
        out.str("WWW-Authenticate: Bearer realm=\"ringnet\"\r\nContent-Type: text/plain\r\nContent-Length: ")
            .num(body.len() as u64)
            .str("\r\n\r\n")
            .str(body);
        conn.phase = Phase::Respond {
            body: Body::None,
            keep_alive: false,
        };
        return;
    }
    if writes && request.generated.is_some() {
        // `/` and `/stats` are generated: no file may take their place.
        return respond(conn, 405, false, "generated, not a file\n");
    }
    match method {
        Method::Get | Method::Head => {
            let keep_alive = keep_alive && !has_body;
            match request.generated {
                Some(generated) => {
                    start_generated(stack, shared, conn, generated, method, keep_alive, now)
                }
                None => start_file(
                    shared,
                    conn,
                    request.name,
                    request.range,
                    method,
                    keep_alive,
                ),
            }
        }
        Method::Put | Method::Post => {
            let Some(name) = request.name else {
                return respond(conn, 400, false, "bad file name\n");
            };
            if request.chunked {
                return respond(conn, 501, false, "chunked uploads are not supported\n");
            }
            let Some(length) = content_length else {
                return respond(conn, 411, false, "Content-Length required\n");
            };
            let store = &mut *shared.store;
            if method == Method::Post && store.size(&name).is_ok() {
                return respond(conn, 409, false, "the file exists (PUT replaces)\n");
            }
            // Refused before `100 Continue`: a client that waits for it sends no body.
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
                Err(e) => store_failed(conn, e),
            }
        }
        Method::Delete => {
            let Some(name) = request.name else {
                return respond(conn, 404, false, "not found\n");
            };
            let keep_alive = keep_alive && !has_body;
            match shared.store.remove(&name) {
                Ok(()) => {
                    let mut out = head_start(conn.io.queue(), 204, keep_alive);
                    out.str("Content-Length: 0\r\n\r\n");
                    conn.phase = Phase::Respond {
                        body: Body::None,
                        keep_alive,
                    };
                }
                Err(StoreError::NotFound) => respond(conn, 404, keep_alive, "not found\n"),
                Err(StoreError::ReadOnly) => respond(conn, 403, keep_alive, "read-only file\n"),
                Err(_) => respond(conn, 500, false, "the store failed\n"),
            }
        }
        Method::Options => {
            let keep_alive = keep_alive && !has_body;
            let mut out = head_start(conn.io.queue(), 204, keep_alive);
            out.str("Allow: ")
                .str(ALLOW)
                .str("\r\nContent-Length: 0\r\n\r\n");
            conn.phase = Phase::Respond {
                body: Body::None,
                keep_alive,
            };
        }
        Method::NotAllowed => respond(conn, 405, keep_alive && !has_body, "method not allowed\n"),
        Method::Unknown => respond(conn, 501, false, "method not implemented\n"),
    }
}

/// The answer to an upload the store refused or failed, which closes the connection.
fn store_failed<U, R>(conn: &mut Connection<U, R>, error: StoreError) {
    let (status, why) = match error {
        StoreError::NoSpace => (413, "the file does not fit\n"),
        StoreError::Busy => (503, "another upload is in progress\n"),
        StoreError::Conflict => (409, "a newer upload of this name won\n"),
        StoreError::ReadOnly => (403, "read-only file\n"),
        _ => (500, "the store failed\n"),
    };
    respond(conn, status, false, why);
}

/// `GET`/`HEAD` of a stored file: opens the version it sends to the end.
fn start_file<S: Store, const N: usize>(
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    name: Option<String<128>>,
    range: Option<super::request::RangeSpec>,
    method: Method,
    keep_alive: bool,
) {
    let Some(name) = name else {
        return respond(conn, 404, keep_alive, "not found\n");
    };
    let (reader, len) = match shared.store.open(&name) {
        Ok(opened) => opened,
        Err(StoreError::NotFound) => return respond(conn, 404, keep_alive, "not found\n"),
        Err(_) => return respond(conn, 500, keep_alive, "the store cannot read the file\n"),
    };
    let (status, start, end) = match range.map(|r| r.resolve(len)) {
        Some(Err(Unsatisfiable)) => {
            let mut out = head_start(conn.io.queue(), 416, keep_alive);
            out.str("Content-Range: bytes */")
                .num(len)
                .str("\r\nContent-Length: 0\r\n\r\n");
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
    out.str("Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: ")
        .num(end - start)
        .str("\r\n");
    if status == 206 {
        out.str("Content-Range: bytes ")
            .num(start)
            .str("-")
            .num(end.saturating_sub(1))
            .str("/")
            .num(len)
            .str("\r\n");
    }
    out.str("\r\n");
    let body = if method == Method::Head {
        Body::None
    } else {
        Body::File {
            reader,
            next: start,
            end,
        }
    };
    conn.phase = Phase::Respond { body, keep_alive };
}

/// `GET`/`HEAD` of `/` or `/stats`: takes the snapshot, unless another response is
/// using it and still moving.
fn start_generated<S: Store, const N: usize>(
    stack: &Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    generated: Generated,
    method: Method,
    keep_alive: bool,
    now: Instant,
) {
    let snapshot = &mut *shared.snapshot;
    let socket = conn.io.socket();
    if let Some(owner) = snapshot.owner.filter(|&owner| owner != socket) {
        if now - snapshot.progress <= SNAPSHOT_HOLD {
            return respond(conn, 503, keep_alive, "busy with another listing\n");
        }
        // A response that cannot be sent does not keep the buffer from everyone else:
        // its owner finds the buffer taken and is reset.
        net_warn!(
            "{}: http tcp{}: takes the snapshot from stalled tcp{}",
            stack.name(),
            socket,
            owner
        );
    }
    snapshot.bytes.clear();
    let kind = match generated {
        Generated::Stats => {
            write_stats(stack, &mut snapshot.bytes);
            "application/json"
        }
        Generated::Listing => {
            write_listing(&mut *shared.store, &mut snapshot.bytes);
            "text/plain"
        }
    };
    let len = snapshot.bytes.len();
    let mut out = head_start(conn.io.queue(), 200, keep_alive);
    out.str("Content-Type: ")
        .str(kind)
        .str("\r\nContent-Length: ")
        .num(len as u64)
        .str("\r\n\r\n");
    let body = if method == Method::Head {
        snapshot.owner = None;
        Body::None
    } else {
        snapshot.owner = Some(socket);
        snapshot.progress = now;
        Body::Snapshot { next: 0 }
    };
    conn.phase = Phase::Respond { body, keep_alive };
}

/// What one step of a connection decided.
enum Step {
    /// Go round again: flush, then the step of the (maybe new) phase.
    Again,
    /// Waiting on the client (for bytes, or for room to send), so the timeouts apply.
    Wait,
    /// This poll is over: keep the connection (`true`) or it is finished (`false`).
    Done(bool),
}

/// Moves one connection forward; `false` when it is finished.
fn advance<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
) -> bool {
    loop {
        // Flush the pending head (or short body) first; a client that does not read it
        // is timed out like a silent one.
        match conn.io.flush(stack, now) {
            Ok(Flush::Done) => {}
            Ok(Flush::Pending) => break,
            Err(_) => return drop_connection(stack, &mut *shared.store, conn),
        }
        let step = match conn.phase {
            Phase::Head { .. } => read_head(stack, shared, conn, now),
            Phase::Upload { .. } => receive_body(stack, shared, conn, now),
            Phase::Respond { .. } => send_response(stack, shared, conn, now),
            Phase::Linger { until, cap } => linger(stack, conn, now, until, cap),
        };
        match step {
            Step::Again => {}
            Step::Wait => break,
            Step::Done(keep) => return keep,
        }
    }
    check_timeout(stack, shared, conn, now)
}

/// [`Phase::Head`]: reads until the head is complete, then acts on the request.
fn read_head<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
) -> Step {
    if let Some(head_end) = complete_head(&mut conn.head) {
        start(stack, shared, conn, head_end, now);
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
            if let Phase::Head {
                since: since @ None,
            } = &mut conn.phase
            {
                *since = Some(now);
            }
            Step::Again
        }
        Err(RecvError::WouldBlock) => Step::Wait,
        Err(_) => Step::Done(drop_connection(stack, &mut *shared.store, conn)),
    }
}

/// [`Phase::Upload`]: stores a PUT's body (what came with the head first), then commits
/// it and answers `201`. A store that fails mid-body gets the upload aborted, and the
/// client `507` (no space) or `500`.
fn receive_body<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
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
    let take = conn.head.len().min(room(*remaining));
    if take > 0 {
        let mut chunk = [0u8; 512];
        let part = take.min(chunk.len());
        chunk[..part].copy_from_slice(&conn.head[..part]);
        conn.head.copy_within(part.., 0);
        let left = conn.head.len() - part;
        conn.head.truncate(left);
        if let Err(e) = store_body(&mut *shared.store, upload, &chunk[..part], remaining) {
            body_failed(stack, &mut *shared.store, conn, e);
        }
        return Step::Again;
    }
    if *remaining == 0 {
        let keep_alive = *keep_alive;
        if let Some(up) = upload.take() {
            if let Err(e) = shared.store.commit(up) {
                net_warn!(
                    "{}: http tcp{}: commit refused: {}",
                    stack.name(),
                    conn.io.socket(),
                    e
                );
                store_failed(conn, e);
                return Step::Again;
            }
        }
        respond(conn, 201, keep_alive, "stored\n");
        return Step::Again;
    }
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    let want = room(*remaining).min(buf.len());
    match stack.recv(socket, &mut buf[..want]) {
        Ok(0) => {
            net_warn!(
                "{}: http tcp{}: upload cut short, discarded",
                stack.name(),
                socket
            );
            Step::Done(drop_connection(stack, &mut *shared.store, conn))
        }
        Ok(n) => {
            conn.io.touch(now);
            if let Err(e) = store_body(&mut *shared.store, upload, &buf[..n], remaining) {
                body_failed(stack, &mut *shared.store, conn, e);
            }
            Step::Again
        }
        Err(RecvError::WouldBlock) => Step::Wait,
        Err(_) => Step::Done(drop_connection(stack, &mut *shared.store, conn)),
    }
}

/// A store write failed mid-body: the upload is aborted (nothing is left behind) and the
/// client told, `507` when the store is full.
fn body_failed<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    error: StoreError,
) {
    net_warn!(
        "{}: http tcp{}: store failed mid-body: {}; upload aborted",
        stack.name(),
        conn.io.socket(),
        error
    );
    if let Some(upload) = conn.phase.take_upload() {
        store.abort(upload);
    }
    match error {
        StoreError::NoSpace => respond(conn, 507, false, "the store is full\n"),
        _ => respond(conn, 500, false, "the store failed\n"),
    }
}

/// [`Phase::Respond`]: sends the body once the head is out, then waits for the next
/// request or, without keep-alive, shuts down writing and lingers.
fn send_response<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
) -> Step {
    let socket = conn.io.socket();
    let Phase::Respond { body, keep_alive } = &mut conn.phase else {
        return Step::Again;
    };
    let keep_alive = *keep_alive;
    let mut buf = [0u8; 512];
    match body {
        Body::None => {}
        Body::File { reader, next, end } => {
            while *next < *end {
                let (at, store) = (*next, &mut *shared.store);
                let read =
                    |into: &mut [u8]| store.read_at(reader, at, into).ok().filter(|&n| n > 0);
                let limit = room(*end - *next);
                match conn.io.send_chunk(stack, now, &mut buf, limit, read) {
                    Chunk::Sent(sent) => *next += wide(sent),
                    Chunk::NoRoom | Chunk::Blocked => return Step::Wait,
                    // The version being sent cannot be read to its end: the response is
                    // cut short (a reset), never finished with other bytes.
                    Chunk::Unreadable | Chunk::Failed(_) => {
                        return Step::Done(drop_connection(stack, &mut *shared.store, conn))
                    }
                }
            }
        }
        Body::Snapshot { next } => {
            if shared.snapshot.owner != Some(socket) {
                net_warn!(
                    "{}: http tcp{}: stalled response lost the snapshot: reset",
                    stack.name(),
                    socket
                );
                return Step::Done(drop_connection(stack, &mut *shared.store, conn));
            }
            let bytes = &shared.snapshot.bytes;
            while *next < bytes.len() {
                match conn.io.send(stack, now, &bytes[*next..]) {
                    Ok(n) => {
                        *next += n;
                        shared.snapshot.progress = now;
                    }
                    Err(SendError::WouldBlock) => return Step::Wait,
                    Err(_) => return Step::Done(drop_connection(stack, &mut *shared.store, conn)),
                }
            }
            shared.snapshot.owner = None;
        }
    }
    *shared.served += 1;
    if keep_alive {
        conn.phase = Phase::Head { since: None };
        return Step::Again;
    }
    let _ = stack.shutdown_write(conn.io.socket());
    conn.phase = Phase::Linger {
        until: now + LINGER,
        cap: now + LINGER_MAX,
    };
    Step::Again
}

/// [`Phase::Linger`]: reads and drops what the client still sends, until it closes or
/// pauses for the linger time (or the cap passes).
fn linger<U, R>(
    stack: &mut Stack<'_>,
    conn: &mut Connection<U, R>,
    now: Instant,
    until: Instant,
    cap: Instant,
) -> Step {
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    match stack.recv(socket, &mut buf) {
        Ok(0) => {
            let _ = stack.close(socket);
            Step::Done(false)
        }
        Ok(_) if now < cap => {
            conn.phase = Phase::Linger {
                until: now + LINGER,
                cap,
            };
            Step::Again
        }
        Err(RecvError::WouldBlock) if now < until && now < cap => Step::Done(true),
        _ => {
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
) -> Result<(), StoreError> {
    *remaining -= wide(data.len());
    match upload.as_mut() {
        Some(up) => store.write(up, data),
        None => Err(StoreError::Io),
    }
}

/// Answers `408` and closes once the client has been silent (or has not read) past the
/// idle timeout, or its request head has taken longer than the head timeout; `false`
/// when it has.
fn check_timeout<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload, S::Reader>,
    now: Instant,
) -> bool {
    let (idle, head) = shared.timeouts;
    let head_late = match conn.phase {
        Phase::Head { since: Some(since) } => now - since > head,
        _ => false,
    };
    if head_late {
        net_warn!(
            "{}: http tcp{}: request head took longer than {}: 408",
            stack.name(),
            conn.io.socket(),
            head
        );
    } else if !conn.io.idle_expired(stack, now, idle, "http", "408") {
        return true;
    }
    conn.io.discard_queue();
    text_response(conn.io.queue(), 408, false, "request timeout\n");
    let store = &mut *shared.store;
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Close);
    false
}

fn drop_connection<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
) -> bool {
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Abort);
    false
}
