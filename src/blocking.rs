//! Blocking calls, with the block made visible.
//!
//! A kernel socket call that cannot complete puts the thread to sleep until the network
//! changes. ringnet's core never sleeps by itself: a [`Waiter`] does the waiting (polls
//! the device and sleeps on the host, waits for an interrupt on the firmware, or advances
//! the virtual clock of the simulated wire). [`Blocking`] retries a non-blocking call
//! between waits until it completes or the socket's timeout (`SO_RCVTIMEO`,
//! `SO_SNDTIMEO`) expires, and logs each block twice: when it starts (which ring, its
//! occupancy, why) and when it ends (how long, how many polls, what ended it).

use core::fmt;

use smoltcp::wire::IpEndpoint;

use crate::observe::{Call, EventKind, Ring, Unblocked};
use crate::socket::{tcp, udp, SocketHandle};
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// Whether the world can still change, as a [`Waiter`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Something may have changed, or time passed: try the call again.
    Continue,
    /// Nothing can ever change (no frame in flight, no timer, no peer activity): waiting
    /// longer is pointless. Only a simulation can know this; the blocked call then fails
    /// as if its timeout had expired.
    Stalled,
}

/// What makes the world progress while a call is blocked.
pub trait Waiter {
    /// The current time.
    fn now(&self) -> Instant;

    /// Polls `stack` (and whatever else this waiter runs), then waits until something
    /// may have changed, but not past `deadline`.
    fn wait(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> Progress;
}

/// An error that has a non-blocking "would block" form and a "timed out" form.
pub(crate) trait MayBlock {
    fn would_block(&self) -> bool;
    fn timed_out() -> Self;
}

macro_rules! may_block {
    ($($error:ty),*) => {$(
        impl MayBlock for $error {
            fn would_block(&self) -> bool {
                matches!(self, <$error>::WouldBlock)
            }
            fn timed_out() -> Self {
                <$error>::TimedOut
            }
        }
    )*};
}

may_block!(
    tcp::RecvError,
    tcp::SendError,
    tcp::AcceptError,
    tcp::ConnectError,
    udp::RecvError,
    udp::SendError
);

/// Error from [`Blocking::send_all`]: the error that stopped it, and how much of the data
/// had been queued before (Python's `sendall` loses this figure; ringnet keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendAllError {
    /// Bytes queued before the error.
    pub sent: usize,
    /// What stopped the send.
    pub error: tcp::SendError,
}

impl fmt::Display for SendAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} bytes were queued", self.error, self.sent)
    }
}

impl core::error::Error for SendAllError {}

/// What one blocked call waits for, for its log lines.
struct Wait {
    handle: SocketHandle,
    call: Call,
    ring: Ring,
    timeout: Option<Duration>,
}

/// The blocking forms of the socket calls, on one stack and one waiter.
pub struct Blocking<'s, 'a, W: Waiter> {
    stack: &'s mut Stack<'a>,
    waiter: &'s mut W,
}

impl<'s, 'a, W: Waiter> Blocking<'s, 'a, W> {
    /// Blocking calls on `stack`, waiting with `waiter`.
    pub fn new(stack: &'s mut Stack<'a>, waiter: &'s mut W) -> Self {
        Blocking { stack, waiter }
    }

