//! The stack's ARP queue: datagrams whose next hop has not been heard from, kept out of
//! their socket's tx ring while its address is asked for.
//!
//! smoltcp keeps a datagram whose next hop has no neighbour entry at the head of its
//! socket's tx ring, and sends nothing else from that socket until the next hop answers
//! (`super::unresolved` gives the ring up after 3 s). A spoofed datagram from an address
//! of the subnet that no host holds, every 3 s or faster, kept a service that answers
//! datagrams from answering anyone. Linux queues a packet on its neighbour instead
//! (`arp_queue`, at most `unres_qlen_bytes`), so other neighbours never wait, and drops
//! what it queued when the neighbour does not answer, or when the queue is full, both
//! counted in `/proc/net/stat/arp_cache` as `unresolved_discards`.
//!
//! ringnet keeps one such queue for the whole stack ([`Stack::set_arp_queue`]): a UDP
//! socket of its own in a socket set of its own, which smoltcp polls for egress only, so
//! it never takes a datagram that arrives. `send_to` puts a datagram there when its next
//! hop is not in the neighbours heard from ([`crate::phy::HeardNeighbours`], what
//! smoltcp's private cache holds), or when the queue holds the same socket's datagrams
//! for the same next hop already (so that they leave in order). The queue holds one
//! socket's datagrams for one next hop at a time (the destination on the subnet, else the
//! gateway: two hosts behind one gateway wait for it together); a datagram that finds it holding
//! another's is dropped, as Linux drops past `unres_qlen`. Datagrams on the queue count
//! against their socket's tx ring, as Linux charges them to the socket's send buffer: a
//! datagram that would take the ring, with them, past its capacity is `WouldBlock`. One
//! that finds the queue full of its socket's own datagrams for its next hop, or that
//! is larger than the whole queue, is dropped too, as Linux drops past
//! `unres_qlen_bytes`: in the socket's ring it would wait at the head for the same next
//! hop, every datagram of the socket behind it, the stall the queue is for (twelve
//! spoofed queries from one address every 4 s left a real client 1 answer in 30; one
//! 1400-byte stats answer a second on a 512-byte queue, 12 tables in 30). One whose next
//! hop does not answer for [`UNRESOLVED_AFTER`] is dropped with the rest of the queue.
//! All are counted in the sending socket's `unresolved_dropped_bytes` and in
//! [`ArpQueueStats`], and logged at most once a second.

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::udp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr};

use super::table::{OpenError, Slot, SlotKind};
use super::unresolved::UNRESOLVED_AFTER;
use super::Stack;
use crate::handle::SocketHandle;
use crate::observe::IntervalLog;

/// What the ARP queue has done since it was set ([`Stack::arp_queue_stats`]), in
/// payload bytes: what was queued has left, been dropped, or is still held. Linux counts
/// the drops of both kinds together, in datagrams, in `unresolved_discards`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpQueueStats {
    /// Datagrams put on the queue.
    pub datagrams_queued: u32,
    /// Their bytes.
    pub queued_bytes: u64,
    /// Bytes that left it, their next hop resolved.
    pub sent_bytes: u64,
    /// Datagrams dropped at `send_to` because the queue held another socket's datagrams,
    /// or datagrams for another next hop.
    pub datagrams_dropped_busy: u32,
    /// Their bytes.
    pub dropped_busy_bytes: u64,
    /// Datagrams dropped at `send_to` because the queue had no room for them: full of
    /// their socket's datagrams for their next hop, or smaller than the datagram.
    pub datagrams_dropped_full: u32,
    /// Their bytes.
    pub dropped_full_bytes: u64,
    /// Bytes dropped from the queue because their next hop did not answer ARP for
    /// [`UNRESOLVED_AFTER`].
    pub dropped_unresolved_bytes: u64,
    /// Most bytes it held at once.
    pub high_water: usize,
}

/// Memory for a stack's ARP queue ([`Stack::set_arp_queue`]): its socket, and a ring of
/// `SLOTS` datagrams and `BYTES` payload bytes (Linux's `unres_qlen_bytes`, per
/// neighbour there, for the whole stack here).
pub struct ArpQueueResources<'a, const SLOTS: usize, const BYTES: usize> {
    socket: [SocketStorage<'a>; 1],
    slots: [udp::PacketMetadata; SLOTS],
    payload: [u8; BYTES],
}

