//! A get: the skipped prefix of a resume hashed, then the data sent from the store
//! straight into the tx ring, and the final status after it.

use core::ops::ControlFlow::{Break, Continue};

use sha2::Digest as _;

use super::super::store::{Store, StoreError};
use super::super::wire::{Digest, Status};
use super::closing::give_up;
use super::phase::{Connection, Phase};
use super::reply::{queue_status, refuse, store_status};
use super::{Next, Step};
use crate::convert::{room, wide};
use crate::socket::tcp::SendError;
use crate::stack::Stack;
use smoltcp::time::Instant;

/// Bytes of a resumed file's prefix hashed per poll, so one resume cannot stall the rest.
pub(super) const PREFIX_HASH_PER_POLL: usize = 16 * 1024;

/// [`Phase::Sending`]: for a resume, hashes the prefix the client kept first (a slice
/// per poll); then, once the accept is out, sends the data as the tx ring takes it and
/// the final status after it.
pub(super) fn send_data<S: Store>(
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
    S::reader_exists(reader);
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
        // The server's own work, not the client's: the rate counts from the first byte.
        conn.io.start_rate(stack, now);
        return Continue(());
    }
    if !flushed {
        return Continue(());
    }
    loop {
        if *sent == *size {
            let digest: Digest = match hasher.take() {
                Some(hasher) => crate::digest::finish(hasher),
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
            queue_status(conn, Status::Ok, &digest, "");
            conn.phase = Phase::Closing { drain: None };
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
