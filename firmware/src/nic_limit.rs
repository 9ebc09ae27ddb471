//! The emulated NIC's own limit (feature `nic-limit`): the board's driver pumping raw UDP
//! frames with no stack above it. `scripts/bench-firmware.sh` measures it in the same run
//! as ringnet, and reports ringnet's throughput as a ratio of it.
//!
//! It speaks on UDP port 9000 (forwarded from the host as the report service is):
//!
//! | datagram | what the firmware does |
//! |---|---|
//! | starting with `D` | counts it: frames, payload bytes, time from the first to the last |
//! | `rx?` | answers `rx <frames> <bytes> <micros> <times the NIC's receive side was full>`, and counts afresh |
//! | `tx <bytes> <size>` | sends `<bytes>` in datagrams of `<size>` payload bytes back to the sender as fast as the NIC takes them, then answers `tx <frames> <bytes> <micros>` |
//!
//! It answers ARP requests for its address, so that QEMU's user-mode network can reach
//! it, and ignores everything else. A data datagram's payload is left as the buffer holds
//! it: what is measured is the driver and the NIC, not a copy the stack would make.

use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use ringnet::smoltcp::phy::{Device, RxToken as _, TxToken as _};
use ringnet::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket,
};
use ringnet::Instant;

use crate::board::{self, Nic};
use crate::clock;

/// The port the commands and the data come to.
const PORT: u16 = 9000;
/// Headers in front of a datagram's payload: Ethernet, IPv4, UDP.
const HEADERS: usize = 14 + 20 + 8;
/// The largest payload a frame carries (the MTU less the IPv4 and UDP headers).
const MAX_PAYLOAD: usize = 1500 - 20 - 8;
/// The most one `tx` command may ask for, so that a run is bounded.
const MAX_TX_BYTES: u64 = 1 << 30;

/// Where the commands came from: where answers and data go.
#[derive(Clone, Copy)]
struct Peer {
    mac: EthernetAddress,
    ip: Ipv4Address,
    port: u16,
}

/// What a received frame asks for, done once the receive token is given back.
enum Action {
    None,
    ArpReply(ArpRepr),
    ReportRx(Peer),
    Transmit { peer: Peer, bytes: u64, size: usize },
}

/// The data received since the last `rx?`.
#[derive(Default)]
struct RxCount {
    frames: u32,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Runs the NIC-limit mode on `nic` for ever.
pub fn run(nic: &mut Nic, mac: EthernetAddress, ip: Ipv4Address) -> ! {
    // SAFETY: as in `main`: the handler only masks the NIC and sets an atomic flag.
    unsafe { cortex_m::peripheral::NVIC::unmask(board::NicIrq) };
    log::info!(
        "ready: NIC limit on {}, udp {PORT}: D... counted, rx? answered, tx <bytes> <size> sent",
        board::NAME
    );
    let mut count = RxCount::default();
    // The driver's count of full-receive-side events when counting started.
    let mut full_before = nic.rx_full_events();
    loop {
        while let Some((rx, tx)) = nic.receive(clock::now()) {
            match rx.consume(|frame| on_frame(frame, mac, ip, &mut count)) {
                Action::None => {}
                Action::ArpReply(reply) => tx.consume(14 + reply.buffer_len(), |buf| {
                    emit_arp(buf, mac, &reply);
                }),
                Action::ReportRx(peer) => {
                    let micros = match (count.first, count.last) {
                        (Some(first), Some(last)) => (last - first).total_micros(),
                        _ => 0,
                    };
                    let full = nic.rx_full_events().wrapping_sub(full_before);
                    let mut text = heapless::String::<96>::new();
                    let _ = write!(text, "rx {} {} {micros} {full}", count.frames, count.bytes);
                    send_text(nic, mac, ip, peer, &text);
                    count = RxCount::default();
                    full_before = nic.rx_full_events();
                }
                Action::Transmit { peer, bytes, size } => {
                    transmit(nic, mac, ip, peer, bytes, size);
                }
            }
        }
        board::RX_PENDING.store(false, Ordering::Release);
        nic.listen();
        if !nic.rx_waiting() {
            crate::idle();
        }
    }
}

/// Reads one frame: counts data, and says what else it asks for.
fn on_frame(frame: &[u8], mac: EthernetAddress, ip: Ipv4Address, count: &mut RxCount) -> Action {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return Action::None;
    };
    match ethernet.ethertype() {
        EthernetProtocol::Arp => {
            let Ok(arp) =
                ArpPacket::new_checked(ethernet.payload()).and_then(|p| ArpRepr::parse(&p))
            else {
                return Action::None;
            };
            match arp {
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } if target_protocol_addr == ip => Action::ArpReply(ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: mac,
                    source_protocol_addr: ip,
                    target_hardware_addr: source_hardware_addr,
                    target_protocol_addr: source_protocol_addr,
                }),
                _ => Action::None,
            }
        }
        EthernetProtocol::Ipv4 => {
            let Ok(packet) = Ipv4Packet::new_checked(ethernet.payload()) else {
                return Action::None;
            };
            if packet.next_header() != IpProtocol::Udp || packet.dst_addr() != ip {
                return Action::None;
            }
            let Ok(udp) = UdpPacket::new_checked(packet.payload()) else {
                return Action::None;
            };
            if udp.dst_port() != PORT {
                return Action::None;
            }
            let peer = Peer {
                mac: ethernet.src_addr(),
                ip: packet.src_addr(),
                port: udp.src_port(),
            };
            let payload = udp.payload();
            if payload.first() == Some(&b'D') {
                let now = clock::now();
                count.first.get_or_insert(now);
                count.last = Some(now);
                count.frames += 1;
                count.bytes += payload.len() as u64;
                return Action::None;
            }
            parse_command(payload, peer)
        }
        _ => Action::None,
    }
}

