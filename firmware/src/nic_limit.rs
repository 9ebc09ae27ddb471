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
//! | `tx <bytes> <size> pattern` | the same, each payload filled with file out's pattern (the running offset's bytes, by the same `Pattern::read_at`): the per-byte work file out does before the stack, the most file out could move through this NIC on this core |
//!
//! Host -> guest through QEMU's user-mode network is paced by how that network reads its
//! host sockets: one datagram per turn of QEMU's main loop for UDP, but all it can for TCP.
//! So the receive limit is taken with TCP too, with the least a receiver can do: TCP port
//! 7002 is a sink that accepts one connection at a time, acknowledges in-order data
//! (every 8 segments, and whenever the NIC has nothing more) with a 64 KiB window, drops
//! anything out of order (QEMU's network does not reorder), and answers the peer's FIN
//! with `<bytes> <micros from SYN to FIN> <times the NIC's receive side was full>\n` and
//! its own FIN. TCP port 7003 is the same sink hashing every byte with SHA-256 as file in
//! does: the most file in could move through this NIC on this core.
//!
//! Guest -> host is taken through TCP as well, so that QEMU's user-mode network does for
//! the reference what it does for file out (a TCP segment, an acknowledgement back for
//! each): TCP port 7001 is a bare source that, after `<bytes>\n` (file out's request),
//! sends that many bytes of file out's pattern in full segments as fast as the peer's
//! window and the NIC allow, checksummed (QEMU's network checks it; on the Stellaris by
//! the driver, a word at a time, as file out's segments are), with no retransmission
//! (that network loses nothing), then a FIN: the least a TCP sender can do per byte for
//! file out's stream.
//!
//! It answers ARP requests for its address, so that QEMU's user-mode network can reach
//! it, and ignores everything else. A data datagram's payload is left as the buffer holds
//! it: what is measured is the driver and the NIC, not a copy the stack would make.

use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use ringnet::services::{FileSource as _, Pattern};
use ringnet::smoltcp::phy::{Checksum, ChecksumCapabilities};
use ringnet::smoltcp::phy::{Device, RxToken as _, TxToken as _};
use ringnet::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber, UdpPacket,
};
use ringnet::Instant;
use sha2::{Digest as _, Sha256};

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
/// The TCP sink's port, and the hashing sink's.
const SINK_PORT: u16 = 7002;
const HASHING_SINK_PORT: u16 = 7003;
/// The sink's initial sequence number (one connection at a time: any will do).
const SINK_ISS: TcpSeqNumber = TcpSeqNumber(0x1000_0000);
/// The window the sink advertises, and the segment size it asks for.
const SINK_WINDOW: u16 = 65535;
const SINK_MSS: u16 = 1460;
/// In-order segments the sink takes before it must acknowledge.
const SINK_ACK_EVERY: u32 = 8;
/// The bare TCP source's port (file out's), and its initial sequence number.
const SOURCE_PORT: u16 = 7001;
const SOURCE_ISS: TcpSeqNumber = TcpSeqNumber(0x2000_0000);
/// The longest request line the source reads (`<decimal bytes>\n`).
const SOURCE_REQUEST: usize = 24;

/// Whether the driver computes the TCP checksums of what this mode sends, as it does
/// ringnet's: the Stellaris driver does, a word at a time (`Stellaris::fill_tcp`), so the
/// source's checksums cost what file out's do; the SmartFusion2's leaves them to smoltcp.
const DRIVER_FILLS_TCP: bool = cfg!(not(feature = "sf2"));

/// The checksums a segment's `emit` computes: the TCP one only if the driver does not.
fn tcp_checksums() -> ChecksumCapabilities {
    let mut caps = ChecksumCapabilities::default();
    if DRIVER_FILLS_TCP {
        caps.tcp = Checksum::Rx;
    }
    caps
}

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
    Transmit {
        peer: Peer,
        bytes: u64,
        size: usize,
        pattern: bool,
    },
    /// The sink answers: SYN-ACK, an ACK, or its report and FIN.
    Sink(TcpControl),
    /// The source answers a SYN with its SYN-ACK (its data goes out from the loop).
    SourceSynAck,
}