    /// The stack, for non-blocking calls between blocking ones.
    pub fn stack(&mut self) -> &mut Stack<'a> {
        self.stack
    }

    /// The waiter.
    pub fn waiter(&mut self) -> &mut W {
        self.waiter
    }

    /// Lets the world run for `duration`, as `time.sleep` does in a program whose sockets
    /// the kernel keeps serving meanwhile.
    pub fn sleep(&mut self, duration: Duration) {
        let until = self.waiter.now() + duration;
        while self.waiter.now() < until {
            if self.waiter.wait(self.stack, Some(until)) == Progress::Stalled {
                break;
            }
        }
    }

    fn timeouts(&self, handle: SocketHandle) -> (Option<Duration>, Option<Duration>) {
        self.stack.slot(handle).map_or((None, None), |slot| {
            (slot.options.recv_timeout, slot.options.send_timeout)
        })
    }

    /// Runs `op` until it stops saying `WouldBlock`, waiting with the waiter in between.
    fn block_on<T, E: MayBlock>(
        &mut self,
        wait: Wait,
        mut op: impl FnMut(&mut Stack<'a>) -> Result<T, E>,
        ended_by: impl Fn(&Result<T, E>) -> &'static str,
    ) -> Result<T, E> {
        let first = op(self.stack);
        if !matches!(&first, Err(e) if e.would_block()) {
            return first;
        }
        let handle = wait.handle;
        let (call, ring) = (wait.call, wait.ring);
        let (used, capacity) = self.stack.ring_of(handle, ring);
        self.stack.record(
            handle,
            EventKind::BlockStart {
                call,
                ring,
                used,
                capacity,
            },
        );
        let start = self.waiter.now();
        let deadline = wait.timeout.map(|t| start + t);
        let mut polls: u64 = 0;
        loop {
            let progress = self.waiter.wait(self.stack, deadline);
            polls += 1;
            let result = op(self.stack);
            let now = self.waiter.now();
            let still_blocked = matches!(&result, Err(e) if e.would_block());
            let expired = deadline.is_some_and(|d| now >= d);
            if still_blocked && !expired && progress == Progress::Continue {
                continue;
            }
            let outcome = if !still_blocked {
                Unblocked::Completed(ended_by(&result))
            } else if progress == Progress::Stalled {
                Unblocked::Stalled
            } else {
                Unblocked::TimedOut
            };
            let (used, capacity) = self.stack.ring_of(handle, ring);
            self.stack.record(
                handle,
                EventKind::BlockEnd {
                    call,
                    ring,
                    started: start,
                    waited: now - start,
                    polls,
                    outcome,
                    used,
                    capacity,
                },
            );
            return if still_blocked {
                Err(E::timed_out())
            } else {
                result
            };
        }
    }

    /// Blocking `recv()`: waits while the rx ring is empty. Returns `Ok(0)` at end of
    /// stream; see [`Stack::recv`].
    pub fn recv(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, tcp::RecvError> {
        let (timeout, _) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::Recv,
            ring: Ring::Rx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| stack.recv(handle, buf),
            |result| match result {
                Ok(0) => "peer closed (end of stream)",
                Ok(_) => "data arrived",
                Err(_) => "the connection failed",
            },
        )
    }

    /// Blocking `send()`: waits while the tx ring is full, then queues what fits and
    /// returns the count (which may be less than `data.len()`).
    pub fn send(&mut self, handle: SocketHandle, data: &[u8]) -> Result<usize, tcp::SendError> {
        let (_, timeout) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::Send,
            ring: Ring::Tx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| stack.send(handle, data),
            |result| match result {
                Ok(_) => "room in the tx ring",
                Err(_) => "the connection failed",
            },
        )
    }

    /// `sendall()`: queues all of `data`, blocking as often as the tx ring runs full.
    pub fn send_all(&mut self, handle: SocketHandle, data: &[u8]) -> Result<(), SendAllError> {
        let mut sent = 0;
        while sent < data.len() {
            match self.send(handle, &data[sent..]) {
                Ok(n) => sent += n,
                Err(error) => return Err(SendAllError { sent, error }),
            }
        }
        Ok(())
    }

    /// Receives exactly `buf.len()` bytes, blocking as needed; `Ok(false)` if the stream
    /// ended first (what arrived is in `buf`, the count in the error-free path is whole).
    pub fn recv_exact(
        &mut self,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<bool, tcp::RecvError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.recv(handle, &mut buf[filled..])? {
                0 => return Ok(false),
                n => filled += n,
            }
        }
        Ok(true)
    }

    /// Waits until every byte in the tx ring has been acknowledged by the peer (Linux has
    /// no such call; `SO_LINGER` waits like this on close).
    pub fn flush(&mut self, handle: SocketHandle) -> Result<(), tcp::SendError> {
        let (_, timeout) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::Flush,
            ring: Ring::Tx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| match stack.ring_usage(handle) {
                None => Err(tcp::SendError::BadHandle),
                Some((_, (0, _))) => Ok(()),
                Some(_) => Err(tcp::SendError::WouldBlock),
            },
            |_| "tx ring empty",
        )
    }

    /// Blocking `accept()`: waits for a connection (`SO_RCVTIMEO` bounds the wait).
    pub fn accept(
        &mut self,
        listener: SocketHandle,
    ) -> Result<(SocketHandle, IpEndpoint), tcp::AcceptError> {
        let (timeout, _) = self.timeouts(listener);
        let wait = Wait {
            handle: listener,
            call: Call::Accept,
            ring: Ring::Rx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| stack.accept(listener),
            |_| "a connection completed",
        )
    }

    /// Blocking `connect()`: starts the handshake and waits for its outcome
    /// (`SO_SNDTIMEO` bounds the wait, as on Linux). A timed-out attempt is aborted.
    pub fn connect(
        &mut self,
        handle: SocketHandle,
        remote: IpEndpoint,
    ) -> Result<(), tcp::ConnectError> {
        self.stack.connect(handle, remote)?;
        let (_, timeout) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::Connect,
            ring: Ring::Tx,
            timeout,
        };
        let result = self.block_on(
            wait,
            |stack| stack.poll_connect(handle),
            |result| match result {
                Ok(()) => "connection established",
                Err(_) => "connection failed",
            },
        );
        if result == Err(tcp::ConnectError::TimedOut) {
            let _ = self.stack.abort(handle);
        }
        result
    }

    /// Blocking `recvfrom()`: waits for a datagram; see [`Stack::recv_from`].
    pub fn recv_from(
        &mut self,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<udp::Datagram, udp::RecvError> {
        let (timeout, _) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::RecvFrom,
            ring: Ring::Rx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| stack.recv_from(handle, buf),
            |_| "a datagram arrived",
        )
    }

    /// Blocking `sendto()`: waits while the tx ring has no room for the datagram.
    pub fn send_to(
        &mut self,
        handle: SocketHandle,
        data: &[u8],
        to: IpEndpoint,
    ) -> Result<usize, udp::SendError> {
        let (_, timeout) = self.timeouts(handle);
        let wait = Wait {
            handle,
            call: Call::SendTo,
            ring: Ring::Tx,
            timeout,
        };
        self.block_on(
            wait,
            |stack| stack.send_to(handle, data, to),
            |_| "room in the tx ring",
        )
    }
}

