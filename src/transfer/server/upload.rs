//! A put's data: hashed and stored as it arrives, until the announced size is in.

use core::ops::ControlFlow::{Break, Continue};

use super::super::store::{Store, StoreError};
use super::super::wire::{Status, TRAILER_FRAME};
use super::closing::give_up;
use super::phase::{Connection, Phase};
use super::reply::{refuse, store_status};
use super::trailer::{check_trailer, read_trailer, take_trailer};
use super::Step;
use crate::convert::{elapsed, room, wide};
use crate::handle::SocketHandle;
use crate::socket::tcp::RecvError;
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// [`Phase::Receiving`]: hashes and stores a put's data until the announced size is in,
/// then goes on to its trailer.
pub(super) fn receive_data<S: Store>(
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
    if want == 0 && end_of_data(conn, now) {
        return read_trailer(stack, store, conn, now, completed);
    }
    let socket = conn.io.socket();
    let Some(want) = store_room(stack.name(), socket, store, &mut conn.phase, want, now) else {
        // A store behind closes the window: the client is not slow, and its rate counts
        // again from when the store takes data.
        conn.io.start_rate(stack, now);
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
                None if end_of_data(conn, now) => {
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

/// How soon an upload whose store had no room ([`Store::upload_room`]) is polled again,
/// if nothing arrives meanwhile: its data waits in the rx ring, whose window is closed.
const STORE_RETRY: Duration = Duration::from_millis(1);

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
                elapsed(now, since).total_millis()
            );
            *store_full = None;
            Some(take)
        }
        (_, None) => Some(take),
    }
}

/// Takes upload data that came with the request, then the trailer if it came too; bytes
/// after the trailer make the put a bad request (nothing may follow it).
pub(super) fn receive<S: Store>(
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
    if !end_of_data(conn, stack.now()) {
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
pub(super) fn end_of_data<U, R>(conn: &mut Connection<U, R>, now: Instant) -> bool {
    match &mut conn.phase {
        Phase::Receiving {
            upload,
            size,
            received,
            hasher,
            ..
        } if *received == *size => {
            conn.phase = Phase::Trailer {
                since: now,
                upload: upload.take(),
                size: *size,
                digest: hasher.take().map(crate::digest::finish),
                frame: [0; TRAILER_FRAME],
                have: 0,
            };
            true
        }
        Phase::Trailer { .. } => true,
        _ => false,
    }
}

/// Hashes and stores `data` where it lies (in the rx ring), for [`Stack::recv_with`];
/// the store's error, if it failed. The caller takes at most what the upload still lacks.
pub(super) fn absorb<S: Store>(
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
        crate::digest::update(hasher, data);
    }
    *received += wide(data.len());
    match upload.as_mut() {
        Some(up) => store.write(up, data),
        None => Ok(()),
    }
}
