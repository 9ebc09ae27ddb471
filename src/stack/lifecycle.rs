//! The stack's part in a socket's life: `close()` and `abort()`, a listener's close, when
//! a backlog socket in TIME-WAIT may rejoin its backlog, and the lifecycle step after
//! every poll, which frees or recycles a slot whose connection is over. The TCP state
//! itself changes only in `TcpSlot`'s methods.

use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::table::{Slot, SlotKind};
use super::Stack;
use crate::handle::{SocketHandle, SocketType};

error_enum! {
    /// Error from [`Stack::close`] and [`Stack::abort`].
    pub enum CloseError {
        /// The handle names no socket (`EBADF`), for instance because it was closed already.
        BadHandle => "no socket with that handle",
    }
}

impl<'a> Stack<'a> {
    /// `close()`: the handle is released at once. A stream's connection closes in the
    /// background (FIN after the queued data) and its slot is reused once it is closed;
    /// unread received data makes it a reset instead, as Linux does.
    pub fn close(&mut self, handle: SocketHandle) -> Result<(), CloseError> {
        let name = self.name;
        let kind = self
            .slot(handle)
            .ok_or(CloseError::BadHandle)?
            .socket_type();
        match kind {
            SocketType::Listener => self.close_listener(handle),
            SocketType::Stream => self.close_stream(handle, false),
            SocketType::Datagram => {
                if let Some(Some(Slot {
                    kind: SlotKind::Udp(u),
                    ..
                })) = self.slots.get(handle.fileno())
                {
                    self.sockets.remove(u.inner);
                }
                self.slots[handle.fileno()] = None;
            }
        }
        log::info!("{name}: {kind}{handle} closed");
        Ok(())
    }

    /// Aborts a stream with RST (`SO_LINGER` with a zero timeout, then `close()`); other
    /// sockets are simply closed.
    pub fn abort(&mut self, handle: SocketHandle) -> Result<(), CloseError> {
        match self
            .slot(handle)
            .ok_or(CloseError::BadHandle)?
            .socket_type()
        {
            SocketType::Stream => {
                self.close_stream(handle, true);
                log::info!("{}: tcp{handle} aborted (RST)", self.name);
                Ok(())
            }
            _ => self.close(handle),
        }
    }

    fn close_stream(&mut self, handle: SocketHandle, abort: bool) {
        let Some(Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        })) = self.slots.get_mut(handle.fileno())
        else {
            return;
        };
        t.close(
            self.sockets.get_mut::<tcp::Socket>(t.inner()),
            abort,
            self.name,
            handle,
        );
        self.observe_slot(handle.fileno());
    }

    fn close_listener(&mut self, listener: SocketHandle) {
        for index in 0..self.slots.len() {
            if let Some(Slot {
                kind: SlotKind::Tcp(t),
                ..
            }) = &mut self.slots[index]
            {
                t.leave_backlog_of(listener, self.sockets.get_mut::<tcp::Socket>(t.inner()));
            }
        }
        self.slots[listener.fileno()] = None;
        self.observe_sockets(false);
    }

    /// The earliest moment a backlog socket in TIME-WAIT may go back to listening.
    pub(super) fn next_backlog_return(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|slot| match &slot.kind {
                SlotKind::Tcp(t) => {
                    let socket = self.sockets.get::<tcp::Socket>(t.inner());
                    let starved = t.listener().is_some_and(|l| self.backlog_starved(l));
                    t.backlog_return_at(socket, starved)
                }
                _ => None,
            })
            .min()
    }

    /// Whether no socket of `listener`'s backlog is listening: a SYN would meet a RST.
    fn backlog_starved(&self, listener: SocketHandle) -> bool {
        !self
            .slots
            .iter()
            .flatten()
            .any(|slot| matches!(&slot.kind, SlotKind::Tcp(t) if t.listening_for(listener)))
    }

    /// One lifecycle step of the TCP socket in slot `index`, after its ring watches
    /// (`TcpSlot::step`); with `reap`, a connection that is over leaves its slot free or
    /// back in its backlog (only after a poll, so a pending RST or ACK has left).
    pub(super) fn tcp_lifecycle(&mut self, index: usize, reap: bool) {
        let starved = match self.slots[index].as_ref().map(|slot| &slot.kind) {
            Some(SlotKind::Tcp(t)) => t
                .time_wait_listener()
                .is_some_and(|l| self.backlog_starved(l)),
            _ => false,
        };
        let handle = SocketHandle(index as u16);
        let Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        }) = self.slots[index].as_mut()
        else {
            return;
        };
        let inner = t.inner();
        let freed = t.step(
            self.sockets.get_mut::<tcp::Socket>(inner),
            self.name,
            handle,
            self.now,
            starved,
            reap,
            &mut self.ready_counter,
        );
        if freed {
            self.sockets.remove(inner);
            self.slots[index] = None;
            log::debug!("{}: tcp{handle} connection gone, slot free", self.name);
        }
    }
}
