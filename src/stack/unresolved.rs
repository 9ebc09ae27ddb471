//! A UDP socket whose next hop never answers ARP.
//!
//! smoltcp keeps a datagram whose next hop has no neighbour entry at the head of its
//! socket's tx ring, asks for the address once a second, and sends nothing else from that
//! socket meanwhile, for as long as no reply comes: one datagram from a spoofed address
//! of the subnet that no host holds (or the host's own) to a service that answers
//! datagrams stopped that service's answers to everyone, for good. Linux queues a packet
//! on its neighbour instead (`arp_queue`), so other destinations never wait, and drops
//! what it queued once resolution fails: three probes a second apart (`mcast_solicit`,
//! `retrans_time_ms`), counted in `/proc/net/stat/arp_cache` as `unresolved_discards`.
//!
//! smoltcp cannot drop one datagram from a ring, so a socket whose tx ring has held
//! datagrams none of which left for [`UNRESOLVED_AFTER`] has its rings emptied (closed
//! and bound again to its endpoint: smoltcp resets both rings). What was queued is
//! counted in `unresolved_dropped_bytes`, the datagrams received and not yet read in
//! `rx_drops` (a service that waits for room to answer reads nothing meanwhile: the
//! stats query's rx ring fills with the queries that came in those 3 s), and logged. smoltcp's own
//! ARP retry polls the stack every second meanwhile, so the drop comes at the first poll
//! past the deadline.

use smoltcp::socket::udp;
use smoltcp::time::Duration;

use super::table::{Slot, SlotKind, TxStall};
use super::Stack;

/// How long a UDP socket's tx ring may hold datagrams none of which leave before they
/// are dropped: Linux's three ARP probes a second apart.
pub const UNRESOLVED_AFTER: Duration = Duration::from_secs(3);

impl Stack<'_> {
    /// After an egress: every UDP socket whose queued datagrams have not moved for
    /// [`UNRESOLVED_AFTER`] drops them ([module docs](self)). Nothing to look at while
    /// no UDP tx ring holds a datagram (`Stack::udp_tx_queued`, which only `send_to`
    /// sets): a TCP transfer's every egress skips the walk. While one does, every UDP
    /// slot is looked at: which ones hold datagrams would take a set of slots sized by
    /// the table (whose length is the host's choice), to save reading the tx queue of the
    /// few UDP sockets a host has.
    pub(super) fn drop_unresolved_datagrams(&mut self) {
        if !self.udp_tx_queued {
            return;
        }
        let now = self.now;
        // Set again below by any ring that still holds datagrams after this walk.
        self.udp_tx_queued = self.drop_unresolved_queue();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(Slot {
                kind: SlotKind::Udp(u),
                stats,
                ..
            }) = slot
            else {
                continue;
            };
            let socket = self.sockets.get_mut::<udp::Socket>(u.inner);
            let queued = socket.send_queue();
            if queued == 0 {
                u.tx_stall = None;
                continue;
            }
            // Bytes that have left the ring, modulo 2^32: more than at the stall's start
            // when anything left (fewer when wrap padding was taken meanwhile).
            let left = (stats.bytes_out as u32).wrapping_sub(queued as u32);
            let stall = match u.tx_stall {
                Some(stall) if (left.wrapping_sub(stall.left) as i32) <= 0 => {
                    TxStall { left, ..stall }
                }
                _ => TxStall {
                    until: now + UNRESOLVED_AFTER,
                    left,
                },
            };
            u.tx_stall = Some(stall);
            if now < stall.until {
                self.udp_tx_queued = true;
                continue;
            }
            let endpoint = socket.endpoint();
            socket.close();
            // Cannot fail: the endpoint it had, with its non-zero port.
            let _ = socket.bind(endpoint);
            u.tx_stall = None;
            stats.unresolved_dropped_bytes += queued as u64;
            // The rx ring goes with it (smoltcp resets both): what it held, not yet
            // received, is dropped too, and counted so.
            let unread = u.queued;
            stats.rx_drops = stats.rx_drops.saturating_add(unread as u32);
            (u.queued, u.queued_bytes, u.rx_bytes_seen) = (0, 0, 0);
            net_warn!(
                "{}: udp#{} {} bytes queued to send dropped, and {} datagrams unread: the next hop of the first did not answer ARP in 3 s",
                self.name,
                index,
                queued,
                unread
            );
        }
    }
}
