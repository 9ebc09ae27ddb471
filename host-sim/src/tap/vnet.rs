//! The virtio-net header a Linux tap puts before every frame once it is opened with
//! `IFF_VNET_HDR` (`struct virtio_net_hdr`, `include/uapi/linux/virtio_net.h`), on the
//! device side of the wire: what a virtual machine's NIC and the host kernel tell each other
//! about a frame's checksum and segmentation.
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | `flags` | 0 | [`NEEDS_CSUM`]: the transport checksum is partial (the field holds only the pseudo-header sum) and is to be completed over `csum_start..`; [`DATA_VALID`]: the kernel has already verified it |
//! | `gso_type` | 1 | [`GSO_NONE`], or [`GSO_TCPV4`]: one large TCP segment to be cut into segments of `gso_size` payload bytes each |
//! | `hdr_len` | 2..4 | length of the headers repeated in every segment (a hint; Linux gives its linear part) |
//! | `gso_size` | 4..6 | payload bytes per segment |
//! | `csum_start` | 6..8 | where the checksummed data starts (the transport header) |
//! | `csum_offset` | 8..10 | where the checksum lies, from `csum_start` (16 for TCP, 6 for UDP) |
//!
//! A tap speaks the legacy header of 10 bytes in the host's byte order (`TUNSETVNETHDRSZ`
//! 10, no `TUNSETVNETLE`/`BE`). Only what ringnet negotiates (`TUN_F_CSUM | TUN_F_TSO4`)
//! is accepted from the kernel: any other segmentation type, the ECN bit, or a checksum
//! position past the frame is a [`VnetError`].

use ringnet::smoltcp::wire::{
    checksum, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket,
};

