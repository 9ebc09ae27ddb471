//! Moving one connection forward, a phase at a time, on the shared connection skeleton:
//! read a head (then [`route`](super::route) acts on it), take an upload into the store,
//! send a response's body, linger after the last; and the timeouts.

use super::request::complete_head;
use super::response::{text_response, Answer};
use super::route::{start, store_refusal};
use super::state::{Body, Conn, Phase, Shared, CHUNK, HEAD_MAX};
use crate::convert::{elapsed, room, wide};
use crate::services::connection::{count_slow_request, Chunk, Ending, Flush};
use crate::services::tx_room;
use crate::socket::tcp::{RecvError, SendError};
use crate::stack::Stack;
use crate::transfer::{Store, StoreError};
use smoltcp::time::{Duration, Instant};

/// How long a closing connection waits for the client to close its side, from the last
/// byte it sent.
const LINGER: Duration = Duration::from_secs(2);
/// The longest a closing connection drains a client that keeps sending.
const LINGER_MAX: Duration = Duration::from_secs(30);

/// What one step of a connection decided.
enum Step {
    /// Go round again: flush, then the step of the (maybe new) phase.
    Again,
    /// Waiting on the client (for bytes, or for room to send), so the timeouts apply.
    Wait,
    /// This poll is over; the connection stays.
    Keep,
    /// The connection is over, its socket closed.
    Closed,
    /// The connection is over: reset it (and abort an upload in progress).
    Reset,
}

/// What a receive into a phase's buffer got.
enum Received {
    /// This many bytes (at least one).
    Bytes(usize),
    /// The client closed its side (`Ok(0)`).
    Closed,
    /// Nothing now (`WouldBlock`).
    Nothing,
    /// The socket failed.
    Failed,
}

/// Receives into `buf`, counting bytes as progress.
fn receive<U, R>(
    stack: &mut Stack<'_>,
    conn: &mut Conn<U, R>,
    buf: &mut [u8],
    now: Instant,
) -> Received {
    match stack.recv(conn.io.socket(), buf) {
        Ok(0) => Received::Closed,
        Ok(n) => {
            conn.io.touch(now);
            Received::Bytes(n)
        }
        Err(RecvError::WouldBlock) => Received::Nothing,
        Err(_) => Received::Failed,
    }
}

/// Moves one connection forward; `false` when it is finished.
pub(super) fn advance<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    now: Instant,
) -> bool {
    let mut buf = [0u8; CHUNK];
    loop {
        // Flush the pending head (or short body) first; a client that does not read it
        // is timed out like a silent one.
        let step = match conn.io.flush(stack, now) {
            Ok(Flush::Done) => match conn.phase {
                Phase::Head { .. } => read_head(stack, shared, conn, &mut buf, now),
                Phase::Upload { .. } => receive_body(stack, shared, conn, &mut buf, now),
                Phase::Respond { .. } => send_response(stack, shared, conn, &mut buf, now),
                Phase::Linger { until, cap, room } => {
                    linger(stack, conn, &mut buf, now, (until, cap, room))
                }
            },
            Ok(Flush::Pending) => Step::Wait,
            Err(_) => Step::Reset,
        };
        match step {
            Step::Again => {}
            Step::Wait => return check_timeout(stack, shared, conn, now),
            Step::Keep => return true,
            Step::Closed => return false,
            Step::Reset => return finish(stack, shared.store, conn),
        }
    }
}

/// [`Phase::Head`]: reads until the head is complete, then acts on the request.
fn read_head<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    buf: &mut [u8; CHUNK],
    now: Instant,
) -> Step {
    if let Some(head_end) = complete_head(&mut conn.head) {
        start(stack, shared, conn, head_end, now);
        // A body either way (the request's, the response's): the minimum rate counts
        // from here.
        conn.io.start_rate(stack, now);
        return Step::Again;
    }
    if conn.head.is_full() {
        let answer = if crate::text::contains_byte(&conn.head, b'\n') {
            Answer::HeadTooLarge
        } else {
            Answer::LineTooLong
        };
        conn.answer(answer, false);
        return Step::Again;
    }
    let room = (HEAD_MAX - conn.head.len()).min(CHUNK);
    match receive(stack, conn, &mut buf[..room], now) {
        Received::Bytes(n) => {
            let _ = conn.head.extend_from_slice(&buf[..n]);
            if let Phase::Head {
                since: since @ None,
            } = &mut conn.phase
            {
                *since = Some(now);
            }
            Step::Again
        }
        Received::Closed => close(stack, conn),
        Received::Nothing => Step::Wait,
        Received::Failed => Step::Reset,
    }
}

