//! Attacks at the TCP/IP segment level, on the simulated wire: a hostile host that exists
//! only as the frames this test writes (`Wire::inject` from port A, whose stack is never
//! polled, so that port A also sniffs every frame B sends). It makes its connections by
//! hand and then sends what no kind peer does: overlapping retransmissions with other
//! bytes, 1-byte holes past the assembler, malformed headers, segments meant to make B
//! answer again and again. What B's services read, what B sends back and what B counts
//! are each checked against what was sent.

use std::collections::BTreeMap;

use ringnet::phy::Discards;
use ringnet::services::{Echo, ECHO_PORT};
use ringnet::sim::Faults;
use ringnet::smoltcp::phy::ChecksumCapabilities;
use ringnet::smoltcp::wire::{
    ArpOperation, EthernetAddress, IpProtocol, Ipv4Packet, TcpControl, TcpPacket, TcpRepr,
};
use ringnet::{Duration, Ipv4Address, SocketHandle, Stack};
use ringnet_testkit::*;

/// The hostile host: no stack answers for it; it announces itself by ARP.
const HOSTILE: Ipv4Address = Ipv4Address::new(10, 0, 0, 66);
const HOSTILE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x66]);

/// Offsets in a frame: the IPv4 header, and the TCP header behind a 20-byte one.
const IP: usize = 14;
const TCP: usize = 14 + 20;

/// TCP flag bits (byte 13 of the header).
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// A TCP segment B sent to the hostile host, as the sniffer read it.
#[derive(Debug, Clone)]
struct Seg {
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    window_scale: Option<u8>,
    payload: Vec<u8>,
}

/// Every TCP segment from B to the hostile host waiting at port A (ARP and anything else
/// left out), in the order sent.
fn from_b(w: &World<2>) -> Vec<Seg> {
    use ringnet::smoltcp::phy::{Device, RxToken};
    use ringnet::smoltcp::wire::EthernetFrame;
    let mut segs = Vec::new();
    let mut sniffer = w.wire.port(A);
    while let Some((rx, _)) = sniffer.receive(w.wire.now()) {
        rx.consume(|frame| {
            let Ok(eth) = EthernetFrame::new_checked(frame) else {
                return;
            };
            let Ok(ip4) = Ipv4Packet::new_checked(eth.payload()) else {
                return;
            };
            if ip4.src_addr() != ip(B) || ip4.dst_addr() != HOSTILE {
                return;
            }
            assert_eq!(ip4.next_header(), IpProtocol::Tcp, "B sends only TCP");
            let tcp = TcpPacket::new_checked(ip4.payload()).expect("B's header is whole");
            let repr = TcpRepr::parse(
                &tcp,
                &ip(B).into(),
                &HOSTILE.into(),
                &ChecksumCapabilities::default(),
            )
            .expect("B's segment parses, its checksum right");
            segs.push(Seg {
                seq: tcp.seq_number().0 as u32,
                ack: tcp.ack().then(|| tcp.ack_number().0 as u32),
                flags: ip4.payload()[13],
                window_scale: repr.window_scale,
                payload: tcp.payload().to_vec(),
            });
        });
    }
    segs
}

/// The bytes B sent in `segs` from sequence number `start` on, each placed by its number:
/// a byte sent again (a retransmission) must be the byte sent first, and no byte may be
/// missing between `start` and the last.
fn stream(segs: &[Seg], start: u32) -> Vec<u8> {
    let mut bytes = BTreeMap::new();
    for seg in segs {
        for (i, &byte) in seg.payload.iter().enumerate() {
            let at = seg.seq.wrapping_add(i as u32).wrapping_sub(start);
            if let Some(first) = bytes.insert(at, byte) {
                assert_eq!(first, byte, "B sent byte {at} twice, differently");
            }
        }
    }
    let got: Vec<u8> = bytes.values().copied().collect();
    assert_eq!(
        bytes.keys().last().map_or(0, |&k| k as usize + 1),
        got.len(),
        "a hole in what B sent"
    );
    got
}

