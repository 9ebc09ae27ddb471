//! Frames for the unit tests of this layer, built with smoltcp's own `Repr`s.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};
use std::vec::Vec;

/// An Ethernet + IPv4 + UDP frame from 02-00-00-00-00-01, port 4000, to `dst_mac`, port
/// 9000, with correct checksums.
pub(crate) fn udp(
    dst_mac: EthernetAddress,
    src: Ipv4Address,
    dst: Ipv4Address,
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: 4000,
        dst_port: 9000,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let mut buf = std::vec![0u8; 14 + ip.buffer_len() + udp.header_len() + payload.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 1]));
    eth.set_dst_addr(dst_mac);
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let mut ipp = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.emit(&mut ipp, &ChecksumCapabilities::default());
    let mut udpp = UdpPacket::new_unchecked(ipp.payload_mut());
    udp.emit(
        &mut udpp,
        &src.into(),
        &dst.into(),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// An Ethernet + IPv4 + TCP segment from 10.0.0.1:4000 at 02-00-00-00-00-01 to
/// 10.0.0.2:80 at 02-00-00-00-00-02, at sequence number `seq` with `payload`, acknowledging
/// 1, a FIN with `fin`; correct checksums.
pub(crate) fn tcp(seq: u32, payload: &[u8], fin: bool) -> Vec<u8> {
    use smoltcp::wire::{TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};
    let (src, dst) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
    let tcp = TcpRepr {
        src_port: 4000,
        dst_port: 80,
        control: if fin {
            TcpControl::Fin
        } else {
            TcpControl::None
        },
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(1)),
        window_len: 1024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = std::vec![0u8; 14 + ip.buffer_len() + tcp.buffer_len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 1]));
    eth.set_dst_addr(EthernetAddress([2, 0, 0, 0, 0, 2]));
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let mut ipp = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.emit(&mut ipp, &ChecksumCapabilities::default());
    tcp.emit(
        &mut TcpPacket::new_unchecked(ipp.payload_mut()),
        &src.into(),
        &dst.into(),
        &ChecksumCapabilities::default(),
    );
    buf
}
