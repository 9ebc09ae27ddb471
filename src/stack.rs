//! The [`Stack`]: a smoltcp `Interface`, a fixed socket table, and the observation that
//! turns smoltcp's silent buffers into logged transitions and counters.

use core::cell::RefCell;
use core::fmt;

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketSet, SocketStorage,
};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr};

use crate::observe::{
    LogGate, LogLimit, LogThrottle, Ring, RingWatch, SocketStats, StatsRow, WindowWatch,
};
use crate::phy::{FrameEvent, FrameLog, Inspector};
use crate::socket::{
    AddressFamily, LocalOptions, OptionError, OptionName, SocketHandle, SocketOption, SocketType,
};
use crate::{Duration, Instant};

/// How a stack presents itself on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    /// A short name that prefixes every log line of this stack (e.g. `"dev"`, `"A"`).
    pub name: &'static str,
    /// The Ethernet address.
    pub mac: EthernetAddress,
    /// The IPv4 address and prefix.
    pub ip: Ipv4Cidr,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Address>,
    /// Seed for initial sequence numbers and ephemeral ports.
    pub seed: u64,
}

/// Fixed memory for a stack's socket table: `N` sockets at most, counting listeners
/// (Linux's `RLIMIT_NOFILE`, here fixed at build time).
pub struct StackResources<'a, const N: usize> {
    sockets: [SocketStorage<'a>; N],
    slots: [Option<Slot>; N],
}

impl<const N: usize> StackResources<'_, N> {
    /// Empty storage for `N` sockets.
    pub const fn new() -> Self {
        StackResources {
            sockets: [SocketStorage::EMPTY; N],
            slots: [const { None }; N],
        }
    }
}

impl<'a, const N: usize> StackResources<'a, N> {
    /// Empty storage for `N` sockets, built where it lies, one entry at a time. For a
    /// table in a `static` cell on a small microcontroller: [`StackResources::new`] there
    /// would cost the table's size in flash (its image in `.data`) or on the stack (a
    /// temporary copied into place).
    #[allow(unsafe_code)]
    pub fn new_in(place: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        let table = place.as_mut_ptr();
        // SAFETY: `table` points to writable memory for a whole `Self`. Every element of
        // both arrays is written exactly once before the whole is treated as initialised,
        // and `write` drops nothing (there is nothing there yet to drop).
        unsafe {
            let sockets = core::ptr::addr_of_mut!((*table).sockets).cast::<SocketStorage<'a>>();
            let slots = core::ptr::addr_of_mut!((*table).slots).cast::<Option<Slot>>();
            for i in 0..N {
                sockets.add(i).write(SocketStorage::EMPTY);
                slots.add(i).write(None);
            }
            place.assume_init_mut()
        }
    }
}

impl<const N: usize> Default for StackResources<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Error from creating a socket ([`Stack::tcp_socket`], [`Stack::udp_socket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Every slot of the socket table is in use (`EMFILE`).
    TableFull,
    /// A ring of zero capacity was supplied: such a socket could never move a byte.
    ZeroCapacity,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::TableFull => "socket table full",
            OpenError::ZeroCapacity => "a ring buffer of zero capacity was supplied",
        })
    }
}

impl core::error::Error for OpenError {}

/// Error from [`Stack::local_addr`] and [`Stack::peer_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// The handle names no socket (`EBADF`).
    BadHandle,
    /// The socket has no such address yet: unbound, or not connected (`ENOTCONN`).
    NotConnected,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::BadHandle => "no socket with that handle",
            AddrError::NotConnected => "socket is not bound or not connected",
        })
    }
}

impl core::error::Error for AddrError {}

/// Error from [`Stack::close`] and [`Stack::abort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// The handle names no socket (`EBADF`), for instance because it was closed already.
    BadHandle,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no socket with that handle")
    }
}

impl core::error::Error for CloseError {}

/// How a TCP connection ended other than by an orderly close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpEnd {
    /// The peer sent RST while connected.
    Reset,
    /// The peer answered our SYN with RST.
    Refused,
    /// This side aborted.
    Aborted,
}

#[derive(Debug)]
pub(crate) struct TcpSlot {
    pub inner: smoltcp::iface::SocketHandle,
    pub window: WindowWatch,
    pub last_state: tcp::State,
    pub end: Option<TcpEnd>,
    pub shut_write: bool,
    /// `close()` was called: the handle is gone, the connection lingers until it is closed.
    pub orphaned: bool,
    /// The listener whose backlog this socket serves, and its port.
    pub member_of: Option<SocketHandle>,
    pub backlog_port: u16,
    pub accepted: bool,
    pub ready_seq: u32,
    pub connected_once: bool,
    pub time_wait_since: Option<Instant>,
    /// A segment left this socket in TIME-WAIT: the ACK of the peer's FIN is out.
    pub time_wait_acked: bool,
}

