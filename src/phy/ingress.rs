//! What smoltcp's ingress does with an IPv4 frame, decided over the raw bytes before
//! smoltcp sees them, so that a datagram lost for want of ring room can be told apart from
//! one smoltcp discarded for another reason.
//!
//! [`classify`] follows smoltcp 0.14's `process_ethernet`, `process_ipv4` and
//! `process_udp` (`src/iface/interface/{ethernet,ipv4,udp}.rs`) step by step, in their
//! order, with the features ringnet builds smoltcp with (`proto-ipv4`, `medium-ethernet`,
//! `socket-udp`, `socket-tcp`; no reassembly, no `multicast`, no raw or DHCP sockets, no
//! AnyIP):
//!
//! | smoltcp's step | if it fails |
//! |---|---|
//! | destination MAC is the interface's, broadcast or multicast | [`Discard::NotForUs`] |
//! | `Ipv4Packet::new_checked`, version 4 | [`Discard::Malformed`] |
//! | IPv4 header checksum (when the device's capabilities verify it) | [`Discard::BadChecksum`] |
//! | not a fragment (`MF` clear, offset 0): smoltcp is built without reassembly | [`Discard::Fragment`] |
//! | source unicast or unspecified | [`Discard::Malformed`] |
//! | *ringnet's own:* source not martian (this interface's address, loopback, or 0.0.0.0 to anything but `255.255.255.255`), as Linux's routing input checks | [`Discard::Malformed`] |
//! | destination the interface's address, `224.0.0.1`, `255.255.255.255` or the subnet's broadcast | [`Discard::NotForUs`] |
//! | TCP: `TcpPacket::new_checked` and `TcpRepr::parse` but its checksum (data offset from 5 to the segment's end, ports not 0, not two of SYN, FIN and RST, options well formed) | [`Discard::Malformed`] |
//! | UDP: `UdpPacket::new_checked`, destination port not 0 | [`Discard::Malformed`] |
//! | UDP checksum valid or zero (IPv4 allows none), when verified | [`Discard::BadChecksum`] |
//!
//! One step is ringnet's own, not smoltcp's: a TCP segment to a broadcast or multicast
//! address, or in a broadcast or multicast Ethernet frame, is [`Discard::NotForUs`] (RFC
//! 1122 4.2.3.10: a SYN to one MUST be silently discarded; Linux's TCP drops every segment
//! not addressed to the host alone, at either layer). smoltcp's listeners take a SYN to
//! any destination and answer from that address, so the [`Inspector`](super::Inspector)
//! withholds such a frame from smoltcp.
//!
//! What passes is a UDP datagram smoltcp hands to the first UDP socket that accepts it
//! (the stack matches that in `stack::frames`, and counts [`Discard::NoSocket`] when none
//! does), or a TCP segment whose header smoltcp parses, or an ICMP message, which this
//! module does not follow further: smoltcp checks a TCP segment's checksum itself, and
//! verifying it here too would cost a second pass over every byte of a bulk transfer, for
//! a loss TCP repairs by retransmission. Only IPv4 frames are
//! counted: ARP and other ethertypes are smoltcp's alone.
//!
//! Linux keeps the same figures in `/proc/net/snmp`: `Ip: InHdrErrors` (malformed, bad
//! header checksum), `InAddrErrors` (not for us), `ReasmFails` (fragments), `Udp:
//! InCsumErrors` and `NoPorts`.
//!
//! One reason is not the interface's but TCP's, decided with the socket table:
//! [`Discard::DuplicateSyn`], a bare SYN whose four-tuple a connection holds already,
//! which the [`Inspector`](super::Inspector) holds back until the stack has looked
//! (`FrameLog::syn_to_check`).
//!
//! And one counts no frame received but an answer not sent: [`Discard::IcmpLimited`], a
//! frame smoltcp would answer with an ICMP error (port unreachable for a datagram no
//! socket takes, protocol unreachable for a protocol it does not handle), withheld from
//! smoltcp while the host's ICMP bucket is empty (`FrameLog::set_icmp_limit`).

use core::fmt;