/// The bare TCP source's one connection.
struct Source {
    peer: Option<Peer>,
    /// The next byte expected from the peer.
    rcv_nxt: TcpSeqNumber,
    /// The oldest byte sent and not acknowledged, and the next to send.
    snd_una: TcpSeqNumber,
    snd_nxt: TcpSeqNumber,
    /// The peer's window, from its last segment.
    window: usize,
    request: heapless::Vec<u8, SOURCE_REQUEST>,
    /// The bytes asked for, once the request line came.
    total: Option<u64>,
    fin_sent: bool,
    /// Something came that the next segment must acknowledge.
    ack_owed: bool,
}

impl Source {
    fn new() -> Source {
        Source {
            peer: None,
            rcv_nxt: TcpSeqNumber(0),
            snd_una: SOURCE_ISS,
            snd_nxt: SOURCE_ISS,
            window: 0,
            request: heapless::Vec::new(),
            total: None,
            fin_sent: false,
            ack_owed: false,
        }
    }

    /// The sequence number just past the last data byte.
    fn data_end(&self, total: u64) -> TcpSeqNumber {
        SOURCE_ISS + 1 + total as usize
    }

    /// Takes a segment for the source's port; says what to answer at once.
    fn on_segment(&mut self, peer: Peer, segment: &TcpPacket<&[u8]>) -> Action {
        if segment.rst() {
            *self = Source::new();
            return Action::None;
        }
        if segment.syn() && !segment.ack() {
            *self = Source {
                peer: Some(peer),
                rcv_nxt: segment.seq_number() + 1,
                // The SYN-ACK takes one sequence number.
                snd_nxt: SOURCE_ISS + 1,
                window: usize::from(segment.window_len()),
                ..Source::new()
            };
            return Action::SourceSynAck;
        }
        if self.peer.is_none_or(|known| known.port != peer.port) {
            return Action::None;
        }
        if segment.ack() {
            let ack = segment.ack_number();
            if ack > self.snd_una && ack <= self.snd_nxt {
                self.snd_una = ack;
            }
            self.window = usize::from(segment.window_len());
        }
        let payload = segment.payload();
        if !payload.is_empty() && segment.seq_number() == self.rcv_nxt {
            self.rcv_nxt += payload.len();
            self.ack_owed = true;
            if self.total.is_none() {
                for &byte in payload {
                    if byte == b'\n' {
                        let text = core::str::from_utf8(&self.request).unwrap_or("");
                        self.total =
                            Some(text.trim().parse::<u64>().unwrap_or(0).min(MAX_TX_BYTES));
                        break;
                    }
                    if self.request.push(byte).is_err() {
                        self.total = Some(0);
                        break;
                    }
                }
            }
        }
        if segment.fin() && segment.seq_number() + payload.len() == self.rcv_nxt {
            self.rcv_nxt += 1;
            self.ack_owed = true;
        }
        Action::None
    }

    /// Sends what the peer's window allows (the data, then the FIN), or an owed ACK.
    /// Returns whether the NIC refused a frame with more left to send.
    fn pump(&mut self, nic: &mut Nic, mac: EthernetAddress, ip: Ipv4Address) -> bool {
        let (Some(peer), Some(total)) = (self.peer, self.total) else {
            return false;
        };
        let end = self.data_end(total);
        let pattern = Pattern(total);
        while self.snd_nxt < end {
            let in_flight = self.snd_nxt - self.snd_una;
            let len = usize::from(SINK_MSS).min(end - self.snd_nxt);
            if in_flight + len > self.window {
                break;
            }
            let Some(tx) = nic.transmit(clock::now()) else {
                return true;
            };
            let offset = (self.snd_nxt - (SOURCE_ISS + 1)) as u64;
            let (seq, ack) = (self.snd_nxt, self.rcv_nxt);
            tx.consume(14 + 20 + 20 + len, |buf| {
                let mut packet = ipv4_frame(buf, mac, ip, peer, IpProtocol::Tcp, 20 + len);
                let mut tcp = TcpPacket::new_unchecked(packet.payload_mut());
                segment_header(&mut tcp, peer.port, seq, ack);
                // `offset + len` is within the pattern's `total` bytes.
                let _ = pattern.read_at(offset, &mut tcp.payload_mut()[..len]);
                if !DRIVER_FILLS_TCP {
                    tcp.fill_checksum(&IpAddress::Ipv4(ip), &IpAddress::Ipv4(peer.ip));
                }
            });
            self.snd_nxt += len;
            self.ack_owed = false;
        }
        if self.snd_nxt == end && !self.fin_sent || self.ack_owed {
            let Some(tx) = nic.transmit(clock::now()) else {
                return true;
            };
            let fin = self.snd_nxt == end && !self.fin_sent;
            let (seq, ack) = (self.snd_nxt, self.rcv_nxt);
            tx.consume(14 + 20 + 20, |buf| {
                let mut packet = ipv4_frame(buf, mac, ip, peer, IpProtocol::Tcp, 20);
                let mut tcp = TcpPacket::new_unchecked(packet.payload_mut());
                segment_header(&mut tcp, peer.port, seq, ack);
                tcp.set_fin(fin);
                if !DRIVER_FILLS_TCP {
                    tcp.fill_checksum(&IpAddress::Ipv4(ip), &IpAddress::Ipv4(peer.ip));
                }
            });
            if fin {
                self.fin_sent = true;
                self.snd_nxt += 1;
            }
            self.ack_owed = false;
        }
        // Done once the FIN is acknowledged: the peer closes its side on its own.
        if self.fin_sent && self.snd_una == self.snd_nxt {
            fw_info!("nic limit: the source sent {} bytes", total);
            *self = Source::new();
        }
        false
    }
}

