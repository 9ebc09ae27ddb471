//! TCP segments joined into one large segment for the kernel to cut again (TCP
//! segmentation offload done from outside smoltcp), on the device side of the wire.
//!
//! smoltcp 0.14 has a `segmentation-offload` feature: with
//! `DeviceCapabilities::segmentation.tcpv4` set, its TCP socket fills one frame with up
//! to that many bytes (the window and the congestion window permitting) and sets
//! `PacketMeta::segmentation_offload_size` to the MSS for the device to cut by. In 0.14.0
//! the feature does not build without `proto-ipv6` (`Interface::new` names
//! `caps.segmentation.tcpv6`, which exists only with IPv6), and ringnet's core is IPv4
//! only. So the link does it instead: smoltcp sends MSS-sized segments as always, and
//! consecutive ones of one connection, back to back in one poll, are joined here into
//! one frame of up to 64 KiB that the virtio-net header marks [`GSO_TCPV4`](super::vnet::GSO_TCPV4) with the
//! first segment's payload as the size to cut by. The kernel gets the very segments
//! smoltcp made, in one write instead of one each.
//!
//! A segment joins the held one when it continues it exactly: same addresses, ports,
//! acknowledgment, window, flags and options, its sequence number where the held payload
//! ends, and a payload no longer than the cut size (only the last segment may be shorter,
//! and only the last may carry PSH or FIN: then the frame goes at once). Anything else,
//! a frame that is not such a TCP segment, or the next poll of the device, sends the
//! held frame first, so frames leave in the order smoltcp made them.

use ringnet::smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

use super::vnet::{fill_tcp_pseudo_header, VnetHeader, HEADER_LEN};

/// Ethernet's header.
const ETH: usize = 14;
/// TCP's flags byte, and the flags that end a joined frame.
const TCP_FLAGS: usize = 13;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const URG: u8 = 0x20;

/// The held frame's shape.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Bytes of the frame (after the header's room).
    len: usize,
    /// Ethernet, IP and TCP headers.
    headers: usize,
    /// Where the TCP header starts.
    tcp_start: usize,
    /// The first segment's payload: the size the kernel cuts by.
    segment: usize,
    /// The sequence number after the held payload.
    next_seq: u32,
    /// smoltcp segments in it.
    segments: u32,
    /// No segment may join any more (the last was short, or carried PSH or FIN).
    closed: bool,
}

/// The shape of a TCP data segment that may start or join a held frame.
#[derive(Debug, Clone, Copy)]
struct Segment {
    headers: usize,
    tcp_start: usize,
    payload: usize,
    seq: u32,
    flags: u8,
}

/// A TCP data segment with nothing that forbids joining (no SYN, RST or URG), or `None`.
fn segment(frame: &[u8]) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp
        || ip.more_frags()
        || ip.frag_offset() != 0
        || usize::from(ip.total_len()) + ETH != frame.len()
    {
        return None;
    }
    let tcp_start = ETH + usize::from(ip.header_len());
    let tcp = TcpPacket::new_checked(&frame[tcp_start..]).ok()?;
    let headers = tcp_start + usize::from(tcp.header_len());
    let flags = frame[tcp_start + TCP_FLAGS];
    let payload = frame.len() - headers;
    if payload == 0 || flags & (SYN | RST | URG) != 0 {
        return None;
    }
    Some(Segment {
        headers,
        tcp_start,
        payload,
        seq: tcp.seq_number().0 as u32,
        flags,
    })
}

/// Joins consecutive TCP segments of one connection into one frame for the kernel to cut
/// ([module docs](self)).
pub struct Coalescer {
    /// The virtio-net header's room, then the held frame.
    buf: Vec<u8>,
    held: Option<Held>,
}

impl Coalescer {
    /// A coalescer for frames of up to `max_frame` bytes (at most 64 KiB of IP packet).
    pub fn new(max_frame: usize) -> Coalescer {
        Coalescer {
            buf: vec![0; HEADER_LEN + max_frame.min(ETH + usize::from(u16::MAX))],
            held: None,
        }
    }

    /// Whether a frame is held.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// Whether the held frame takes no more segments and should go now.
    pub fn closed(&self) -> bool {
        self.held.is_some_and(|h| h.closed)
    }

