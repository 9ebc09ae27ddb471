//! What a socket reports about itself: `s.type`, `s.family`, `getsockname`,
//! `getpeername`, the rings' occupancy (Linux's `SIOCINQ`/`SIOCOUTQ` and `SO_RCVBUF`) and
//! ringnet's counters.

use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use crate::handle::{AddressFamily, SocketHandle, SocketType};
#[cfg(feature = "blocking")]
use crate::observe::Ring;
use crate::observe::SocketStats;
use crate::stack::{Slot, SlotKind, Stack};

error_enum! {
    /// Error from [`Stack::local_addr`] and [`Stack::peer_addr`].
    pub enum AddrError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The socket has no such address yet: unbound, or not connected (`ENOTCONN`).
        NotConnected => "socket is not bound or not connected",
    }
}

impl<'a> Stack<'a> {
    /// The socket's type (`s.type`), or `None` for a handle that names no socket.
    pub fn socket_type(&self, handle: SocketHandle) -> Option<SocketType> {
        self.slot(handle).map(Slot::socket_type)
    }

    /// The socket's address family (`s.family`): always [`AddressFamily::Inet`].
    pub fn family(&self, handle: SocketHandle) -> Option<AddressFamily> {
        self.slot(handle).map(|_| AddressFamily::Inet)
    }

    /// The handles of all open sockets, in table order (what `/proc/self/fd` lists).
    pub fn handles(&self) -> impl Iterator<Item = SocketHandle> + use<'_, 'a> {
        (0..self.slots.len())
            .filter_map(|i| u16::try_from(i).ok().map(SocketHandle))
            .filter(|h| self.slot(*h).is_some())
    }

    /// The local address (`getsockname`). An unconnected socket bound to any address
    /// reports `0.0.0.0`, as the kernel does.
    pub fn local_addr(&self, handle: SocketHandle) -> Result<IpEndpoint, AddrError> {
        let slot = self.slot(handle).ok_or(AddrError::BadHandle)?;
        let any = IpAddress::Ipv4(Ipv4Address::UNSPECIFIED);
        match &slot.kind {
            SlotKind::Listener(l) => Ok(IpEndpoint::new(any, l.port)),
            SlotKind::Tcp(t) => self
                .sockets
                .get::<tcp::Socket>(t.inner())
                .local_endpoint()
                .ok_or(AddrError::NotConnected),
            SlotKind::Udp(u) if u.port == 0 => Err(AddrError::NotConnected),
            SlotKind::Udp(u) => Ok(IpEndpoint::new(any, u.port)),
        }
    }

    /// The connected peer's address (`getpeername`); `NotConnected` for listeners,
    /// datagram sockets and streams not (or no longer) connected.
    pub fn peer_addr(&self, handle: SocketHandle) -> Result<IpEndpoint, AddrError> {
        let slot = self.slot(handle).ok_or(AddrError::BadHandle)?;
        match &slot.kind {
            SlotKind::Tcp(t) => self
                .sockets
                .get::<tcp::Socket>(t.inner())
                .remote_endpoint()
                .ok_or(AddrError::NotConnected),
            _ => Err(AddrError::NotConnected),
        }
    }

    /// Bytes used and capacity of the socket's rx and tx rings:
    /// `((rx_used, rx_capacity), (tx_used, tx_capacity))`. Listeners hold no rings.
    pub fn ring_usage(&self, handle: SocketHandle) -> Option<((usize, usize), (usize, usize))> {
        let slot = self.slot(handle)?;
        Some(self.usage_of(handle.fileno(), &slot.kind))
    }

    /// The socket's counters.
    pub fn stats(&self, handle: SocketHandle) -> Option<SocketStats> {
        self.slot(handle).map(|slot| slot.stats)
    }

    /// Bytes used and capacity of one of the socket's rings, for the blocking layer's
    /// logs; `(0, 0)` for a listener or a handle that names no socket.
    #[cfg(feature = "blocking")]
    pub(crate) fn ring_of(&self, handle: SocketHandle, ring: Ring) -> (usize, usize) {
        self.ring_usage(handle)
            .map(|(rx, tx)| match ring {
                Ring::Rx => rx,
                Ring::Tx => tx,
            })
            .unwrap_or((0, 0))
    }
}
