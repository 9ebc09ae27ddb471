use core::fmt::{self, Write as _};

use heapless::{String, Vec};

use crate::observe::{StatField, StatValue, StatsRow};
use crate::services::connection::{self, Chunk, Ending, Flush, HoldsUpload};
use crate::services::{listen_for_service, ServiceError};
use crate::socket::tcp::{RecvError, SendError};
use crate::transfer::{validate_name, Store, StoreError};
use crate::{Duration, Instant, SocketHandle, Stack};

/// Longest request head (request line and headers) accepted.
pub const HEAD_MAX: usize = 1024;
/// How long a client may stay silent (mid-request, or idle between requests).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// Room for a response head or a short generated body.
const OUT_MAX: usize = 512;
/// Headers parsed per request.
const MAX_HEADERS: usize = 16;
const ALLOW: &str = "GET, HEAD, PUT, OPTIONS";

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

/// A writer into a fixed buffer that counts what did not fit.
struct Out<'b, const N: usize> {
    buf: &'b mut Vec<u8, N>,
}

impl<const N: usize> fmt::Write for Out<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
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

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Queues a complete response with a short text body.
fn respond<U>(conn: &mut Connection<U>, status: u16, keep_alive: bool, body: &str) {
    text_response(conn.io.queue(), status, keep_alive, body);
    conn.phase = Phase::Respond {
        body: Body::None,
        keep_alive,
    };
}

/// Writes a complete response with a short text body into `out`.
fn text_response<const N: usize>(out: &mut Vec<u8, N>, status: u16, keep_alive: bool, body: &str) {
    let mut head = head_start(out, status, keep_alive);
    let _ = write!(
        head,
        "Content-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status == 405 || status == 501 {
        let _ = write!(head, "Allow: {ALLOW}\r\n");
    }
    let _ = write!(head, "\r\n{body}");
}

/// Starts a response head in `out` (a connection's queue).
fn head_start<const N: usize>(out: &mut Vec<u8, N>, status: u16, keep_alive: bool) -> Out<'_, N> {
    let mut out = Out { buf: out };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nServer: ringnet\r\nConnection: {connection}\r\n",
        reason(status)
    );
    out
}

/// Percent-decodes a request path into a store name; `None` if malformed.
fn decode_name(path: &str) -> Option<String<128>> {
    let path = path.split('?').next()?.strip_prefix('/')?;
    let mut name: Vec<u8, 128> = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let hex = core::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            i += 3;
            u8::from_str_radix(hex, 16).ok()?
        } else {
            i += 1;
            bytes[i - 1]
        };
        name.push(byte).ok()?;
    }
    let name = validate_name(&name).ok()?;
    String::try_from(name).ok()
}

/// One range of a `Range` header, before the file's length is known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeSpec {
    /// `bytes=A-`
    From(u64),
    /// `bytes=A-B` (B inclusive)
    FromTo(u64, u64),
    /// `bytes=-N`: the last N bytes.
    Last(u64),
}

impl RangeSpec {
    /// The bytes `start..end` of a file of `len` bytes, or `Err` when unsatisfiable (`416`).
    fn resolve(self, len: u64) -> Result<(u64, u64), ()> {
        let (start, end) = match self {
            RangeSpec::Last(0) => return Err(()),
            RangeSpec::Last(n) => (len.saturating_sub(n), len),
            RangeSpec::From(s) => (s, len),
            RangeSpec::FromTo(s, e) => (s, e.saturating_add(1).min(len)),
        };
        if start >= len {
            return Err(());
        }
        Ok((start, end))
    }
}

/// Parses `bytes=A-B`, `bytes=A-`, `bytes=-N`; `None` to ignore the header (another unit,
/// several ranges, or a malformed one), as RFC 9110 allows.
fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    match (start.trim(), end.trim()) {
        ("", suffix) => suffix.parse().ok().map(RangeSpec::Last),
        (s, "") => s.parse().ok().map(RangeSpec::From),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            (e >= s).then_some(RangeSpec::FromTo(s, e))
        }
    }
}