impl TcpSlot {
    /// A backlog socket the user no longer holds (never accepted, or closed): once its
    /// connection is over it goes back to listening.
    fn returns_to_backlog(&self) -> bool {
        self.member_of.is_some() && (self.orphaned || !self.accepted)
    }

    pub(crate) fn fresh(
        inner: smoltcp::iface::SocketHandle,
        member_of: Option<SocketHandle>,
        backlog_port: u16,
    ) -> TcpSlot {
        TcpSlot {
            inner,
            window: WindowWatch::default(),
            last_state: tcp::State::Closed,
            end: None,
            shut_write: false,
            orphaned: false,
            member_of,
            backlog_port,
            accepted: false,
            ready_seq: 0,
            connected_once: false,
            time_wait_since: None,
            time_wait_acked: false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct UdpSlot {
    pub inner: smoltcp::iface::SocketHandle,
    pub port: u16,
    /// rx ring bytes after the last frame or call: the baseline for spotting drops.
    pub rx_bytes_seen: usize,
}

#[derive(Debug)]
pub(crate) struct ListenerSlot {
    pub port: u16,
    /// The stack's ready counter when `accept` last found nothing: until it moves, no
    /// backlog socket has become ready and `accept` need not search the table.
    pub nothing_ready_at: Option<u32>,
}

#[derive(Debug)]
pub(crate) enum SlotKind {
    Tcp(TcpSlot),
    Udp(UdpSlot),
    Listener(ListenerSlot),
}

/// One entry of the socket table.
#[derive(Debug)]
pub struct Slot {
    pub(crate) kind: SlotKind,
    pub(crate) options: LocalOptions,
    pub(crate) stats: SocketStats,
    pub(crate) rx_watch: RingWatch,
    pub(crate) tx_watch: RingWatch,
    pub(crate) log_throttle: LogThrottle,
}

impl Slot {
    pub(crate) fn new(kind: SlotKind) -> Slot {
        Slot {
            kind,
            options: LocalOptions::default(),
            stats: SocketStats::default(),
            rx_watch: RingWatch::default(),
            tx_watch: RingWatch::default(),
            log_throttle: LogThrottle::default(),
        }
    }

    pub(crate) fn socket_type(&self) -> SocketType {
        match self.kind {
            SlotKind::Tcp(_) => SocketType::Stream,
            SlotKind::Udp(_) => SocketType::Datagram,
            SlotKind::Listener(_) => SocketType::Listener,
        }
    }

    /// Whether the user may name this slot: not closed, not an unaccepted backlog socket.
    fn visible(&self) -> bool {
        match &self.kind {
            SlotKind::Tcp(t) => !t.orphaned && (t.member_of.is_none() || t.accepted),
            _ => true,
        }
    }
}

/// A network stack: one interface, one socket table, BSD-socket semantics.
///
/// Create sockets with [`Stack::tcp_socket`] and [`Stack::udp_socket`], drive the stack with
/// [`Stack::poll`], and sleep until [`Stack::poll_at`]. The socket calls themselves are
/// documented in [`crate::socket::tcp`] and [`crate::socket::udp`]; their blocking forms in
/// [`crate::blocking`].
pub struct Stack<'a> {
    pub(crate) name: &'static str,
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'a>,
    pub(crate) slots: &'a mut [Option<Slot>],
    frames: RefCell<FrameLog>,
    pub(crate) now: Instant,
    pub(crate) mtu: usize,
    next_ephemeral: u16,
    pub(crate) ready_counter: u32,
    log_limit: Option<LogLimit>,
}

/// First port of the ephemeral range (IANA's, as Linux's `ip_local_port_range` suggests).
const EPHEMERAL_FIRST: u16 = 49152;
/// How long a closed connection's slot stays in TIME-WAIT before it is reused: long
/// enough for the final ACK to leave (the delayed-ACK timer is 10 ms by default), short
/// enough that a fixed backlog is ready for the next client at once.
const SHORT_TIME_WAIT: Duration = Duration::from_millis(50);
/// When a socket in TIME-WAIT is done with it. Normally after [`SHORT_TIME_WAIT`]; when
/// its backlog has no listening socket left, as soon as the ACK of the peer's FIN has been
/// seen leaving, so the next SYN is not refused: Linux likewise cuts TIME-WAIT short
/// rather than refuse connections when its time-wait buckets run out.
fn time_wait_end(t: &TcpSlot, socket: &tcp::Socket, starved: bool) -> Option<Instant> {
    if socket.state() != tcp::State::TimeWait {
        return None;
    }
    let since = t.time_wait_since?;
    Some(if starved && t.time_wait_acked {
        since
    } else {
        since + SHORT_TIME_WAIT
    })
}

/// At most this many frames are taken in one poll, so a flood cannot starve egress.
const INGRESS_BUDGET: usize = 256;

impl<'a> Stack<'a> {
    /// A stack on `device` with the sockets of `resources`, at time `now`.
    pub fn new<D: Device + ?Sized, const N: usize>(
        config: StackConfig,
        device: &mut D,
        resources: &'a mut StackResources<'a, N>,
        now: Instant,
    ) -> Stack<'a> {
        let mut iface_config = Config::new(config.mac.into());
        iface_config.random_seed = config.seed;
        let mut iface = Interface::new(iface_config, device, now);
        iface.update_ip_addrs(|addrs| {
            // One address always fits: smoltcp's table holds at least one.
            let _ = addrs.push(IpCidr::Ipv4(config.ip));
        });
        if let Some(gateway) = config.gateway {
            // Fails only when the route table is full, and it is empty here.
            let _ = iface.routes_mut().add_default_ipv4_route(gateway);
        }
        let mtu = device.capabilities().max_transmission_unit;
        log::info!(
            "{}: up, {} ({}), {} sockets, MTU {}",
            config.name,
            config.ip,
            config.mac,
            N,
            mtu
        );
        Stack {
            name: config.name,
            iface,
            sockets: SocketSet::new(&mut resources.sockets[..]),
            slots: &mut resources.slots[..],
            frames: RefCell::new(FrameLog::default()),
            now,
            mtu,
            next_ephemeral: EPHEMERAL_FIRST + (config.seed % 16384) as u16,
            ready_counter: 0,
            log_limit: None,
        }
    }

    /// The cap on transition lines, if any ([`Stack::set_log_limit`]).
    pub fn log_limit(&self) -> Option<LogLimit> {
        self.log_limit
    }

    /// Caps the transition lines each socket logs ([`LogLimit`], after Linux's
    /// `net_ratelimit()`); `None`, the default, logs every one.
    pub fn set_log_limit(&mut self, limit: Option<LogLimit>) {
        self.log_limit = limit;
    }

    fn log_gate(&self) -> LogGate<'static> {
        LogGate {
            stack: self.name,
            now: self.now,
            limit: self.log_limit,
        }
    }

