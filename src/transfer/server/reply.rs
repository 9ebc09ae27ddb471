//! What the server answers: frames queued for the peer, and refusals (a `Status` frame,
//! then the connection drains and closes).

use super::super::store::{Store, StoreError};
use super::super::wire::{emit_accept, emit_status, Digest, Status, WireError, MAX_FRAME};
use super::phase::{Connection, Drain, Phase};
use crate::services::connection::HoldsUpload;
use crate::stack::Stack;

/// Queues an `Accept{size, offset}` frame.
pub(super) fn queue_accept<U, R>(conn: &mut Connection<U, R>, size: u64, offset: u64) {
    let mut frame = [0u8; MAX_FRAME + 4];
    let written = emit_accept(size, offset, &mut frame);
    queue_written(conn, &frame, written);
}

/// Queues a `Status{status, digest, reason}` frame.
pub(super) fn queue_status<U, R>(
    conn: &mut Connection<U, R>,
    status: Status,
    digest: &Digest,
    reason: &str,
) {
    let mut frame = [0u8; MAX_FRAME + 4];
    let written = emit_status(status, digest, reason, &mut frame);
    queue_written(conn, &frame, written);
}

/// Queues the frame an encoder `written` into `frame`.
pub(super) fn queue_written<U, R>(
    conn: &mut Connection<U, R>,
    frame: &[u8],
    written: Result<usize, WireError>,
) {
    if let Ok(n) = written {
        // Cannot overflow: at most two frames are ever pending.
        let _ = conn.io.queue().extend_from_slice(&frame[..n]);
    }
}

pub(super) fn refuse<S: Store>(
    stack: &Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
    status: Status,
    reason: &str,
) {
    net_warn!(
        "{}: transfer tcp{}: {}: {}",
        stack.name(),
        conn.io.socket(),
        status,
        reason
    );
    if let Some(upload) = conn.phase.take_upload() {
        store.abort(upload);
    }
    queue_status(conn, status, &[0; 32], reason);
    conn.phase = Phase::Closing {
        drain: Some(Drain::from(stack.now())),
    };
}

pub(super) fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::NotFound => Status::NotFound,
        StoreError::NoSpace => Status::NoSpace,
        StoreError::Busy => Status::Busy,
        StoreError::Conflict => Status::Conflict,
        StoreError::Replaced => Status::Replaced,
        StoreError::Io | StoreError::Unreadable | StoreError::ReadOnly => Status::Storage,
    }
}
