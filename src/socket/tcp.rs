//! Stream sockets: the TCP calls of [`Stack`], with Linux's semantics.
//!
//! | call | kernel behaviour mirrored |
//! |---|---|
//! | [`Stack::listen`] | `bind` + `listen(backlog)`: a fixed set of sockets waits for connections |
//! | [`Stack::accept`] | `accept()`: takes the oldest completed connection; `WouldBlock` if none |
//! | [`Stack::connect`] | non-blocking `connect()`: starts the handshake (`EINPROGRESS`) |
//! | [`Stack::recv`] | `recv()`: `Ok(n)` data, `Ok(0)` only at EOF after the ring is drained, `WouldBlock` on an empty ring, a short read leaves the rest |
//! | [`Stack::send`] | `send()`: a partial count when the ring has less room, `WouldBlock` when it is full, `BrokenPipe` once the peer is gone |
//! | [`Stack::shutdown_write`] | `shutdown(SHUT_WR)`: FIN after the queued data; reading goes on |
//!
//! `close()` and `abort()` are shared with datagram sockets: [`Stack::close`],
//! [`Stack::abort`].

use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;

use crate::handle::SocketHandle;
use crate::stack::{
    visible_mut, ListenerSlot, NoConnection, OpenError, Slot, SlotKind, Stack, TcpSlot,
};

error_enum! {
    /// Error from [`Stack::listen`].
    pub enum ListenError {
        /// A backlog handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// Port 0 cannot be listened on.
        InvalidPort => "port 0 cannot be listened on",
        /// Another listener or connection owns the port (`EADDRINUSE`).
        AddrInUse => "address already in use",
        /// No backlog socket was given: nobody could take a connection.
        EmptyBacklog => "the backlog is empty",
        /// A backlog socket is not a fresh, never-connected stream socket (`EINVAL`).
        NotFresh => "backlog socket is in use or not a stream socket",
        /// No slot is left for the listener itself (`EMFILE`).
        TableFull => "socket table full",
    }
}

error_enum! {
    /// Error from [`Stack::accept`].
    pub enum AcceptError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is not a listener (`EINVAL`).
        NotListening => "socket is not listening",
        /// No connection has completed yet (`EAGAIN`).
        WouldBlock => "no connection is waiting",
        /// The blocking form waited longer than `SO_RCVTIMEO`.
        TimedOut => "timed out waiting for a connection",
    }
}

error_enum! {
    /// Error from [`Stack::connect`] and [`Stack::poll_connect`].
    pub enum ConnectError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is a listener or a datagram socket.
        NotStream => "not a stream socket",
        /// The socket is connected, connecting, or was connected before (`EISCONN`).
        AlreadyConnected => "socket is already connected or was used",
        /// The address or port is unspecified (`EADDRNOTAVAIL`).
        Unaddressable => "cannot connect to an unspecified address or port 0",
        /// Every ephemeral port is taken (`EADDRNOTAVAIL`).
        NoEphemeralPort => "no free ephemeral port",
        /// The handshake is under way (`EINPROGRESS`).
        WouldBlock => "connection in progress",
        /// The peer answered with RST (`ECONNREFUSED`).
        Refused => "connection refused",
        /// The blocking form waited longer than `SO_SNDTIMEO`; the attempt is aborted.
        TimedOut => "connection timed out",
    }
}

error_enum! {
    /// Error from [`Stack::recv`].
    pub enum RecvError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is a datagram socket: use `recv_from`.
        NotStream => "not a stream socket",
        /// The socket is a listener: use `accept` (`ENOTCONN`).
        Listening => "socket is listening; accept a connection first",
        /// The socket was never connected (`ENOTCONN`).
        NotConnected => "socket is not connected",
        /// The buffer has length zero, so `Ok(0)` could not be told from end of stream.
        EmptyBuffer => "receive buffer has zero length",
        /// The rx ring is empty and the peer has not closed (`EAGAIN`).
        WouldBlock => "rx ring empty",
        /// The peer reset the connection and the ring is drained (`ECONNRESET`).
        ConnectionReset => "connection reset by peer",
        /// The blocking form waited longer than `SO_RCVTIMEO`.
        TimedOut => "timed out waiting for data",
    }
}

