use heapless::Vec;
use smoltcp::time::{Duration, Instant};

use super::idle::{IdleWatch, DEFAULT_IDLE_TIMEOUT};
use super::{
    listen_for_service, retain_connections, tx_room_or_error, ServiceError, MAX_CONNECTIONS,
};
use crate::handle::SocketHandle;
use crate::socket::tcp::RecvError;
use crate::stack::Stack;

/// TCP echo (RFC 862): every byte received is sent back; when the peer closes, the
/// connection closes after the echo has left. Reads only as much as the tx ring has room
/// for, so a client that does not read makes the echo block, never lose bytes.
pub struct Echo {
    listener: SocketHandle,
    connections: Vec<(SocketHandle, IdleWatch), MAX_CONNECTIONS>,
    idle_timeout: Duration,
}

impl Echo {
    /// Listens on `port` with `backlog` (fresh stream sockets).
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<Echo, ServiceError> {
        let listener = listen_for_service(stack, port, backlog, MAX_CONNECTIONS)?;
        Ok(Echo {
            listener,
            connections: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        })
    }

    /// Changes how long a connection may move no byte before it is reset (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// When the first connection times out unless it moves.
    pub fn poll_at(&self) -> Option<Instant> {
        earliest_deadline(&self.connections, self.idle_timeout)
    }

    /// Accepts, echoes and closes; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((conn, _)) = stack.accept(self.listener) {
            // Cannot overflow: the backlog is no larger than the table.
            let _ = self
                .connections
                .push((conn, IdleWatch::new(stack, conn, now)));
        }
        let timeout = self.idle_timeout;
        retain_connections(&mut self.connections, |(conn, idle)| {
            echo_what_fits(stack, *conn) && !idle.expired(stack, *conn, timeout, log_text!("echo"))
        });
    }
}

/// TCP discard (RFC 863): reads and drops everything, closes when the peer does. The
/// receive ring drains as fast as the stack can poll, so it measures the path into the
/// device without any work on the data.
pub struct Discard {
    listener: SocketHandle,
    connections: Vec<(SocketHandle, IdleWatch), MAX_CONNECTIONS>,
    idle_timeout: Duration,
}

impl Discard {
    /// Listens on `port` with `backlog` (fresh stream sockets).
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<Discard, ServiceError> {
        Ok(Discard {
            listener: listen_for_service(stack, port, backlog, MAX_CONNECTIONS)?,
            connections: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        })
    }

    /// Changes how long a connection may move no byte before it is reset (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// When the first connection times out unless it moves.
    pub fn poll_at(&self) -> Option<Instant> {
        earliest_deadline(&self.connections, self.idle_timeout)
    }

    /// Accepts, drains and closes; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((conn, _)) = stack.accept(self.listener) {
            let _ = self
                .connections
                .push((conn, IdleWatch::new(stack, conn, now)));
        }
        let timeout = self.idle_timeout;
        retain_connections(&mut self.connections, |(conn, idle)| {
            drain(stack, *conn) && !idle.expired(stack, *conn, timeout, log_text!("discard"))
        });
    }
}

/// Echoes what the tx ring has room for; returns whether the connection goes on.
fn echo_what_fits(stack: &mut Stack<'_>, conn: SocketHandle) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let room = match tx_room_or_error(stack, conn) {
            Ok(room) => room.min(buf.len()),
            Err(_) => {
                let _ = stack.close(conn);
                return false;
            }
        };
        if room == 0 {
            return true;
        }
        match stack.recv(conn, &mut buf[..room]) {
            Ok(0) | Err(RecvError::ConnectionReset) | Err(RecvError::BadHandle) => {
                let _ = stack.close(conn);
                return false;
            }
            Ok(n) => {
                // Cannot be short: `n` is at most the room measured above.
                let _ = stack.send(conn, &buf[..n]);
            }
            Err(_) => return true,
        }
    }
}

/// Drops what arrived, where it lies in the rx ring (recv with `MSG_TRUNC`); returns
/// whether the connection goes on.
fn drain(stack: &mut Stack<'_>, conn: SocketHandle) -> bool {
    loop {
        match stack.recv_with(conn, usize::MAX, |_| {}) {
            Ok(0) | Err(RecvError::ConnectionReset) | Err(RecvError::BadHandle) => {
                let _ = stack.close(conn);
                return false;
            }
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

/// The first idle deadline among `connections`.
pub(crate) fn earliest_deadline(
    connections: &[(SocketHandle, IdleWatch)],
    timeout: Duration,
) -> Option<Instant> {
    connections
        .iter()
        .map(|(_, idle)| idle.deadline(timeout))
        .min()
}
