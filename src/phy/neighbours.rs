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
//! The table follows smoltcp 0.14's `process_ethernet`, `process_arp` and
//! `neighbor::Cache` step by step, from the frames smoltcp is given (not those the
//! inspector keeps from it): an ARP request or reply in a frame to this host's MAC
//! address or a broadcast or multicast one, aimed at this host's address, from a unicast
//! address of its subnet and a unicast MAC, fills an entry for [`ENTRY_LIFETIME`]; a
//! valid IPv4 packet to this host from an entry's address and MAC renews it
//! (`reset_expiry_if_existing`); a full table gives up the first of the entries that
//! expire first, in the same `heapless::LinearMap` as smoltcp's and so in its order. It
//! holds as many entries as smoltcp's cache ([`NEIGHBOURS`]). A wrong answer would cost
//! more than time: a next hop taken for heard that smoltcp does not hold waits at the
//! head of its socket's ring, every datagram behind it, and one taken for unheard that
//! smoltcp holds is dropped while the stack's queue holds another's.

use heapless::LinearMap;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr,
};

use super::ingress::Acceptance;

/// How long an entry lasts unless renewed: smoltcp's `ENTRY_LIFETIME`.
pub const ENTRY_LIFETIME: Duration = Duration::from_secs(60);

/// Entries held: smoltcp's `IFACE_NEIGHBOR_CACHE_COUNT` as this build sets it (8, or 256
/// with the `neighbor-cache-256` feature).
pub const NEIGHBOURS: usize = smoltcp::config::IFACE_NEIGHBOR_CACHE_COUNT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Neighbour {
    mac: EthernetAddress,
    expires_at: Instant,
}

/// The next hops heard from, with their MAC addresses and when each entry expires: in
/// the map smoltcp keeps them in, so that a full table gives up the entry smoltcp gives
/// up, ties among the entries that expire first included.
#[derive(Debug, Default)]
pub struct HeardNeighbours {
    entries: LinearMap<Ipv4Address, Neighbour, NEIGHBOURS>,
}