/// Polls B alone for `ms` milliseconds, 1 ms at a time, `service` after each poll.
fn run_b(w: &mut World<2>, ms: u64, mut service: impl FnMut(&mut Stack<'static>)) {
    let until = w.wire.now() + Duration::from_millis(ms);
    while w.wire.now() < until {
        w.stacks[B].poll(w.wire.now(), &mut w.wire.port(B));
        service(&mut w.stacks[B]);
        w.wire.advance_to(w.wire.now() + Duration::from_millis(1));
    }
}

/// Puts `frame` on the wire from the hostile host.
fn inject(w: &World<2>, frame: &[u8]) {
    w.wire.inject(A, frame).expect("the wire takes the frame");
}

/// The hostile host's ARP request for B, which fills B's neighbour cache with it.
fn announce(w: &World<2>) {
    inject(
        w,
        &arp_frame(
            ArpOperation::Request,
            (HOSTILE_MAC, HOSTILE),
            (EthernetAddress([0; 6]), ip(B)),
            EthernetAddress::BROADCAST,
        ),
    );
}

/// A SYN from the hostile host's port `from` to B's `to`.
fn syn(from: u16, to: u16, iss: u32) -> Vec<u8> {
    tcp_syn(HOSTILE_MAC, (HOSTILE, from), mac(B), (ip(B), to), iss)
}

/// Computes the TCP checksum of `frame` again, over the segment its IPv4 header's
/// lengths say.
fn fix_tcp_checksum(frame: &mut [u8]) {
    let header = usize::from(frame[IP] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]));
    let src = Ipv4Address::from_octets(frame[IP + 12..IP + 16].try_into().unwrap());
    let dst = Ipv4Address::from_octets(frame[IP + 16..IP + 20].try_into().unwrap());
    TcpPacket::new_unchecked(&mut frame[IP + header..IP + total])
        .fill_checksum(&src.into(), &dst.into());
}

/// Computes the IPv4 header checksum of `frame` again.
fn fix_ip_checksum(frame: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut frame[IP..]).fill_checksum();
}

/// A SYN whose TCP header carries `options` (a multiple of 4 bytes) and nothing else.
fn syn_with_options(from: u16, to: u16, iss: u32, options: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let mut frame = tcp_segment(
        HOSTILE_MAC,
        (HOSTILE, from),
        mac(B),
        (ip(B), to),
        iss,
        None,
        TcpControl::Syn,
        options,
    );
    frame[TCP + 12] = ((5 + options.len() / 4) as u8) << 4;
    fix_tcp_checksum(&mut frame);
    frame
}

/// Sets the window field of the TCP segment in `frame` (behind a 20-byte IPv4 header).
fn set_window(frame: &mut [u8], window: u16) {
    frame[TCP + 14..TCP + 16].copy_from_slice(&window.to_be_bytes());
    fix_tcp_checksum(frame);
}

/// A connection the hostile host made by hand.
#[derive(Debug, Clone, Copy)]
struct Hostile {
    /// Its port, and B's.
    from: u16,
    to: u16,
    /// The sequence number of its first byte.
    start: u32,
    /// B's first byte's.
    b_start: u32,
    /// The window field of every segment it sends.
    window: u16,
    /// The window scale B's SYN-ACK offered.
    b_scale: Option<u8>,
}