/// A bare segment's header from the source's port: ACK set, no options, a full window.
fn segment_header(tcp: &mut TcpPacket<&mut [u8]>, port: u16, seq: TcpSeqNumber, ack: TcpSeqNumber) {
    tcp.set_src_port(SOURCE_PORT);
    tcp.set_dst_port(port);
    tcp.set_seq_number(seq);
    tcp.set_ack_number(ack);
    tcp.set_header_len(20);
    tcp.clear_flags();
    tcp.set_ack(true);
    tcp.set_window_len(SINK_WINDOW);
    tcp.set_urgent_at(0);
}

/// The TCP sink's one connection.
struct Sink {
    peer: Option<Peer>,
    /// The port the connection came to; the hashing sink's hashes every byte.
    port: u16,
    hasher: Sha256,
    /// The next byte expected from the peer.
    rcv_nxt: TcpSeqNumber,
    /// The sink's next sequence number.
    snd_nxt: TcpSeqNumber,
    bytes: u64,
    start: Option<Instant>,
    /// In-order segments since the last acknowledgement.
    unacked: u32,
    /// The driver's count of full-receive-side events at the SYN.
    full_before: u32,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            peer: None,
            port: SINK_PORT,
            hasher: Sha256::new(),
            rcv_nxt: TcpSeqNumber(0),
            snd_nxt: SINK_ISS,
            bytes: 0,
            start: None,
            unacked: 0,
            full_before: 0,
        }
    }

    /// Takes a segment for the sink's port; says what to answer.
    fn on_segment(&mut self, peer: Peer, segment: &TcpPacket<&[u8]>) -> Action {
        let port = segment.dst_port();
        if segment.rst() {
            *self = Sink::new();
            return Action::None;
        }
        if segment.syn() && !segment.ack() {
            *self = Sink {
                peer: Some(peer),
                port,
                rcv_nxt: segment.seq_number() + 1,
                start: Some(clock::now()),
                ..Sink::new()
            };
            return Action::Sink(TcpControl::Syn);
        }
        if self.port != port || self.peer.is_none_or(|known| known.port != peer.port) {
            return Action::None;
        }
        let payload = segment.payload();
        if !payload.is_empty() {
            if segment.seq_number() != self.rcv_nxt {
                // Out of order or again: say what is expected.
                return Action::Sink(TcpControl::None);
            }
            self.rcv_nxt += payload.len();
            self.bytes += payload.len() as u64;
            if port == HASHING_SINK_PORT {
                self.hasher.update(payload);
            }
            self.unacked += 1;
        }
        if segment.fin() && segment.seq_number() + payload.len() == self.rcv_nxt {
            self.rcv_nxt += 1;
            return Action::Sink(TcpControl::Fin);
        }
        if self.unacked >= SINK_ACK_EVERY {
            return Action::Sink(TcpControl::None);
        }
        Action::None
    }
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
    fw_info!(
        "ready: NIC limit on {}, udp {}: D... counted, rx? answered, tx <bytes> <size> sent",
        board::name(),
        PORT
    );
    let mut count = RxCount::default();
    // The driver's count of full-receive-side events when counting started.
    let mut full_before = nic.rx_full_events();
    let mut sink = Sink::new();
    let mut source = Source::new();
    loop {
        while let Some((rx, tx)) = nic.receive(clock::now()) {
            match rx.consume(|frame| on_frame(frame, mac, ip, &mut count, &mut sink, &mut source)) {
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
                Action::Transmit {
                    peer,
                    bytes,
                    size,
                    pattern,
                } => {
                    transmit(nic, mac, ip, peer, bytes, size, pattern);
                }
                Action::Sink(control) => {
                    if control == TcpControl::Syn {
                        sink.full_before = nic.rx_full_events();
                    }
                    answer(nic, mac, ip, &mut sink, control);
                }
                Action::SourceSynAck => syn_ack(tx, mac, ip, &source),
            }
        }
        // What the peer's window allows now.
        let blocked = source.pump(nic, mac, ip);
        // Nothing more to read: acknowledge what came.
        if sink.unacked > 0 {
            answer(nic, mac, ip, &mut sink, TcpControl::None);
        }
        board::RX_PENDING.store(false, Ordering::Release);
        nic.listen();
        if !nic.rx_waiting() && !blocked {
            crate::idle();
        }
    }
}

