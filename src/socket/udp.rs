//! Datagram sockets: the UDP calls of [`Stack`], with Linux's semantics.
//!
//! | call | kernel behaviour mirrored |
//! |---|---|
//! | [`Stack::udp_bind`] | `bind(('0.0.0.0', port))`; `EADDRINUSE` if taken |
//! | [`Stack::recv_from`] | `recvfrom()`: one datagram per call; a datagram larger than the buffer is cut and the loss reported (`MSG_TRUNC`) |
//! | [`Stack::send_to`] | `sendto()`: one datagram; implicit bind to an ephemeral port; `EACCES` for broadcast without `SO_BROADCAST`; `EMSGSIZE` if it can never fit |
//!
//! smoltcp drops a datagram that does not fit the caller's buffer; ringnet hands over its
//! first bytes instead, as Linux does, and says how many were lost. Datagrams dropped at
//! arrival because the rx ring had no room are counted and logged too.

use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;

use crate::handle::SocketHandle;
use crate::observe::EventKind;
use crate::stack::{visible_mut, ArpQueued, OpenError, Slot, SlotKind, Stack, UdpSlot};

/// Ethernet, IPv4 and UDP headers: what an MTU must hold besides the payload.
const HEADERS: usize = 14 + 20 + 8;

/// The metadata slots and payload bytes of one UDP ring (smoltcp's `PacketBuffer`).
pub struct UdpBuffer<'a> {
    /// One slot per queued datagram.
    pub slots: &'a mut [udp::PacketMetadata],
    /// The payload bytes.
    pub payload: &'a mut [u8],
}

/// Fixed storage for one UDP ring: `SLOTS` datagrams, `BYTES` payload bytes.
pub struct UdpStorage<const SLOTS: usize, const BYTES: usize> {
    slots: [udp::PacketMetadata; SLOTS],
    payload: [u8; BYTES],
}

impl<const SLOTS: usize, const BYTES: usize> UdpStorage<SLOTS, BYTES> {
    /// Empty storage.
    pub const fn new() -> Self {
        UdpStorage {
            slots: [udp::PacketMetadata::EMPTY; SLOTS],
            payload: [0; BYTES],
        }
    }

    /// The storage as a [`UdpBuffer`].
    pub fn buffer(&mut self) -> UdpBuffer<'_> {
        UdpBuffer {
            slots: &mut self.slots,
            payload: &mut self.payload,
        }
    }
}