impl Hostile {
    /// Makes a connection from `from` to B's port `to`: SYN, B's SYN-ACK, ACK.
    fn connect(
        w: &mut World<2>,
        from: u16,
        to: u16,
        mut service: impl FnMut(&mut Stack<'static>),
    ) -> Hostile {
        Hostile::connect_with(w, syn(from, to, 5000), from, to, &mut service)
    }

    /// [`Hostile::connect`] with `syn` as its SYN (sequence number 5000).
    fn connect_with(
        w: &mut World<2>,
        syn: Vec<u8>,
        from: u16,
        to: u16,
        mut service: impl FnMut(&mut Stack<'static>),
    ) -> Hostile {
        announce(w);
        inject(w, &syn);
        run_b(w, 5, &mut service);
        let answers = from_b(w);
        let syn_ack = answers
            .iter()
            .find(|s| s.flags & (SYN | ACK) == SYN | ACK)
            .unwrap_or_else(|| panic!("no SYN-ACK: {answers:?}"));
        assert_eq!(syn_ack.ack, Some(5001));
        let peer = Hostile {
            from,
            to,
            start: 5001,
            b_start: syn_ack.seq.wrapping_add(1),
            window: 1024,
            b_scale: syn_ack.window_scale,
        };
        inject(w, &peer.data(0, b"", 0));
        run_b(w, 5, &mut service);
        peer
    }

    /// A segment of `payload` at `offset` past its first byte, acknowledging `b_acked`
    /// bytes of B's.
    fn data(&self, offset: u32, payload: &[u8], b_acked: u32) -> Vec<u8> {
        self.segment(
            self.start.wrapping_add(offset),
            Some(self.b_start.wrapping_add(b_acked)),
            TcpControl::Psh,
            payload,
        )
    }

    /// A segment of this connection's four-tuple as it is given.
    fn segment(&self, seq: u32, ack: Option<u32>, control: TcpControl, payload: &[u8]) -> Vec<u8> {
        let control = if payload.is_empty() && control == TcpControl::Psh {
            TcpControl::None
        } else {
            control
        };
        let mut frame = tcp_segment(
            HOSTILE_MAC,
            (HOSTILE, self.from),
            mac(B),
            (ip(B), self.to),
            seq,
            ack,
            control,
            payload,
        );
        if self.window != 1024 {
            set_window(&mut frame, self.window);
        }
        frame
    }
}

/// Polls B alone for `ms` milliseconds while the hostile host acknowledges every byte B
/// sends within 5 ms, as a reader does (echo's small answers wait for it, by Nagle's
/// rule), from its sequence number `sent` past its first byte. Returns what B sent.
fn run_acking(
    w: &mut World<2>,
    peer: &Hostile,
    sent: u32,
    ms: u64,
    mut service: impl FnMut(&mut Stack<'static>),
) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut acked = peer.b_start;
    for _ in 0..ms.div_ceil(5) {
        run_b(w, 5, &mut service);
        let new = from_b(w);
        let end = new
            .iter()
            .map(|s| s.seq.wrapping_add(s.payload.len() as u32))
            .filter(|&end| end.wrapping_sub(acked) as i32 > 0)
            .max_by_key(|&end| end.wrapping_sub(acked));
        segs.extend(new);
        if let Some(end) = end {
            acked = end;
            let ack = end.wrapping_sub(peer.b_start);
            inject(w, &peer.data(sent, b"", ack));
        }
    }
    segs
}

/// Echo on B with `backlog` sockets of 1 KiB rings (their handles and the service).
fn echo_on_b(w: &mut World<2>, backlog: usize) -> (Vec<SocketHandle>, Echo) {
    let sockets: Vec<_> = (0..backlog)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    let echo = Echo::new(&mut w.stacks[B], ECHO_PORT, &sockets).unwrap();
    (sockets, echo)
}

/// `n` bytes of a pattern named by `tag`: copies with different tags differ in every byte.
fn pattern(tag: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| tag.wrapping_add((i % 61) as u8)).collect()
}

#[test]
fn overlapping_retransmissions_with_other_bytes_give_one_stream_earliest_in_order_copy_wins() {
    // A peer that sends [0,100) and then [50,150) with other bytes at 50..100, and the
    // out-of-order variants. smoltcp keeps a byte once it is in order (a later copy is
    // trimmed to the window, which starts past it), while bytes still waiting in the
    // assembler behind a hole are written over by each later copy that covers them: the
    // last copy before the hole fills wins. (Linux keeps the first copy in its
    // out-of-order queue where a later one is covered by it.) Either way the service
    // reads one stream of 150 bytes, none twice, none lost.
    let x = pattern(b'a', 150);
    let y = pattern(b'A', 150);
    let z = pattern(b'0', 150);
    type Case<'a> = (&'a str, Vec<(u32, &'a [u8])>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            "[0,100) then [50,150): the first copy, in order, wins at 50..100",
            vec![(0, &x[..100]), (50, &y[50..150])],
            [&x[..100], &y[100..150]].concat(),
        ),
        (
            "[50,150) then [0,100): the copy that fills the hole writes over 50..100",
            vec![(50, &y[50..150]), (0, &x[..100])],
            [&x[..100], &y[100..150]].concat(),
        ),
        (
            "[50,150), then [60,80) inside it, then [0,50): the later copy wins at 60..80",
            vec![(50, &y[50..150]), (60, &z[60..80]), (0, &x[..50])],
            [&x[..50], &y[50..60], &z[60..80], &y[80..150]].concat(),
        ),
        (
            "[0,50), then [100,150), then [25,125) across both and the hole",
            vec![(0, &x[..50]), (100, &y[100..150]), (25, &z[25..125])],
            [&x[..50], &z[50..125], &y[125..150]].concat(),
        ),
    ];
    for (n, (name, segments, expected)) in cases.into_iter().enumerate() {
        let mut w = pair(Faults::NONE, 300 + n as u64);
        let (_, mut echo) = echo_on_b(&mut w, 1);
        let peer = Hostile::connect(&mut w, 40_000, ECHO_PORT, |b| echo.poll(b));
        for (offset, payload) in segments {
            inject(&w, &peer.data(offset, payload, 0));
            run_b(&mut w, 2, |b| echo.poll(b));
        }
        let segs = run_acking(&mut w, &peer, 150, 200, |b| echo.poll(b));
        let echoed = stream(&segs, peer.b_start);
        assert_eq!(echoed, expected, "{name}");
        assert_eq!(
            segs.last().and_then(|s| s.ack),
            Some(peer.start + 150),
            "{name}: B acknowledges the 150 bytes, no more"
        );
        assert_eq!(w.stacks[B].discards(), Discards::default(), "{name}");
    }
}