/// One socket's stats as a JSON object, from the fields the stats table is written from.
fn json_row(out: &mut dyn fmt::Write, row: &StatsRow, first: bool) -> fmt::Result {
    let comma = if first { "" } else { "," };
    write!(out, "{comma}{{\"socket\":\"{}{}\"", row.kind, row.handle)?;
    for StatField { name, value, .. } in row.fields() {
        match value {
            StatValue::Count(n) => write!(out, ",\"{name}\":{n}")?,
            StatValue::Ring(used, capacity) => write!(out, ",\"{name}\":[{used},{capacity}]")?,
        }
    }
    out.write_str("}")
}

/// Writes the file list into `out`, a line per file, as many as fit.
fn write_listing<S: Store, const N: usize>(store: &mut S, out: &mut Vec<u8, N>) {
    store.for_each(&mut |name, size| {
        let mut line: String<160> = String::new();
        let _ = writeln!(line, "{name} {size}");
        let _ = out.extend_from_slice(line.as_bytes());
    });
}

/// Writes the stats as JSON into `out`: every row that fits, and always a valid document.
fn write_stats<const N: usize>(stack: &Stack<'_>, out: &mut Vec<u8, N>) {
    let _ = write!(
        Out { buf: out },
        "{{\"host\":\"{}\",\"sockets\":[",
        stack.name()
    );
    let mut complete = true;
    for (i, row) in stack.stats_rows().enumerate() {
        let mut item: Vec<u8, 512> = Vec::new();
        let _ = json_row(&mut Out { buf: &mut item }, &row, i == 0);
        // Keep room for the closing bytes.
        if out.len() + item.len() + 32 > N {
            complete = false;
            break;
        }
        let _ = out.extend_from_slice(&item);
    }
    let _ = writeln!(Out { buf: out }, "],\"complete\":{complete}}}");
}

/// A request's method, as far as the server tells them apart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Get,
    Head,
    Put,
    Options,
    /// A method HTTP defines that this server does not allow (`405`).
    NotAllowed,
    /// Anything else (`501`).
    Unknown,
}

/// What the server acts on, taken out of a request head so that the head's buffer can
/// be reused before the response is built.
struct Request {
    method: Method,
    /// The `x` of `HTTP/1.x`.
    version: u8,
    /// `/` or `/stats`: a snapshot of the file list or of the stats.
    snapshot: Option<Body>,
    /// The path as a store name, if it is one.
    name: Option<String<128>>,
    wants_close: bool,
    content_length: Option<Result<u64, ()>>,
    chunked: bool,
    range: Option<RangeSpec>,
    expect_continue: bool,
}

