//! How a connection ends: given up without a reply, or closed once its last frame is out.

use core::ops::ControlFlow::{Break, Continue};

use super::super::store::Store;
use super::phase::{Connection, Drain, Phase, DRAIN_PAUSE};
use super::{Next, Step};
use crate::services::connection::Ending;
use crate::socket::tcp::RecvError;
use crate::stack::Stack;
use smoltcp::time::Instant;

/// Drops the connection without a reply (reset or silence): the upload is discarded.
pub(super) fn give_up<S: Store>(
    stack: &mut Stack<'_>,
    store: &mut S,
    conn: &mut Connection<S::Upload, S::Reader>,
) -> Next {
    let abort = |upload| store.abort(upload);
    conn.io
        .give_up(stack, &mut conn.phase, abort, Ending::Abort);
    Next::Drop
}

/// [`Phase::Closing`]: closes once the final frame is out; with `drain`, first reads and
/// drops what the peer still sends, until it closes or pauses, or the drain's cap passes
/// (a close with its data unread is then a reset, as Linux's).
pub(super) fn close_when_flushed<U, R>(
    stack: &mut Stack<'_>,
    conn: &mut Connection<U, R>,
    now: Instant,
    flushed: bool,
    drain: Option<Drain>,
) -> Step {
    let socket = conn.io.socket();
    if let Some(mut drain) = drain.filter(|drain| now < drain.cap) {
        let mut buf = [0u8; 512];
        loop {
            match stack.recv(socket, &mut buf) {
                Ok(0) => break,
                Ok(_) => drain.until = now + DRAIN_PAUSE,
                Err(RecvError::WouldBlock) if now < drain.until => {
                    conn.phase = Phase::Closing { drain: Some(drain) };
                    return Break(Next::Keep);
                }
                Err(_) => break,
            }
        }
    }
    if !flushed {
        return Continue(());
    }
    let _ = stack.close(socket);
    Break(Next::Drop)
}