#[test]
fn one_byte_holes_past_the_assembler_are_dropped_unanswered_and_the_stream_completes() {
    // smoltcp's assembler keeps 4 runs of out-of-order bytes (its fixed
    // `ASSEMBLER_MAX_SEGMENT_COUNT`), nothing grows: a segment that would need a fifth is
    // dropped, unanswered and uncounted, and its sender's retransmission brings it again.
    // The hostile peer sends every odd byte of 400 alone, then every even one, then the
    // whole 400 again as a retransmission would.
    let data = pattern(b'k', 400);
    let mut w = pair(Faults::NONE, 310);
    let (sockets, mut echo) = echo_on_b(&mut w, 1);
    let peer = Hostile::connect(&mut w, 40_001, ECHO_PORT, |b| echo.poll(b));
    for at in (1..400u32).step_by(2) {
        inject(&w, &peer.data(at, &data[at as usize..at as usize + 1], 0));
        run_b(&mut w, 1, |b| echo.poll(b));
    }
    let answers = from_b(&w);
    assert_eq!(
        answers.len(),
        4,
        "an immediate ACK for each of the 4 runs kept, nothing for the 196 dropped: {answers:?}"
    );
    assert!(answers.iter().all(|s| s.ack == Some(peer.start)));
    // The even bytes: each of 0, 2, 4, 6 joins the runs kept; 8 is in order, and the
    // rest are kept or dropped as room in the assembler allows.
    for at in (0..400u32).step_by(2) {
        inject(&w, &peer.data(at, &data[at as usize..at as usize + 1], 0));
        run_b(&mut w, 1, |b| echo.poll(b));
    }
    let segs = run_acking(&mut w, &peer, 400, 50, |b| echo.poll(b));
    let in_order = segs.iter().filter_map(|s| s.ack).max().unwrap() - peer.start;
    // 1, 3, 5 and 7 were kept, so 0..9 is in order once 8 comes; 9 was dropped, and of
    // the even bytes past it 10, 12, 14 and 16 are kept and the rest dropped.
    assert_eq!(in_order, 9, "bytes in order before the retransmission");
    assert_eq!(stream(&segs, peer.b_start), data[..in_order as usize]);
    // The retransmission fills every hole.
    inject(&w, &peer.data(0, &data, in_order));
    let after = run_acking(&mut w, &peer, 400, 200, |b| echo.poll(b));
    let all: Vec<Seg> = segs.into_iter().chain(after.iter().cloned()).collect();
    assert_eq!(
        stream(&all, peer.b_start),
        data,
        "echo answers the 400 bytes"
    );
    assert_eq!(
        after.iter().filter_map(|s| s.ack).max(),
        Some(peer.start + 400)
    );
    let stats = w.stacks[B].stats(sockets[0]).unwrap();
    assert_eq!(stats.bytes_in, 400, "echo read each byte once");
    assert!(stats.rx_high_water <= 1024, "{stats:?}");
    assert_eq!(stats.rx_drops, 0);
    assert_eq!(w.stacks[B].discards(), Discards::default());
}

/// What B did with one frame: the segments it sent back within 20 ms, and what it
/// discarded.
fn answer_to(w: &mut World<2>, echo: &mut Echo, frame: &[u8]) -> (Vec<Seg>, Discards) {
    let before = w.stacks[B].discards();
    inject(w, frame);
    run_b(w, 20, |b| echo.poll(b));
    let after = w.stacks[B].discards();
    let mut diff = Discards::default();
    for reason in ringnet::phy::Discard::ALL {
        for _ in before.get(reason)..after.get(reason) {
            diff.count(reason);
        }
    }
    (from_b(w), diff)
}

/// One discard of `reason`, nothing else.
fn one(reason: ringnet::phy::Discard) -> Discards {
    let mut d = Discards::default();
    d.count(reason);
    d
}

