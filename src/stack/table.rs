//! The socket table: fixed slots, each a smoltcp socket (or a listener, which holds none)
//! with ringnet's own state beside it. What a kernel's file-descriptor table and its
//! socket structs are, in memory supplied up front.

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::{tcp, udp};

use super::tcp_slot::TcpSlot;
use super::Stack;
use crate::handle::{SocketHandle, SocketType};
use crate::observe::{LogThrottle, RingWatch, SocketStats};
use smoltcp::time::Duration;

/// Fixed memory for a stack's socket table: `N` sockets at most, counting listeners
/// (Linux's `RLIMIT_NOFILE`, here fixed at build time).
pub struct StackResources<'a, const N: usize> {
    pub(super) sockets: [SocketStorage<'a>; N],
    pub(super) slots: [Option<Slot>; N],
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
                // `default()`, the same empty storage as `EMPTY`: built from the constant,
                // each entry was a copy of its whole image (336 B of zeros in flash on
                // the firmware); built by `default()`, only the variant is written.
                sockets.add(i).write(SocketStorage::default());
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

error_enum! {
    /// Error from creating a socket ([`Stack::tcp_socket`], [`Stack::udp_socket`]).
    pub enum OpenError {
        /// Every slot of the socket table is in use (`EMFILE`).
        TableFull => "socket table full",
        /// A ring of zero capacity was supplied: such a socket could never move a byte.
        ZeroCapacity => "a ring buffer of zero capacity was supplied",
        /// The stack has an ARP queue already ([`Stack::set_arp_queue`]).
        AlreadySet => "the stack has an ARP queue already",
    }
}

/// Options kept by ringnet itself rather than by the smoltcp socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LocalOptions {
    pub recv_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub broadcast: bool,
}

#[derive(Debug)]
pub(crate) struct UdpSlot {
    pub inner: smoltcp::iface::SocketHandle,
    pub port: u16,
    /// rx ring bytes after the last frame or call: the baseline for spotting drops.
    pub rx_bytes_seen: usize,
    /// Datagrams seen to reach the rx ring and not yet received: with the padding, the
    /// ring's slots in use, which alone tell whether a datagram of no bytes found room.
    pub queued: usize,
    /// Their bytes: fewer than `rx_bytes_seen` when smoltcp's padding (one slot) lies
    /// before a datagram that wrapped around the ring.
    pub queued_bytes: usize,
    /// Since when the tx ring has held datagrams none of which left, if it has
    /// ([`super::unresolved`]).
    pub tx_stall: Option<TxStall>,
}

/// A UDP tx ring seen holding datagrams that do not leave: when they are given up, and
/// how many bytes had left the ring when it was last seen (`bytes_out` less what is
/// queued, modulo 2^32).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxStall {
    pub until: smoltcp::time::Instant,
    pub left: u32,
}

#[derive(Debug)]
pub(crate) struct ListenerSlot {
    pub port: u16,
    /// The stack's ready counter when `accept` last found nothing: until it moves, no
    /// backlog socket has become ready and `accept` need not search the table.
    pub nothing_ready_at: Option<u32>,
    /// How long its backlog's handshakes take: the longest one just finished, or else a
    /// mean that forgets an eighth of the old figure at each ([`ListenerSlot::grace`]).
    pub handshake: Option<Duration>,
}

/// The most a real client's half-open handshake is left to finish before it may give way:
/// smoltcp's first SYN-ACK retransmission, after which the handshake has been lost once.
pub(crate) const HANDSHAKE_GRACE_MAX: Duration = Duration::from_secs(1);

impl ListenerSlot {
    /// Takes a handshake of its backlog that finished after `took`, counted as at most a
    /// quarter of [`HANDSHAKE_GRACE_MAX`]: one that took its time (a peer, heard, that
    /// waits to send its ACK) would otherwise keep the grace at its most for dozens more.
    pub(crate) fn note_handshake(&mut self, took: Duration) {
        let took = took.min(HANDSHAKE_GRACE_MAX / 4);
        self.handshake = Some(match self.handshake {
            Some(mean) if mean - mean / 8 + took / 8 > took => mean - mean / 8 + took / 8,
            _ => took,
        });
    }

    /// How long a half-open connection of its backlog whose peer's next hop was heard from
    /// (its SYN-ACK gone out) is left to finish before a SYN from a next hop never heard
    /// from (a spoofed source) may take its place: four of its handshakes, at most
    /// [`HANDSHAKE_GRACE_MAX`]; none before one has finished. Younger, its ACK is most
    /// likely on its way; a flood's half-opens never finish, so never make it longer.
    pub(crate) fn grace(&self) -> Duration {
        self.handshake
            .map_or(Duration::ZERO, |h| (h * 4).min(HANDSHAKE_GRACE_MAX))
    }
}

/// In [`SocketType`]'s order, so that [`Slot::socket_type`] is the discriminant itself.
#[derive(Debug)]
pub(crate) enum SlotKind {
    Tcp(TcpSlot),
    Listener(ListenerSlot),
    Udp(UdpSlot),
}