impl<const SLOTS: usize, const BYTES: usize> ArpQueueResources<'_, SLOTS, BYTES> {
    /// Empty memory for the queue.
    pub const fn new() -> Self {
        ArpQueueResources {
            socket: [SocketStorage::EMPTY],
            slots: [udp::PacketMetadata::EMPTY; SLOTS],
            payload: [0; BYTES],
        }
    }
}

impl<'a, const SLOTS: usize, const BYTES: usize> ArpQueueResources<'a, SLOTS, BYTES> {
    /// Empty memory for the queue, built where it lies: for a queue in a `static` cell on
    /// a small microcontroller, as [`StackResources::new_in`](super::StackResources::new_in).
    #[allow(unsafe_code)]
    pub fn new_in(place: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        let queue = place.as_mut_ptr();
        // SAFETY: `queue` points to writable memory for a whole `Self`; every field is
        // written once, element by element, before the whole is treated as initialised,
        // and `write` drops nothing.
        unsafe {
            core::ptr::addr_of_mut!((*queue).socket)
                .cast::<SocketStorage<'a>>()
                .write(SocketStorage::default());
            let slots = core::ptr::addr_of_mut!((*queue).slots).cast::<udp::PacketMetadata>();
            for i in 0..SLOTS {
                slots.add(i).write(udp::PacketMetadata::EMPTY);
            }
            core::ptr::addr_of_mut!((*queue).payload).write_bytes(0, 1);
            place.assume_init_mut()
        }
    }
}

impl<const SLOTS: usize, const BYTES: usize> Default for ArpQueueResources<'_, SLOTS, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

/// The socket and next hop whose datagrams the queue holds.
#[derive(Debug, Clone, Copy)]
struct Owner {
    handle: SocketHandle,
    port: u16,
    /// The neighbour they wait for: the destination on the subnet, else the gateway.
    next_hop: Ipv4Address,
    /// The socket is still open: once closed, its number and port may be another
    /// socket's, which neither joins its datagrams nor is charged with their drop.
    open: bool,
}

/// The queue: its own socket set of one UDP socket, and what it holds.
pub(crate) struct ArpQueue<'a> {
    pub(super) set: SocketSet<'a>,
    inner: smoltcp::iface::SocketHandle,
    owner: Option<Owner>,
    /// Bytes put on the queue since its owner took it, and how many of them have left.
    queued: u32,
    left: u32,
    /// Since when nothing has left, while it holds datagrams.
    stall: Option<smoltcp::time::Instant>,
    stats: ArpQueueStats,
    drops_log: IntervalLog,
}

impl ArpQueue<'_> {
    /// Bytes it holds for the socket at table index `index`.
    fn held_for(&self, index: usize) -> usize {
        match self.owner {
            Some(owner) if owner.handle.fileno() == index => {
                self.set.get::<udp::Socket>(self.inner).send_queue()
            }
            _ => 0,
        }
    }
}

/// Where `send_to` puts a datagram.
pub(crate) enum ArpQueued {
    /// Not on the queue: into the socket's own tx ring, as before.
    No,
    /// On the queue.
    Queued,
    /// Dropped: the queue holds another socket's or next hop's datagrams, or has no
    /// room for this one.
    Dropped,
    /// Not taken: with what the queue holds for it, the socket's own tx ring would be
    /// over its capacity (Linux charges a datagram on a neighbour's queue to its socket's
    /// send buffer).
    WouldBlock,
}

/// At most one line a second about the queue's drops.
const DROPS_LOG_INTERVAL: Duration = Duration::from_secs(1);