#[test]
fn malformed_tcp_and_ip_headers_are_discarded_counted_and_take_no_socket() {
    // Each of these frames is one smoltcp refuses (its `Ipv4Packet`/`TcpPacket`
    // `check_len` or `TcpRepr::parse`) or one the interface refuses before it. smoltcp
    // drops a TCP header it cannot parse without a word; the interface must count it
    // (`malformed`, Linux's `TcpInErrs`/`InHdrErrors`) and withhold it, as it does a bad
    // IPv4 header, and never as a drop, never answered, never taking a backlog socket.
    use ringnet::phy::Discard::{BadChecksum, Malformed};
    let mut w = pair(Faults::NONE, 320);
    let (sockets, mut echo) = echo_on_b(&mut w, 2);
    announce(&w);
    let mut port = 41_000;
    let mut next = || {
        port += 1;
        port
    };
    let mut cases: Vec<(&str, Vec<u8>, ringnet::phy::Discard)> = Vec::new();
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[TCP + 12] = 4 << 4;
    fix_tcp_checksum(&mut frame);
    cases.push(("data offset 4 (< 5)", frame, Malformed));
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[TCP + 12] = 15 << 4;
    fix_tcp_checksum(&mut frame);
    cases.push(("data offset 15, past the segment's end", frame, Malformed));
    for (name, options) in [
        ("an option of length 0", [0x22, 0, 1, 1]),
        ("an option of length 1", [0x22, 1, 1, 1]),
        ("an MSS option past the header", [1, 1, 2, 4]),
        ("a window scale option of length 4", [3, 4, 7, 1]),
    ] {
        cases.push((
            name,
            syn_with_options(next(), ECHO_PORT, 1, &options),
            Malformed,
        ));
    }
    for (name, flag) in [("SYN+FIN", FIN), ("SYN+RST", RST)] {
        let mut frame = syn(next(), ECHO_PORT, 1);
        frame[TCP + 13] |= flag;
        fix_tcp_checksum(&mut frame);
        cases.push((name, frame, Malformed));
    }
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[TCP + 2..TCP + 4].copy_from_slice(&[0, 0]);
    fix_tcp_checksum(&mut frame);
    cases.push(("destination port 0", frame, Malformed));
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[IP + 2..IP + 4].copy_from_slice(&(20u16 + 12).to_be_bytes());
    fix_ip_checksum(&mut frame);
    cases.push((
        "an IP total length that cuts the TCP header",
        frame,
        Malformed,
    ));
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[IP] = 0x44;
    fix_ip_checksum(&mut frame);
    cases.push(("IP header length 4 (< 5)", frame, Malformed));
    let mut frame = syn(next(), ECHO_PORT, 1);
    let total = u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]);
    frame[IP + 2..IP + 4].copy_from_slice(&(total + 10).to_be_bytes());
    fix_ip_checksum(&mut frame);
    cases.push(("an IP total length past the frame", frame, Malformed));
    let mut frame = syn(next(), ECHO_PORT, 1);
    frame[IP + 10] ^= 0x01;
    cases.push(("a bad IP header checksum", frame, BadChecksum));

    for (name, frame, reason) in &cases {
        let (answers, discarded) = answer_to(&mut w, &mut echo, frame);
        assert!(answers.is_empty(), "{name}: B answered {answers:?}");
        assert_eq!(discarded, one(*reason), "{name}");
        let taken = sockets
            .iter()
            .filter(|&&s| w.stacks[B].peer_addr(s).is_ok())
            .count();
        assert_eq!(taken, 0, "{name}: a backlog socket taken");
    }
    assert_eq!(port_total(&w.stacks[B], ECHO_PORT, |s| s.rx_drops), 0);
    // Both sockets still listen: a good SYN is answered.
    let (answers, discarded) = answer_to(&mut w, &mut echo, &syn(next(), ECHO_PORT, 1));
    assert!(answers.iter().any(|s| s.flags == SYN | ACK), "{answers:?}");
    assert_eq!(discarded, Discards::default());
}