use crate::text::{self, Text};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpEndpoint, IpProtocol, Ipv4Address,
    Ipv4Cidr, Ipv4Packet, TcpPacket, TcpRepr, UdpPacket,
};

/// Why the interface discarded a frame before any socket saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// For another host: another unicast MAC address (a hub or a flooding switch carries
    /// those), or an IP destination that is none of this interface's (Linux:
    /// `InAddrErrors`); or a TCP segment to a broadcast or multicast address, or in a
    /// broadcast or multicast frame, which no connection can have (RFC 1122 4.2.3.10;
    /// the inspector keeps it from smoltcp).
    NotForUs,
    /// A wrong IPv4 header checksum or a wrong non-zero UDP checksum (Linux:
    /// `InHdrErrors`, `Udp: InCsumErrors`); TCP's own checksum is smoltcp's to check.
    BadChecksum,
    /// An IPv4 fragment: ringnet builds smoltcp without reassembly, so every fragment of a
    /// datagram larger than the path's MTU is lost (Linux reassembles; `ReasmFails`).
    Fragment,
    /// A UDP datagram for a port no socket is bound to; smoltcp answers ICMP port
    /// unreachable (Linux: `NoPorts`).
    NoSocket,
    /// A header smoltcp refuses: lengths that do not add up, not IP version 4, a
    /// broadcast or multicast source, UDP destination port 0 (Linux: `InHdrErrors`), a
    /// TCP header smoltcp cannot parse (a data offset below 5 or past the segment, an
    /// option of a length its kind does not allow or past the header, SYN with FIN or
    /// RST, port 0: Linux's `TcpInErrs`, which smoltcp dropped without a count); or
    /// a martian source ringnet refuses before smoltcp, as Linux's routing input does:
    /// this host's own address, a loopback address, 0.0.0.0 to other than the limited
    /// broadcast.
    Malformed,
    /// A bare SYN (no ACK) whose four-tuple a connection of this stack already holds, in
    /// SYN-RECEIVED or later (not TIME-WAIT): the wire's duplicate or the peer's
    /// retransmission of a handshake that went on. smoltcp gives a segment to the first
    /// socket that accepts it, and a listening socket accepts any bare SYN to its port,
    /// so it would answer for another connection and reset the peer's; Linux looks up
    /// the established four-tuple first and answers at most a challenge ACK (RFC 5961
    /// 4.2; `TCPChallengeACK`). Dropped: the connection's own timer resends its SYN-ACK
    /// if the peer still waits for one.
    DuplicateSyn,
    /// Not a frame received but the ICMP error smoltcp would have sent for one: the
    /// answer to a datagram for a port no socket is bound to (counted `no_socket` too)
    /// or to a protocol smoltcp does not handle, left unsent because the host's ICMP
    /// bucket was empty (Linux's `icmp_msgs_per_sec` = 1000, `icmp_msgs_burst` = 50;
    /// `TcpExt: IcmpOutRateLimitGlobal`). A flood with a victim's address as its source
    /// no longer makes the host reflect one ICMP error per datagram
    /// ([`FrameLog::set_icmp_limit`](super::FrameLog::set_icmp_limit)).
    IcmpLimited,
    /// A RST whose four-tuple a synchronized connection holds, in its window but not at
    /// the next sequence number expected (the acknowledgment number of the last segment
    /// the connection sent): a peer off the path guessing numbers (RFC 5961 3.2). smoltcp
    /// ends a connection on any RST in its window; Linux only on one at exactly that
    /// number, answering any other with a challenge ACK (`TCPChallengeACK`), to which the
    /// real peer answers with a RST at that number. Here it is dropped, and the
    /// connection's own next ACK does the challenge's work; a RST too long to hold (over
    /// 80 bytes of payload) is dropped too.
    InexactRst,
    /// A TCP segment whose bytes reach past the FIN its peer sent already, to a connection
    /// that took that FIN (CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT): nothing may follow a
    /// FIN, and RFC 9293 (3.10.7.4) says to ignore such text, as Linux does. smoltcp
    /// queued it behind the FIN's bytes, where the service read it as if sent before the
    /// close; the inspector withholds the segment from smoltcp instead.
    AfterFin,
}

