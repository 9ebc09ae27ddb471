//! What the server answers: frames queued for the peer, and refusals (a `Status` frame,
//! then the connection drains and closes).

use super::super::store::{Store, StoreError};
use super::super::wire::{Message, Status, MAX_FRAME};
use super::phase::{Connection, Phase, DRAIN_PAUSE};
use crate::services::connection::HoldsUpload;
use crate::stack::Stack;

pub(super) fn queue_frame<U, R>(conn: &mut Connection<U, R>, message: Message<'_>) {
    let mut frame = [0u8; MAX_FRAME + 4];
    if let Ok(n) = message.emit(&mut frame) {
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
    queue_frame(
        conn,
        Message::Status {
            status,
            digest: [0; 32],
            reason,
        },
    );
    conn.phase = Phase::Closing {
        drain_until: Some(stack.now() + DRAIN_PAUSE),
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