/// `rx?` or `tx <bytes> <size>`; anything else is ignored.
fn parse_command(payload: &[u8], peer: Peer) -> Action {
    let Ok(text) = core::str::from_utf8(payload) else {
        return Action::None;
    };
    let mut words = text.split_ascii_whitespace();
    match words.next() {
        Some("rx?") => Action::ReportRx(peer),
        Some("tx") => {
            let bytes = words.next().and_then(|w| w.parse::<u64>().ok());
            let size = words.next().and_then(|w| w.parse::<usize>().ok());
            match (bytes, size) {
                (Some(bytes), Some(size)) if (1..=MAX_PAYLOAD).contains(&size) => {
                    Action::Transmit {
                        peer,
                        bytes: bytes.min(MAX_TX_BYTES),
                        size,
                    }
                }
                _ => {
                    log::warn!(
                        "nic limit: a tx command needs <bytes> and a <size> of 1 to {MAX_PAYLOAD}"
                    );
                    Action::None
                }
            }
        }
        _ => Action::None,
    }
}

/// Sends `bytes` in datagrams of `size` to `peer` as fast as the NIC takes them, then the
/// figures.
fn transmit(
    nic: &mut Nic,
    mac: EthernetAddress,
    ip: Ipv4Address,
    peer: Peer,
    bytes: u64,
    size: usize,
) {
    let start = clock::now();
    let mut sent = 0u64;
    let mut frames = 0u32;
    while sent < bytes {
        let len = size.min((bytes - sent) as usize);
        let Some(tx) = nic.transmit(clock::now()) else {
            continue;
        };
        send_datagram(tx, mac, ip, peer, len, |payload| payload[0] = b'D');
        sent += len as u64;
        frames += 1;
    }
    let micros = (clock::now() - start).total_micros();
    let mut text = heapless::String::<96>::new();
    let _ = write!(text, "tx {frames} {sent} {micros}");
    send_text(nic, mac, ip, peer, &text);
    log::info!("nic limit: sent {frames} frames, {sent} bytes in {micros} us");
}

/// One datagram holding `text`, once the NIC takes a frame.
fn send_text(nic: &mut Nic, mac: EthernetAddress, ip: Ipv4Address, peer: Peer, text: &str) {
    loop {
        if let Some(tx) = nic.transmit(clock::now()) {
            send_datagram(tx, mac, ip, peer, text.len(), |payload| {
                payload.copy_from_slice(text.as_bytes());
            });
            return;
        }
    }
}

/// One UDP datagram of `len` payload bytes to `peer`, its payload written by `fill` (the
/// UDP checksum is left out, as IPv4 allows).
fn send_datagram<T: ringnet::smoltcp::phy::TxToken>(
    tx: T,
    mac: EthernetAddress,
    ip: Ipv4Address,
    peer: Peer,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    tx.consume(HEADERS + len, |buf| {
        let mut ethernet = EthernetFrame::new_unchecked(&mut *buf);
        EthernetRepr {
            src_addr: mac,
            dst_addr: peer.mac,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut ethernet);
        let ipv4 = Ipv4Repr {
            src_addr: ip,
            dst_addr: peer.ip,
            next_header: IpProtocol::Udp,
            payload_len: 8 + len,
            hop_limit: 64,
        };
        let mut packet = Ipv4Packet::new_unchecked(ethernet.payload_mut());
        ipv4.emit(
            &mut packet,
            &ringnet::smoltcp::phy::ChecksumCapabilities::default(),
        );
        let mut udp = UdpPacket::new_unchecked(packet.payload_mut());
        udp.set_src_port(PORT);
        udp.set_dst_port(peer.port);
        udp.set_len((8 + len) as u16);
        udp.set_checksum(0);
        fill(&mut udp.payload_mut()[..len]);
    });
}

fn emit_arp(buf: &mut [u8], mac: EthernetAddress, reply: &ArpRepr) {
    let mut ethernet = EthernetFrame::new_unchecked(&mut *buf);
    let ArpRepr::EthernetIpv4 {
        target_hardware_addr,
        ..
    } = *reply
    else {
        return;
    };
    EthernetRepr {
        src_addr: mac,
        dst_addr: target_hardware_addr,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut ethernet);
    reply.emit(&mut ArpPacket::new_unchecked(ethernet.payload_mut()));
}