error_enum! {
    /// Error from [`Stack::send`].
    pub enum SendError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is a datagram socket: use `send_to`.
        NotStream => "not a stream socket",
        /// The socket is not connected: never connected, or a listener (`ENOTCONN`).
        NotConnected => "socket is not connected",
        /// The connection is gone: the peer reset it, or this side shut down writing
        /// (`EPIPE`; Python's `BrokenPipeError`).
        BrokenPipe => "broken pipe",
        /// The tx ring is full (`EAGAIN`).
        WouldBlock => "tx ring full",
        /// The blocking form waited longer than `SO_SNDTIMEO`.
        TimedOut => "timed out waiting for room in the tx ring",
    }
}

error_enum! {
    /// Error from [`Stack::shutdown_write`].
    pub enum ShutdownError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is not a stream socket.
        NotStream => "not a stream socket",
        /// The socket is not connected (`ENOTCONN`).
        NotConnected => "socket is not connected",
    }
}

impl<'a> Stack<'a> {
    /// Creates a stream socket whose rings are `rx` and `tx` (`socket(AF_INET,
    /// SOCK_STREAM)` with `SO_RCVBUF`/`SO_SNDBUF` fixed for its lifetime).
    pub fn tcp_socket(
        &mut self,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
    ) -> Result<SocketHandle, OpenError> {
        if rx.is_empty() || tx.is_empty() {
            return Err(OpenError::ZeroCapacity);
        }
        let handle = self.free_slot().ok_or(OpenError::TableFull)?;
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        let inner = self.sockets.add(socket);
        self.install(handle, Slot::new(SlotKind::Tcp(TcpSlot::new(inner))));
        Ok(handle)
    }