impl<'a> Stack<'a> {
    /// Gives the stack a queue for datagrams whose next hop has not been heard from, in
    /// `resources`: Linux's `arp_queue`, one for the whole stack, holding one socket's
    /// datagrams for one next hop at a time, each given up after [`UNRESOLVED_AFTER`]
    /// without an answer (docs/counters.md). Without one, such a datagram waits in its
    /// socket's tx ring, and the ring is given up after [`UNRESOLVED_AFTER`] (Linux with
    /// `unres_qlen_bytes` of 0). A stack takes one queue: a second is
    /// [`OpenError::AlreadySet`].
    pub fn set_arp_queue<const SLOTS: usize, const BYTES: usize>(
        &mut self,
        resources: &'a mut ArpQueueResources<'a, SLOTS, BYTES>,
    ) -> Result<(), OpenError> {
        if self.arp_queue.is_some() {
            return Err(OpenError::AlreadySet);
        }
        if SLOTS == 0 || BYTES == 0 {
            return Err(OpenError::ZeroCapacity);
        }
        let ArpQueueResources {
            socket,
            slots,
            payload,
        } = resources;
        let socket_of_set = udp::Socket::new(
            udp::PacketBuffer::new(&mut [][..], &mut [][..]),
            udp::PacketBuffer::new(&mut slots[..], &mut payload[..]),
        );
        let mut set = SocketSet::new(&mut socket[..]);
        let inner = set.add(socket_of_set);
        net_info!(
            "{}: ARP queue of {} datagrams, {} bytes",
            self.name,
            SLOTS,
            BYTES
        );
        self.arp_queue = Some(ArpQueue {
            set,
            inner,
            owner: None,
            queued: 0,
            left: 0,
            stall: None,
            stats: ArpQueueStats::default(),
            drops_log: IntervalLog::NEW,
        });
        Ok(())
    }

    /// Bytes the ARP queue holds for the socket at table index `index`: part of that
    /// socket's tx occupancy, as Linux's `SIOCOUTQ` counts a datagram on a neighbour's
    /// queue in its socket's send buffer.
    pub(crate) fn arp_queue_held(&self, index: usize) -> usize {
        self.arp_queue.as_ref().map_or(0, |q| q.held_for(index))
    }

    /// What the ARP queue has done, if the stack has one.
    pub fn arp_queue_stats(&self) -> Option<ArpQueueStats> {
        self.arp_queue.as_ref().map(|q| q.stats)
    }

    /// The neighbour a datagram to `to` goes to: `to` itself on the subnet, else the
    /// gateway. None for a broadcast or multicast destination, which needs no
    /// neighbour, and for one with no route (smoltcp refuses it as before).
    fn next_hop(&self, to: IpAddress) -> Option<Ipv4Address> {
        let IpAddress::Ipv4(addr) = to;
        if self.is_broadcast(to) || addr.is_multicast() {
            None
        } else {
            neighbour_for(self.cidr, self.gateway, addr)
        }
    }

    /// Puts a datagram of socket `handle` (bound to `port`, its tx ring holding `ring.0`
    /// of `ring.1` bytes) for `to` on the ARP queue if it belongs there ([module
    /// docs](self)).
    pub(crate) fn arp_queue_send(
        &mut self,
        handle: SocketHandle,
        port: u16,
        ring: (usize, usize),
        data: &[u8],
        to: IpEndpoint,
    ) -> ArpQueued {
        if self.arp_queue.is_none() {
            return ArpQueued::No;
        }
        let Some(next_hop) = self.next_hop(to.addr) else {
            return ArpQueued::No;
        };
        let heard = self.frames.borrow().neighbours.heard(next_hop, self.now);
        let (name, now) = (self.name, self.now);
        let Some(q) = self.arp_queue.as_mut() else {
            return ArpQueued::No;
        };
        let socket = q.set.get_mut::<udp::Socket>(q.inner);
        if socket.send_queue() == 0 {
            q.owner = None;
        }
        let mine = q
            .owner
            .filter(|o| o.open && o.handle == handle && o.port == port && o.next_hop == next_hop);
        if heard && mine.is_none() {
            return ArpQueued::No;
        }
        let held_mine = if mine.is_some() {
            socket.send_queue()
        } else {
            0
        };
        if held_mine + ring.0 + data.len() > ring.1 {
            return ArpQueued::WouldBlock;
        }
        // Whether it found the queue free or its own, and whether it was taken.
        let (ours, taken) = match (q.owner, mine) {
            (None, _) => {
                if socket.endpoint().port != port {
                    socket.close();
                    // Cannot fail: a bound socket's port is not 0.
                    let _ = socket.bind(port);
                }
                (q.queued, q.left, q.stall) = (0, 0, None);
                let taken = socket.send_slice(data, to).is_ok();
                if taken {
                    q.owner = Some(Owner {
                        handle,
                        port,
                        next_hop,
                        open: true,
                    });
                }
                (true, taken)
            }
            (Some(_), Some(_)) => (true, socket.send_slice(data, to).is_ok()),
            (Some(_), None) => (false, false),
        };
        if taken {
            q.queued = q.queued.wrapping_add(data.len() as u32);
            q.stats.datagrams_queued += 1;
            q.stats.queued_bytes += data.len() as u64;
            q.stats.high_water = q.stats.high_water.max(socket.send_queue());
            net_debug!(
                "{}: udp{} {} bytes to {} on the ARP queue ({} bytes held): its next hop not heard from",
                name,
                handle,
                data.len(),
                to,
                socket.send_queue()
            );
            self.udp_tx_queued = true;
            return ArpQueued::Queued;
        }
        if ours {
            q.stats.datagrams_dropped_full += 1;
            q.stats.dropped_full_bytes += data.len() as u64;
        } else {
            q.stats.datagrams_dropped_busy += 1;
            q.stats.dropped_busy_bytes += data.len() as u64;
        }
        let total = q.stats.datagrams_dropped_busy + q.stats.datagrams_dropped_full;
        if let Some(new) = q.drops_log.due(total, now, DROPS_LOG_INTERVAL) {
            net_warn!(
                "{}: udp{} {} bytes to {} dropped: the ARP queue holds another socket's or next hop's, or is full ({} so dropped, {} new; at most one line a second)",
                name,
                handle,
                data.len(),
                to,
                total,
                new
            );
        }
        ArpQueued::Dropped
    }