#[test]
fn a_syn_fin_or_syn_rst_on_a_connections_four_tuple_is_malformed_not_a_duplicate_syn() {
    // The inspector holds every bare SYN back to look whether a connection holds its
    // four-tuple (a duplicate SYN), and read SYN+FIN and SYN+RST as SYNs: on the
    // connection's own four-tuple they were counted `duplicate_syn` (and the second,
    // turned into a challenge, still refused by smoltcp), though smoltcp refuses both
    // flags together as it parses. They are malformed, as Linux drops a SYN with FIN or
    // RST in LISTEN and SYN-RECEIVED alike.
    use ringnet::phy::Discard::Malformed;
    let mut w = pair(Faults::NONE, 321);
    let (sockets, mut echo) = echo_on_b(&mut w, 2);
    let peer = Hostile::connect(&mut w, 42_000, ECHO_PORT, |b| echo.poll(b));
    inject(&w, &peer.data(0, b"alive", 0));
    run_b(&mut w, 20, |b| echo.poll(b));
    assert_eq!(stream(&from_b(&w), peer.b_start), b"alive");
    for flag in [FIN, RST, FIN | RST] {
        let mut frame = syn(peer.from, ECHO_PORT, 5000);
        frame[TCP + 13] |= flag;
        fix_tcp_checksum(&mut frame);
        let (answers, discarded) = answer_to(&mut w, &mut echo, &frame);
        assert!(answers.is_empty(), "flags {flag:#x}: {answers:?}");
        assert_eq!(discarded, one(Malformed), "flags {flag:#x}");
    }
    inject(&w, &peer.data(5, b" still", 5));
    run_b(&mut w, 20, |b| echo.poll(b));
    let echoed: Vec<u8> = from_b(&w).into_iter().flat_map(|s| s.payload).collect();
    assert_eq!(echoed, b" still", "the connection goes on");
    let connected = sockets
        .iter()
        .filter(|&&s| w.stacks[B].peer_addr(s).is_ok())
        .count();
    assert_eq!(connected, 1);
}

#[test]
fn odd_but_valid_headers_are_served_as_rfc_and_linux_do() {
    // MSS 0, a window scale over 14, IP options, TTL 0: nothing to refuse. smoltcp takes
    // MSS 0 as no MSS at all (536, RFC 9293's default; Linux ignores it too), a shift
    // over 14 as 14 (RFC 7323 2.3, as Linux), ignores IP options (Linux processes NOP
    // and EOL and goes on) and every TTL (a host that does not forward never looks).
    let mut w = pair(Faults::NONE, 322);
    let (_, mut echo) = echo_on_b(&mut w, 4);

    // MSS 0: B sends by 536 bytes.
    let peer = Hostile::connect_with(
        &mut w,
        syn_with_options(43_000, ECHO_PORT, 5000, &[2, 4, 0, 0]),
        43_000,
        ECHO_PORT,
        |b| echo.poll(b),
    );
    let data = pattern(b'm', 1000);
    inject(&w, &peer.data(0, &data[..500], 0));
    inject(&w, &peer.data(500, &data[500..], 0));
    let segs = run_acking(&mut w, &peer, 1000, 50, |b| echo.poll(b));
    assert_eq!(stream(&segs, peer.b_start), data);
    let largest = segs.iter().map(|s| s.payload.len()).max();
    assert_eq!(largest, Some(536), "segments of the default MSS");

    // Window scale 200: taken as 14, so a window field of 1 is 16 KiB, and echo's 600
    // bytes leave at once (with the shift the SYN's 200 says, or none, 1 byte would).
    let frame = syn_with_options(43_001, ECHO_PORT, 5000, &[1, 3, 3, 200]);
    let peer = Hostile {
        window: 1,
        ..Hostile::connect_with(&mut w, frame, 43_001, ECHO_PORT, |b| echo.poll(b))
    };
    assert!(peer.b_scale.is_some(), "B offers its own scale");
    inject(&w, &peer.data(0, &data[..600], 0));
    let segs = run_acking(&mut w, &peer, 600, 30, |b| echo.poll(b));
    assert_eq!(stream(&segs, peer.b_start), data[..600], "{segs:?}");
    let largest = segs.iter().map(|s| s.payload.len()).max();
    assert_eq!(
        largest,
        Some(536),
        "full segments of the default MSS (the SYN offered none), in a window field of 1"
    );

    // IP options (NOP, NOP, NOP, EOL): the SYN is answered.
    let mut frame = syn(43_002, ECHO_PORT, 5000);
    frame.splice(TCP..TCP, [1, 1, 1, 0]);
    frame[IP] = 0x46;
    let total = u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]) + 4;
    frame[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut frame);
    let (answers, discarded) = answer_to(&mut w, &mut echo, &frame);
    assert!(
        answers
            .iter()
            .any(|s| s.flags == SYN | ACK && s.ack == Some(5001)),
        "IP options: {answers:?}"
    );
    assert_eq!(discarded, Discards::default());

    // TTL 0: answered too.
    let mut frame = syn(43_003, ECHO_PORT, 5000);
    frame[IP + 8] = 0;
    fix_ip_checksum(&mut frame);
    let (answers, discarded) = answer_to(&mut w, &mut echo, &frame);
    assert!(
        answers.iter().any(|s| s.flags == SYN | ACK),
        "TTL 0: {answers:?}"
    );
    assert_eq!(discarded, Discards::default());
    let window_scale = answers.iter().find_map(|s| s.window_scale);
    assert_eq!(window_scale, None, "no scale offered, none answered");
}