    /// The name given in [`StackConfig::name`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// This stack's IPv4 address.
    pub fn ipv4_addr(&self) -> Ipv4Address {
        self.iface.ipv4_addr().unwrap_or(Ipv4Address::UNSPECIFIED)
    }

    /// The directed broadcast address of this stack's subnet, if its prefix has one.
    pub fn ipv4_broadcast(&self) -> Option<Ipv4Address> {
        self.iface.ip_addrs().iter().find_map(|cidr| match cidr {
            IpCidr::Ipv4(c) => c.broadcast(),
        })
    }

    /// The time of the last poll.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Frames received and sent since the stack was created.
    pub fn frame_counts(&self) -> (u64, u64) {
        let frames = self.frames.borrow();
        (frames.frames_in, frames.frames_out)
    }

    /// Moves frames between `device` and the sockets, and updates every socket's counters
    /// and watches. Returns `true` if any socket's state may have changed.
    ///
    /// This is where the kernel's softirq work happens; ringnet does it when the caller
    /// says so, with the caller's notion of time.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.now = now;
        let mut changed = false;
        let mut device = Inspector::new(device, &self.frames);
        self.iface.poll_maintenance(now);
        for _ in 0..INGRESS_BUDGET {
            match self
                .iface
                .poll_ingress_single(now, &mut device, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => changed = true,
            }
            drain_frame_events(
                &self.log_gate(),
                &self.frames,
                self.slots,
                &mut self.sockets,
            );
        }
        while self.iface.poll_egress(now, &mut device, &mut self.sockets)
            == PollResult::SocketStateChanged
        {
            changed = true;
            drain_frame_events(
                &self.log_gate(),
                &self.frames,
                self.slots,
                &mut self.sockets,
            );
        }
        drain_frame_events(
            &self.log_gate(),
            &self.frames,
            self.slots,
            &mut self.sockets,
        );
        self.observe_sockets(true);
        changed
    }

    /// When the stack next needs a poll even if no frame arrives (a retransmission, a
    /// delayed ACK, a keepalive), or `None` if only a frame can change anything.
    ///
    /// Besides smoltcp's own timers, this is when a backlog socket in TIME-WAIT may rejoin
    /// its backlog.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let smoltcp = self.iface.poll_at(self.now, &self.sockets);
        match (smoltcp, self.next_backlog_return()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// [`Stack::poll_at`] as a delay from the last poll.
    pub fn poll_delay(&mut self) -> Option<Duration> {
        self.poll_at().map(|at| {
            if at > self.now {
                at - self.now
            } else {
                Duration::ZERO
            }
        })
    }

    /// The earliest moment a backlog socket in TIME-WAIT may go back to listening.
    fn next_backlog_return(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|slot| match &slot.kind {
                SlotKind::Tcp(t) if t.time_wait_since.is_some() && t.returns_to_backlog() => {
                    let socket = self.sockets.get::<tcp::Socket>(t.inner);
                    let starved = t.member_of.is_some_and(|l| self.backlog_starved(l));
                    time_wait_end(t, socket, starved)
                }
                _ => None,
            })
            .min()
    }

    /// Whether no socket of `listener`'s backlog is listening: a SYN would meet a RST.
    fn backlog_starved(&self, listener: SocketHandle) -> bool {
        !self.slots.iter().flatten().any(|slot| {
            matches!(&slot.kind, SlotKind::Tcp(t)
                if t.member_of == Some(listener) && t.last_state == tcp::State::Listen)
        })
    }

    pub(crate) fn slot(&self, handle: SocketHandle) -> Option<&Slot> {
        self.slots
            .get(handle.fileno())
            .and_then(Option::as_ref)
            .filter(|slot| slot.visible())
    }

    pub(crate) fn slot_mut(&mut self, handle: SocketHandle) -> Option<&mut Slot> {
        visible_mut(self.slots, handle)
    }

    /// Finds a free slot, checking that smoltcp's set has room as well.
    pub(crate) fn free_slot(&self) -> Option<SocketHandle> {
        let index = self.slots.iter().position(Option::is_none)?;
        let used_inner = self
            .slots
            .iter()
            .flatten()
            .filter(|slot| !matches!(slot.kind, SlotKind::Listener(_)))
            .count();
        // Listeners hold no smoltcp socket, so the set has room whenever the table does.
        debug_assert!(used_inner < self.slots.len());
        u16::try_from(index).ok().map(SocketHandle)
    }

    pub(crate) fn install(&mut self, handle: SocketHandle, slot: Slot) {
        log::info!("{}: {}{} opened", self.name, slot.socket_type(), handle);
        self.slots[handle.fileno()] = Some(slot);
    }

    /// Picks a free ephemeral port for `protocol_is_tcp` sockets.
    pub(crate) fn ephemeral_port(&mut self, protocol_is_tcp: bool) -> Option<u16> {
        for _ in 0..16384 {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.port_in_use(port, protocol_is_tcp) {
                return Some(port);
            }
        }
        None
    }

    /// Whether a socket of the protocol already owns `port` locally.
    pub(crate) fn port_in_use(&self, port: u16, protocol_is_tcp: bool) -> bool {
        self.slots.iter().flatten().any(|slot| match &slot.kind {
            SlotKind::Listener(l) => protocol_is_tcp && l.port == port,
            SlotKind::Tcp(t) => {
                protocol_is_tcp
                    && t.member_of.is_none()
                    && self
                        .sockets
                        .get::<tcp::Socket>(t.inner)
                        .local_endpoint()
                        .is_some_and(|ep| ep.port == port)
            }
            SlotKind::Udp(u) => !protocol_is_tcp && u.port == port,
        })
    }

    /// Whether `addr` is a broadcast address for this interface: the limited broadcast
    /// `255.255.255.255` or the subnet's directed broadcast.
    pub fn is_broadcast(&self, addr: IpAddress) -> bool {
        let IpAddress::Ipv4(v4) = addr;
        v4.is_broadcast()
            || self.iface.ip_addrs().iter().any(|cidr| match cidr {
                IpCidr::Ipv4(c) => c.broadcast() == Some(v4),
            })
    }

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
                .get::<tcp::Socket>(t.inner)
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
                .get::<tcp::Socket>(t.inner)
                .remote_endpoint()
                .ok_or(AddrError::NotConnected),
            _ => Err(AddrError::NotConnected),
        }
    }

    /// Bytes used and capacity of the socket's rx and tx rings:
    /// `((rx_used, rx_capacity), (tx_used, tx_capacity))`. Listeners hold no rings.
    pub fn ring_usage(&self, handle: SocketHandle) -> Option<((usize, usize), (usize, usize))> {
        let slot = self.slot(handle)?;
        Some(self.usage_of(&slot.kind))
    }

    fn usage_of(&self, kind: &SlotKind) -> ((usize, usize), (usize, usize)) {
        match kind {
            SlotKind::Tcp(t) => {
                let s = self.sockets.get::<tcp::Socket>(t.inner);
                (
                    (s.recv_queue(), s.recv_capacity()),
                    (s.send_queue(), s.send_capacity()),
                )
            }
            SlotKind::Udp(u) => {
                let s = self.sockets.get::<udp::Socket>(u.inner);
                (
                    (s.recv_queue(), s.payload_recv_capacity()),
                    (s.send_queue(), s.payload_send_capacity()),
                )
            }
            SlotKind::Listener(_) => ((0, 0), (0, 0)),
        }
    }

    /// The socket's counters.
    pub fn stats(&self, handle: SocketHandle) -> Option<SocketStats> {
        self.slot(handle).map(|slot| slot.stats)
    }

    pub(crate) fn stats_mut(&mut self, handle: SocketHandle) -> Option<&mut SocketStats> {
        self.slot_mut(handle).map(|slot| &mut slot.stats)
    }

    /// One [`StatsRow`] for each socket in the table: the open ones, and also the backlog
    /// sockets of listeners and connections still closing after `close()`, whose
    /// counters are where a server's buffer story is.
    pub fn stats_rows(&self) -> impl Iterator<Item = StatsRow> + use<'_, 'a> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let slot = slot.as_ref()?;
            let handle = SocketHandle(index as u16);
            let (rx, tx) = self.usage_of(&slot.kind);
            let local_port = match &slot.kind {
                SlotKind::Tcp(t) => self
                    .sockets
                    .get::<tcp::Socket>(t.inner)
                    .local_endpoint()
                    .map_or(t.backlog_port, |ep| ep.port),
                SlotKind::Udp(u) => u.port,
                SlotKind::Listener(l) => l.port,
            };
            Some(StatsRow {
                handle,
                kind: slot.socket_type(),
                local_port,
                rx,
                tx,
                stats: slot.stats,
            })
        })
    }

    /// The stats table of every socket in the table; `Display` prints it.
    pub fn stats_table(&self) -> StatsTable<'_, 'a> {
        StatsTable { stack: self }
    }

    /// `setsockopt`: sets one option after checking its range and the socket type.
    pub fn set_option(
        &mut self,
        handle: SocketHandle,
        option: SocketOption,
    ) -> Result<(), OptionError> {
        let name = self.name;
        let slot = self
            .slots
            .get_mut(handle.fileno())
            .and_then(Option::as_mut)
            .filter(|slot| slot.visible())
            .ok_or(OptionError::BadHandle)?;
        option.validate()?;
        let kind = slot.socket_type();
        match (option, &slot.kind) {
            (SocketOption::RecvBufferSize(_) | SocketOption::SendBufferSize(_), _) => {
                return Err(OptionError::ReadOnly)
            }
            (SocketOption::RecvTimeout(t), _) => slot.options.recv_timeout = t,
            (SocketOption::SendTimeout(t), _) => slot.options.send_timeout = t,
            (SocketOption::Broadcast(on), SlotKind::Udp(_)) => slot.options.broadcast = on,
            (SocketOption::Ttl(ttl), SlotKind::Udp(u)) => self
                .sockets
                .get_mut::<udp::Socket>(u.inner)
                .set_hop_limit(Some(ttl)),
            (SocketOption::Ttl(ttl), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner)
                .set_hop_limit(Some(ttl)),
            (SocketOption::NoDelay(on), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner)
                .set_nagle_enabled(!on),
            (SocketOption::KeepAlive(interval), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner)
                .set_keep_alive(interval),
            (SocketOption::AckDelay(delay), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner)
                .set_ack_delay(delay),
            _ => return Err(OptionError::WrongSocketType),
        }
        log::info!("{name}: {kind}{handle} setsockopt {option:?}");
        Ok(())
    }

    /// `getsockopt`: the option's current value.
    pub fn get_option(
        &self,
        handle: SocketHandle,
        name: OptionName,
    ) -> Result<SocketOption, OptionError> {
        let slot = self.slot(handle).ok_or(OptionError::BadHandle)?;
        let ((_, rx_capacity), (_, tx_capacity)) = self.usage_of(&slot.kind);
        let tcp = match &slot.kind {
            SlotKind::Tcp(t) => Some(self.sockets.get::<tcp::Socket>(t.inner)),
            _ => None,
        };
        let ttl = match &slot.kind {
            SlotKind::Tcp(t) => self.sockets.get::<tcp::Socket>(t.inner).hop_limit(),
            SlotKind::Udp(u) => self.sockets.get::<udp::Socket>(u.inner).hop_limit(),
            SlotKind::Listener(_) => None,
        };
        const DEFAULT_TTL: u8 = 64;
        Ok(match (name, tcp) {
            (OptionName::RecvBufferSize, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::RecvBufferSize(rx_capacity)
            }
            (OptionName::SendBufferSize, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::SendBufferSize(tx_capacity)
            }
            (OptionName::RecvTimeout, _) => SocketOption::RecvTimeout(slot.options.recv_timeout),
            (OptionName::SendTimeout, _) => SocketOption::SendTimeout(slot.options.send_timeout),
            (OptionName::Broadcast, _) if matches!(slot.kind, SlotKind::Udp(_)) => {
                SocketOption::Broadcast(slot.options.broadcast)
            }
            (OptionName::Ttl, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::Ttl(ttl.unwrap_or(DEFAULT_TTL))
            }
            (OptionName::NoDelay, Some(s)) => SocketOption::NoDelay(!s.nagle_enabled()),
            (OptionName::KeepAlive, Some(s)) => SocketOption::KeepAlive(s.keep_alive()),
            (OptionName::AckDelay, Some(s)) => SocketOption::AckDelay(s.ack_delay()),
            _ => return Err(OptionError::WrongSocketType),
        })
    }

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
        let socket = self.sockets.get_mut::<tcp::Socket>(t.inner);
        if abort || socket.recv_queue() > 0 {
            if !abort {
                log::warn!(
                    "{}: tcp{handle} closed with {} unread bytes: sending RST, as Linux does",
                    self.name,
                    socket.recv_queue()
                );
            }
            socket.abort();
            t.end = Some(TcpEnd::Aborted);
        } else {
            socket.close();
        }
        t.orphaned = true;
        self.observe_slot(handle.fileno());
    }

    fn close_listener(&mut self, listener: SocketHandle) {
        for index in 0..self.slots.len() {
            if let Some(Slot {
                kind: SlotKind::Tcp(t),
                ..
            }) = &mut self.slots[index]
            {
                if t.member_of == Some(listener) {
                    t.member_of = None;
                    if !t.accepted {
                        // Connections nobody accepted are reset, as when a Linux listener
                        // closes with a full accept queue.
                        let socket = self.sockets.get_mut::<tcp::Socket>(t.inner);
                        socket.abort();
                        t.orphaned = true;
                    }
                }
            }
        }
        self.slots[listener.fileno()] = None;
        self.observe_sockets(false);
    }

    /// Updates every socket's watches and lifecycle after a poll or a call.
    pub(crate) fn observe_sockets(&mut self, reap: bool) {
        for index in 0..self.slots.len() {
            self.observe_slot_with(index, reap);
        }
    }

    /// Updates one socket's watches and state after a call.
    pub(crate) fn observe_slot(&mut self, index: usize) {
        self.observe_slot_with(index, false);
    }

    /// Updates one socket's watches and lifecycle; with `reap`, also frees or recycles a
    /// closed connection's slot (only after a poll, so a pending RST or ACK has left).
    fn observe_slot_with(&mut self, index: usize, reap: bool) {
        let starved = match self.slots[index].as_ref().map(|slot| &slot.kind) {
            Some(SlotKind::Tcp(TcpSlot {
                member_of: Some(listener),
                last_state: tcp::State::TimeWait,
                ..
            })) => self.backlog_starved(*listener),
            _ => false,
        };
        {
            let handle = SocketHandle(index as u16);
            let Some(slot) = self.slots[index].as_mut() else {
                return;
            };
            let kind = slot.socket_type();
            let gate = LogGate {
                stack: self.name,
                now: self.now,
                limit: self.log_limit,
            };
            slot.log_throttle.flush(&gate, kind, handle);
            match &mut slot.kind {
                SlotKind::Tcp(t) => {
                    let socket = self.sockets.get_mut::<tcp::Socket>(t.inner);
                    slot.rx_watch.update(
                        &gate,
                        &mut slot.log_throttle,
                        handle,
                        kind,
                        Ring::Rx,
                        (socket.recv_queue(), socket.recv_capacity()),
                        &mut slot.stats,
                    );
                    slot.tx_watch.update(
                        &gate,
                        &mut slot.log_throttle,
                        handle,
                        kind,
                        Ring::Tx,
                        (socket.send_queue(), socket.send_capacity()),
                        &mut slot.stats,
                    );
                    let state = socket.state();
                    if state != t.last_state {
                        let before = core::mem::replace(&mut t.last_state, state);
                        let was_connected = t.connected_once;
                        tcp_transition(self.name, handle, t, before, state, socket);
                        if !was_connected && t.connected_once && t.member_of.is_some() {
                            self.ready_counter = self.ready_counter.wrapping_add(1);
                            t.ready_seq = self.ready_counter;
                        }
                    }
                    if t.orphaned && socket.recv_queue() > 0 && socket.state() != tcp::State::Closed
                    {
                        log::warn!(
                            "{}: tcp{handle} data arrived after close: sending RST, as Linux does",
                            self.name
                        );
                        socket.abort();
                        t.end = Some(TcpEnd::Aborted);
                    }
                    if state == tcp::State::TimeWait && t.time_wait_since.is_none() {
                        t.time_wait_since = Some(self.now);
                    }
                    // A connection is over once an abort's RST has left (smoltcp then
                    // forgets the peer), or after a short TIME-WAIT: memory is fixed, so
                    // a slot cannot wait the full 2*MSL.
                    let over = match socket.state() {
                        tcp::State::Closed => socket.remote_endpoint().is_none(),
                        tcp::State::TimeWait => {
                            time_wait_end(t, socket, starved).is_some_and(|end| end <= self.now)
                        }
                        _ => false,
                    };
                    if reap && over && t.returns_to_backlog() {
                        // Back to the listener's backlog, as a fresh listening socket.
                        socket.abort();
                        if socket.listen(t.backlog_port).is_ok() {
                            *t = TcpSlot {
                                last_state: tcp::State::Listen,
                                ..TcpSlot::fresh(t.inner, t.member_of, t.backlog_port)
                            };
                            log::debug!(
                                "{}: tcp{handle} back in the backlog of port {}",
                                self.name,
                                t.backlog_port
                            );
                        }
                    } else if reap && over && t.orphaned {
                        self.sockets.remove(t.inner);
                        self.slots[index] = None;
                        log::debug!("{}: tcp{handle} connection gone, slot free", self.name);
                    }
                }
                SlotKind::Udp(u) => {
                    let socket = self.sockets.get::<udp::Socket>(u.inner);
                    slot.rx_watch.update(
                        &gate,
                        &mut slot.log_throttle,
                        handle,
                        kind,
                        Ring::Rx,
                        (socket.recv_queue(), socket.payload_recv_capacity()),
                        &mut slot.stats,
                    );
                    slot.tx_watch.update(
                        &gate,
                        &mut slot.log_throttle,
                        handle,
                        kind,
                        Ring::Tx,
                        (socket.send_queue(), socket.payload_send_capacity()),
                        &mut slot.stats,
                    );
                }
                SlotKind::Listener(_) => {}
            }
        }
    }
}