impl<const SLOTS: usize, const BYTES: usize> Default for UdpStorage<SLOTS, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Stack::recv_from`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// The sender.
    pub from: IpEndpoint,
    /// Bytes of the datagram that did not fit and are lost (`MSG_TRUNC`); 0 if whole.
    pub lost: usize,
    /// The address it was sent to: this host's, or a broadcast or multicast address
    /// (Linux's `IP_PKTINFO`, `ipi_addr`).
    pub to: Option<smoltcp::wire::IpAddress>,
}

impl Datagram {
    /// Whether the datagram was cut short.
    pub fn truncated(&self) -> bool {
        self.lost > 0
    }
}

error_enum! {
    /// Error from [`Stack::udp_bind`].
    pub enum BindError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is not a datagram socket.
        NotDatagram => "not a datagram socket",
        /// Port 0 cannot be bound explicitly (ringnet binds ephemeral ports itself).
        InvalidPort => "port 0 cannot be bound",
        /// Another datagram socket owns the port (`EADDRINUSE`).
        AddrInUse => "address already in use",
        /// The socket is bound already (`EINVAL`).
        AlreadyBound => "socket is already bound",
    }
}

error_enum! {
    /// Error from [`Stack::recv_from`].
    pub enum RecvError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is not a datagram socket.
        NotDatagram => "not a datagram socket",
        /// The socket is not bound, so nothing can arrive (`EINVAL`).
        NotBound => "socket is not bound",
        /// The buffer has length zero: every datagram would be lost.
        EmptyBuffer => "receive buffer has zero length",
        /// No datagram is queued (`EAGAIN`).
        WouldBlock => "rx ring empty",
        /// The blocking form waited longer than `SO_RCVTIMEO`.
        TimedOut => "timed out waiting for a datagram",
    }
}

error_enum! {
    /// Error from [`Stack::send_to`].
    pub enum SendError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket is not a datagram socket.
        NotDatagram => "not a datagram socket",
        /// The destination address is unspecified or its port is 0 (`EDESTADDRREQ`).
        Unaddressable => "destination unspecified or port 0",
        /// The destination is a broadcast address and `SO_BROADCAST` is off (`EACCES`).
        BroadcastDenied => "broadcast address needs SO_BROADCAST",
        /// The datagram is larger than the tx ring or the link MTU allows (`EMSGSIZE`).
        TooLarge => "datagram larger than the tx ring or the MTU",
        /// No ephemeral port is free for the implicit bind (`EAGAIN` in Linux).
        NoEphemeralPort => "no free ephemeral port",
        /// The tx ring has no room now (`EAGAIN`).
        WouldBlock => "tx ring full",
        /// The blocking form waited longer than `SO_SNDTIMEO`.
        TimedOut => "timed out waiting for room in the tx ring",
    }
}

impl<'a> Stack<'a> {
    /// Creates a datagram socket with rings `rx` and `tx` (`socket(AF_INET, SOCK_DGRAM)`).
    pub fn udp_socket(
        &mut self,
        rx: UdpBuffer<'a>,
        tx: UdpBuffer<'a>,
    ) -> Result<SocketHandle, OpenError> {
        if [
            rx.slots.len(),
            rx.payload.len(),
            tx.slots.len(),
            tx.payload.len(),
        ]
        .contains(&0)
        {
            return Err(OpenError::ZeroCapacity);
        }
        let handle = self.free_slot().ok_or(OpenError::TableFull)?;
        let socket = udp::Socket::new(
            udp::PacketBuffer::new(rx.slots, rx.payload),
            udp::PacketBuffer::new(tx.slots, tx.payload),
        );
        let inner = self.sockets.add(socket);
        self.install(
            handle,
            Slot::new(SlotKind::Udp(UdpSlot {
                inner,
                port: 0,
                rx_bytes_seen: 0,
                queued: 0,
                queued_bytes: 0,
                tx_stall: None,
            })),
        );
        Ok(handle)
    }

    /// `bind(('0.0.0.0', port))`: the socket receives datagrams sent to `port` on this
    /// host, including broadcasts.
    pub fn udp_bind(&mut self, handle: SocketHandle, port: u16) -> Result<(), BindError> {
        let slot = self.slot(handle).ok_or(BindError::BadHandle)?;
        let SlotKind::Udp(u) = &slot.kind else {
            return Err(BindError::NotDatagram);
        };
        if u.port != 0 {
            return Err(BindError::AlreadyBound);
        }
        if port == 0 {
            return Err(BindError::InvalidPort);
        }
        if self.port_in_use(port, false) {
            return Err(BindError::AddrInUse);
        }
        self.bind_udp_port(handle, port);
        Ok(())
    }

    fn bind_udp_port(&mut self, handle: SocketHandle, port: u16) {
        let name = self.name;
        if let Some(Slot {
            kind: SlotKind::Udp(u),
            ..
        }) = visible_mut(self.slots, handle)
        {
            // Cannot fail: the port is non-zero and the socket unbound.
            let _ = self.sockets.get_mut::<udp::Socket>(u.inner).bind(port);
            u.port = port;
            net_info!("{}: udp{} bound to port {}", name, handle, port);
        }
        self.name_udp_ports();
    }

    /// `recvfrom()`: takes one datagram from the rx ring. If it is longer than `buf`, the
    /// first `buf.len()` bytes are returned and the rest is lost, reported in
    /// [`Datagram::lost`] (Linux's `MSG_TRUNC`), counted, and logged at `warn`.
    pub fn recv_from(
        &mut self,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<Datagram, RecvError> {
        let slot = visible_mut(self.slots, handle).ok_or(RecvError::BadHandle)?;
        let SlotKind::Udp(u) = &mut slot.kind else {
            return Err(RecvError::NotDatagram);
        };
        if u.port == 0 {
            return Err(RecvError::NotBound);
        }
        if buf.is_empty() {
            return Err(RecvError::EmptyBuffer);
        }
        let socket = self.sockets.get_mut::<udp::Socket>(u.inner);
        let (payload, meta) = match socket.recv() {
            Ok(received) => received,
            Err(_) => {
                slot.stats.rx_would_block += 1;
                return Err(RecvError::WouldBlock);
            }
        };
        let len = payload.len().min(buf.len());
        buf[..len].copy_from_slice(&payload[..len]);
        let whole = payload.len();
        let datagram = Datagram {
            len,
            from: meta.endpoint,
            lost: whole - len,
            to: meta.local_address,
        };
        u.rx_bytes_seen = socket.recv_queue();
        u.queued = u.queued.saturating_sub(1);
        u.queued_bytes = u.queued_bytes.saturating_sub(whole);
        slot.stats.bytes_in += len as u64;
        slot.stats.datagrams_in += 1;
        if datagram.truncated() {
            self.record(
                handle,
                EventKind::Truncated {
                    kept: len,
                    lost: datagram.lost,
                    from: datagram.from,
                },
            );
        }
        self.observe_slot(handle.fileno());
        Ok(datagram)
    }

    /// `sendto()`: queues one datagram for `to`. An unbound socket is first bound to an
    /// ephemeral port, as the kernel does. A broadcast destination needs
    /// [`SocketOption::Broadcast`](crate::SocketOption::Broadcast).
    pub fn send_to(
        &mut self,
        handle: SocketHandle,
        data: &[u8],
        to: IpEndpoint,
    ) -> Result<usize, SendError> {
        let slot = self.slot(handle).ok_or(SendError::BadHandle)?;
        let SlotKind::Udp(u) = &slot.kind else {
            return Err(SendError::NotDatagram);
        };
        if to.port == 0 || to.addr.is_unspecified() {
            return Err(SendError::Unaddressable);
        }
        if self.is_broadcast(to.addr) && !slot.options.broadcast {
            net_warn!(
                "{}: udp{} send_to {} refused: broadcast needs SO_BROADCAST (EACCES)",
                self.name,
                handle,
                to
            );
            return Err(SendError::BroadcastDenied);
        }
        let capacity = self
            .sockets
            .get::<udp::Socket>(u.inner)
            .payload_send_capacity();
        if data.len() > capacity || data.len() + HEADERS > self.mtu {
            return Err(SendError::TooLarge);
        }
        if u.port == 0 {
            let port = self
                .ephemeral_port(false)
                .ok_or(SendError::NoEphemeralPort)?;
            self.bind_udp_port(handle, port);
        }
        let Some(Slot {
            kind: SlotKind::Udp(u),
            ..
        }) = visible_mut(self.slots, handle)
        else {
            return Err(SendError::BadHandle);
        };
        let port = u.port;
        let ring = {
            let socket = self.sockets.get::<udp::Socket>(u.inner);
            (socket.send_queue(), socket.payload_send_capacity())
        };
        match self.arp_queue_send(handle, port, ring, data, to) {
            ArpQueued::No => {}
            ArpQueued::WouldBlock => {
                if let Some(slot) = visible_mut(self.slots, handle) {
                    slot.stats.tx_would_block += 1;
                }
                return Err(SendError::WouldBlock);
            }
            queued => {
                let Some(slot) = visible_mut(self.slots, handle) else {
                    return Err(SendError::BadHandle);
                };
                slot.stats.bytes_out += data.len() as u64;
                slot.stats.datagrams_out += 1;
                if let ArpQueued::Dropped = queued {
                    slot.stats.unresolved_dropped_bytes += data.len() as u64;
                }
                self.observe_slot(handle.fileno());
                return Ok(data.len());
            }
        }
        let Some(Slot {
            kind: SlotKind::Udp(u),
            stats,
            ..
        }) = visible_mut(self.slots, handle)
        else {
            return Err(SendError::BadHandle);
        };
        let socket = self.sockets.get_mut::<udp::Socket>(u.inner);
        match socket.send_slice(data, to) {
            Ok(()) => {
                stats.bytes_out += data.len() as u64;
                stats.datagrams_out += 1;
                self.udp_tx_queued = true;
                self.observe_slot(handle.fileno());
                Ok(data.len())
            }
            Err(udp::SendError::BufferFull) => {
                stats.tx_would_block += 1;
                Err(SendError::WouldBlock)
            }
            Err(udp::SendError::Unaddressable) => Err(SendError::Unaddressable),
        }
    }
}