/// The TCP segments B sends in 500 ms after `frames` arrive at once.
fn answers_to_burst(w: &mut World<2>, frames: &[Vec<u8>]) -> Vec<Seg> {
    for frame in frames {
        inject(w, frame);
    }
    run_b(w, 500, |_| {});
    from_b(w)
}

#[test]
fn one_spoofed_segment_gets_at_most_one_answer_and_challenge_acks_one_a_second() {
    // Amplification: B must never send more than one frame for one segment. smoltcp 0.14
    // answers a segment out of the window, or acknowledging what was never sent, with a
    // challenge ACK at most once a second (RFC 5961 7); a data segment out of the window
    // is exempt (its ACK may have been lost), one ACK each: a reflection at the sender's
    // own rate, never more frames than it sent (Linux bounds these too, at 2 a second:
    // `tcp_invalid_ratelimit`, 500 ms). A segment to a closed port gets one RST; a RST
    // none.
    let mut w = pair(Faults::NONE, 330);
    let backlog = tcp_socket(&mut w.stacks[B], 1024, 1024);
    let listener = w.stacks[B].listen(9000, &[backlog]).unwrap();
    let peer = Hostile::connect(&mut w, 44_000, 9000, |_| {});
    let (conn, _) = w.stacks[B].accept(listener).expect("connected");
    let far = peer.start.wrapping_add(1 << 30);

    // One bare ACK out of the window: one challenge ACK, at B's next number.
    let one = answers_to_burst(
        &mut w,
        &[peer.segment(far, Some(peer.b_start), TcpControl::None, b"")],
    );
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].ack, Some(peer.start));
    // A hundred more within the second: none.
    let burst: Vec<_> = (0..100)
        .map(|i| peer.segment(far + i, Some(peer.b_start), TcpControl::None, b""))
        .collect();
    assert_eq!(answers_to_burst(&mut w, &burst).len(), 0);
    // A hundred acknowledging bytes never sent, a second on: one.
    run_b(&mut w, 600, |_| {});
    let never_sent: Vec<_> = (0..100)
        .map(|i| {
            peer.segment(
                peer.start,
                Some(peer.b_start + 1000 + i),
                TcpControl::None,
                b"",
            )
        })
        .collect();
    assert_eq!(answers_to_burst(&mut w, &never_sent).len(), 1);
    // A hundred data segments out of the window: one ACK each, no more.
    let data: Vec<_> = (0..100)
        .map(|i| {
            peer.segment(
                far + 10 * i,
                Some(peer.b_start),
                TcpControl::Psh,
                b"0123456789",
            )
        })
        .collect();
    let acks = answers_to_burst(&mut w, &data);
    assert_eq!(acks.len(), 100);
    assert!(acks
        .iter()
        .all(|s| s.ack == Some(peer.start) && s.payload.is_empty()));
    // A hundred SYNs on the connection's four-tuple: the stack's challenge (a SYN-ACK
    // smoltcp answers as an acknowledgment of data never sent), once a second.
    run_b(&mut w, 600, |_| {});
    let syns: Vec<_> = (0..100).map(|i| syn(peer.from, 9000, 7000 + i)).collect();
    let challenged = answers_to_burst(&mut w, &syns);
    assert_eq!(challenged.len(), 1, "{challenged:?}");
    assert_eq!(w.stacks[B].discards().duplicate_syn, 100);
    // A segment to a port no one listens on: one RST; a RST there: nothing.
    let closed = Hostile { to: 9001, ..peer };
    let rst = answers_to_burst(&mut w, &[closed.segment(1, Some(1), TcpControl::Psh, b"x")]);
    assert_eq!(rst.len(), 1);
    assert_ne!(rst[0].flags & RST, 0);
    let none = answers_to_burst(&mut w, &[closed.segment(1, None, TcpControl::Rst, b"")]);
    assert!(none.is_empty());
    // The connection lived through it all.
    inject(&w, &peer.data(0, b"still here", 0));
    run_b(&mut w, 50, |_| {});
    let mut buf = [0u8; 32];
    assert_eq!(w.stacks[B].recv(conn, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"still here");
}