impl Discard {
    /// Every reason, in the order the stats table prints them.
    pub const ALL: [Discard; 9] = [
        Discard::NotForUs,
        Discard::BadChecksum,
        Discard::Fragment,
        Discard::NoSocket,
        Discard::Malformed,
        Discard::DuplicateSyn,
        Discard::IcmpLimited,
        Discard::InexactRst,
        Discard::AfterFin,
    ];

    /// The reason's name in the stats table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Discard::NotForUs => "not_for_us",
            Discard::BadChecksum => "bad_checksum",
            Discard::Fragment => "fragment",
            Discard::NoSocket => "no_socket",
            Discard::Malformed => "malformed",
            Discard::DuplicateSyn => "duplicate_syn",
            Discard::IcmpLimited => "icmp_limited",
            Discard::InexactRst => "inexact_rst",
            Discard::AfterFin => "after_fin",
        }
    }
}

impl Discard {
    texts! {
        /// The reason in words, for log lines (the `Display` text).
        pub const fn as_str / log_text(self) {
            match self {
                Discard::NotForUs => "not for this host",
                Discard::BadChecksum => "bad checksum",
                Discard::Fragment => "IP fragment (no reassembly)",
                Discard::NoSocket => "no socket bound to the port",
                Discard::Malformed => "malformed header",
                Discard::DuplicateSyn => "SYN of a connection already made",
                Discard::IcmpLimited => "its ICMP error over the rate limit",
                Discard::InexactRst => "RST in the window, not at the next number",
                Discard::AfterFin => "data after the peer's FIN",
            }
        }
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

format_interned!(Discard, log_text);

/// Frames an interface discarded before any socket, by [`Discard`] reason: the
/// interface's counters, beside the sockets' own (a datagram that reached its socket but
/// found no room in the ring is the socket's `rx_drops`, never one of these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discards {
    /// [`Discard::NotForUs`].
    pub not_for_us: u32,
    /// [`Discard::BadChecksum`].
    pub bad_checksum: u32,
    /// [`Discard::Fragment`].
    pub fragments: u32,
    /// [`Discard::NoSocket`].
    pub no_socket: u32,
    /// [`Discard::Malformed`].
    pub malformed: u32,
    /// [`Discard::DuplicateSyn`].
    pub duplicate_syn: u32,
    /// [`Discard::IcmpLimited`].
    pub icmp_limited: u32,
    /// [`Discard::InexactRst`].
    pub inexact_rst: u32,
    /// [`Discard::AfterFin`].
    pub after_fin: u32,
}

impl Discards {
    /// The count of one reason.
    // Out of line: the log, the table and `/stats` read it, each with a copy inlined.
    #[inline(never)]
    pub fn get(&self, reason: Discard) -> u32 {
        match reason {
            Discard::NotForUs => self.not_for_us,
            Discard::BadChecksum => self.bad_checksum,
            Discard::Fragment => self.fragments,
            Discard::NoSocket => self.no_socket,
            Discard::Malformed => self.malformed,
            Discard::DuplicateSyn => self.duplicate_syn,
            Discard::IcmpLimited => self.icmp_limited,
            Discard::InexactRst => self.inexact_rst,
            Discard::AfterFin => self.after_fin,
        }
    }

    /// Counts one discard.
    pub fn count(&mut self, reason: Discard) {
        let counter = match reason {
            Discard::NotForUs => &mut self.not_for_us,
            Discard::BadChecksum => &mut self.bad_checksum,
            Discard::Fragment => &mut self.fragments,
            Discard::NoSocket => &mut self.no_socket,
            Discard::Malformed => &mut self.malformed,
            Discard::DuplicateSyn => &mut self.duplicate_syn,
            Discard::IcmpLimited => &mut self.icmp_limited,
            Discard::InexactRst => &mut self.inexact_rst,
            Discard::AfterFin => &mut self.after_fin,
        };
        *counter = counter.saturating_add(1);
    }

