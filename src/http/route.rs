//! Acting on a complete request head: what each method and target gets, as the head (or
//! the whole short answer) queued on the connection and the phase that sends the rest.

use super::generated::{write_listing, write_stats};
use super::request::{Generated, HeadError, Method, RangeSpec, Request, Unsatisfiable};
use super::response::{
    head, head_start, length_field, Answer, ALLOW_FIELD, CONTINUE, JSON, OCTETS, TEXT_PLAIN,
};
use super::state::{Body, Conn, Phase, Shared};
use crate::convert::elapsed;
use crate::stack::Stack;
use crate::transfer::{Store, StoreError};
use smoltcp::time::{Duration, Instant};

/// How long a response may hold the generated-body buffer without sending a byte before
/// a client that needs the buffer takes it (and the stalled response is reset).
const SNAPSHOT_HOLD: Duration = Duration::from_secs(1);

/// Acts on the complete request head at the start of `conn.head`, which ends after
/// `head_end` bytes.
pub(super) fn start<S: Store, const N: usize>(
    stack: &Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    head_end: usize,
    now: Instant,
) {
    let parsed = Request::parse(&conn.head, stack, conn.io.socket(), shared.token);
    // Keep what followed the head: a PUT body's start, or a pipelined request.
    conn.consume_head(parsed.as_ref().map_or(head_end, |(_, length)| *length));
    let request = match parsed {
        Ok((request, _)) => request,
        Err(HeadError::TooManyHeaders) => return conn.answer(Answer::TooManyHeaders, false),
        Err(HeadError::Malformed) => return conn.answer(Answer::Malformed, false),
    };
    if let Err(answer) = route(stack, shared, conn, &request, now) {
        let (answer, keep_alive) = answer;
        conn.answer(answer, keep_alive);
    }
}

/// A short answer instead of what was asked, and whether the connection stays open.
type Refusal = (Answer, bool);

/// Starts the response to `request`, or says which short answer it gets instead.
#[inline(never)]
fn route<S: Store, const N: usize>(
    stack: &Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    request: &Request,
    now: Instant,
) -> Result<(), Refusal> {
    // RFC 9112 6.3: a length that cannot be trusted leaves no way to find the next
    // request (a smuggling primitive behind a proxy): 400, and the connection closes.
    let content_length = match request.content_length {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err((Answer::BadLength, false)),
        None => None,
    };
    if request.chunked && content_length.is_some() {
        return Err((Answer::LengthAndChunked, false));
    }
    let method = request.method;
    let has_body = request.chunked || content_length.is_some_and(|n| n > 0);
    let keep_alive = request.version == 1 && !request.wants_close;
    // A body we will not read makes the stream unusable for a next request.
    let bodiless_keep_alive = keep_alive && !has_body;
    let writes = matches!(method, Method::Put | Method::Post | Method::Delete);
    if writes && !request.authorized {
        return Err((Answer::Unauthorized, false));
    }
    if writes && request.generated.is_some() {
        // `/` and `/stats` are generated: no file may take their place.
        return Err((Answer::Generated, false));
    }
    let store = &mut *shared.store;
    match method {
        Method::Get | Method::Head => match request.generated {
            Some(generated) => start_generated(
                stack,
                shared,
                conn,
                generated,
                method,
                bodiless_keep_alive,
                now,
            ),
            None => start_file(store, conn, request, bodiless_keep_alive),
        },
        Method::Put | Method::Post => {
            let name = request.name.as_ref().ok_or((Answer::BadName, false))?;
            if request.chunked {
                return Err((Answer::Chunked, false));
            }
            let length = content_length.ok_or((Answer::LengthRequired, false))?;
            if method == Method::Post && store.size(name).is_ok() {
                return Err((Answer::Exists, false));
            }
            // Refused before `100 Continue`. A body announced is not read, so the
            // connection closes: a client that did not wait for `100 Continue` sends it
            // anyway, and the next request would be read out of it (request smuggling).
            let upload = store.begin(name, length).map_err(|e| match e {
                StoreError::NotFound => (Answer::NotFound, bodiless_keep_alive),
                StoreError::ReadOnly => (Answer::ReadOnly, bodiless_keep_alive),
                _ => (store_refusal(e), false),
            })?;
            if request.expect_continue {
                let _ = conn.io.queue().extend_from_slice(CONTINUE);
            }
            conn.phase = Phase::Upload {
                upload: Some(upload),
                remaining: length,
                keep_alive,
            };
            Ok(())
        }
        Method::Delete => {
            let name = request.name.as_ref().ok_or((Answer::NotFound, false))?;
            store.remove(name).map_err(|e| match e {
                StoreError::NotFound => (Answer::NotFound, bodiless_keep_alive),
                StoreError::ReadOnly => (Answer::ReadOnly, bodiless_keep_alive),
                _ => (Answer::StoreFailed, false),
            })?;
            no_content(conn, "", bodiless_keep_alive);
            Ok(())
        }
        Method::Options => {
            no_content(conn, ALLOW_FIELD, bodiless_keep_alive);
            Ok(())
        }
        Method::NotAllowed => Err((Answer::NotAllowed, bodiless_keep_alive)),
        Method::Unknown => Err((Answer::NotImplemented, false)),
    }
}