impl Request {
    /// Parses a complete request head at the start of `head`, and says how many bytes it
    /// took; `None` if it is malformed. Logs the request line.
    fn parse(head: &[u8], stack: &Stack<'_>, socket: SocketHandle) -> Option<(Request, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(length)) = request.parse(head) else {
            return None;
        };
        let method = request.method.unwrap_or("");
        let path = request.path.unwrap_or("/");
        let version = request.version.unwrap_or(0);
        log::info!(
            "{}: http tcp{socket} {method} {path} HTTP/1.{version}",
            stack.name()
        );
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| core::str::from_utf8(h.value).ok())
        };
        let request = Request {
            method: match method {
                "GET" => Method::Get,
                "HEAD" => Method::Head,
                "PUT" => Method::Put,
                "OPTIONS" => Method::Options,
                "POST" | "DELETE" | "PATCH" | "TRACE" | "CONNECT" => Method::NotAllowed,
                _ => Method::Unknown,
            },
            version,
            snapshot: match path {
                // `next` tells the two apart until the snapshot is taken.
                "/" => Some(Body::Snapshot { next: 0 }),
                "/stats" => Some(Body::Snapshot { next: 1 }),
                _ => None,
            },
            name: decode_name(path),
            wants_close: header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            content_length: header("Content-Length")
                .map(|v| v.trim().parse::<u64>().map_err(|_| ())),
            chunked: header("Transfer-Encoding").is_some(),
            range: header("Range").and_then(parse_range),
            expect_continue: header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        };
        Some((request, length))
    }
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
        || matches!(content_length, Some(Err(())));
    // A body we will not read makes the stream unusable for a next request.
    let mut keep_alive = request.version == 1 && !request.wants_close;

    match method {
        Method::Get | Method::Head => {
            keep_alive &= !has_body;
            let body = match request.snapshot {
                Some(snapshot) => snapshot,
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
                        Some(Err(())) => {
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
            let kind = if matches!(body, Body::Snapshot { next: 1 }) {
                write_stats(stack, &mut snapshot.bytes);
                "application/json"
            } else {
                write_listing(store, &mut snapshot.bytes);
                "text/plain"
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

/// Moves one connection forward; `false` when it is finished.
fn advance<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Connection<S::Upload>,
    now: Instant,
    timeout: Duration,
) -> bool {
    let socket = conn.io.socket();
    let mut buf = [0u8; 512];
    loop {
        // Flush the pending head (or short body) first.
        match conn.io.flush(stack, now) {
            Ok(Flush::Done) => {}
            Ok(Flush::Pending) => return true,
            Err(_) => return drop_connection(stack, &mut *shared.store, conn),
        }
        match &mut conn.phase {
            Phase::Head => {
                if let Some(head_end) = complete_head(conn) {
                    start(stack, shared, conn, head_end);
                    continue;
                }
                if conn.head.is_full() {
                    let line_ends = conn.head.contains(&b'\n');
                    let (status, why) = if line_ends {
                        (431, "request head too large\n")
                    } else {
                        (414, "request line too long\n")
                    };
                    respond(conn, status, false, why);
                    continue;
                }
                let room = (HEAD_MAX - conn.head.len()).min(buf.len());
                match stack.recv(socket, &mut buf[..room]) {
                    Ok(0) => {
                        let _ = stack.close(socket);
                        return false;
                    }
                    Ok(n) => {
                        let _ = conn.head.extend_from_slice(&buf[..n]);
                        conn.io.touch(now);
                    }
                    Err(RecvError::WouldBlock) => break,
                    Err(_) => return drop_connection(stack, &mut *shared.store, conn),
                }
            }
            Phase::Upload {
                upload,
                remaining,
                keep_alive,
            } => {
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
                        continue;
                    }
                    continue;
                }
                if *remaining == 0 {
                    let keep_alive = *keep_alive;
                    if let Some(up) = upload.take() {
                        if shared.store.commit(up).is_err() {
                            respond(conn, 500, false, "the store could not commit\n");
                            continue;
                        }
                    }
                    respond(conn, 201, keep_alive, "stored\n");
                    continue;
                }
                let want = (*remaining).min(buf.len() as u64) as usize;
                match stack.recv(socket, &mut buf[..want]) {
                    Ok(0) => {
                        log::warn!(
                            "{}: http tcp{socket}: upload cut short, discarded",
                            stack.name()
                        );
                        return drop_connection(stack, &mut *shared.store, conn);
                    }
                    Ok(n) => {
                        conn.io.touch(now);
                        let data = buf;
                        if !store_body(&mut *shared.store, upload, &data[..n], remaining) {
                            respond(conn, 500, false, "the store failed\n");
                        }
                    }
                    Err(RecvError::WouldBlock) => break,
                    Err(_) => return drop_connection(stack, &mut *shared.store, conn),
                }
            }
            Phase::Respond { body, keep_alive } => {
                let keep_alive = *keep_alive;
                match body {
                    Body::None => {}
                    Body::File { name, next, end } => {
                        while *next < *end {
                            let (at, store) = (*next, &mut *shared.store);
                            let read = |into: &mut [u8]| {
                                store.read_at(name, at, into).ok().filter(|&n| n > 0)
                            };
                            let limit = (*end - *next) as usize;
                            match conn.io.send_chunk(stack, now, &mut buf, limit, read) {
                                Chunk::Sent(sent) => *next += sent as u64,
                                Chunk::NoRoom => {
                                    return check_timeout(
                                        stack,
                                        &mut *shared.store,
                                        conn,
                                        now,
                                        timeout,
                                    );
                                }
                                Chunk::Blocked => return true,
                                Chunk::Unreadable | Chunk::Failed(_) => {
                                    return drop_connection(stack, &mut *shared.store, conn)
                                }
                            }
                        }
                    }
                    Body::Snapshot { next } => {
                        let bytes = &shared.snapshot.bytes;
                        while *next < bytes.len() {
                            match conn.io.send(stack, now, &bytes[*next..]) {
                                Ok(n) => *next += n,
                                Err(SendError::WouldBlock) => return true,
                                Err(_) => return drop_connection(stack, &mut *shared.store, conn),
                            }
                        }
                        shared.snapshot.owner = None;
                    }
                }
                *shared.served += 1;
                if keep_alive {
                    conn.phase = Phase::Head;
                    continue;
                }
                let _ = stack.shutdown_write(socket);
                conn.phase = Phase::Linger {
                    until: now + LINGER,
                };
            }
            Phase::Linger { until } => match stack.recv(socket, &mut buf) {
                Ok(0) => {
                    let _ = stack.close(socket);
                    return false;
                }
                Ok(_) => {}
                Err(RecvError::WouldBlock) if now < *until => return true,
                Err(_) => {
                    let _ = stack.abort(socket);
                    return false;
                }
            },
        }
    }
    check_timeout(stack, &mut *shared.store, conn, now, timeout)
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

/// Where the head waiting in `conn.head` ends, once it is complete: at the first empty
/// line, whether lines end in CRLF or, as RFC 9112 (2.2) lets a server accept, a bare LF.
/// Empty lines before the request line are dropped first, as that section asks.
fn complete_head<U>(conn: &mut Connection<U>) -> Option<usize> {
    let blank = conn
        .head
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        let rest = conn.head.len() - blank;
        conn.head.copy_within(blank.., 0);
        conn.head.truncate(rest);
    }
    let head = &conn.head;
    (0..head.len()).find_map(|i| match (head[i], head.get(i + 1), head.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_and_traversal_is_refused() {
        assert_eq!(decode_name("/a%20b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(decode_name("/file?x=1").as_deref(), Some("file"));
        for bad in [
            "/../etc/passwd",
            "/%2e%2e%2fetc%2fpasswd",
            "/..%2Fx",
            "/a/b",
            "/%zz",
            "/%2",
            "/",
            "/.hidden",
        ] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stats_row_is_one_json_object() {
        let row = StatsRow {
            handle: crate::SocketHandle(3),
            kind: crate::SocketType::Stream,
            local_port: 7003,
            rx: (10, 4096),
            tx: (0, 2048),
            stats: crate::observe::SocketStats {
                bytes_in: 123_456,
                bytes_out: 7,
                rx_high_water: 4096,
                tx_high_water: 512,
                rx_blocks: 2,
                tx_blocks: 1,
                time_blocked: Duration::from_millis(1500),
                rx_full_events: 4,
                tx_full_events: 5,
                zero_windows: 6,
                rx_drops: 8,
                truncations: 9,
                ..Default::default()
            },
        };
        let mut json = std::string::String::new();
        json_row(&mut json, &row, false).unwrap();
        assert_eq!(
            json,
            concat!(
                r#",{"socket":"tcp#3","port":7003,"rx":[10,4096],"tx":[0,2048],"#,
                r#""bytes_in":123456,"bytes_out":7,"rx_high_water":4096,"tx_high_water":512,"#,
                r#""rx_blocks":2,"tx_blocks":1,"blocked_ms":1500,"rx_full":4,"tx_full":5,"#,
                r#""zero_windows":6,"drops":8,"truncations":9}"#
            )
        );
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let range = |value: &str, len: u64| parse_range(value).map(|r| r.resolve(len));
        assert_eq!(range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(range("bytes=-10", 100), Some(Ok((90, 100))));
        assert_eq!(range("bytes=-500", 100), Some(Ok((0, 100))));
        assert_eq!(range("bytes=50-500", 100), Some(Ok((50, 100))));
        assert_eq!(range("bytes=100-", 100), Some(Err(())));
        assert_eq!(range("bytes=-0", 100), Some(Err(())), "an empty suffix");
        assert_eq!(
            range("bytes=0-18446744073709551615", 100),
            Some(Ok((0, 100))),
            "the largest end does not overflow"
        );
        assert_eq!(
            range("bytes=0-1,5-6", 100),
            None,
            "multiple ranges: served whole"
        );
        assert_eq!(range("bytes=9-3", 100), None, "backwards: ignored");
        assert_eq!(range("items=0-1", 100), None);
    }
}