    /// Every discard, whatever its reason (an ICMP error not sent is counted with the
    /// datagram it answered, which is `no_socket` too).
    pub fn total(&self) -> u64 {
        Discard::ALL.iter().map(|&r| u64::from(self.get(r))).sum()
    }
}

impl Discards {
    /// Writes the line its `Display` does, without `core::fmt`.
    pub fn write_text(&self, out: &mut Text<'_>) {
        out.str("discarded before any socket:");
        for (i, reason) in Discard::ALL.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            out.str(sep)
                .str(" ")
                .str(reason.name())
                .str(" ")
                .num(self.get(reason).into());
        }
    }
}

impl fmt::Display for Discards {
    /// One line: `discarded before any socket: not_for_us 0, bad_checksum 0, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
    }
}

/// What an interface accepts: its MAC address, its address and prefix, and the checksums
/// its device asks smoltcp to verify.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// The interface's MAC address.
    pub mac: EthernetAddress,
    /// Its IPv4 address and prefix (the prefix gives the subnet's broadcast address).
    pub cidr: Ipv4Cidr,
    /// The device's checksum capabilities, as smoltcp took them when the interface was
    /// made.
    pub checksum: ChecksumCapabilities,
}

/// smoltcp's `IPV4_MULTICAST_ALL_SYSTEMS`, the one group an interface built without the
/// `multicast` feature is in.
const ALL_SYSTEMS: Ipv4Address = Ipv4Address::new(224, 0, 0, 1);

impl Acceptance {
    fn is_broadcast(&self, addr: Ipv4Address) -> bool {
        addr.is_broadcast() || self.cidr.broadcast() == Some(addr)
    }

    /// smoltcp's `is_unicast_v4`.
    fn is_unicast(&self, addr: Ipv4Address) -> bool {
        !(addr.is_multicast() || addr.is_unspecified() || self.is_broadcast(addr))
    }

    /// A source smoltcp lets through that no packet from the wire may carry, Linux's
    /// "martian source" (`ip_route_input_slow`, `fib_validate_source`): this interface's
    /// own address (the "land" attack: smoltcp answered it, to itself, and asked the wire
    /// once a second who has its own address), a loopback address, or 0.0.0.0 to anything
    /// but the limited broadcast (a DHCP client's address before it has one).
    fn is_martian(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        src == self.cidr.address()
            || src.is_loopback()
            || (src.is_unspecified() && !dst.is_broadcast())
    }

    fn accepts_destination(&self, addr: Ipv4Address) -> bool {
        addr == self.cidr.address() || addr == ALL_SYSTEMS || self.is_broadcast(addr)
    }
}

/// What smoltcp's ingress will do with an IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// A UDP datagram smoltcp hands to the first UDP socket that accepts it, if any.
    Udp {
        /// Its destination (this interface's address or a broadcast) and port.
        dst: IpEndpoint,
        /// Its source.
        src: IpEndpoint,
        /// Its payload length in bytes.
        payload_len: usize,
    },
    /// Discarded by the interface.
    Discarded {
        /// Why.
        reason: Discard,
        /// The IPv4 source and destination, unspecified when the header cannot be read.
        src: Ipv4Address,
        /// See `src`.
        dst: Ipv4Address,
    },
}