/// [`Phase::Upload`]: stores a PUT's body (what came with the head first), then commits
/// it and answers `201`. A store that fails mid-body or at the commit gets the upload
/// aborted, and the client `507` (no space) or `500` (`409` for a commit that lost to a
/// newer upload).
fn receive_body<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    buf: &mut [u8; CHUNK],
    now: Instant,
) -> Step {
    let Phase::Upload { remaining, .. } = conn.phase else {
        return Step::Again;
    };
    let want = room(remaining).min(CHUNK);
    // Body bytes that came with the head first.
    let n = if !conn.head.is_empty() && want > 0 {
        let part = conn.head.len().min(want);
        buf[..part].copy_from_slice(&conn.head[..part]);
        conn.consume_head(part);
        part
    } else if remaining == 0 {
        let Phase::Upload {
            upload, keep_alive, ..
        } = &mut conn.phase
        else {
            return Step::Again;
        };
        let keep_alive = *keep_alive;
        if let Some(up) = upload.take() {
            if let Err(e) = shared.store.commit(up) {
                net_warn!(
                    "{}: http tcp{}: commit refused: {}",
                    stack.name(),
                    conn.io.socket(),
                    e
                );
                // No space at the commit is the disk filling mid-body, as below: 507,
                // not the 413 of an upload refused before its body.
                let answer = match e {
                    StoreError::NoSpace => Answer::StoreFull,
                    e => store_refusal(e),
                };
                conn.answer(answer, false);
                return Step::Again;
            }
        }
        conn.answer(Answer::Stored, keep_alive);
        return Step::Again;
    } else {
        match receive(stack, conn, &mut buf[..want], now) {
            Received::Bytes(n) => n,
            Received::Closed => {
                net_warn!(
                    "{}: http tcp{}: upload cut short, discarded",
                    stack.name(),
                    conn.io.socket()
                );
                return Step::Reset;
            }
            Received::Nothing => return Step::Wait,
            Received::Failed => return Step::Reset,
        }
    };
    let Phase::Upload {
        upload, remaining, ..
    } = &mut conn.phase
    else {
        return Step::Again;
    };
    *remaining -= wide(n);
    let written = match upload.as_mut() {
        Some(up) => shared.store.write(up, &buf[..n]),
        None => Err(StoreError::Io),
    };
    if let Err(error) = written {
        net_warn!(
            "{}: http tcp{}: store failed mid-body: {}; upload aborted",
            stack.name(),
            conn.io.socket(),
            error
        );
        if let Some(upload) = upload.take() {
            shared.store.abort(upload);
        }
        let answer = match error {
            StoreError::NoSpace => Answer::StoreFull,
            _ => Answer::StoreFailed,
        };
        conn.answer(answer, false);
    }
    Step::Again
}

/// [`Phase::Respond`]: sends the body once the head is out, then waits for the next
/// request or, without keep-alive, shuts down writing and lingers.
fn send_response<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    buf: &mut [u8; CHUNK],
    now: Instant,
) -> Step {
    let socket = conn.io.socket();
    let Phase::Respond { body, keep_alive } = &mut conn.phase else {
        return Step::Again;
    };
    let keep_alive = *keep_alive;
    match body {
        Body::None => {}
        Body::File { reader, next, end } => {
            while *next < *end {
                let (at, store) = (*next, &mut *shared.store);
                let read =
                    |into: &mut [u8]| store.read_at(reader, at, into).ok().filter(|&n| n > 0);
                match conn.io.send_chunk(stack, now, buf, room(*end - at), read) {
                    Chunk::Sent(sent) => *next += wide(sent),
                    Chunk::NoRoom | Chunk::Blocked => return Step::Wait,
                    // The version being sent cannot be read to its end: the response is
                    // cut short (a reset), never finished with other bytes.
                    Chunk::Unreadable | Chunk::Failed(_) => return Step::Reset,
                }
            }
        }
        Body::Snapshot { next } => {
            let snapshot = &mut *shared.snapshot;
            if snapshot.owner != Some(socket) {
                net_warn!(
                    "{}: http tcp{}: stalled response lost the snapshot: reset",
                    stack.name(),
                    socket
                );
                return Step::Reset;
            }
            while let Some(rest) = snapshot.bytes.get(*next..).filter(|rest| !rest.is_empty()) {
                match conn.io.send(stack, now, rest) {
                    Ok(n) => {
                        *next += n;
                        snapshot.progress = now;
                    }
                    Err(SendError::WouldBlock) => return Step::Wait,
                    Err(_) => return Step::Reset,
                }
            }
            snapshot.owner = None;
        }
    }
    *shared.served += 1;
    conn.phase = if keep_alive {
        Phase::Head { since: None }
    } else {
        let _ = stack.shutdown_write(socket);
        Phase::Linger {
            until: now + LINGER,
            cap: now + LINGER_MAX,
            room: tx_room(stack, socket),
        }
    };
    Step::Again
}