/// Error of a [`TcpStream`]: the failed call's own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// A receive failed.
    Recv(tcp::RecvError),
    /// A send failed.
    Send(tcp::SendError),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Recv(e) => write!(f, "recv: {e}"),
            StreamError::Send(e) => write!(f, "send: {e}"),
        }
    }
}

impl core::error::Error for StreamError {}

impl embedded_io::Error for StreamError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            StreamError::Recv(tcp::RecvError::ConnectionReset) => ErrorKind::ConnectionReset,
            StreamError::Recv(tcp::RecvError::TimedOut)
            | StreamError::Send(tcp::SendError::TimedOut) => ErrorKind::TimedOut,
            StreamError::Recv(tcp::RecvError::NotConnected)
            | StreamError::Send(tcp::SendError::NotConnected) => ErrorKind::NotConnected,
            StreamError::Send(tcp::SendError::BrokenPipe) => ErrorKind::BrokenPipe,
            StreamError::Recv(tcp::RecvError::EmptyBuffer) => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        }
    }
}

/// A connected stream socket as a blocking byte stream with the `embedded-io` traits, so
/// code written for any reader or writer (a codec, a protocol client) runs on ringnet:
/// `read` is [`Blocking::recv`] (`Ok(0)` at end of stream), `write` is [`Blocking::send`],
/// `flush` waits until the peer has acknowledged everything.
pub struct TcpStream<'b, 's, 'a, W: Waiter> {
    sock: &'b mut Blocking<'s, 'a, W>,
    handle: SocketHandle,
}

impl<'s, 'a, W: Waiter> Blocking<'s, 'a, W> {
    /// The stream socket `handle` as an `embedded-io` reader and writer.
    pub fn stream(&mut self, handle: SocketHandle) -> TcpStream<'_, 's, 'a, W> {
        TcpStream { sock: self, handle }
    }
}

impl<W: Waiter> embedded_io::ErrorType for TcpStream<'_, '_, '_, W> {
    type Error = StreamError;
}

impl<W: Waiter> embedded_io::Read for TcpStream<'_, '_, '_, W> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.sock.recv(self.handle, buf).map_err(StreamError::Recv)
    }
}

impl<W: Waiter> embedded_io::Write for TcpStream<'_, '_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        self.sock.send(self.handle, buf).map_err(StreamError::Send)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.sock.flush(self.handle).map_err(StreamError::Send)
    }
}
