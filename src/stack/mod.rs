//! The [`Stack`]: a smoltcp `Interface`, a fixed socket table, and the observation that
//! turns smoltcp's silent buffers into logged transitions and counters.
//!
//! - `table`: [`StackResources`], the slots and what each holds beside its smoltcp socket.
//! - `tcp_slot`: a TCP socket's state beside smoltcp's, from backlog to reuse, changed
//!   only through its methods.
//! - `lifecycle`: [`Stack::close`], [`Stack::abort`], and the freeing or recycling of a
//!   slot whose connection is over.
//! - `frames`: the inspector's frame events matched to sockets (drops, zero windows).
//! - `mss`: each socket's rings as the MSS bounds the inspector applies to handshakes.
//! - `watch`: every socket's rings fed to its watches after a poll or a call.
//!
//! This module and the ones it holds import only the layers below: [`crate::handle`],
//! [`crate::phy`] and [`crate::observe`]. The socket calls on top of it are in
//! [`crate::socket`].

mod arp_queue;
mod frames;
mod lifecycle;
mod mss;
mod table;
mod tcp_slot;
mod unresolved;
mod watch;

pub(crate) use arp_queue::ArpQueued;
pub use arp_queue::{ArpQueueResources, ArpQueueStats};
pub use lifecycle::CloseError;
pub(crate) use table::{visible_mut, ListenerSlot, Slot, SlotKind, UdpSlot};
pub use table::{OpenError, StackResources};
pub use tcp_slot::TcpTimers;
pub(crate) use tcp_slot::{NoConnection, TcpSlot};
pub use unresolved::UNRESOLVED_AFTER;

use core::cell::RefCell;

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketSet};
use smoltcp::phy::Device;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::handle::SocketHandle;
use crate::observe::{
    Account, EventKind, EventSink, LogLimit, Recorder, Source, StatsRow, StatsTable,
};
use crate::phy::{Acceptance, Discards, FrameLog, Inspector};
use frames::{drain_frame_events, DiscardAccount};
use lifecycle::{guard_backlogs, Route};
use smoltcp::time::{Duration, Instant};
use table::EPHEMERAL_FIRST;

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

/// A network stack: one interface, one socket table, BSD-socket semantics.
///
/// Create sockets with [`Stack::tcp_socket`] and [`Stack::udp_socket`], drive the stack with
/// [`Stack::poll`], and sleep until [`Stack::poll_at`]. The socket calls themselves are
/// documented in [`crate::socket::tcp`] and [`crate::socket::udp`]; their blocking forms in
/// `ringnet::blocking` (feature `blocking`, a default).
pub struct Stack<'a> {
    pub(crate) name: &'static str,
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'a>,
    pub(crate) slots: &'a mut [Option<Slot>],
    frames: RefCell<FrameLog>,
    discards: DiscardAccount,
    pub(crate) now: Instant,
    pub(crate) mtu: usize,
    pub(crate) next_ephemeral: u16,
    pub(crate) ready_counter: u32,
    pub(crate) log_limit: Option<LogLimit>,
    sink: Option<&'a dyn EventSink>,
    pub(crate) timers: TcpTimers,
    /// A TCP socket's state changed since the starved backlogs were last named.
    pub(crate) backlogs_changed: bool,
    /// Some UDP socket's tx ring may hold datagrams: set by every `send_to` that queues
    /// one, cleared by the walk after an egress once it found every UDP tx ring empty
    /// (`unresolved`), which it skips while this is clear.
    pub(crate) udp_tx_queued: bool,
    /// The interface's address and subnet, and its gateway: where a datagram's next hop
    /// is. Both are fixed at `new`; smoltcp's routes can be read only through `&mut`, so
    /// the gateway is kept here rather than looked up in them.
    cidr: Ipv4Cidr,
    gateway: Option<Ipv4Address>,
    /// The queue for datagrams whose next hop has not been heard from, once set
    /// ([`Stack::set_arp_queue`]).
    arp_queue: Option<arp_queue::ArpQueue<'a>>,
}