/// The slot `handle` names, if the user may name it; borrows only the table, so the
/// smoltcp socket set stays free to borrow alongside.
pub(crate) fn visible_mut(slots: &mut [Option<Slot>], handle: SocketHandle) -> Option<&mut Slot> {
    slots
        .get_mut(handle.fileno())
        .and_then(Option::as_mut)
        .filter(|slot| slot.visible())
}

/// Logs a TCP state change and records how the connection ended.
fn tcp_transition(
    name: &str,
    handle: SocketHandle,
    t: &mut TcpSlot,
    before: tcp::State,
    state: tcp::State,
    socket: &tcp::Socket<'_>,
) {
    use tcp::State::*;
    // A handshake and a quick FIN can land in one poll: any synchronised state means the
    // connection was established, even if ESTABLISHED itself was never observed.
    let synchronised = matches!(
        state,
        Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck | TimeWait
    );
    if synchronised && !t.connected_once {
        t.connected_once = true;
        if let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint()) {
            log::info!("{name}: tcp{handle} connected {local} <-> {remote}");
        }
    }
    match state {
        Established => {}
        CloseWait => log::info!(
            "{name}: tcp{handle} peer closed its side (FIN): recv returns 0 once {} buffered bytes are read",
            socket.recv_queue()
        ),
        Closed => match before {
            SynSent if t.end.is_none() => {
                t.end = Some(TcpEnd::Refused);
                log::warn!("{name}: tcp{handle} connection refused (RST)");
            }
            SynReceived | Established | FinWait1 | FinWait2 | CloseWait | Closing
                if t.end.is_none() =>
            {
                t.end = Some(TcpEnd::Reset);
                log::warn!("{name}: tcp{handle} connection reset by peer (RST) in {before}");
            }
            _ => log::info!("{name}: tcp{handle} closed (was {before})"),
        },
        _ => log::debug!("{name}: tcp{handle} {before} -> {state}"),
    }
}