/// What smoltcp will do with `frame` (the module docs); `None` for a frame that is
/// not IPv4 over Ethernet, or a TCP segment or ICMP message that passes the IP layer.
pub fn classify(frame: &[u8], accept: &Acceptance) -> Option<Ingress> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload());
    let (src, dst) = match &ip {
        Ok(ip) => (ip.src_addr(), ip.dst_addr()),
        Err(_) => (Ipv4Address::UNSPECIFIED, Ipv4Address::UNSPECIFIED),
    };
    let discard = |reason| Some(Ingress::Discarded { reason, src, dst });
    let to = eth.dst_addr();
    let to_our_mac = to == accept.mac;
    if !to_our_mac && !to.is_broadcast() && !to.is_multicast() {
        return discard(Discard::NotForUs);
    }
    let Ok(ip) = ip else {
        return discard(Discard::Malformed);
    };
    if ip.version() != 4 {
        return discard(Discard::Malformed);
    }
    if accept.checksum.ipv4.rx() && !ip.verify_checksum() {
        return discard(Discard::BadChecksum);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return discard(Discard::Fragment);
    }
    if !accept.is_unicast(src) && !src.is_unspecified() {
        return discard(Discard::Malformed);
    }
    if accept.is_martian(src, dst) {
        return discard(Discard::Malformed);
    }
    if !accept.accepts_destination(dst) {
        return discard(Discard::NotForUs);
    }
    if ip.next_header() != IpProtocol::Udp {
        // TCP is for this host alone, at both layers (Linux: a frame not `PACKET_HOST`);
        // smoltcp would answer a broadcast SYN.
        if ip.next_header() == IpProtocol::Tcp {
            let to_us_alone = to_our_mac && dst == accept.cidr.address();
            if !to_us_alone {
                return discard(Discard::NotForUs);
            }
            if !tcp_header_parses(&ip) {
                return discard(Discard::Malformed);
            }
        }
        return None;
    }
    let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
        return discard(Discard::Malformed);
    };
    if udp.dst_port() == 0 {
        return discard(Discard::Malformed);
    }
    if accept.checksum.udp.rx()
        && !udp.verify_checksum(&src.into(), &dst.into())
        && udp.checksum() != 0
    {
        return discard(Discard::BadChecksum);
    }
    Some(Ingress::Udp {
        dst: IpEndpoint::new(dst.into(), udp.dst_port()),
        src: IpEndpoint::new(src.into(), udp.src_port()),
        payload_len: udp.payload().len(),
    })
}