/// `204` with `fields`.
fn no_content<U, R>(conn: &mut Conn<U, R>, fields: &str, keep_alive: bool) {
    head(conn.io.queue(), 204, keep_alive, fields, 0);
    conn.respond(Body::None, keep_alive);
}

/// The answer to an upload the store refused or failed, which closes the connection.
pub(super) fn store_refusal(error: StoreError) -> Answer {
    match error {
        StoreError::NoSpace => Answer::TooLarge,
        StoreError::Busy => Answer::UploadBusy,
        StoreError::Conflict => Answer::Conflict,
        StoreError::ReadOnly => Answer::ReadOnly,
        _ => Answer::StoreFailed,
    }
}

/// `GET`/`HEAD` of a stored file: opens the version it sends to the end.
#[inline(never)]
fn start_file<S: Store>(
    store: &mut S,
    conn: &mut Conn<S::Upload, S::Reader>,
    request: &Request,
    keep_alive: bool,
) -> Result<(), Refusal> {
    let name = request
        .name
        .as_ref()
        .ok_or((Answer::NotFound, keep_alive))?;
    let (reader, len) = store.open(name).map_err(|e| match e {
        StoreError::NotFound => (Answer::NotFound, keep_alive),
        _ => (Answer::Unreadable, keep_alive),
    })?;
    let resolved = request.range.map(|r: RangeSpec| r.resolve(len));
    let mut out = match resolved {
        Some(Err(Unsatisfiable)) => {
            let mut out = head_start(conn.io.queue(), 416, keep_alive);
            out.str("Content-Range: bytes */").num(len).str("\r\n");
            length_field(&mut out, "", 0);
            out.str("\r\n");
            conn.respond(Body::None, keep_alive);
            return Ok(());
        }
        Some(Ok((start, end))) => {
            let mut out = head_start(conn.io.queue(), 206, keep_alive);
            length_field(&mut out, OCTETS, end - start);
            out.str("Content-Range: bytes ")
                .num(start)
                .str("-")
                .num(end.saturating_sub(1))
                .str("/")
                .num(len)
                .str("\r\n");
            out
        }
        None => {
            let mut out = head_start(conn.io.queue(), 200, keep_alive);
            length_field(&mut out, OCTETS, len);
            out
        }
    };
    out.str("\r\n");
    let (next, end) = match resolved {
        Some(Ok(range)) => range,
        _ => (0, len),
    };
    let body = if request.method == Method::Head {
        Body::None
    } else {
        Body::File { reader, next, end }
    };
    conn.respond(body, keep_alive);
    Ok(())
}

/// `GET`/`HEAD` of `/` or `/stats`: takes the snapshot, unless another response is
/// using it and still moving.
#[inline(never)]
fn start_generated<S: Store, const N: usize>(
    stack: &Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    generated: Generated,
    method: Method,
    keep_alive: bool,
    now: Instant,
) -> Result<(), Refusal> {
    let snapshot = &mut *shared.snapshot;
    let socket = conn.io.socket();
    if let Some(owner) = snapshot.owner.filter(|&owner| owner != socket) {
        if elapsed(now, snapshot.progress) <= SNAPSHOT_HOLD {
            return Err((Answer::SnapshotBusy, keep_alive));
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
            JSON
        }
        Generated::Listing => {
            write_listing(&mut *shared.store, &mut snapshot.bytes);
            TEXT_PLAIN
        }
    };
    head(
        conn.io.queue(),
        200,
        keep_alive,
        kind,
        snapshot.bytes.len() as u64,
    );
    let body = if method == Method::Head {
        snapshot.owner = None;
        Body::None
    } else {
        snapshot.owner = Some(socket);
        snapshot.progress = now;
        Body::Snapshot { next: 0 }
    };
    conn.respond(body, keep_alive);
    Ok(())
}