/// At most this many frames are taken in one poll, so a flood cannot starve egress.
const INGRESS_BUDGET: usize = 256;

/// smoltcp's egress over one socket set: the sockets' or the ARP queue's.
fn egress<D: Device + ?Sized>(
    iface: &mut Interface,
    now: Instant,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
) -> PollResult {
    iface.poll_egress(now, device, sockets)
}

/// smoltcp's next timer over one socket set, as [`egress`].
fn next_poll(iface: &mut Interface, now: Instant, sockets: &SocketSet<'_>) -> Option<Instant> {
    iface.poll_at(now, sockets)
}

/// Which part of a poll [`Stack::poll_part`] does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Ingress,
    Egress,
    Both,
}

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
        let capabilities = device.capabilities();
        let mtu = capabilities.max_transmission_unit;
        // What smoltcp's interface accepts, with the checksums it took from the device.
        let acceptance = Acceptance {
            mac: config.mac,
            cidr: config.ip,
            checksum: capabilities.checksum,
        };
        net_info!(
            "{}: up, {} ({}), {} sockets, MTU {}",
            config.name,
            config.ip,
            config.mac,
            N,
            mtu
        );
        let mut frames = FrameLog::for_interface(acceptance);
        // No UDP port is bound yet, and the list says so whole; each bind and close of a
        // UDP socket names the ports again (`Stack::name_udp_ports`).
        frames.set_udp_ports(core::iter::empty());
        Stack {
            name: config.name,
            iface,
            sockets: SocketSet::new(&mut resources.sockets[..]),
            slots: &mut resources.slots[..],
            arp_queue: None,
            cidr: config.ip,
            gateway: config.gateway,
            frames: RefCell::new(frames),
            discards: DiscardAccount::default(),
            now,
            mtu,
            next_ephemeral: EPHEMERAL_FIRST + (config.seed % 16384) as u16,
            ready_counter: 0,
            log_limit: None,
            sink: None,
            timers: TcpTimers::DEFAULT,
            backlogs_changed: false,
            udp_tx_queued: false,
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

    /// Hands every event of this stack ([`Event`](crate::observe::Event): ring levels,
    /// transitions, windows, blocks, drops, state changes, timers) to `sink` as well as
    /// to the counters and the log; `None`, the default, keeps only those two. What
    /// `strace`, `ss` and `perf` together would show of a kernel socket, as one stream.
    /// With feature `events` (a default).
    #[cfg(feature = "events")]
    pub fn set_event_sink(&mut self, sink: Option<&'a dyn EventSink>) {
        self.sink = sink;
    }

    pub(crate) fn recorder(&self) -> Recorder<'a> {
        Recorder {
            stack: self.name,
            now: self.now,
            limit: self.log_limit,
            sink: self.sink,
        }
    }

    /// Records an event of the socket `handle` (counted on its row, logged, traced);
    /// nothing if no socket has that number.
    pub(crate) fn record(&mut self, handle: SocketHandle, kind: EventKind) {
        let rec = self.recorder();
        if let Some(Some(slot)) = self.slots.get_mut(handle.fileno()) {
            let source = Source::Socket {
                handle,
                kind: slot.socket_type(),
            };
            let mut account = Account::new(&mut slot.stats, &mut slot.log_throttle);
            rec.record(source, Some(&mut account), kind);
        }
    }

    /// The timers of the TCP lifecycle ([`Stack::set_tcp_timers`]).
    pub fn tcp_timers(&self) -> TcpTimers {
        self.timers
    }

    /// Sets how long a half-open connection and an orphan may wait ([`TcpTimers`]; the
    /// kernel's `tcp_synack_retries` and `tcp_fin_timeout`). Applies from the next poll.
    pub fn set_tcp_timers(&mut self, timers: TcpTimers) {
        self.timers = timers;
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

    /// Frames and datagrams the interface discarded before any socket saw them, by reason
    /// ([`Discards`]; Linux's `/proc/net/snmp` counters). A datagram that reached its
    /// socket but found its ring full is that socket's `rx_drops`, never one of these.
    pub fn discards(&self) -> Discards {
        self.discards.counts
    }

    /// Bounds the ICMP errors this host sends (smoltcp's port and protocol unreachable):
    /// at most `burst` at once, refilled at `per_second`, for the whole host, as Linux's
    /// `net.ipv4.icmp_msgs_burst` and `icmp_msgs_per_sec` do (50 and 1000, the
    /// defaults: [`ICMP_BURST`](crate::phy::ICMP_BURST),
    /// [`ICMP_PER_SECOND`](crate::phy::ICMP_PER_SECOND)). The frame an error would answer
    /// is not given to smoltcp while the bucket is empty; each is counted in
    /// [`Discards::icmp_limited`]. The bucket starts full.
    pub fn set_icmp_limit(&mut self, burst: u32, per_second: u32) {
        self.frames.get_mut().set_icmp_limit(burst, per_second);
    }

    /// Moves frames between `device` and the sockets, and updates every socket's counters
    /// and watches. Returns `true` if any socket's state may have changed.
    ///
    /// This is where the kernel's softirq work happens; ringnet does it when the caller
    /// says so, with the caller's notion of time.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.poll_part(now, device, Part::Both)
    }

    /// The first half of [`Stack::poll`]: the frames waiting on `device` into the
    /// sockets, then every socket's counters and watches updated (a connection that is
    /// over keeps its slot until the egress after it has sent what it queued). With
    /// [`Stack::poll_egress`] after it, a host can let its programs act in between
    /// ([`run::act_between`](crate::run::act_between)): what they read and write then
    /// goes out in the same turn, instead of in the next poll.
    pub fn poll_ingress<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.poll_part(now, device, Part::Ingress)
    }

    /// The second half of [`Stack::poll`]: what the sockets have to send onto `device`,
    /// then every socket's counters and watches updated.
    pub fn poll_egress<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.poll_part(now, device, Part::Egress)
    }

    fn poll_part<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D, part: Part) -> bool {
        self.now = now;
        let mut changed = false;
        // One recorder for the whole poll: `now` and the log limit do not change in it.
        let rec = self.recorder();
        let mut device = Inspector::new(device, &self.frames);
        // The frame log's events into the sockets' counts, and the backlogs' guard: by
        // field, since the inspector holds the frame log for the whole poll.
        macro_rules! drain {
            () => {
                drain_frame_events(
                    &rec,
                    &self.frames,
                    self.slots,
                    &mut self.sockets,
                    &mut self.discards,
                )
            };
        }
        macro_rules! guard {
            () => {
                guard_backlogs(
                    &rec,
                    &self.frames,
                    self.slots,
                    &mut self.sockets,
                    &mut self.backlogs_changed,
                    Route {
                        cidr: self.cidr,
                        gateway: self.gateway,
                    },
                )
            };
        }
        if part != Part::Egress {
            guard!();
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
                drain!();
                guard!();
                lifecycle::track_peer_fins(&self.frames, self.slots, &self.sockets, false);
            }
            lifecycle::track_peer_fins(&self.frames, self.slots, &self.sockets, true);
        }
        if part != Part::Ingress {
            while egress(&mut self.iface, now, &mut device, &mut self.sockets)
                == PollResult::SocketStateChanged
            {
                changed = true;
                drain!();
            }
            // The ARP queue after the sockets: what a socket's ring holds for a next hop
            // that has just gone unheard was sent before what the queue holds for it.
            if let Some(queue) = &mut self.arp_queue {
                while egress(&mut self.iface, now, &mut device, &mut queue.set)
                    == PollResult::SocketStateChanged
                {}
            }
        }
        drain!();
        if part != Part::Ingress {
            self.drop_unresolved_datagrams();
        }
        // A connection that is over is reaped only once an egress has run: what its last
        // observation queued (an expired orphan's RST, the ACK of a FIN) must leave first.
        self.observe_sockets(part != Part::Ingress);
        changed
    }

    /// When the stack next needs a poll even if no frame arrives (a retransmission, a
    /// delayed ACK, a keepalive), or `None` if only a frame can change anything.
    ///
    /// Besides smoltcp's own timers, this is when a backlog socket in TIME-WAIT may rejoin
    /// its backlog, when a half-open connection or an orphan runs out of time
    /// ([`TcpTimers`]), and when a SYN held back for want of room goes to smoltcp.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let smoltcp = next_poll(&mut self.iface, self.now, &self.sockets);
        [
            smoltcp,
            self.arp_queue_poll_at(),
            self.next_lifecycle_event(),
            self.held_syn_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the stack needs a poll by `now` though no frame arrives: exactly
    /// `poll_at().is_some_and(|at| at <= now)`, with smoltcp asked first and the rest
    /// only when it is not due. In a bulk send it is, every time a service has just
    /// queued data: the lifecycle's look at every socket is then left out (checked
    /// against [`Stack::poll_at`] in debug builds).
    pub fn due_by(&mut self, now: Instant) -> bool {
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        let answer = due(next_poll(&mut self.iface, self.now, &self.sockets))
            || due(self.arp_queue_poll_at())
            || due(self.held_syn_at())
            || due(self.next_lifecycle_event());
        if cfg!(debug_assertions) {
            assert_eq!(
                answer,
                due(self.poll_at()),
                "{}: due_by({})",
                self.name,
                now
            );
        }
        answer
    }

    /// When the ARP queue's socket next needs a poll: smoltcp asks again for its next hop
    /// once a second.
    fn arp_queue_poll_at(&mut self) -> Option<Instant> {
        let queue = self.arp_queue.as_ref()?;
        next_poll(&mut self.iface, self.now, &queue.set)
    }

    /// When a held SYN goes to smoltcp: at once when released (left over by the ingress
    /// budget), else when its wait for room is over.
    fn held_syn_at(&self) -> Option<Instant> {
        let frames = self.frames.borrow();
        let released = frames.held_syn_released().then_some(self.now);
        let waiting = frames.held_syn().map(|(_, _, at)| at + lifecycle::SYN_HOLD);
        released.or(waiting)
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

    /// Whether `addr` is a broadcast address for this interface: the limited broadcast
    /// `255.255.255.255` or the subnet's directed broadcast.
    pub fn is_broadcast(&self, addr: IpAddress) -> bool {
        let IpAddress::Ipv4(v4) = addr;
        v4.is_broadcast()
            || self.iface.ip_addrs().iter().any(|cidr| match cidr {
                IpCidr::Ipv4(c) => c.broadcast() == Some(v4),
            })
    }

    /// One [`StatsRow`] for each socket in the table: the open ones, and also the backlog
    /// sockets of listeners and connections still closing after `close()`, whose
    /// counters are where a server's buffer story is.
    pub fn stats_rows(&self) -> impl Iterator<Item = StatsRow> + Clone + use<'_, 'a> {
        (0..self.slots.len()).filter_map(|index| self.stats_row(index))
    }

    /// The [`StatsRow`] of the slot at `index`, if it holds a socket. Built once for every
    /// reader of the rows (the stats query, HTTP's `/stats`, the table), not inlined into
    /// each.
    #[inline(never)]
    fn stats_row(&self, index: usize) -> Option<StatsRow> {
        let slot = self.slots.get(index)?.as_ref()?;
        let (rx, tx) = self.usage_of(index, &slot.kind);
        Some(StatsRow {
            handle: SocketHandle(index as u16),
            kind: slot.socket_type(),
            local_port: self.local_port_of(&slot.kind),
            rx,
            tx,
            stats: slot.stats,
        })
    }

    /// The stats table of every socket in the table; `Display` prints it.
    pub fn stats_table(&self) -> StatsTable<impl Iterator<Item = StatsRow> + Clone + use<'_, 'a>> {
        StatsTable {
            name: self.name,
            addr: self.ipv4_addr(),
            frames: self.frame_counts(),
            discards: self.discards(),
            rows: self.stats_rows(),
        }
    }
}