/// Whether smoltcp takes the TCP header in `ip` (`TcpPacket::new_checked`, then
/// `TcpRepr::parse`): its data offset between 5 and the segment's end, no port 0, at most
/// one of SYN, FIN and RST, every option of a length its kind allows and inside the
/// header. The checksum is left to smoltcp, as before: the header alone is read here, no
/// pass over the payload.
// Inlined into `classify`: out of line it took the firmware 64 B more of flash.
#[inline(always)]
fn tcp_header_parses(ip: &Ipv4Packet<&[u8]>) -> bool {
    // `parse` checks the lengths first, as `new_checked` would.
    TcpRepr::parse(
        &TcpPacket::new_unchecked(ip.payload()),
        &ip.src_addr().into(),
        &ip.dst_addr().into(),
        &ChecksumCapabilities::ignored(),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::Checksum;

    use std::vec::Vec;

    const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn accept() -> Acceptance {
        Acceptance {
            mac: OUR_MAC,
            cidr: Ipv4Cidr::new(US, 24),
            checksum: ChecksumCapabilities::default(),
        }
    }

    /// An Ethernet + IPv4 + UDP frame of five bytes to `mac`.
    fn udp_frame(mac: EthernetAddress, src: Ipv4Address, dst: Ipv4Address) -> Vec<u8> {
        crate::phy::test_frames::udp(mac, src, dst, b"hello")
    }

    fn reason(frame: &[u8]) -> Option<Discard> {
        match classify(frame, &accept()) {
            Some(Ingress::Discarded { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    fn refresh_ip_checksum(frame: &mut [u8]) {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.fill_checksum();
    }

    #[test]
    fn a_datagram_for_us_passes_with_its_endpoints() {
        let frame = udp_frame(OUR_MAC, PEER, US);
        assert_eq!(
            classify(&frame, &accept()),
            Some(Ingress::Udp {
                dst: IpEndpoint::new(US.into(), 9000),
                src: IpEndpoint::new(PEER.into(), 4000),
                payload_len: 5,
            })
        );
    }

    #[test]
    fn broadcasts_pass_at_both_layers() {
        for dst in [
            Ipv4Address::BROADCAST,
            Ipv4Address::new(10, 0, 0, 255),
            ALL_SYSTEMS,
        ] {
            let frame = udp_frame(EthernetAddress::BROADCAST, PEER, dst);
            assert!(
                matches!(classify(&frame, &accept()), Some(Ingress::Udp { .. })),
                "{dst}"
            );
        }
    }

    #[test]
    fn another_mac_or_another_address_is_not_for_us() {
        let other_mac = udp_frame(EthernetAddress([2, 0, 0, 0, 0, 3]), PEER, US);
        assert_eq!(reason(&other_mac), Some(Discard::NotForUs));
        let other_ip = udp_frame(OUR_MAC, PEER, Ipv4Address::new(10, 0, 0, 3));
        assert_eq!(reason(&other_ip), Some(Discard::NotForUs));
        let other_subnet_broadcast = udp_frame(
            EthernetAddress::BROADCAST,
            PEER,
            Ipv4Address::new(10, 0, 1, 255),
        );
        assert_eq!(reason(&other_subnet_broadcast), Some(Discard::NotForUs));
    }

    #[test]
    fn checksums_are_checked_as_the_device_asks_and_zero_udp_is_none() {
        let mut frame = udp_frame(OUR_MAC, PEER, US);
        let last = frame.len() - 1;
        frame[last] ^= 0x40;
        assert_eq!(
            reason(&frame),
            Some(Discard::BadChecksum),
            "payload byte flipped"
        );
        let mut lax = accept();
        lax.checksum.udp = Checksum::None;
        assert!(matches!(classify(&frame, &lax), Some(Ingress::Udp { .. })));
        // A zero UDP checksum means none was computed (IPv4 allows it).
        frame[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
        assert!(matches!(
            classify(&frame, &accept()),
            Some(Ingress::Udp { .. })
        ));
        let mut frame = udp_frame(OUR_MAC, PEER, US);
        frame[14 + 8] ^= 1; // the TTL, under the header checksum
        assert_eq!(reason(&frame), Some(Discard::BadChecksum), "IP header");
        lax.checksum.ipv4 = Checksum::None;
        assert!(matches!(classify(&frame, &lax), Some(Ingress::Udp { .. })));
    }

    #[test]
    fn fragments_are_discarded_first_and_later_alike() {
        let mut first = udp_frame(OUR_MAC, PEER, US);
        Ipv4Packet::new_unchecked(&mut first[14..]).set_more_frags(true);
        refresh_ip_checksum(&mut first);
        assert_eq!(reason(&first), Some(Discard::Fragment));
        let mut later = udp_frame(OUR_MAC, PEER, US);
        Ipv4Packet::new_unchecked(&mut later[14..]).set_frag_offset(1480);
        refresh_ip_checksum(&mut later);
        assert_eq!(reason(&later), Some(Discard::Fragment));
    }

    #[test]
    fn malformed_headers_are_named_so() {
        let mut port_zero = udp_frame(OUR_MAC, PEER, US);
        port_zero[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&[0, 0]);
        assert_eq!(reason(&port_zero), Some(Discard::Malformed));
        let broadcast_source = udp_frame(OUR_MAC, Ipv4Address::new(10, 0, 0, 255), US);
        assert_eq!(reason(&broadcast_source), Some(Discard::Malformed));
        let mut long_udp = udp_frame(OUR_MAC, PEER, US);
        long_udp[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(reason(&long_udp), Some(Discard::Malformed));
        let frame = udp_frame(OUR_MAC, PEER, US);
        for cut in 14..14 + 20 {
            assert_eq!(
                reason(&frame[..cut]),
                Some(Discard::Malformed),
                "cut at {cut}"
            );
        }
        assert_eq!(classify(&frame[..13], &accept()), None, "not even Ethernet");
    }

    #[test]
    fn a_martian_source_is_malformed_and_0_0_0_0_to_the_limited_broadcast_is_not() {
        for src in [
            US,
            Ipv4Address::new(127, 0, 0, 1),
            Ipv4Address::new(127, 9, 9, 9),
        ] {
            let frame = udp_frame(OUR_MAC, src, US);
            assert_eq!(reason(&frame), Some(Discard::Malformed), "{src}");
        }
        let unspecified = udp_frame(OUR_MAC, Ipv4Address::UNSPECIFIED, US);
        assert_eq!(reason(&unspecified), Some(Discard::Malformed));
        let dhcp = udp_frame(
            EthernetAddress::BROADCAST,
            Ipv4Address::UNSPECIFIED,
            Ipv4Address::BROADCAST,
        );
        assert!(matches!(
            classify(&dhcp, &accept()),
            Some(Ingress::Udp { .. })
        ));
    }

    #[test]
    fn a_tcp_segment_to_a_broadcast_or_multicast_address_is_not_for_us() {
        for dst in [
            Ipv4Address::BROADCAST,
            Ipv4Address::new(10, 0, 0, 255),
            ALL_SYSTEMS,
        ] {
            let mut frame = udp_frame(EthernetAddress::BROADCAST, PEER, dst);
            frame[14 + 9] = 6;
            refresh_ip_checksum(&mut frame);
            assert_eq!(reason(&frame), Some(Discard::NotForUs), "{dst}");
        }
    }

    #[test]
    fn a_tcp_segment_to_us_in_a_broadcast_or_multicast_frame_is_not_for_us() {
        for to in [
            EthernetAddress::BROADCAST,
            EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
        ] {
            let mut frame = udp_frame(to, PEER, US);
            frame[14 + 9] = 6;
            refresh_ip_checksum(&mut frame);
            assert_eq!(reason(&frame), Some(Discard::NotForUs), "{to}");
        }
    }

    #[test]
    fn a_tcp_segment_is_left_to_smoltcp_once_the_ip_layer_passes_it() {
        let mut frame = crate::phy::test_frames::tcp(1000, b"hello", false);
        assert_eq!(classify(&frame, &accept()), None);
        // A UDP datagram labelled TCP: no TCP header smoltcp would parse.
        let mut relabelled = udp_frame(OUR_MAC, PEER, US);
        relabelled[14 + 9] = 6;
        refresh_ip_checksum(&mut relabelled);
        assert_eq!(reason(&relabelled), Some(Discard::Malformed));
        frame[14 + 8] ^= 1;
        assert_eq!(
            reason(&frame),
            Some(Discard::BadChecksum),
            "its IP header still counts"
        );
    }

    #[test]
    fn the_counters_count_by_reason_and_print_on_one_line() {
        let mut d = Discards::default();
        d.count(Discard::BadChecksum);
        d.count(Discard::BadChecksum);
        d.count(Discard::NoSocket);
        d.count(Discard::DuplicateSyn);
        d.count(Discard::IcmpLimited);
        assert_eq!(
            (
                d.bad_checksum,
                d.no_socket,
                d.duplicate_syn,
                d.icmp_limited,
                d.total()
            ),
            (2, 1, 1, 1, 5)
        );
        assert_eq!(
            std::format!("{d}"),
            "discarded before any socket: not_for_us 0, bad_checksum 2, fragment 0, no_socket 1, malformed 0, duplicate_syn 1, icmp_limited 1, inexact_rst 0, after_fin 0"
        );
    }

    #[test]
    fn a_tcp_header_smoltcp_cannot_parse_is_malformed_and_its_checksum_is_not_looked_at() {
        let good = crate::phy::test_frames::tcp(1000, b"data", false);
        assert_eq!(classify(&good, &accept()), None, "smoltcp's to take");
        let tcp = 14 + 20;
        let mut damaged = good.clone();
        *damaged.last_mut().unwrap() ^= 0x20;
        assert_eq!(
            classify(&damaged, &accept()),
            None,
            "the checksum is smoltcp's"
        );
        type Mutation = (&'static str, fn(&mut [u8]));
        let mutations: [Mutation; 5] = [
            ("data offset 4", |f| f[14 + 20 + 12] = 4 << 4),
            ("data offset 15", |f| f[14 + 20 + 12] = 15 << 4),
            // "da" of the payload read as an option: kind 0x64, length 0x61.
            ("an option past the header", |f| f[14 + 20 + 12] = 6 << 4),
            ("FIN and RST", |f| f[14 + 20 + 13] |= 0x05),
            ("source port 0", |f| f[14 + 20..14 + 20 + 2].fill(0)),
        ];
        for (name, mutate) in mutations {
            let mut frame = good.clone();
            mutate(&mut frame);
            assert_eq!(reason(&frame), Some(Discard::Malformed), "{name}");
        }
        // A header cut by the IP total length.
        let mut cut = good.clone();
        cut[14 + 2..14 + 4].copy_from_slice(&(20u16 + 19).to_be_bytes());
        refresh_ip_checksum(&mut cut);
        assert_eq!(reason(&cut), Some(Discard::Malformed));
        assert!(
            cut.len() > tcp + 20,
            "the frame itself holds the whole header"
        );
    }
}