    /// Socket `handle` is closed: what it has on the ARP queue stays there, to leave
    /// once its next hop answers (as Linux keeps a closed socket's packets on their
    /// neighbour), and is no longer its number's.
    pub(super) fn arp_queue_socket_closed(&mut self, handle: SocketHandle) {
        if let Some(owner) = self
            .arp_queue
            .as_mut()
            .and_then(|q| q.owner.as_mut())
            .filter(|o| o.handle == handle)
        {
            owner.open = false;
        }
    }

    /// After an egress: what left the ARP queue counted, and what it held given up once
    /// its next hop has not answered for [`UNRESOLVED_AFTER`]. Returns whether it still
    /// holds datagrams.
    pub(super) fn drop_unresolved_queue(&mut self) -> bool {
        let now = self.now;
        let Some(q) = self.arp_queue.as_mut() else {
            return false;
        };
        let Some(owner) = q.owner else {
            return false;
        };
        let socket = q.set.get_mut::<udp::Socket>(q.inner);
        let held = socket.send_queue();
        // What has left since the owner took it: all of it once the ring is empty, else
        // what is queued less what is held (less, while smoltcp's wrap padding is held).
        let left = if held == 0 {
            q.queued
        } else {
            q.queued.saturating_sub(held as u32).max(q.left)
        };
        if left != q.left {
            q.stats.sent_bytes += u64::from(left - q.left);
            q.left = left;
            q.stall = None;
        }
        if held == 0 {
            q.owner = None;
            return false;
        }
        let until = *q.stall.get_or_insert(now + UNRESOLVED_AFTER);
        if now < until {
            return true;
        }
        socket.close();
        let _ = socket.bind(owner.port);
        // Taken out of the set and put back: smoltcp's wait before it asks for the
        // dropped datagrams' next hop again is the set's, and must not delay the next
        // owner's.
        let socket = q.set.remove(q.inner);
        q.inner = q.set.add(socket);
        let dropped = q.queued - q.left;
        q.owner = None;
        q.stall = None;
        q.stats.dropped_unresolved_bytes += u64::from(dropped);
        if let Some(Some(Slot {
            kind: SlotKind::Udp(u),
            stats,
            ..
        })) = self.slots.get_mut(owner.handle.fileno())
        {
            if owner.open && u.port == owner.port {
                stats.unresolved_dropped_bytes += u64::from(dropped);
            }
        }
        net_warn!(
            "{}: udp{} {} bytes for next hop {} dropped from the ARP queue: their next hop did not answer ARP in 3 s",
            self.name,
            owner.handle,
            dropped,
            owner.next_hop
        );
        false
    }
}

/// The neighbour a unicast packet to `addr` goes to on an interface in `cidr` with
/// `gateway`: `addr` itself on the subnet, else the gateway (none without one).
pub(super) fn neighbour_for(
    cidr: Ipv4Cidr,
    gateway: Option<Ipv4Address>,
    addr: Ipv4Address,
) -> Option<Ipv4Address> {
    if cidr.contains_addr(&addr) {
        Some(addr)
    } else {
        gateway
    }
}