/// The table's listeners, each with its handle and port.
pub(crate) fn listeners(slots: &[Option<Slot>]) -> impl Iterator<Item = (SocketHandle, u16)> + '_ {
    slots
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| match slot {
            Some(Slot {
                kind: SlotKind::Listener(l),
                ..
            }) => Some((SocketHandle(index as u16), l.port)),
            _ => None,
        })
}

/// The table's TCP sockets.
pub(crate) fn tcp_slots(slots: &[Option<Slot>]) -> impl Iterator<Item = &TcpSlot> {
    slots.iter().flatten().filter_map(|slot| match &slot.kind {
        SlotKind::Tcp(t) => Some(t),
        _ => None,
    })
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
    #[inline(never)]
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
            SlotKind::Tcp(t) => t.is_visible(),
            _ => true,
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

/// First port of the ephemeral range (IANA's, as Linux's `ip_local_port_range` suggests).
pub(super) const EPHEMERAL_FIRST: u16 = 49152;

impl<'a> Stack<'a> {
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
    #[inline(never)]
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
        let who = crate::observe::Who {
            stack: self.name,
            kind: slot.socket_type(),
            handle,
        };
        net_info!("{} opened", who);
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
                    && t.listener().is_none()
                    && self
                        .sockets
                        .get::<tcp::Socket>(t.inner())
                        .local_endpoint()
                        .is_some_and(|ep| ep.port == port)
            }
            SlotKind::Udp(u) => !protocol_is_tcp && u.port == port,
        })
    }

    /// Bytes used and capacity of the rx and tx rings of the slot at `index`, whose kind
    /// is `kind`, the bytes the ARP queue holds for it counted in its tx ring's; listeners
    /// hold none.
    pub(crate) fn usage_of(
        &self,
        index: usize,
        kind: &SlotKind,
    ) -> ((usize, usize), (usize, usize)) {
        let (rx, (tx, capacity)) = ring_usage(&self.sockets, kind);
        (rx, (tx + self.arp_queue_held(index), capacity))
    }

    /// The local port a slot shows in the stats table: a backlog socket that is not
    /// connected shows its listener's.
    pub(crate) fn local_port_of(&self, kind: &SlotKind) -> u16 {
        match kind {
            SlotKind::Tcp(t) => self
                .sockets
                .get::<tcp::Socket>(t.inner())
                .local_endpoint()
                .map_or(t.backlog_port(), |ep| ep.port),
            SlotKind::Udp(u) => u.port,
            SlotKind::Listener(l) => l.port,
        }
    }
}

/// Bytes used and capacity of a slot's rx and tx rings:
/// `((rx_used, rx_capacity), (tx_used, tx_capacity))`. Listeners hold none.
pub(crate) fn ring_usage(
    sockets: &SocketSet<'_>,
    kind: &SlotKind,
) -> ((usize, usize), (usize, usize)) {
    match kind {
        SlotKind::Tcp(t) => {
            let s = sockets.get::<tcp::Socket>(t.inner());
            (
                (s.recv_queue(), s.recv_capacity()),
                (s.send_queue(), s.send_capacity()),
            )
        }
        SlotKind::Udp(u) => {
            let s = sockets.get::<udp::Socket>(u.inner);
            (
                (s.recv_queue(), s.payload_recv_capacity()),
                (s.send_queue(), s.payload_send_capacity()),
            )
        }
        SlotKind::Listener(_) => ((0, 0), (0, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> ListenerSlot {
        ListenerSlot {
            port: 7,
            nothing_ready_at: None,
            handshake: None,
        }
    }

    #[test]
    fn no_grace_before_a_handshake_has_finished() {
        assert_eq!(listener().grace(), Duration::ZERO);
    }

    #[test]
    fn the_grace_is_four_handshakes_rising_at_once_and_falling_by_an_eighth() {
        let mut l = listener();
        l.note_handshake(Duration::from_millis(4));
        assert_eq!(l.grace(), Duration::from_millis(16));
        l.note_handshake(Duration::from_millis(20));
        assert_eq!(
            l.handshake,
            Some(Duration::from_millis(20)),
            "the longest at once"
        );
        l.note_handshake(Duration::from_millis(4));
        assert_eq!(
            l.handshake,
            Some(Duration::from_millis(18)),
            "20 - 20/8 + 4/8"
        );
        l.note_handshake(Duration::from_secs(5));
        assert_eq!(
            l.grace(),
            HANDSHAKE_GRACE_MAX,
            "at most a SYN-ACK retransmission"
        );
        assert_eq!(
            l.handshake,
            Some(HANDSHAKE_GRACE_MAX / 4),
            "counted as 250 ms"
        );
        l.note_handshake(Duration::from_millis(4));
        assert!(
            l.grace() < HANDSHAKE_GRACE_MAX,
            "and forgotten as any other"
        );
    }
}