#[test]
fn a_syn_with_two_mss_options_is_bounded_by_the_one_smoltcp_takes() {
    // smoltcp, like Linux (`tcp_parse_options`), takes the last MSS option of a SYN; the
    // inspector lowers a SYN's MSS to what the socket's tx ring keeps two segments of
    // (512 for echo's 1 KiB ring). Lowering the first of two options left the second
    // for smoltcp: B then sent by the peer's 1460, a 1000-byte answer in one segment.
    let mut w = pair(Faults::NONE, 323);
    let (_, mut echo) = echo_on_b(&mut w, 3);
    let data = pattern(b'q', 1000);
    for (from, options) in [
        (45_000, &[2, 4, 0x05, 0xb4, 1, 1, 1, 1][..]),
        (45_001, &[2, 4, 0x05, 0xb4, 2, 4, 0x05, 0xb4]),
        (45_002, &[2, 4, 0x02, 0x00, 2, 4, 0x05, 0xb4]),
    ] {
        let frame = syn_with_options(from, ECHO_PORT, 5000, options);
        let peer = Hostile::connect_with(&mut w, frame, from, ECHO_PORT, |b| echo.poll(b));
        inject(&w, &peer.data(0, &data, 0));
        let segs = run_acking(&mut w, &peer, 1000, 50, |b| echo.poll(b));
        assert_eq!(stream(&segs, peer.b_start), data);
        let largest = segs.iter().map(|s| s.payload.len()).max();
        assert_eq!(largest, Some(512), "options {options:?}");
    }
}

#[test]
fn thousands_of_damaged_tcp_headers_are_each_counted_once_or_left_to_smoltcp_and_never_answered() {
    // Random bytes of the TCP header (and the options) of a SYN to the listener and of a
    // data segment of a connection, the IPv4 header left whole: each frame smoltcp's own
    // `TcpRepr::parse` refuses without its checksum must be counted `malformed` exactly
    // once; each other one fails only its TCP checksum, which smoltcp drops uncounted. No
    // frame may be answered, take a socket, or hurt the connection. (A damaged frame that
    // happens to be valid, checksum and all, is not sent.)
    use ringnet::phy::Discard::Malformed;
    let mut w = pair(Faults::NONE, 324);
    let (sockets, mut echo) = echo_on_b(&mut w, 2);
    // The frames take minutes of the wire's time: the one connection, which they must
    // not hurt, is not to be closed as idle meanwhile.
    echo.set_idle_timeout(Duration::from_secs(3600));
    let peer = Hostile::connect(&mut w, 46_000, ECHO_PORT, |b| echo.poll(b));
    let bases = [
        syn_with_options(
            46_001,
            ECHO_PORT,
            9,
            &[2, 4, 5, 0xb4, 3, 3, 7, 1, 4, 2, 1, 1],
        ),
        peer.data(0, b"0123456789", 0),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut sent, mut malformed, mut valid) = (0, 0, 0);
    for n in 0..3000 {
        let mut frame = bases[n % 2].clone();
        let header = usize::from(frame[TCP + 12] >> 4) * 4;
        for _ in 0..1 + random() % 3 {
            // Reduced as u64 first so that a 32-bit target damages the same bytes; each
            // write changes its byte, so that only two writes undoing each other leave
            // a frame valid.
            let at = TCP + (random() % header as u64) as usize;
            frame[at] ^= (1 + random() % 255) as u8;
        }
        let ip4 = Ipv4Packet::new_checked(&frame[IP..]).unwrap();
        let tcp = TcpPacket::new_unchecked(ip4.payload());
        let parse = |caps: &ChecksumCapabilities| {
            TcpRepr::parse(&tcp, &HOSTILE.into(), &ip(B).into(), caps).is_ok()
        };
        if parse(&ChecksumCapabilities::default()) {
            valid += 1;
            continue;
        }
        let refused = !parse(&ChecksumCapabilities::ignored());
        let (answers, discarded) = answer_to(&mut w, &mut echo, &frame);
        sent += 1;
        assert!(answers.is_empty(), "frame {n} answered: {answers:?}");
        let expected = if refused {
            malformed += 1;
            one(Malformed)
        } else {
            Discards::default()
        };
        assert_eq!(discarded, expected, "frame {n}: {frame:02x?}");
    }
    assert!(valid < 10, "{valid} damaged frames still valid");
    assert!(malformed > 300 && malformed < sent, "{malformed} of {sent}");
    let connected = sockets
        .iter()
        .filter(|&&s| w.stacks[B].peer_addr(s).is_ok())
        .count();
    assert_eq!(connected, 1, "no socket taken");
    inject(&w, &peer.data(0, b"unhurt", 0));
    let segs = run_acking(&mut w, &peer, 6, 30, |b| echo.poll(b));
    assert_eq!(stream(&segs, peer.b_start), b"unhurt");
}