/// The header's length, as set with `TUNSETVNETHDRSZ` (`sizeof(struct virtio_net_hdr)`).
pub const HEADER_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds only the
/// pseudo-header sum; the receiver completes it (or trusts it, as Linux does for a frame
/// from its own stack).
pub const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the sender has verified the checksum.
pub const DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_ECN`, a bit on top of the type (needs `TUN_F_TSO_ECN`, which ringnet
/// does not ask for).
pub const GSO_ECN: u8 = 0x80;

/// Where a TCP header's checksum lies, from the header's start.
const TCP_CHECKSUM_OFFSET: u16 = 16;
/// Where a UDP header's checksum lies.
const UDP_CHECKSUM_OFFSET: usize = 6;

/// Why a header from the kernel was refused (the frame is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VnetError {
    /// The read was shorter than the header.
    Truncated,
    /// A segmentation type ringnet did not negotiate (TCPv6, UDP, ECN, unknown).
    UnknownGso(u8),
    /// A TCPv4 segmentation request on a frame that is not IPv4 TCP, or with no segment size.
    BadGso,
    /// `csum_start + csum_offset` does not leave room for a 16-bit checksum in the frame.
    ChecksumOutside,
}

impl core::fmt::Display for VnetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VnetError::Truncated => write!(f, "shorter than the virtio-net header"),
            VnetError::UnknownGso(t) => write!(f, "segmentation type {t:#x} not negotiated"),
            VnetError::BadGso => write!(f, "TCPv4 segmentation on a frame that is not IPv4 TCP"),
            VnetError::ChecksumOutside => write!(f, "checksum position outside the frame"),
        }
    }
}

impl std::error::Error for VnetError {}

/// A virtio-net header, parsed or to be emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// [`NEEDS_CSUM`], [`DATA_VALID`].
    pub flags: u8,
    /// [`GSO_NONE`] or [`GSO_TCPV4`] (others are refused on parse).
    pub gso_type: u8,
    /// Headers repeated in every segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Start of the checksummed data.
    pub csum_start: u16,
    /// The checksum's offset from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Reads the header at the start of `bytes` (host byte order, as a tap writes it).
    pub fn parse(bytes: &[u8]) -> Result<VnetHeader, VnetError> {
        let Some(b) = bytes.get(..HEADER_LEN) else {
            return Err(VnetError::Truncated);
        };
        let half = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Ok(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: half(2),
            gso_size: half(4),
            csum_start: half(6),
            csum_offset: half(8),
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        for (i, half) in [
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
        ]
        .into_iter()
        .enumerate()
        {
            out[2 + 2 * i..4 + 2 * i].copy_from_slice(&half.to_ne_bytes());
        }
    }

    /// Checks the header against the frame it came with: only what was negotiated, and a
    /// checksum position inside the frame.
    pub fn check(&self, frame: &[u8]) -> Result<(), VnetError> {
        match self.gso_type {
            GSO_NONE => {}
            GSO_TCPV4 => {
                if self.gso_size == 0 || tcp_v4(frame).is_none() {
                    return Err(VnetError::BadGso);
                }
            }
            other => return Err(VnetError::UnknownGso(other)),
        }
        if self.flags & NEEDS_CSUM != 0 {
            let at = usize::from(self.csum_start) + usize::from(self.csum_offset);
            if at + 2 > frame.len() {
                return Err(VnetError::ChecksumOutside);
            }
        }
        Ok(())
    }

    /// A partial checksum this header asks for is one ringnet may leave unchecked: a TCP
    /// segment's, at the TCP header's checksum field (smoltcp, told the device verifies
    /// TCP, does not look at it, as Linux does not for a frame from its own stack).
    pub fn partial_tcp_checksum(&self, frame: &[u8]) -> bool {
        self.flags & NEEDS_CSUM != 0
            && self.csum_offset == TCP_CHECKSUM_OFFSET
            && tcp_v4(frame).is_some_and(|(tcp_start, _)| usize::from(self.csum_start) == tcp_start)
    }

    /// The header for a frame ringnet sends: a TCPv4 segment gets [`NEEDS_CSUM`] (its
    /// checksum field must already hold the pseudo-header sum, [`fill_tcp_pseudo_header`])
    /// and, when `segment` is given and its payload is longer, [`GSO_TCPV4`] with that
    /// segment size; any other frame goes as it is.
    pub fn for_outgoing(frame: &[u8], segment: Option<u16>) -> VnetHeader {
        let Some((tcp_start, tcp)) = tcp_v4(frame) else {
            return VnetHeader::default();
        };
        let headers = tcp_start + tcp.header_len() as usize;
        let payload = frame.len() - headers;
        let mut header = VnetHeader {
            flags: NEEDS_CSUM,
            csum_start: tcp_start as u16,
            csum_offset: TCP_CHECKSUM_OFFSET,
            ..VnetHeader::default()
        };
        if let Some(size) = segment.filter(|&size| payload > usize::from(size)) {
            header.gso_type = GSO_TCPV4;
            header.gso_size = size;
            header.hdr_len = headers as u16;
        }
        header
    }
}

/// Where the TCP header of an IPv4 TCP frame starts, and the header; `None` for any other
/// frame, or one whose lengths do not add up.
fn tcp_v4(frame: &[u8]) -> Option<(usize, TcpPacket<&[u8]>)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let start = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.header_len());
    // The IP header's length covers this frame only: its TCP segment is the rest.
    let ip_end = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.total_len());
    let tcp = TcpPacket::new_checked(frame.get(start..ip_end)?).ok()?;
    Some((start, tcp))
}

/// Writes into an outgoing IPv4 TCP frame's checksum field the pseudo-header sum (not
/// complemented), which is what `NEEDS_CSUM` expects there: Linux adds the sum over the
/// segment (per cut segment, under segmentation) and complements it. Returns whether the
/// frame was one.
pub fn fill_tcp_pseudo_header(frame: &mut [u8]) -> bool {
    let Some((start, tcp_len)) = tcp_v4(frame).map(|(start, tcp)| (start, tcp.into_inner().len()))
    else {
        return false;
    };
    let ip = Ipv4Packet::new_unchecked(&frame[EthernetFrame::<&[u8]>::header_len()..]);
    let sum = checksum::pseudo_header_v4(
        &ip.src_addr(),
        &ip.dst_addr(),
        IpProtocol::Tcp,
        tcp_len as u32,
    );
    let at = start + usize::from(TCP_CHECKSUM_OFFSET);
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Completes a partial checksum as a NIC would: the one's-complement sum over
/// `csum_start..` (the field holding the pseudo-header sum), complemented, written at
/// `csum_start + csum_offset`; a UDP checksum that comes out 0 is sent as 0xffff, since 0
/// means "none". The position must have passed [`VnetHeader::check`].
pub fn complete_checksum(frame: &mut [u8], header: &VnetHeader) {
    let start = usize::from(header.csum_start);
    let at = start + usize::from(header.csum_offset);
    let mut value = !checksum::data(&frame[start..]);
    if value == 0 && is_udp_checksum(frame, start, at) {
        value = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn is_udp_checksum(frame: &[u8], start: usize, at: usize) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let ip = match Ipv4Packet::new_checked(eth.payload()) {
        Ok(ip) if eth.ethertype() == EthernetProtocol::Ipv4 => ip,
        _ => return false,
    };
    ip.next_header() == IpProtocol::Udp
        && start == EthernetFrame::<&[u8]>::header_len() + usize::from(ip.header_len())
        && at == start + UDP_CHECKSUM_OFFSET
}

/// Verifies a whole IPv4 TCP frame's checksum (for a frame the kernel neither verified
/// nor left partial: smoltcp, told the device checks TCP, will not). `None` for a frame
/// that is not IPv4 TCP.
pub fn tcp_checksum_ok(frame: &[u8]) -> Option<bool> {
    let (_, tcp) = tcp_v4(frame)?;
    let ip = Ipv4Packet::new_checked(&frame[EthernetFrame::<&[u8]>::header_len()..]).ok()?;
    Some(tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ringnet::smoltcp::phy::ChecksumCapabilities;
    use ringnet::smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpRepr, TcpSeqNumber,
        UdpPacket, UdpRepr,
    };

    const A: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const B: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    fn eth_ip(protocol: IpProtocol, payload_len: usize, out: &mut Vec<u8>) -> usize {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: A,
            dst_addr: B,
            next_header: protocol,
            payload_len,
            hop_limit: 64,
        };
        out.resize(14 + 20 + payload_len, 0);
        eth.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut out[14..]),
            &ChecksumCapabilities::default(),
        );
        34
    }

    /// An IPv4 TCP frame carrying `payload`, its checksum filled when `checksummed`, else 0.
    pub(crate) fn tcp_frame(payload: &[u8], checksummed: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 9,
            control: ringnet::smoltcp::wire::TcpControl::Psh,
            seq_number: TcpSeqNumber(1000),
            ack_number: Some(TcpSeqNumber(2000)),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let mut frame = Vec::new();
        let start = eth_ip(IpProtocol::Tcp, tcp.buffer_len(), &mut frame);
        let mut caps = ChecksumCapabilities::default();
        if !checksummed {
            caps.tcp = ringnet::smoltcp::phy::Checksum::None;
        }
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[start..]),
            &IpAddress::Ipv4(A),
            &IpAddress::Ipv4(B),
            &caps,
        );
        frame
    }

    /// An IPv4 UDP frame carrying `payload`, its checksum filled.
    pub(crate) fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let udp = UdpRepr {
            src_port: 4000,
            dst_port: 9000,
        };
        let mut frame = Vec::new();
        let start = eth_ip(IpProtocol::Udp, 8 + payload.len(), &mut frame);
        udp.emit(
            &mut UdpPacket::new_unchecked(&mut frame[start..]),
            &IpAddress::Ipv4(A),
            &IpAddress::Ipv4(B),
            payload.len(),
            |buf| buf.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        frame
    }

    #[test]
    fn a_header_parses_back_from_what_emit_wrote_in_host_order() {
        let header = VnetHeader {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut bytes = [0u8; HEADER_LEN];
        header.emit(&mut bytes);
        assert_eq!(bytes[..2], [1, 1]);
        assert_eq!(bytes[4..6], 1448u16.to_ne_bytes());
        assert_eq!(VnetHeader::parse(&bytes), Ok(header));
        for cut in 0..HEADER_LEN {
            assert_eq!(
                VnetHeader::parse(&bytes[..cut]),
                Err(VnetError::Truncated),
                "{cut}"
            );
        }
    }

    #[test]
    fn only_negotiated_segmentation_and_checksums_inside_the_frame_pass() {
        let frame = tcp_frame(&[7; 3000], false);
        let gso = VnetHeader {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(gso.check(&frame), Ok(()));
        assert!(gso.partial_tcp_checksum(&frame));
        for gso_type in [3u8, 4, 5, GSO_TCPV4 | GSO_ECN, 0x7f] {
            let header = VnetHeader { gso_type, ..gso };
            assert_eq!(header.check(&frame), Err(VnetError::UnknownGso(gso_type)));
        }
        let no_size = VnetHeader { gso_size: 0, ..gso };
        assert_eq!(no_size.check(&frame), Err(VnetError::BadGso));
        assert_eq!(
            gso.check(&udp_frame(&[1; 3000])),
            Err(VnetError::BadGso),
            "TCPv4 segmentation of a UDP frame"
        );
        let outside = VnetHeader {
            csum_start: (frame.len() - 17) as u16,
            ..gso
        };
        assert_eq!(outside.check(&frame), Err(VnetError::ChecksumOutside));
        let at_end = VnetHeader {
            csum_start: (frame.len() - 18) as u16,
            ..gso
        };
        assert_eq!(at_end.check(&frame), Ok(()));
        assert!(!at_end.partial_tcp_checksum(&frame), "not the TCP header");
        assert_eq!(VnetHeader::default().check(&[]), Ok(()), "nothing asked");
    }

    #[test]
    fn an_outgoing_segment_gets_segmentation_only_when_longer_than_the_segment_size() {
        let mut frame = tcp_frame(&[9; 4000], false);
        let header = VnetHeader::for_outgoing(&frame, Some(1448));
        assert_eq!(
            header,
            VnetHeader {
                flags: NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 54,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        assert_eq!(
            VnetHeader::for_outgoing(&frame, Some(4000)).gso_type,
            GSO_NONE,
            "it fits one segment"
        );
        assert_eq!(VnetHeader::for_outgoing(&frame, None).gso_type, GSO_NONE);
        assert_eq!(
            VnetHeader::for_outgoing(&udp_frame(b"x"), Some(1)),
            VnetHeader::default(),
            "UDP is checksummed by smoltcp and never segmented"
        );
        // The pseudo-header sum, completed over the segment as Linux does, is the real
        // checksum.
        assert!(fill_tcp_pseudo_header(&mut frame));
        complete_checksum(&mut frame, &header);
        assert_eq!(frame, tcp_frame(&[9; 4000], true));
        assert_eq!(tcp_checksum_ok(&frame), Some(true));
        frame[100] ^= 1;
        assert_eq!(tcp_checksum_ok(&frame), Some(false));
        assert_eq!(tcp_checksum_ok(&udp_frame(b"x")), None);
    }

    #[test]
    fn a_partial_udp_checksum_is_completed_to_the_real_one() {
        let whole = udp_frame(b"a datagram whose checksum the kernel left to the device");
        let mut partial = whole.clone();
        let ip = Ipv4Packet::new_checked(&whole[14..]).unwrap();
        let sum = checksum::pseudo_header_v4(
            &ip.src_addr(),
            &ip.dst_addr(),
            IpProtocol::Udp,
            (whole.len() - 34) as u32,
        );
        partial[40..42].copy_from_slice(&sum.to_be_bytes());
        assert_ne!(partial, whole);
        let header = VnetHeader {
            flags: NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHeader::default()
        };
        assert_eq!(header.check(&partial), Ok(()));
        assert!(!header.partial_tcp_checksum(&partial));
        complete_checksum(&mut partial, &header);
        assert_eq!(partial, whole);
    }
}