    /// Appends `frame` to the held frame if it continues it exactly; says whether it did.
    pub fn join(&mut self, frame: &[u8]) -> bool {
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        if held.closed {
            return false;
        }
        let Some(seg) = segment(frame) else {
            return false;
        };
        let start = HEADER_LEN;
        let ours = &self.buf[start..start + held.len];
        let fits = HEADER_LEN + held.len + seg.payload <= self.buf.len();
        let same_headers = seg.headers == held.headers
            && seg.tcp_start == held.tcp_start
            && seg.seq == held.next_seq
            && seg.payload <= held.segment
            // Ethernet and IP: all but the total length, the identification and the
            // checksum (bytes 2..6 and 10..12 of the IP header).
            && frame[..ETH + 2] == ours[..ETH + 2]
            && frame[ETH + 6..ETH + 10] == ours[ETH + 6..ETH + 10]
            && frame[ETH + 12..held.tcp_start] == ours[ETH + 12..held.tcp_start]
            // TCP: ports, then acknowledgment to options, all but the sequence number,
            // the flags (PSH and FIN may come last) and the checksum.
            && frame[held.tcp_start..held.tcp_start + 4] == ours[held.tcp_start..held.tcp_start + 4]
            && frame[held.tcp_start + 8..held.tcp_start + TCP_FLAGS]
                == ours[held.tcp_start + 8..held.tcp_start + TCP_FLAGS]
            && seg.flags & !(PSH | FIN) == ours[held.tcp_start + TCP_FLAGS]
            && frame[held.tcp_start + 14..held.tcp_start + 16]
                == ours[held.tcp_start + 14..held.tcp_start + 16]
            && frame[held.tcp_start + 18..held.headers] == ours[held.tcp_start + 18..held.headers];
        if !fits || !same_headers {
            return false;
        }
        let at = start + held.len;
        self.buf[at..at + seg.payload].copy_from_slice(&frame[seg.headers..]);
        self.buf[start + held.tcp_start + TCP_FLAGS] = seg.flags;
        held.len += seg.payload;
        held.next_seq = held.next_seq.wrapping_add(seg.payload as u32);
        held.segments += 1;
        held.closed = seg.payload < held.segment || seg.flags & (PSH | FIN) != 0;
        true
    }

    /// Holds a copy of `frame` if it is a TCP data segment others may join (no PSH or
    /// FIN either); says whether it did. Nothing may be held already.
    pub fn hold(&mut self, frame: &[u8]) -> bool {
        debug_assert!(self.held.is_none());
        let Some(seg) = segment(frame) else {
            return false;
        };
        if seg.flags & (PSH | FIN) != 0 || HEADER_LEN + frame.len() > self.buf.len() {
            return false;
        }
        self.buf[HEADER_LEN..HEADER_LEN + frame.len()].copy_from_slice(frame);
        self.held = Some(Held {
            len: frame.len(),
            headers: seg.headers,
            tcp_start: seg.tcp_start,
            segment: seg.payload,
            next_seq: seg.seq.wrapping_add(seg.payload as u32),
            segments: 1,
            closed: false,
        });
        true
    }