/// [`Phase::Linger`]: reads and drops what the client still sends, until it closes or
/// pauses for the linger time (or the cap passes). The client acknowledging more of the
/// response's tail (the tx ring's room growing) is progress too, so a slow reader is
/// never cut off while it reads.
/// Then the socket is closed as Apache's lingering close ends: `close()` with nothing
/// unread, a FIN after whatever is still queued, which the orphan delivers (a reader
/// that stopped is then the orphan rules' to cut off). Only a client still sending at
/// the cap, or a failed socket, is reset.
fn linger<U, R>(
    stack: &mut Stack<'_>,
    conn: &mut Conn<U, R>,
    buf: &mut [u8; CHUNK],
    now: Instant,
    (until, cap, before): (Instant, Instant, usize),
) -> Step {
    let (step, sent) = match receive(stack, conn, buf, now) {
        Received::Closed => return close(stack, conn),
        Received::Bytes(_) if now < cap => (Step::Again, true),
        Received::Nothing => (Step::Keep, false),
        _ => return Step::Reset,
    };
    let room = tx_room(stack, conn.io.socket());
    let until = if sent || room > before {
        now + LINGER
    } else {
        until
    };
    if now < until && now < cap {
        conn.phase = Phase::Linger { until, cap, room };
        step
    } else {
        close(stack, conn)
    }
}

/// Closes the socket after a whole exchange (the client closed its side, or stopped
/// sending while the server lingered): a FIN after what is still queued, with nothing
/// unread.
fn close<U, R>(stack: &mut Stack<'_>, conn: &mut Conn<U, R>) -> Step {
    let _ = stack.close(conn.io.socket());
    Step::Closed
}

/// Answers `408` and closes once the client has been silent (or has not read) past the
/// idle timeout, its request head has taken longer than the head timeout, or its body
/// fell below the minimum rate; a response below it, already begun, is reset instead.
/// `false` when it has.
fn check_timeout<S: Store, const N: usize>(
    stack: &mut Stack<'_>,
    shared: &mut Shared<'_, S, N>,
    conn: &mut Conn<S::Upload, S::Reader>,
    now: Instant,
) -> bool {
    let (idle, head) = shared.timeouts;
    let head_took = match conn.phase {
        Phase::Head { since: Some(since) } => Some(elapsed(now, since)).filter(|took| *took > head),
        _ => None,
    };
    // A response already begun cannot become a 408: it is reset.
    let mut ending = Ending::Close;
    if let Some(took) = head_took {
        net_warn!(
            "{}: http tcp{}: request head took longer than {}: 408",
            stack.name(),
            conn.io.socket(),
            head
        );
        count_slow_request(stack, conn.io.socket(), took);
    } else if !conn
        .io
        .idle_expired(stack, now, idle, log_text!("http"), log_text!("408"))
    {
        // Not silent: a body, either way, must still keep the minimum rate.
        let upload = match conn.phase {
            Phase::Upload { .. } => true,
            Phase::Respond { .. } => false,
            _ => return true,
        };
        // Under defmt each text is an interned symbol, whose code reads alike for every text.
        #[allow(clippy::if_same_then_else)]
        let what = if upload {
            log_text!("http: 408")
        } else {
            log_text!("http: reset")
        };
        if !conn.io.too_slow(stack, &shared.min_rate, what) {
            return true;
        }
        if !upload {
            ending = Ending::Abort;
        }
    }
    conn.io.discard_queue();
    text_response(conn.io.queue(), Answer::Timeout, false);
    let store = &mut *shared.store;
    conn.io
        .give_up(stack, &mut conn.phase, |upload| store.abort(upload), ending);
    false
}

/// Ends a connection that is finished: one whose socket is still open (it failed, or its
/// response was cut short) is reset, and an upload in progress aborted. `false`.
fn finish<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Conn<S::Upload, S::Reader>,
) -> bool {
    conn.io.give_up(
        stack,
        &mut conn.phase,
        |upload| store.abort(upload),
        Ending::Abort,
    );
    false
}
