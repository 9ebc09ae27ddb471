//! The request phase: reading the request frame, and acting on a put or a get.

use core::ops::ControlFlow::{Break, Continue};

use heapless::String;
use sha2::{Digest as _, Sha256};

use super::super::store::Store;
use super::super::wire::{emit_version1_refusal, Message, Status, WireError, MAX_FRAME};
use super::closing::give_up;
use super::phase::{Connection, Drain, Phase};
use super::reply::{queue_accept, queue_written, refuse, store_status};
use super::upload::receive;
use super::{Next, Step};
use crate::socket::tcp::RecvError;
use crate::stack::Stack;
use crate::text::Text;
use smoltcp::time::Instant;

/// [`Phase::Request`]: reads until the request frame is whole, then acts on it.
pub(super) fn read_request<S: Store>(
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
            // A put's data or a get's: the minimum rate counts from here.
            conn.io.start_rate(stack, now);
            if let Phase::Receiving { .. } = conn.phase {
                // Data (and a trailer) that came with the request belong to the upload.
                receive(stack, store, conn, &buf[used..n], completed);
            }
            return Break(Next::Keep);
        }
    }
}

/// Acts on a request frame.
pub(super) fn start<S: Store>(
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
            let written = emit_version1_refusal(&mut out);
            queue_written(conn, &out, written);
            conn.phase = Phase::Closing {
                drain: Some(Drain::from(stack.now())),
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
                queue_accept(conn, size, 0);
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
                queue_accept(conn, size, offset);
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
pub(super) fn token_matches(required: Option<&str>, given: Option<&str>) -> bool {
    let Some(required) = required else {
        return true;
    };
    let Some(given) = given else {
        return false;
    };
    let (a, b) = (required.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}
