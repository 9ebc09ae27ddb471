//! The neighbours this host has heard from: what smoltcp's neighbour cache holds, kept
//! beside it from the same frames.
//!
//! smoltcp's cache is private, so nothing above the interface can ask whether a next hop
//! is resolved before it queues a datagram for it; a datagram for a next hop that never
//! answers ARP then waits at the head of its socket's tx ring with every datagram behind
//! it (`stack::unresolved`). The stack asks this table instead ([`HeardNeighbours::heard`])
//! and queues a datagram for a next hop not heard from on a queue of its own, as Linux
//! queues it on the neighbour (`arp_queue`).
//!
//! The table follows smoltcp 0.14's `process_arp` and `neighbor::Cache` step by step: an
//! ARP request or reply aimed at this host's address, from a unicast address of its
//! subnet and a unicast MAC, fills an entry for [`ENTRY_LIFETIME`]; an IPv4 frame to
//! this host from an entry's address and MAC renews it (`reset_expiry_if_existing`); a
//! full table gives up the entry that expires first. Where the two could part (smoltcp
//! asks itself and takes a reply to its own request, which is an ARP reply aimed at this
//! host too, so the table sees it as well), a wrong answer costs only time: a next hop
//! taken for heard waits in its socket's ring, as before, and one taken for unheard
//! resolves on the stack's queue.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Ipv4Address, Ipv4Cidr, Ipv4Packet,
};

/// How long an entry lasts unless renewed: smoltcp's `ENTRY_LIFETIME`.
pub const ENTRY_LIFETIME: Duration = Duration::from_secs(60);

/// Entries held: smoltcp's `IFACE_NEIGHBOR_CACHE_COUNT` as ringnet builds it (256 with
/// the `neighbor-cache-256` feature, a default, else smoltcp's 8). Were it fewer, ARP
/// spoofed from that many addresses would push a real client out of this table while
/// smoltcp still held it.
#[cfg(feature = "neighbor-cache-256")]
pub const NEIGHBOURS: usize = 256;
/// Entries held: smoltcp's `IFACE_NEIGHBOR_CACHE_COUNT` as ringnet builds it.
#[cfg(not(feature = "neighbor-cache-256"))]
pub const NEIGHBOURS: usize = 8;

/// One entry. A free entry has the unspecified address, which is never filled, and
/// expires at the clock's zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Neighbour {
    addr: Ipv4Address,
    mac: EthernetAddress,
    expires_at: Instant,
}

impl Neighbour {
    const FREE: Neighbour = Neighbour {
        addr: Ipv4Address::UNSPECIFIED,
        mac: EthernetAddress([0; 6]),
        expires_at: Instant::ZERO,
    };
}

/// The next hops heard from, with their MAC addresses and when each entry expires.
#[derive(Debug)]
pub struct HeardNeighbours {
    entries: [Neighbour; NEIGHBOURS],
    /// The entry found last: a bulk transfer's every frame is from one peer.
    last: usize,
}

impl Default for HeardNeighbours {
    fn default() -> Self {
        HeardNeighbours {
            entries: [Neighbour::FREE; NEIGHBOURS],
            last: 0,
        }
    }
}

