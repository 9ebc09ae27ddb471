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

/// Entries held: smoltcp's `IFACE_NEIGHBOR_CACHE_COUNT` as ringnet builds it.
pub const NEIGHBOURS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Neighbour {
    addr: Ipv4Address,
    mac: EthernetAddress,
    expires_at: Instant,
}

/// The next hops heard from, with their MAC addresses and when each entry expires.
#[derive(Debug, Default)]
pub struct HeardNeighbours {
    entries: [Option<Neighbour>; NEIGHBOURS],
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
        self.entries.iter_mut().flatten().find(|n| n.addr == addr)
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
        // A free entry, else the one that expires first, as smoltcp evicts.
        let place = match self.entries.iter().position(Option::is_none) {
            Some(free) => free,
            None => (0..NEIGHBOURS)
                .min_by_key(|&i| self.entries[i].map(|n| n.expires_at))
                .unwrap_or(0),
        };
        self.entries[place] = Some(Neighbour {
            addr,
            mac,
            expires_at,
        });
    }

    /// Whether `addr` has an entry that has not expired at `now`.
    pub fn heard(&self, addr: Ipv4Address, now: Instant) -> bool {
        self.entries
            .iter()
            .flatten()
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

    /// A device that gives smoltcp the frames put in `rx` and keeps those it sends.
    #[derive(Default)]
    struct Frames {
        rx: std::collections::VecDeque<std::vec::Vec<u8>>,
        tx: std::vec::Vec<std::vec::Vec<u8>>,
    }

    struct Rx(std::vec::Vec<u8>);
    struct Tx<'a>(&'a mut std::vec::Vec<std::vec::Vec<u8>>);

    impl smoltcp::phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl smoltcp::phy::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = std::vec![0u8; len];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    impl smoltcp::phy::Device for Frames {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx<'a>;
        fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
            let frame = self.rx.pop_front()?;
            Some((Rx(frame), Tx(&mut self.tx)))
        }
        fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
            Some(Tx(&mut self.tx))
        }
        fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
            let mut caps = smoltcp::phy::DeviceCapabilities::default();
            caps.medium = smoltcp::phy::Medium::Ethernet;
            caps.max_transmission_unit = 1514;
            caps
        }
    }

    /// The addresses of `addrs` that smoltcp's interface `iface` sends a datagram to at
    /// `now` without asking for their MAC address first: those in its neighbour cache.
    fn in_smoltcps_cache(
        iface: &mut smoltcp::iface::Interface,
        device: &mut Frames,
        addrs: &[Ipv4Address],
        now: Instant,
    ) -> std::vec::Vec<Ipv4Address> {
        use smoltcp::socket::udp;
        let storage = std::vec::Vec::leak(std::vec![smoltcp::iface::SocketStorage::EMPTY]);
        let mut set = smoltcp::iface::SocketSet::new(&mut storage[..]);
        let mut resolved = std::vec::Vec::new();
        for &addr in addrs {
            // A socket of its own for each: smoltcp holds back a socket whose last
            // datagram waits for its next hop.
            let socket = udp::Socket::new(
                udp::PacketBuffer::new(
                    std::vec::Vec::leak(std::vec![udp::PacketMetadata::EMPTY; 1]),
                    std::vec::Vec::leak(std::vec![0u8; 16]),
                ),
                udp::PacketBuffer::new(
                    std::vec::Vec::leak(std::vec![udp::PacketMetadata::EMPTY; 1]),
                    std::vec::Vec::leak(std::vec![0u8; 16]),
                ),
            );
            let handle = set.add(socket);
            let s = set.get_mut::<udp::Socket>(handle);
            s.bind(4000).unwrap();
            s.send_slice(b"?", (addr, 9000)).unwrap();
            device.tx.clear();
            iface.poll_egress(now, device, &mut set);
            let sent = device.tx.iter().any(|frame| {
                let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
                eth.ethertype() == EthernetProtocol::Ipv4
                    && Ipv4Packet::new_checked(eth.payload()).unwrap().dst_addr() == addr
            });
            if sent {
                resolved.push(addr);
            }
            set.remove(handle);
        }
        resolved
    }

    #[test]
    fn the_table_holds_what_smoltcps_cache_holds_when_more_addresses_are_heard_than_it_keeps() {
        // ARP requests from more addresses than smoltcp's cache keeps, all but the last
        // two at one instant (one poll of a burst), those two a millisecond later: a
        // full cache gives up one of the entries that expire first, and which one is
        // the map's order. Each address is then heard or not here exactly as smoltcp
        // holds it or not: one taken for heard that smoltcp does not hold stalls its
        // socket's ring (smoltcp asks for it), one taken for unheard that smoltcp holds
        // finds the stack's queue held by another.
        use smoltcp::iface::{Config, Interface};
        use smoltcp::wire::{HardwareAddress, IpCidr};
        let count = smoltcp::config::IFACE_NEIGHBOR_CACHE_COUNT + 2;
        let addr = |i: usize| Ipv4Address::new(10, 0, (1 + i / 250) as u8, (1 + i % 250) as u8);
        let mac = |i: usize| EthernetAddress([2, 1, 0, 0, (i >> 8) as u8, i as u8]);
        let us = Ipv4Address::new(10, 0, 0, 1);
        let cidr = Ipv4Cidr::new(us, 16);
        let mut device = Frames::default();
        let t0 = Instant::from_secs(10);
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(US_MAC)),
            &mut device,
            t0,
        );
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::Ipv4(cidr)).unwrap();
        });
        let mut table = HeardNeighbours::default();
        let storage = std::vec::Vec::leak(std::vec![smoltcp::iface::SocketStorage::EMPTY]);
        let mut sockets = smoltcp::iface::SocketSet::new(&mut storage[..]);
        let t1 = t0 + Duration::from_millis(1);
        for (batch, now) in [(0..count - 2, t0), (count - 2..count, t1)] {
            for i in batch {
                let frame = arp(ArpOperation::Request, (mac(i), addr(i)), us);
                table.hear(&frame, cidr, now);
                device.rx.push_back(frame);
            }
            while iface.poll_ingress_single(now, &mut device, &mut sockets)
                != smoltcp::iface::PollIngressSingleResult::None
            {}
        }
        let addrs: std::vec::Vec<_> = (0..count).map(addr).collect();
        let held = in_smoltcps_cache(&mut iface, &mut device, &addrs, t1);
        assert_eq!(held.len(), count - 2, "smoltcp gave up two: {held:?}");
        let heard: std::vec::Vec<_> = addrs
            .iter()
            .copied()
            .filter(|&a| table.heard(a, t1))
            .collect();
        let only_here: std::vec::Vec<_> = heard.iter().filter(|a| !held.contains(a)).collect();
        let only_smoltcp: std::vec::Vec<_> = held.iter().filter(|a| !heard.contains(a)).collect();
        assert!(
            only_here.is_empty() && only_smoltcp.is_empty(),
            "heard here only: {only_here:?}; in smoltcp's cache only: {} of them, {:?}",
            only_smoltcp.len(),
            &only_smoltcp[..only_smoltcp.len().min(4)]
        );
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
        let mut table = HeardNeighbours::default();
        let addr = |i: u8| Ipv4Address::new(10, 0, 0, 10 + i);
        for i in 0..NEIGHBOURS as u8 + 1 {
            let mac = EthernetAddress([2, 0, 0, 0, 1, i]);
            let now = Instant::from_secs(i64::from(i));
            table.hear(&arp(ArpOperation::Request, (mac, addr(i)), US), cidr(), now);
        }
        let now = Instant::from_secs(NEIGHBOURS as i64);
        assert!(!table.heard(addr(0), now), "the first heard went");
        for i in 1..NEIGHBOURS as u8 + 1 {
            assert!(table.heard(addr(i), now), "{}", addr(i));
        }
    }
}