/// The source's SYN-ACK, with the segment size it sends.
fn syn_ack<T: ringnet::smoltcp::phy::TxToken>(
    tx: T,
    mac: EthernetAddress,
    ip: Ipv4Address,
    source: &Source,
) {
    let Some(peer) = source.peer else {
        return;
    };
    let segment = TcpRepr {
        src_port: SOURCE_PORT,
        dst_port: peer.port,
        control: TcpControl::Syn,
        seq_number: SOURCE_ISS,
        ack_number: Some(source.rcv_nxt),
        window_len: SINK_WINDOW,
        window_scale: None,
        max_seg_size: Some(SINK_MSS),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let tcp_len = segment.buffer_len();
    tx.consume(14 + 20 + tcp_len, |buf| {
        let mut packet = ipv4_frame(buf, mac, ip, peer, IpProtocol::Tcp, tcp_len);
        segment.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(ip),
            &IpAddress::Ipv4(peer.ip),
            &tcp_checksums(),
        );
    });
}

/// Reads one frame: counts data, and says what else it asks for.
fn on_frame(
    frame: &[u8],
    mac: EthernetAddress,
    ip: Ipv4Address,
    count: &mut RxCount,
    sink: &mut Sink,
    source: &mut Source,
) -> Action {
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
            if packet.dst_addr() != ip {
                return Action::None;
            }
            if packet.next_header() == IpProtocol::Tcp {
                let Ok(segment) = TcpPacket::new_checked(packet.payload()) else {
                    return Action::None;
                };
                let peer = Peer {
                    mac: ethernet.src_addr(),
                    ip: packet.src_addr(),
                    port: segment.src_port(),
                };
                return match segment.dst_port() {
                    SOURCE_PORT => source.on_segment(peer, &segment),
                    SINK_PORT | HASHING_SINK_PORT => sink.on_segment(peer, &segment),
                    _ => Action::None,
                };
            }
            if packet.next_header() != IpProtocol::Udp {
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

/// `rx?` or `tx <bytes> <size> [pattern]`; anything else is ignored.
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
            let pattern = match words.next() {
                None => false,
                Some("pattern") => true,
                Some(_) => {
                    fw_warn!("nic limit: a tx command ends after <size>, or with `pattern`");
                    return Action::None;
                }
            };
            match (bytes, size) {
                (Some(bytes), Some(size)) if (1..=MAX_PAYLOAD).contains(&size) => {
                    Action::Transmit {
                        peer,
                        bytes: bytes.min(MAX_TX_BYTES),
                        size,
                        pattern,
                    }
                }
                _ => {
                    fw_warn!(
                        "nic limit: a tx command needs <bytes> and a <size> of 1 to {}",
                        MAX_PAYLOAD
                    );
                    Action::None
                }
            }
        }
        _ => Action::None,
    }
}