impl HeardNeighbours {
    /// Takes what a frame arriving at `now`, for an interface at `cidr`, tells of the
    /// neighbours.
    pub fn hear(&mut self, frame: &[u8], cidr: Ipv4Cidr, now: Instant) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        match eth.ethertype() {
            EthernetProtocol::Arp => self.hear_arp(eth.payload(), cidr, now),
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                    return;
                };
                if ip.dst_addr() != cidr.address() {
                    return;
                }
                if let Some(entry) = self.entry(ip.src_addr()) {
                    if entry.mac == eth.src_addr() {
                        entry.expires_at = now + ENTRY_LIFETIME;
                    }
                }
            }
            _ => {}
        }
    }

    fn entry(&mut self, addr: Ipv4Address) -> Option<&mut Neighbour> {
        if addr.is_unspecified() {
            return None;
        }
        if self.entries[self.last].addr != addr {
            self.last = self.entries.iter().position(|n| n.addr == addr)?;
        }
        Some(&mut self.entries[self.last])
    }

    fn hear_arp(&mut self, payload: &[u8], cidr: Ipv4Cidr, now: Instant) {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: mac,
            source_protocol_addr: addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return;
        };
        let asked_us = target_protocol_addr == cidr.address();
        let known_operation = !matches!(operation, ArpOperation::Unknown(_));
        // smoltcp's `x_is_unicast`: neither broadcast, multicast nor unspecified.
        let unicast = !(addr.is_broadcast() || addr.is_multicast() || addr.is_unspecified());
        if !(asked_us
            && known_operation
            && unicast
            && mac.is_unicast()
            && cidr.contains_addr(&addr))
        {
            return;
        }
        let expires_at = now + ENTRY_LIFETIME;
        if let Some(entry) = self.entry(addr) {
            (entry.mac, entry.expires_at) = (mac, expires_at);
            return;
        }
        // A free entry (which expires at the clock's zero), else the one that expires first, as smoltcp
        // evicts.
        let mut place = 0;
        for (i, n) in self.entries.iter().enumerate() {
            if n.expires_at < self.entries[place].expires_at {
                place = i;
            }
        }
        self.entries[place] = Neighbour {
            addr,
            mac,
            expires_at,
        };
    }

    /// Whether `addr` has an entry that has not expired at `now`.
    pub fn heard(&self, addr: Ipv4Address, now: Instant) -> bool {
        !addr.is_unspecified()
            && self
                .entries
                .iter()
                .any(|n| n.addr == addr && now < n.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{ArpHardware, EthernetRepr};

    const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const US_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    fn cidr() -> Ipv4Cidr {
        Ipv4Cidr::new(US, 24)
    }

    fn arp(
        operation: ArpOperation,
        from: (EthernetAddress, Ipv4Address),
        to: Ipv4Address,
    ) -> std::vec::Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: from.0,
            source_protocol_addr: from.1,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: to,
        };
        let mut frame = std::vec![0u8; 14 + repr.buffer_len()];
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        EthernetRepr {
            src_addr: from.0,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut eth);
        let mut packet = ArpPacket::new_unchecked(eth.payload_mut());
        repr.emit(&mut packet);
        assert_eq!(packet.hardware_type(), ArpHardware::Ethernet);
        frame
    }

    fn ipv4(from: (EthernetAddress, Ipv4Address), to: Ipv4Address) -> std::vec::Vec<u8> {
        let mut frame = std::vec![0u8; 14 + 20];
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        EthernetRepr {
            src_addr: from.0,
            dst_addr: US_MAC,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut eth);
        let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(20);
        ip.set_src_addr(from.1);
        ip.set_dst_addr(to);
        frame
    }

    #[test]
    fn an_arp_request_or_reply_aimed_at_us_is_heard_for_a_minute() {
        for operation in [ArpOperation::Request, ArpOperation::Reply] {
            let mut table = HeardNeighbours::default();
            let t0 = Instant::from_secs(5);
            assert!(!table.heard(PEER, t0));
            table.hear(&arp(operation, (PEER_MAC, PEER), US), cidr(), t0);
            assert!(table.heard(PEER, t0));
            assert!(table.heard(PEER, t0 + Duration::from_millis(59_999)));
            assert!(!table.heard(PEER, t0 + ENTRY_LIFETIME));
        }
    }

    #[test]
    fn arp_for_another_host_from_off_the_subnet_or_from_a_broadcast_source_is_not_heard() {
        let mut table = HeardNeighbours::default();
        let now = Instant::from_secs(1);
        let other = Ipv4Address::new(10, 0, 0, 9);
        table.hear(
            &arp(ArpOperation::Request, (PEER_MAC, PEER), other),
            cidr(),
            now,
        );
        let far = Ipv4Address::new(192, 168, 1, 2);
        table.hear(
            &arp(ArpOperation::Request, (PEER_MAC, far), US),
            cidr(),
            now,
        );
        let broadcast = Ipv4Address::BROADCAST;
        table.hear(
            &arp(ArpOperation::Request, (PEER_MAC, broadcast), US),
            cidr(),
            now,
        );
        table.hear(
            &arp(
                ArpOperation::Request,
                (EthernetAddress::BROADCAST, PEER),
                US,
            ),
            cidr(),
            now,
        );
        table.hear(
            &arp(ArpOperation::Unknown(7), (PEER_MAC, PEER), US),
            cidr(),
            now,
        );
        assert!(!table.heard(PEER, now));
        assert!(!table.heard(far, now));
        assert!(!table.heard(broadcast, now));
        assert!(!table.heard(other, now));
    }

    #[test]
    fn a_datagram_to_us_from_the_entrys_mac_renews_it_and_one_from_another_mac_does_not() {
        let mut table = HeardNeighbours::default();
        let t0 = Instant::from_secs(0);
        table.hear(&arp(ArpOperation::Reply, (PEER_MAC, PEER), US), cidr(), t0);
        let t1 = t0 + Duration::from_secs(50);
        let spoofer = EthernetAddress([2, 0, 0, 0, 0, 66]);
        table.hear(&ipv4((spoofer, PEER), US), cidr(), t1);
        assert!(
            !table.heard(PEER, t0 + ENTRY_LIFETIME),
            "renewed by another MAC"
        );
        table.hear(&ipv4((PEER_MAC, PEER), US), cidr(), t1);
        assert!(table.heard(PEER, t1 + Duration::from_secs(59)));
        // Nor does a datagram from an address never heard fill an entry.
        let stranger = Ipv4Address::new(10, 0, 0, 77);
        table.hear(&ipv4((spoofer, stranger), US), cidr(), t1);
        assert!(!table.heard(stranger, t1));
    }

    #[test]
    fn a_full_table_gives_up_the_entry_that_expires_first() {
        // A /16, so that the subnet has more addresses than the table has entries.
        let wide = Ipv4Cidr::new(US, 16);
        let mut table = HeardNeighbours::default();
        let addr = |i: usize| Ipv4Address::new(10, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8);
        let at = |i: usize| Instant::from_millis(i as i64 * 10);
        for i in 0..=NEIGHBOURS {
            let mac = EthernetAddress([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
            table.hear(&arp(ArpOperation::Request, (mac, addr(i)), US), wide, at(i));
        }
        let now = at(NEIGHBOURS);
        assert!(!table.heard(addr(0), now), "the first heard went");
        for i in 1..=NEIGHBOURS {
            assert!(table.heard(addr(i), now), "{}", addr(i));
        }
    }
}