impl HeardNeighbours {
    /// Takes what a frame that smoltcp is given at `now`, by an interface that accepts
    /// `accept`, tells of the neighbours. A frame the interface keeps from smoltcp must
    /// not be given here: smoltcp learns nothing from it.
    pub fn hear(&mut self, frame: &[u8], accept: &Acceptance, now: Instant) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        // smoltcp's `process_ethernet`: a frame to another host's MAC address is ignored.
        let to = eth.dst_addr();
        if !(to == accept.mac || to.is_broadcast() || to.is_multicast()) {
            return;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.hear_arp(eth.payload(), accept, now),
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                    return;
                };
                let Ok(ip) = Ipv4Repr::parse(&ip, &accept.checksum) else {
                    return;
                };
                if ip.dst_addr != accept.cidr.address() {
                    return;
                }
                // smoltcp's `reset_expiry_if_existing`.
                if let Some(entry) = self.entries.get_mut(&ip.src_addr) {
                    if entry.mac == eth.src_addr() {
                        entry.expires_at = now + ENTRY_LIFETIME;
                    }
                }
            }
            _ => {}
        }
    }

    fn hear_arp(&mut self, payload: &[u8], accept: &Acceptance, now: Instant) {
        let cidr = accept.cidr;
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
        // smoltcp's `Cache::fill`: a full map gives up the first of the entries that
        // expire first (the map's order: its `remove` moves the last entry into the
        // place), and takes the new one at its end.
        let neighbour = Neighbour {
            mac,
            expires_at: now + ENTRY_LIFETIME,
        };
        if let Err((addr, neighbour)) = self.entries.insert(addr, neighbour) {
            let first = self
                .entries
                .iter()
                .min_by_key(|(_, n)| n.expires_at)
                .map(|(addr, _)| *addr);
            if let Some(first) = first {
                self.entries.remove(&first);
            }
            // Cannot fail: an entry was just given up (the map holds at least one).
            let _ = self.entries.insert(addr, neighbour);
        }
    }

    /// Whether `addr` has an entry that has not expired at `now`.
    pub fn heard(&self, addr: Ipv4Address, now: Instant) -> bool {
        self.entries.get(&addr).is_some_and(|n| now < n.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Cidr;
    use smoltcp::wire::{ArpHardware, EthernetRepr};

    const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const US_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    fn accept() -> Acceptance {
        Acceptance {
            mac: US_MAC,
            cidr: Ipv4Cidr::new(US, 24),
            checksum: smoltcp::phy::ChecksumCapabilities::default(),
        }
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
        ip.set_hop_limit(64);
        ip.set_src_addr(from.1);
        ip.set_dst_addr(to);
        ip.fill_checksum();
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
                table.hear(
                    &frame,
                    &Acceptance {
                        mac: US_MAC,
                        cidr,
                        checksum: smoltcp::phy::ChecksumCapabilities::default(),
                    },
                    now,
                );
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
            table.hear(&arp(operation, (PEER_MAC, PEER), US), &accept(), t0);
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
            &accept(),
            now,
        );
        let far = Ipv4Address::new(192, 168, 1, 2);
        table.hear(
            &arp(ArpOperation::Request, (PEER_MAC, far), US),
            &accept(),
            now,
        );
        let broadcast = Ipv4Address::BROADCAST;
        table.hear(
            &arp(ArpOperation::Request, (PEER_MAC, broadcast), US),
            &accept(),
            now,
        );
        table.hear(
            &arp(
                ArpOperation::Request,
                (EthernetAddress::BROADCAST, PEER),
                US,
            ),
            &accept(),
            now,
        );
        table.hear(
            &arp(ArpOperation::Unknown(7), (PEER_MAC, PEER), US),
            &accept(),
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
        table.hear(
            &arp(ArpOperation::Reply, (PEER_MAC, PEER), US),
            &accept(),
            t0,
        );
        let t1 = t0 + Duration::from_secs(50);
        let spoofer = EthernetAddress([2, 0, 0, 0, 0, 66]);
        table.hear(&ipv4((spoofer, PEER), US), &accept(), t1);
        assert!(
            !table.heard(PEER, t0 + ENTRY_LIFETIME),
            "renewed by another MAC"
        );
        table.hear(&ipv4((PEER_MAC, PEER), US), &accept(), t1);
        assert!(table.heard(PEER, t1 + Duration::from_secs(59)));
        // Nor does a datagram from an address never heard fill an entry.
        let stranger = Ipv4Address::new(10, 0, 0, 77);
        table.hear(&ipv4((spoofer, stranger), US), &accept(), t1);
        assert!(!table.heard(stranger, t1));
    }

    #[test]
    fn a_full_table_gives_up_the_entry_that_expires_first() {
        // A /16, for as many entries as the build's cache holds (256 with
        // `neighbor-cache-256`), each heard a millisecond after the one before.
        let mut table = HeardNeighbours::default();
        let accept = Acceptance {
            cidr: Ipv4Cidr::new(US, 16),
            ..accept()
        };
        let addr = |i: usize| Ipv4Address::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
        for i in 0..NEIGHBOURS + 1 {
            let mac = EthernetAddress([2, 0, 0, 1, (i >> 8) as u8, i as u8]);
            let now = Instant::from_millis(i as i64);
            table.hear(
                &arp(ArpOperation::Request, (mac, addr(i)), US),
                &accept,
                now,
            );
        }
        let now = Instant::from_millis(NEIGHBOURS as i64);
        assert!(!table.heard(addr(0), now), "the first heard went");
        for i in 1..NEIGHBOURS + 1 {
            assert!(table.heard(addr(i), now), "{}", addr(i));
        }
    }

    #[test]
    fn arp_in_a_frame_to_another_mac_and_a_packet_with_a_bad_checksum_are_not_heard() {
        // smoltcp ignores both: a frame to another host's MAC (a hub, or a switch that
        // floods a frame to an unknown MAC, carries it here) and an IPv4 header whose
        // checksum is wrong (verified, as this device does not offload it).
        let mut table = HeardNeighbours::default();
        let t0 = Instant::from_secs(1);
        let mut frame = arp(ArpOperation::Request, (PEER_MAC, PEER), US);
        EthernetFrame::new_unchecked(&mut frame[..])
            .set_dst_addr(EthernetAddress([2, 0, 0, 0, 0, 9]));
        table.hear(&frame, &accept(), t0);
        assert!(!table.heard(PEER, t0), "to another MAC");
        let mut frame = arp(ArpOperation::Request, (PEER_MAC, PEER), US);
        EthernetFrame::new_unchecked(&mut frame[..]).set_dst_addr(US_MAC);
        table.hear(&frame, &accept(), t0);
        assert!(table.heard(PEER, t0), "to this host's MAC");
        let t1 = t0 + Duration::from_secs(30);
        let mut bad = ipv4((PEER_MAC, PEER), US);
        let checksum = Ipv4Packet::new_unchecked(&bad[14..]).checksum();
        Ipv4Packet::new_unchecked(&mut bad[14..]).set_checksum(checksum ^ 1);
        table.hear(&bad, &accept(), t1);
        assert!(
            !table.heard(PEER, t0 + ENTRY_LIFETIME),
            "renewed by a bad header"
        );
    }
}