    /// Listens on `port` with the given backlog sockets, and returns the listener's handle.
    ///
    /// A kernel allocates a new socket for each connection; with fixed memory ringnet
    /// listens with the fresh stream sockets of `backlog` instead, each taking one
    /// connection (so at most `backlog.len()` connections are pending or accepted at once;
    /// further SYNs get RST, as when a Linux accept queue overflows with
    /// `tcp_abort_on_overflow`). An accepted socket that is closed rejoins the backlog.
    pub fn listen(
        &mut self,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<SocketHandle, ListenError> {
        if port == 0 {
            return Err(ListenError::InvalidPort);
        }
        if backlog.is_empty() {
            return Err(ListenError::EmptyBacklog);
        }
        if self.port_in_use(port, true) {
            return Err(ListenError::AddrInUse);
        }
        for (i, &member) in backlog.iter().enumerate() {
            let slot = self.slot(member).ok_or(ListenError::BadHandle)?;
            let SlotKind::Tcp(t) = &slot.kind else {
                return Err(ListenError::NotFresh);
            };
            let fresh = t.is_fresh(self.sockets.get::<tcp::Socket>(t.inner()));
            if !fresh || backlog[..i].contains(&member) {
                return Err(ListenError::NotFresh);
            }
        }
        let listener = self.free_slot().ok_or(ListenError::TableFull)?;
        for &member in backlog {
            let Some(Some(Slot {
                kind: SlotKind::Tcp(t),
                ..
            })) = self.slots.get_mut(member.fileno())
            else {
                continue;
            };
            let socket = self.sockets.get_mut::<tcp::Socket>(t.inner());
            socket.listen(port).map_err(|_| ListenError::InvalidPort)?;
            t.join_backlog(listener, port);
        }
        self.install(
            listener,
            Slot::new(SlotKind::Listener(ListenerSlot {
                port,
                nothing_ready_at: None,
                handshake: None,
            })),
        );
        self.refresh_listener_mss();
        net_info!(
            "{}: listen{} listening on port {}, backlog {}",
            self.name,
            listener,
            port,
            backlog.len()
        );
        Ok(listener)
    }

    /// Takes the oldest completed connection from `listener`: its handle and the peer's
    /// address (`accept()`). A connection the peer already closed is still returned, as
    /// the kernel does; its data can be read before `recv` returns 0.
    pub fn accept(
        &mut self,
        listener: SocketHandle,
    ) -> Result<(SocketHandle, IpEndpoint), AcceptError> {
        let ready_counter = self.ready_counter;
        let slot = self.slot_mut(listener).ok_or(AcceptError::BadHandle)?;
        let SlotKind::Listener(l) = &slot.kind else {
            return Err(AcceptError::NotListening);
        };
        if l.nothing_ready_at == Some(ready_counter) {
            slot.stats.rx_would_block += 1;
            return Err(AcceptError::WouldBlock);
        }
        let mut oldest: Option<(usize, u32)> = None;
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(Slot {
                kind: SlotKind::Tcp(t),
                ..
            }) = slot
            else {
                continue;
            };
            let Some(ready_seq) = t.ready_in(listener) else {
                continue;
            };
            if oldest.is_none_or(|(_, seq)| ready_seq < seq) {
                oldest = Some((index, ready_seq));
            }
        }
        let Some((index, _)) = oldest else {
            if let Some(slot) = self.slot_mut(listener) {
                slot.stats.rx_would_block += 1;
                if let SlotKind::Listener(l) = &mut slot.kind {
                    l.nothing_ready_at = Some(ready_counter);
                }
            }
            return Err(AcceptError::WouldBlock);
        };
        let Some(Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        })) = self.slots.get_mut(index)
        else {
            return Err(AcceptError::WouldBlock);
        };
        t.accept();
        let peer = self
            .sockets
            .get::<tcp::Socket>(t.inner())
            .remote_endpoint()
            .unwrap_or(IpEndpoint::new(
                smoltcp::wire::IpAddress::Ipv4(smoltcp::wire::Ipv4Address::UNSPECIFIED),
                0,
            ));
        let handle = SocketHandle(index as u16);
        net_info!(
            "{}: listen{} accepted tcp{} from {}",
            self.name,
            listener,
            handle,
            peer
        );
        Ok((handle, peer))
    }

    /// Starts connecting `handle` to `remote` from an ephemeral port, and returns at once
    /// (non-blocking `connect()`, `EINPROGRESS`); [`Stack::poll_connect`] tells the outcome.
    pub fn connect(
        &mut self,
        handle: SocketHandle,
        remote: IpEndpoint,
    ) -> Result<(), ConnectError> {
        let slot = self.slot(handle).ok_or(ConnectError::BadHandle)?;
        let SlotKind::Tcp(t) = &slot.kind else {
            return Err(ConnectError::NotStream);
        };
        let inner = t.inner();
        if !t.can_connect(self.sockets.get::<tcp::Socket>(inner)) {
            return Err(ConnectError::AlreadyConnected);
        }
        if remote.port == 0 || remote.addr.is_unspecified() {
            return Err(ConnectError::Unaddressable);
        }
        let local_port = self
            .ephemeral_port(true)
            .ok_or(ConnectError::NoEphemeralPort)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(inner);
        socket
            .connect(self.iface.context(), remote, local_port)
            .map_err(|e| match e {
                tcp::ConnectError::InvalidState => ConnectError::AlreadyConnected,
                tcp::ConnectError::Unaddressable => ConnectError::Unaddressable,
            })?;
        self.add_connect_mss(inner, local_port);
        net_info!(
            "{}: tcp{} connecting to {} from port {}",
            self.name,
            handle,
            remote,
            local_port
        );
        self.observe_slot(handle.fileno());
        Ok(())
    }

    /// The outcome of a connection attempt: `Ok` once established, `WouldBlock` while the
    /// handshake is under way, `Refused` if the peer answered RST.
    pub fn poll_connect(&mut self, handle: SocketHandle) -> Result<(), ConnectError> {
        let slot = self.slot(handle).ok_or(ConnectError::BadHandle)?;
        let SlotKind::Tcp(t) = &slot.kind else {
            return Err(ConnectError::NotStream);
        };
        if t.connected_once() {
            return Ok(());
        }
        match self.sockets.get::<tcp::Socket>(t.inner()).state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(ConnectError::WouldBlock),
            _ => Err(ConnectError::Refused),
        }
    }

    /// `recv()`: copies up to `buf.len()` bytes out of the rx ring.
    ///
    /// - `Ok(n)` with `n > 0`: `n` bytes; what does not fit in `buf` stays in the ring for
    ///   the next call (TCP never loses the rest).
    /// - `Ok(0)`: end of stream: the peer closed (FIN) and the ring is drained. Only then.
    /// - `WouldBlock`: the ring is empty and the connection open (or still connecting).
    /// - `ConnectionReset`: the peer sent RST; data that arrived before it is still
    ///   returned first.
    pub fn recv(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        // The pieces copied out by `recv_with`'s loop: a second copy of the checks, the
        // counting and the watching around smoltcp's `recv_slice` was 0.4 KB of flash.
        let mut copied = 0;
        self.recv_lent(handle, buf.len(), &mut |piece| {
            // Never short: the pieces together are at most `buf.len()` bytes.
            if let Some(to) = buf.get_mut(copied..copied + piece.len()) {
                to.copy_from_slice(piece);
            }
            copied += piece.len();
        })
    }

    /// `recv()` without the copy: lends up to `max` bytes of the rx ring to `f` (in two
    /// pieces when they wrap around the ring's end, never an empty one), then drops them
    /// from the ring. The results mean what [`Stack::recv`]'s do. With an `f` that
    /// ignores its bytes this is Linux's `recv(fd, NULL, max, MSG_TRUNC)` on a TCP
    /// socket, which discards what it reads; with one that hashes them, a checksum
    /// without a buffer.
    pub fn recv_with<F: FnMut(&[u8])>(
        &mut self,
        handle: SocketHandle,
        max: usize,
        mut f: F,
    ) -> Result<usize, RecvError> {
        self.recv_lent(handle, max, &mut f)
    }

    /// [`Stack::recv_with`] for every `f`: built once rather than once per caller's
    /// closure (each copy was a few hundred bytes of flash); `f` is called once or twice
    /// a call, for each piece of the ring.
    #[inline(never)]
    fn recv_lent(
        &mut self,
        handle: SocketHandle,
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, RecvError> {
        self.recv_from_ring(handle, max == 0, |socket, t| {
            let mut taken = 0;
            let mut ended = None;
            while taken < max {
                let piece = socket.recv(|data| {
                    let n = data.len().min(max - taken);
                    if n > 0 {
                        f(&data[..n]);
                    }
                    (n, n)
                });
                match piece {
                    Ok(0) => break,
                    Ok(n) => taken += n,
                    Err(e) => {
                        ended = Some(e);
                        break;
                    }
                }
            }
            match (taken, ended) {
                (0, None) => Err(RecvError::WouldBlock),
                (0, Some(tcp::RecvError::Finished)) => Ok(0),
                (0, Some(tcp::RecvError::InvalidState)) => recv_without_connection(socket, t),
                (n, _) => Ok(n),
            }
        })
    }

    /// What `recv_lent` does around its loop: the checks before `read` runs on the
    /// stream's smoltcp socket, and the counting and watching after.
    fn recv_from_ring(
        &mut self,
        handle: SocketHandle,
        empty_request: bool,
        read: impl FnOnce(&mut tcp::Socket<'a>, &TcpSlot) -> Result<usize, RecvError>,
    ) -> Result<usize, RecvError> {
        let slot = visible_mut(self.slots, handle).ok_or(RecvError::BadHandle)?;
        let t = match &slot.kind {
            SlotKind::Tcp(t) => t,
            SlotKind::Listener(_) => return Err(RecvError::Listening),
            SlotKind::Udp(_) => return Err(RecvError::NotStream),
        };
        if empty_request {
            return Err(RecvError::EmptyBuffer);
        }
        let result = read(self.sockets.get_mut::<tcp::Socket>(t.inner()), t);
        match result {
            Ok(n) => {
                slot.stats.bytes_in += n as u64;
                self.observe_slot(handle.fileno());
            }
            Err(RecvError::WouldBlock) => slot.stats.rx_would_block += 1,
            Err(_) => {}
        }
        result
    }

    /// `send()`: copies as much of `data` as the tx ring has room for and returns the
    /// count (possibly less than `data.len()`); `WouldBlock` when the ring is full.
    /// `BrokenPipe` once the peer has reset the connection or after
    /// [`Stack::shutdown_write`]. An empty `data` returns `Ok(0)`.
    pub fn send(&mut self, handle: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        self.send_into_ring(handle, |socket, t| match socket.send_slice(data) {
            Ok(0) if !data.is_empty() => Err(SendError::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::SendError::InvalidState) => Err(send_refused(socket, t)),
        })
    }

    /// `send()` without the copy: lends up to `max` bytes of free tx ring to `f` (in two
    /// pieces when they wrap around the ring's end), which fills a prefix and returns
    /// its length; that much is queued. Stops at the first piece `f` leaves unfilled.
    /// The results mean what [`Stack::send`]'s do: `WouldBlock` when the ring is full,
    /// `Ok(0)` when `max` is 0 or `f` wrote nothing.
    pub fn send_with<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        handle: SocketHandle,
        max: usize,
        mut f: F,
    ) -> Result<usize, SendError> {
        self.send_into_ring(handle, |socket, t| {
            if max == 0 {
                return Ok(0);
            }
            let mut queued = 0;
            loop {
                let piece = socket.send(|room| {
                    let lent = room.len().min(max - queued);
                    let written = if lent > 0 {
                        f(&mut room[..lent]).min(lent)
                    } else {
                        0
                    };
                    (written, (written, lent))
                });
                match piece {
                    Ok((_, 0)) if queued == 0 => return Err(SendError::WouldBlock),
                    Ok((written, lent)) => {
                        queued += written;
                        if lent > 0 && written == lent && queued < max {
                            continue;
                        }
                        return Ok(queued);
                    }
                    Err(tcp::SendError::InvalidState) => return Err(send_refused(socket, t)),
                }
            }
        })
    }

    /// What `send` and `send_with` share: the checks before `write` runs on the stream's
    /// smoltcp socket, and the counting and logging after.
    fn send_into_ring(
        &mut self,
        handle: SocketHandle,
        write: impl FnOnce(&mut tcp::Socket<'a>, &TcpSlot) -> Result<usize, SendError>,
    ) -> Result<usize, SendError> {
        let slot = visible_mut(self.slots, handle).ok_or(SendError::BadHandle)?;
        let t = match &slot.kind {
            SlotKind::Tcp(t) => t,
            SlotKind::Listener(_) => return Err(SendError::NotConnected),
            SlotKind::Udp(_) => return Err(SendError::NotStream),
        };
        if t.write_shut() {
            return Err(SendError::BrokenPipe);
        }
        let result = write(self.sockets.get_mut::<tcp::Socket>(t.inner()), t);
        match result {
            Ok(n) => {
                slot.stats.bytes_out += n as u64;
                self.observe_slot(handle.fileno());
            }
            Err(SendError::WouldBlock) => slot.stats.tx_would_block += 1,
            Err(SendError::BrokenPipe) => {
                net_warn!("{}: tcp{} send: broken pipe", self.name, handle)
            }
            Err(_) => {}
        }
        result
    }

    /// `shutdown(SHUT_WR)`: sends FIN once the queued data is out; the socket can still
    /// receive until the peer closes. Further sends fail with `BrokenPipe`.
    pub fn shutdown_write(&mut self, handle: SocketHandle) -> Result<(), ShutdownError> {
        let name = self.name;
        let slot = visible_mut(self.slots, handle).ok_or(ShutdownError::BadHandle)?;
        let SlotKind::Tcp(t) = &mut slot.kind else {
            return Err(ShutdownError::NotStream);
        };
        if !t.connected_once() {
            return Err(ShutdownError::NotConnected);
        }
        t.shut_write(self.sockets.get_mut::<tcp::Socket>(t.inner()));
        net_info!(
            "{}: tcp{} shutdown(SHUT_WR): FIN after the queued data",
            name,
            handle
        );
        Ok(())
    }
}

/// What `recv` says when smoltcp has no connection to read from: still connecting, reset,
/// or (for ever, once it ended in order) end of stream.
fn recv_without_connection(socket: &tcp::Socket, t: &TcpSlot) -> Result<usize, RecvError> {
    match t.no_connection(socket) {
        NoConnection::Connecting => Err(RecvError::WouldBlock),
        NoConnection::Reset => Err(RecvError::ConnectionReset),
        NoConnection::Ended => Ok(0),
        NoConnection::NeverConnected => Err(RecvError::NotConnected),
    }
}

/// Why smoltcp refused to queue data: still connecting, the connection is gone, or there
/// never was one.
fn send_refused(socket: &tcp::Socket, t: &TcpSlot) -> SendError {
    match socket.state() {
        tcp::State::SynSent | tcp::State::SynReceived => SendError::WouldBlock,
        _ if t.connected_once() => SendError::BrokenPipe,
        _ => SendError::NotConnected,
    }
}