    /// The held frame, made whole for the kernel: its IP length and header checksum, the
    /// pseudo-header sum in the TCP checksum field, and the virtio-net header before it
    /// ([`GSO_TCPV4`](super::vnet::GSO_TCPV4) when it holds more than one segment). Returns the bytes to write
    /// and the number of segments in them; nothing is held afterwards.
    pub fn take(&mut self) -> Option<(&[u8], u32)> {
        let held = self.held.take()?;
        let frame = &mut self.buf[HEADER_LEN..HEADER_LEN + held.len];
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETH..]);
            ip.set_total_len((held.len - ETH) as u16);
            ip.fill_checksum();
        }
        fill_tcp_pseudo_header(frame);
        // The payload is longer than one segment exactly when several were joined.
        let header = VnetHeader::for_outgoing(frame, Some(held.segment as u16));
        header.emit(&mut self.buf[..HEADER_LEN]);
        Some((&self.buf[..HEADER_LEN + held.len], held.segments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::vnet::{
        complete_checksum, tests::tcp_frame, tests::udp_frame, GSO_TCPV4, NEEDS_CSUM,
    };

    /// A data segment of `payload` bytes at sequence `seq` with `flags` (ACK always).
    fn seg(seq: u32, payload: usize, flags: u8) -> Vec<u8> {
        let data: Vec<u8> = (0..payload).map(|i| (seq as usize + i) as u8).collect();
        let mut frame = tcp_frame(&data, false);
        frame[34 + 4..34 + 8].copy_from_slice(&seq.to_be_bytes());
        frame[34 + TCP_FLAGS] = 0x10 | flags;
        frame
    }

    #[test]
    fn consecutive_segments_join_into_one_frame_the_kernel_cuts_back_into_them() {
        let mut c = Coalescer::new(14 + 65535);
        let first = seg(1000, 1448, 0);
        assert!(c.hold(&first));
        assert!(c.join(&seg(2448, 1448, 0)));
        assert!(!c.closed());
        assert!(c.join(&seg(3896, 500, PSH)), "a short last one with PSH");
        assert!(c.closed(), "nothing joins after a short or PSH segment");
        assert!(!c.join(&seg(4396, 100, 0)));
        let (bytes, segments) = c.take().unwrap();
        assert_eq!(segments, 3);
        let header = VnetHeader::parse(bytes).unwrap();
        assert_eq!(header.gso_type, GSO_TCPV4);
        assert_eq!(header.gso_size, 1448);
        assert_eq!(header.hdr_len, 54);
        let mut frame = bytes[HEADER_LEN..].to_vec();
        assert_eq!(frame.len(), 54 + 1448 * 2 + 500);
        header.check(&frame).unwrap();
        // What the kernel reads: one segment, its payload the three in order, PSH set,
        // valid IP header, and a partial checksum that completes to the real one.
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), frame.len() - 14);
        let payload: Vec<u8> = (0..1448 * 2 + 500).map(|i| (1000 + i) as u8).collect();
        assert_eq!(&frame[54..], &payload[..]);
        assert_eq!(frame[34 + TCP_FLAGS], 0x10 | PSH);
        complete_checksum(&mut frame, &header);
        assert_eq!(crate::tap::vnet::tcp_checksum_ok(&frame), Some(true));
        assert!(!c.holding());
    }

    #[test]
    fn a_segment_that_does_not_continue_the_held_one_exactly_is_refused() {
        let mut c = Coalescer::new(14 + 65535);
        assert!(c.hold(&seg(1000, 1000, 0)));
        assert!(!c.join(&seg(2001, 1000, 0)), "a gap in the sequence");
        assert!(!c.join(&seg(2000, 1001, 0)), "longer than the cut size");
        let mut other_window = seg(2000, 1000, 0);
        other_window[34 + 14] ^= 1;
        assert!(!c.join(&other_window), "another window");
        let mut other_ack = seg(2000, 1000, 0);
        other_ack[34 + 8] ^= 1;
        assert!(!c.join(&other_ack), "another acknowledgment");
        let mut other_port = seg(2000, 1000, 0);
        other_port[34] ^= 1;
        assert!(!c.join(&other_port), "another connection");
        assert!(!c.join(&seg(2000, 0, 0)), "no payload");
        assert!(!c.join(&seg(2000, 1000, SYN)));
        assert!(!c.join(&udp_frame(&[0; 1000])));
        assert!(c.join(&seg(2000, 1000, FIN)), "FIN may come last");
        assert!(c.closed());
        let (_, segments) = c.take().unwrap();
        assert_eq!(segments, 2);
    }

    #[test]
    fn only_plain_data_segments_are_held_and_a_lone_one_goes_uncut() {
        let mut c = Coalescer::new(14 + 65535);
        assert!(
            !c.hold(&seg(1, 100, PSH)),
            "PSH ends a burst: nothing to wait for"
        );
        assert!(!c.hold(&seg(1, 100, FIN)));
        assert!(!c.hold(&seg(1, 0, 0)), "a bare ACK");
        assert!(!c.hold(&udp_frame(b"x")));
        assert!(c.take().is_none());
        assert!(c.hold(&seg(1, 100, 0)));
        let (bytes, segments) = c.take().unwrap();
        assert_eq!(segments, 1);
        let header = VnetHeader::parse(bytes).unwrap();
        assert_eq!(header.gso_type, crate::tap::vnet::GSO_NONE);
        assert_eq!(header.flags, NEEDS_CSUM);
    }

    #[test]
    fn a_joined_frame_never_passes_64_kib_of_ip_packet() {
        let mut c = Coalescer::new(14 + 65535);
        let mut seq = 0u32;
        assert!(c.hold(&seg(seq, 1448, 0)));
        seq += 1448;
        while c.join(&seg(seq, 1448, 0)) {
            seq += 1448;
        }
        let (bytes, segments) = c.take().unwrap();
        assert_eq!(segments, 45, "45 * 1448 + 54 fits in 65535, 46 do not");
        assert!(bytes.len() - HEADER_LEN - 14 <= 65535);
    }
}
