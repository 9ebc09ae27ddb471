//! A put's trailer: read byte for byte after the data, its digest checked against the
//! data's before the upload is committed.

use core::ops::ControlFlow::{Break, Continue};

use super::super::store::Store;
use super::super::wire::{Message, Status, WireError, TRAILER_FRAME};
use super::closing::give_up;
use super::phase::{Connection, Phase};
use super::reply::{queue_status, refuse, store_status};
use super::{Next, Step};
use crate::socket::tcp::RecvError;
use crate::stack::Stack;
use smoltcp::time::Instant;

/// Copies what the trailer frame still lacks from `bytes`; returns how many it took.
pub(super) fn take_trailer<U, R>(conn: &mut Connection<U, R>, bytes: &[u8]) -> usize {
    let Phase::Trailer { frame, have, .. } = &mut conn.phase else {
        return 0;
    };
    let n = bytes.len().min(TRAILER_FRAME - *have);
    frame[*have..*have + n].copy_from_slice(&bytes[..n]);
    *have += n;
    n
}

/// [`Phase::Trailer`]: reads the trailer frame (and not a byte more), then checks it.
pub(super) fn read_trailer<S: Store>(
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
pub(super) fn check_trailer<S: Store>(
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
        ..
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
            queue_status(conn, Status::Ok, &digest, "");
            conn.phase = Phase::Closing { drain: None };
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