/// Sends `bytes` in datagrams of `size` to `peer` as fast as the NIC takes them (with
/// `pattern`, each payload written as file out writes its pattern), then the figures.
fn transmit(
    nic: &mut Nic,
    mac: EthernetAddress,
    ip: Ipv4Address,
    peer: Peer,
    bytes: u64,
    size: usize,
    pattern: bool,
) {
    let source = Pattern(bytes);
    let start = clock::now();
    let mut sent = 0u64;
    let mut frames = 0u32;
    while sent < bytes {
        let len = size.min((bytes - sent) as usize);
        let Some(tx) = nic.transmit(clock::now()) else {
            continue;
        };
        send_datagram(tx, mac, ip, peer, len, |payload| {
            if pattern {
                // The pattern has `bytes` bytes, and `sent + len` is within them.
                let _ = source.read_at(sent, payload);
            } else {
                payload[0] = b'D';
            }
        });
        sent += len as u64;
        frames += 1;
    }
    let micros = (clock::now() - start).total_micros();
    let mut text = heapless::String::<96>::new();
    let _ = write!(text, "tx {frames} {sent} {micros}");
    send_text(nic, mac, ip, peer, &text);
    fw_info!(
        "nic limit: sent {} frames, {} bytes in {} us",
        frames,
        sent,
        micros
    );
}

/// The sink's answer: a SYN-ACK, an ACK, or (`Fin`) its report and FIN; waits until the
/// NIC takes it.
fn answer(
    nic: &mut Nic,
    mac: EthernetAddress,
    ip: Ipv4Address,
    sink: &mut Sink,
    control: TcpControl,
) {
    let Some(peer) = sink.peer else {
        return;
    };
    let mut text = heapless::String::<128>::new();
    if control == TcpControl::Fin {
        let micros = sink
            .start
            .map_or(0, |start| (clock::now() - start).total_micros());
        let full = nic.rx_full_events().wrapping_sub(sink.full_before);
        let _ = write!(text, "{} {micros} {full}", sink.bytes);
        if sink.port == HASHING_SINK_PORT {
            let digest: ringnet::digest::Digest =
                core::mem::take(&mut sink.hasher).finalize().into();
            let _ = write!(text, " {}", ringnet::digest::DigestHex(&digest));
        }
        let _ = writeln!(text);
    }
    let (seq, syn) = if control == TcpControl::Syn {
        (SINK_ISS, true)
    } else {
        (sink.snd_nxt, false)
    };
    let segment = TcpRepr {
        src_port: sink.port,
        dst_port: peer.port,
        control,
        seq_number: seq,
        ack_number: Some(sink.rcv_nxt),
        window_len: SINK_WINDOW,
        window_scale: None,
        max_seg_size: syn.then_some(SINK_MSS),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: text.as_bytes(),
    };
    let tcp_len = segment.buffer_len();
    loop {
        let Some(tx) = nic.transmit(clock::now()) else {
            continue;
        };
        tx.consume(14 + 20 + tcp_len, |buf| {
            let mut packet = ipv4_frame(buf, mac, ip, peer, IpProtocol::Tcp, tcp_len);
            segment.emit(
                &mut TcpPacket::new_unchecked(packet.payload_mut()),
                &IpAddress::Ipv4(ip),
                &IpAddress::Ipv4(peer.ip),
                &tcp_checksums(),
            );
        });
        break;
    }
    sink.unacked = 0;
    match control {
        TcpControl::Syn => sink.snd_nxt = SINK_ISS + 1,
        TcpControl::Fin => {
            fw_info!("nic limit: the sink took {} bytes", sink.bytes);
            *sink = Sink::new();
        }
        _ => {}
    }
}

/// Writes the Ethernet and IPv4 headers of a frame to `peer` into `buf`; returns the IPv4
/// packet, whose `payload_len` bytes of payload are the caller's to write.
fn ipv4_frame(
    buf: &mut [u8],
    mac: EthernetAddress,
    ip: Ipv4Address,
    peer: Peer,
    protocol: IpProtocol,
    payload_len: usize,
) -> Ipv4Packet<&mut [u8]> {
    EthernetRepr {
        src_addr: mac,
        dst_addr: peer.mac,
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut *buf));
    let mut packet = Ipv4Packet::new_unchecked(&mut buf[14..]);
    Ipv4Repr {
        src_addr: ip,
        dst_addr: peer.ip,
        next_header: protocol,
        payload_len,
        hop_limit: 64,
    }
    .emit(&mut packet, &ChecksumCapabilities::default());
    packet
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
        let mut packet = ipv4_frame(buf, mac, ip, peer, IpProtocol::Udp, 8 + len);
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