/// Matches the inspector's frame events against the sockets.
fn drain_frame_events(
    gate: &LogGate<'_>,
    frames: &RefCell<FrameLog>,
    slots: &mut [Option<Slot>],
    sockets: &mut SocketSet<'_>,
) {
    let name = gate.stack;
    let mut frames = frames.borrow_mut();
    while let Some(event) = frames.pop_front() {
        match event {
            FrameEvent::UdpIn {
                dst_port,
                src,
                payload_len,
            } => {
                let Some((index, slot)) = slots.iter_mut().enumerate().find_map(|(i, s)| {
                    s.as_mut()
                        .filter(|s| matches!(&s.kind, SlotKind::Udp(u) if u.port == dst_port))
                        .map(|s| (i, s))
                }) else {
                    continue;
                };
                let SlotKind::Udp(u) = &mut slot.kind else {
                    continue;
                };
                let socket = sockets.get::<udp::Socket>(u.inner);
                let now_bytes = socket.recv_queue();
                // Delivered datagrams grow the ring by their size (plus any wrap padding).
                let delivered = now_bytes >= u.rx_bytes_seen + payload_len
                    && (payload_len > 0 || socket.can_recv());
                u.rx_bytes_seen = now_bytes;
                if !delivered {
                    slot.stats.rx_drops += 1;
                    log::warn!(
                        "{name}: udp#{index} dropped a {payload_len}-byte datagram from {src}: rx ring {}/{} has no room (drops: {})",
                        now_bytes,
                        socket.payload_recv_capacity(),
                        slot.stats.rx_drops
                    );
                }
            }
            FrameEvent::TcpOut {
                src_port,
                dst,
                window_field,
            } => {
                let hint = frames.tcp_out_hint.min(slots.len());
                let (wrapped, from_hint) = slots.split_at_mut(hint);
                let in_order = from_hint
                    .iter_mut()
                    .enumerate()
                    .map(|(i, slot)| (hint + i, slot))
                    .chain(wrapped.iter_mut().enumerate());
                for (index, slot) in in_order {
                    let Some(Slot {
                        kind: SlotKind::Tcp(t),
                        stats,
                        log_throttle,
                        ..
                    }) = slot
                    else {
                        continue;
                    };
                    let socket = sockets.get::<tcp::Socket>(t.inner);
                    let matches = socket.local_endpoint().is_some_and(|l| l.port == src_port)
                        && socket.remote_endpoint() == Some(dst);
                    if matches {
                        if socket.state() == tcp::State::TimeWait {
                            t.time_wait_acked = true;
                        }
                        t.window.segment_sent(
                            gate,
                            log_throttle,
                            SocketHandle(index as u16),
                            window_field,
                            socket.recv_queue(),
                            socket.recv_capacity(),
                            stats,
                        );
                        frames.tcp_out_hint = index;
                        break;
                    }
                }
            }
        }
    }
    if frames.overflowed > 0 {
        log::warn!(
            "{name}: {} frame events were not observed (inspector log full)",
            frames.overflowed
        );
        frames.overflowed = 0;
    }
}

/// The stats table of a stack; `Display` prints a header and one row per socket.
pub struct StatsTable<'s, 'a> {
    stack: &'s Stack<'a>,
}

impl fmt::Display for StatsTable<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (frames_in, frames_out) = self.stack.frame_counts();
        writeln!(
            f,
            "{}: {} ({} frames in, {} out)",
            self.stack.name,
            self.stack.ipv4_addr(),
            frames_in,
            frames_out
        )?;
        writeln!(f, "{}", StatsRow::HEADER)?;
        for row in self.stack.stats_rows() {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}
