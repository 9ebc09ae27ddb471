//! The ARP queue against a hostile peer on the simulated wire: spoofed ARP that makes the
//! neighbours heard from part from smoltcp's cache, bursts larger than the queue, and the
//! queue's counters against what a sniffer sees leave.

use ringnet::services::{UdpReport, REPORT_PORT};
use ringnet::sim::Faults;
use ringnet::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet,
    UdpPacket,
};
use ringnet::{Duration, IpEndpoint, Ipv4Address};
use ringnet_testkit::*;

/// The MAC address the spoofing host sends from.
const SPOOFER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x77]);
/// A host no stack is: nothing answers ARP for it.
const NOBODY: Ipv4Address = Ipv4Address::new(10, 0, 0, 77);

/// The report on B and a client on A asking it once a second for 30 s, while `attack`
/// (given the wire, its tick number, one every 100 ms, and the time) injects frames: the
/// answers the client got, and B's ARP queue's counters.
fn report_asked_under(
    seed: u64,
    mut attack: impl FnMut(&ringnet::sim::Wire<'static, 2>, u32),
) -> (usize, ringnet::ArpQueueStats) {
    let mut w = pair(Faults::NONE, seed);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let mut report: UdpReport<512> = UdpReport::new(&mut w.stacks[B], socket, REPORT_PORT).unwrap();
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    let (mut answers, mut asks, mut buf) = (0, 0, [0u8; 2048]);
    let mut next_ask = w.wire.now() + Duration::from_millis(300);
    for tick in 0..310u32 {
        attack(w.wire, tick);
        if w.wire.now() >= next_ask && asks < 30 {
            w.stacks[A]
                .send_to(client, format!("? {asks}").as_bytes(), ep(B, REPORT_PORT))
                .unwrap();
            asks += 1;
            next_ask += Duration::from_secs(1);
        }
        w.step_for(Duration::from_millis(100), |host, stack| {
            if host == B {
                report.poll(stack);
            }
        });
        while w.stacks[A].recv_from(client, &mut buf).is_ok() {
            answers += 1;
        }
    }
    assert_eq!(asks, 30);
    (answers, w.stacks[B].arp_queue_stats().unwrap())
}

/// A spoofed query to the report from `source`, which no host holds.
fn spoofed_query(source: Ipv4Address) -> Vec<u8> {
    udp_datagram_frame(
        SPOOFER_MAC,
        (source, 4000),
        mac(B),
        (ip(B), REPORT_PORT),
        b"?",
    )
}

/// The `n`th address of the subnet that no host holds (10.0.0.100 to 10.0.0.199).
fn unheld(n: u32) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, 100 + (n % 100) as u8)
}

#[test]
fn spoofed_arp_from_eight_addresses_does_not_make_the_stack_drop_a_heard_clients_answers() {
    // smoltcp's neighbour cache on a host build has 256 entries (`neighbor-cache-256`):
    // eight spoofed ARP requests aimed at B leave the real client in it. The neighbours
    // heard from must hold it too: taken for unheard, each answer to it finds the ARP
    // queue held by a spoofed source's answer (one spoofed query a second) and is
    // dropped, though smoltcp could send it at once.
    let (answers, queue) = report_asked_under(201, |wire, tick| {
        if tick % 10 == 5 {
            wire.inject(A, &spoofed_query(unheld(tick / 10))).unwrap();
        }
        if tick % 50 == 7 {
            for i in 0..8u8 {
                let from = (SPOOFER_MAC, Ipv4Address::new(10, 0, 0, 200 + i));
                let frame = arp_frame(
                    ArpOperation::Request,
                    from,
                    (EthernetAddress([0; 6]), ip(B)),
                    EthernetAddress::BROADCAST,
                );
                wire.inject(A, &frame).unwrap();
            }
        }
    });
    assert_eq!(answers, 30, "{queue:?}");
}

#[test]
fn arp_aimed_at_the_stack_but_sent_to_another_mac_is_not_taken_for_heard() {
    // smoltcp ignores a frame sent to another host's MAC address (a switch floods one to
    // an unknown MAC to every port; a hub carries all). An ARP request for B's address
    // in such a frame leaves smoltcp's cache as it was: a source announced so is not
    // resolved, and the answer to a spoofed query from it, taken for heard, waited at
    // the head of the report's ring, the real client's answers behind it, until the
    // ring was given up 3 s later.
    let (answers, queue) = report_asked_under(202, |wire, tick| {
        if tick % 10 == 5 {
            let source = unheld(tick / 10);
            let elsewhere = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
            let frame = arp_frame(
                ArpOperation::Request,
                (SPOOFER_MAC, source),
                (EthernetAddress([0; 6]), ip(B)),
                elsewhere,
            );
            wire.inject(A, &frame).unwrap();
            wire.inject(A, &spoofed_query(source)).unwrap();
        }
    });
    assert_eq!(answers, 30, "{queue:?}");
}

#[test]
fn a_burst_of_spoofed_queries_larger_than_the_arp_queue_does_not_stall_the_report() {
    // Twelve spoofed queries from one address no host holds, every 4 s: eight answers
    // fill the ARP queue, and the four it cannot hold went to the report's own ring,
    // where they wait at its head for ARP that never comes, with the real client's
    // answers behind them, until the ring is given up 3 s later.
    let (answers, queue) = report_asked_under(203, |wire, tick| {
        // One every 100 ms, each read and answered before the next.
        if (5..17).contains(&(tick % 40)) {
            wire.inject(A, &spoofed_query(unheld(tick / 40))).unwrap();
        }
    });
    assert_eq!(answers, 30, "{queue:?}");
}

/// The frames waiting on a sniffer's port, taken off it.
fn drain<const PORTS: usize>(
    wire: &ringnet::sim::Wire<'static, PORTS>,
    port: usize,
) -> Vec<Vec<u8>> {
    use ringnet::smoltcp::phy::{Device, RxToken};
    let mut frames = Vec::new();
    let mut sniffer = wire.port(port);
    while let Some((rx, _)) = sniffer.receive(wire.now()) {
        rx.consume(|frame| frames.push(frame.to_vec()));
    }
    frames
}

/// Runs `w` for `duration`, the sniffer's port C drained into `seen` after every poll
/// (frames left on it would wake the world at once, again and again).
fn step_sniffing(w: &mut World<3>, duration: Duration, seen: &mut Vec<Vec<u8>>) {
    let wire = w.wire;
    w.step_for(duration, |_, _| seen.extend(drain(wire, C)));
}

/// UDP datagrams among `frames`: (source, destination, UDP payload bytes).
fn udp_sniffed(frames: &[Vec<u8>]) -> Vec<(Ipv4Address, Ipv4Address, usize)> {
    let mut seen = Vec::new();
    for frame in frames {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            continue;
        };
        let Ok(ip4) = Ipv4Packet::new_checked(eth.payload()) else {
            continue;
        };
        if ip4.next_header() != IpProtocol::Udp {
            continue;
        }
        let Ok(udp) = UdpPacket::new_checked(ip4.payload()) else {
            continue;
        };
        seen.push((ip4.src_addr(), ip4.dst_addr(), udp.payload().len()));
    }
    seen
}

/// ARP requests among `frames`: (asker, address asked for).
fn arp_requests_sniffed(frames: &[Vec<u8>]) -> Vec<(Ipv4Address, Ipv4Address)> {
    let mut seen = Vec::new();
    for frame in frames {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            continue;
        };
        let Ok(packet) = ArpPacket::new_checked(eth.payload()) else {
            continue;
        };
        if let Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        {
            seen.push((source_protocol_addr, target_protocol_addr));
        }
    }
    seen
}

/// A and B on a wire with a third port that no stack polls: a sniffer.
fn pair_with_a_sniffer(seed: u64) -> World<3> {
    let mut w = world_with::<3>(Faults::NONE, seed, ETHERNET_MTU, 256 * 1024);
    w.stacks.truncate(2);
    w
}

#[test]
fn the_arp_queues_sent_bytes_are_the_payload_seen_leaving_it() {
    // B has heard nothing from A: five datagrams to A wait on the queue, leave once A
    // answers; then five to an address no host holds wait and are given up. What the
    // queue counts as sent is what a sniffer sees B send from it.
    let mut w = pair_with_a_sniffer(204);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let client = udp_socket(&mut w.stacks[A], 16, 8192);
    w.stacks[A].udp_bind(client, 5000).unwrap();
    for i in 0..5usize {
        w.stacks[B]
            .send_to(socket, &vec![i as u8; 100 + i], ep(A, 5000))
            .unwrap();
    }
    let mut frames = Vec::new();
    step_sniffing(&mut w, Duration::from_secs(2), &mut frames);
    let nobody = IpEndpoint::new(NOBODY.into(), 4000);
    for i in 0..5usize {
        w.stacks[B]
            .send_to(socket, &vec![i as u8; 200 + i], nobody)
            .unwrap();
    }
    step_sniffing(&mut w, Duration::from_secs(4), &mut frames);
    let seen = udp_sniffed(&frames);
    let to_a: usize = seen
        .iter()
        .filter(|(s, d, _)| *s == ip(B) && *d == ip(A))
        .map(|s| s.2)
        .sum();
    let to_nobody = seen.iter().filter(|(_, d, _)| *d == NOBODY).count();
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(to_a, 510);
    assert_eq!(to_nobody, 0);
    assert_eq!(queue.sent_bytes, to_a as u64, "{queue:?}");
    assert_eq!(queue.queued_bytes, 510 + 1010, "{queue:?}");
    assert_eq!(queue.dropped_unresolved_bytes, 1010, "{queue:?}");
}

#[test]
fn a_stack_with_datagrams_on_its_arp_queue_asks_again_every_second_and_gives_up_at_three() {
    // Polled only when `poll_at` says: the queue's ARP retries (one a second) and its
    // drop 3 s after must come from it, as a firmware loop that sleeps until then.
    let mut w = pair_with_a_sniffer(205);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let nobody = IpEndpoint::new(NOBODY.into(), 4000);
    let start = w.wire.now();
    w.stacks[B].poll(start, &mut w.wire.port(B));
    w.stacks[B].send_to(socket, b"waiting", nobody).unwrap();
    let mut wakes = 0;
    while w.wire.now() < start + Duration::from_secs(5) && wakes < 100 {
        let now = w.wire.now();
        w.stacks[B].poll(now, &mut w.wire.port(B));
        let Some(at) = w.stacks[B].poll_at() else {
            break;
        };
        assert!(
            at <= now + Duration::from_millis(1000),
            "asleep from {now} to {at} with {:?}",
            w.stacks[B].arp_queue_stats()
        );
        w.wire.advance_to(at.max(now + Duration::from_micros(1)));
        wakes += 1;
    }
    let asked: Vec<_> = arp_requests_sniffed(&drain(w.wire, C))
        .into_iter()
        .filter(|&(from, what)| from == ip(B) && what == NOBODY)
        .collect();
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(queue.dropped_unresolved_bytes, 7, "{queue:?}");
    assert!((3..=4).contains(&asked.len()), "{asked:?}");
    assert!(
        w.wire.now() <= start + Duration::from_millis(3100),
        "{}",
        w.wire.now()
    );
}

#[test]
fn a_datagram_dropped_from_the_arp_queue_after_its_socket_closed_is_not_charged_to_the_next() {
    // The socket that queued a datagram for a host that never answers is closed; a new
    // socket takes its number and its port. The drop 3 s later is the old socket's, not
    // the new one's, which sent nothing.
    let mut w = pair(Faults::NONE, 206);
    let old = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(old, 7000).unwrap();
    let nobody = IpEndpoint::new(NOBODY.into(), 4000);
    w.stacks[B]
        .send_to(old, b"from the old one", nobody)
        .unwrap();
    w.stacks[B].close(old).unwrap();
    w.step_for(Duration::from_millis(100), |_, _| {});
    let new = udp_socket(&mut w.stacks[B], 4, 1024);
    assert_eq!(new, old, "the number is reused");
    w.stacks[B].udp_bind(new, 7000).unwrap();
    w.step_for(Duration::from_millis(3500), |_, _| {});
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(queue.dropped_unresolved_bytes, 16, "{queue:?}");
    let stats = w.stacks[B].stats(new).unwrap();
    assert_eq!(
        (stats.datagrams_out, stats.unresolved_dropped_bytes),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_stack_behind_a_gateway_queues_for_the_gateway_and_sends_through_it_once_heard() {
    // B routes off-subnet datagrams through A. Before A is heard from, one for an
    // off-subnet host waits on the queue for A's address; it then leaves to A's MAC.
    let mut w = b_behind_gateway_a(207);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let far = Ipv4Address::new(192, 168, 7, 9);
    w.stacks[B]
        .send_to(socket, b"far away", IpEndpoint::new(far.into(), 4000))
        .unwrap();
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(queue.datagrams_queued, 1, "{queue:?}");
    let mut frames = Vec::new();
    step_sniffing(&mut w, Duration::from_secs(1), &mut frames);
    // Once A is heard, the next goes through the ring, and both leave.
    w.stacks[B]
        .send_to(socket, b"far again", IpEndpoint::new(far.into(), 4000))
        .unwrap();
    step_sniffing(&mut w, Duration::from_secs(1), &mut frames);
    let seen = udp_sniffed(&frames);
    let far_sent: Vec<_> = seen
        .iter()
        .filter(|(_, d, _)| *d == far)
        .map(|s| s.2)
        .collect();
    assert_eq!(far_sent, vec![8, 9]);
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(
        (queue.datagrams_queued, queue.sent_bytes),
        (1, 8),
        "{queue:?}"
    );
}

/// The sniffed pair, whose B routes off-subnet datagrams through A, with an
/// ARP queue; A not yet heard from.
fn b_behind_gateway_a(seed: u64) -> World<3> {
    let mut w = pair_with_a_sniffer(seed);
    new_stack::<_, ARP_QUEUE_SLOTS, ARP_QUEUE_BYTES>(&mut w, B, Some(ip(A)), seed);
    w
}

#[test]
fn datagrams_to_two_hosts_behind_one_unheard_gateway_both_wait_for_it() {
    // Linux queues on the neighbour a packet goes to, the gateway for both hosts here.
    // Keyed by destination, the queue took the first and dropped the second as busy,
    // though both wait for the same ARP answer.
    let mut w = b_behind_gateway_a(209);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let far = [
        Ipv4Address::new(192, 168, 7, 9),
        Ipv4Address::new(172, 16, 0, 3),
    ];
    for (k, to) in far.iter().enumerate() {
        w.stacks[B]
            .send_to(
                socket,
                &b"to far host"[..10 + k],
                IpEndpoint::new((*to).into(), 4000),
            )
            .unwrap();
    }
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(
        (queue.datagrams_queued, queue.datagrams_dropped_busy),
        (2, 0),
        "{queue:?}"
    );
    let mut frames = Vec::new();
    step_sniffing(&mut w, Duration::from_secs(2), &mut frames);
    let seen: Vec<_> = udp_sniffed(&frames)
        .into_iter()
        .filter(|(_, d, _)| far.contains(d))
        .map(|(_, d, len)| (d, len))
        .collect();
    assert_eq!(seen, vec![(far[0], 10), (far[1], 11)]);
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(queue.sent_bytes, 21, "{queue:?}");
}

#[test]
fn a_stats_answer_larger_than_a_small_arp_queue_does_not_stall_the_stats() {
    // The firmware's queue holds 512 bytes; a stats answer to a spoofed source is a
    // 1400-byte datagram or more. One that the whole queue could never hold went to the
    // stats socket's own ring, where it waited for ARP that never comes, the real
    // client's tables behind it, for 3 s: the attack the queue is for, on the firmware.
    use ringnet::services::{StatsQuery, STATS_PORT};
    let mut w = pair(Faults::NONE, 208);
    new_stack::<_, 2, 512>(&mut w, B, None, 208);
    let socket = udp_socket(&mut w.stacks[B], 2, 1536);
    let mut stats = StatsQuery::new(&mut w.stacks[B], socket, STATS_PORT).unwrap();
    // Rows enough for a table of more than 512 bytes, as the firmware's.
    for port in 0..12 {
        let other = udp_socket(&mut w.stacks[B], 1, 64);
        w.stacks[B].udp_bind(other, 7000 + port).unwrap();
    }
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    let (mut tables, mut asks, mut buf) = (0, 0, [0u8; 2048]);
    let mut next_ask = w.wire.now() + Duration::from_millis(300);
    for tick in 0..310u32 {
        if tick % 10 == 5 {
            let frame = udp_datagram_frame(
                SPOOFER_MAC,
                (unheld(tick / 10), 4000),
                mac(B),
                (ip(B), STATS_PORT),
                b"?",
            );
            w.wire.inject(A, &frame).unwrap();
        }
        if w.wire.now() >= next_ask && asks < 30 {
            w.stacks[A]
                .send_to(client, b"?", ep(B, STATS_PORT))
                .unwrap();
            asks += 1;
            next_ask += Duration::from_secs(1);
        }
        w.step_for(Duration::from_millis(100), |host, stack| {
            if host == B {
                stats.poll(stack);
            }
        });
        while let Ok(d) = w.stacks[A].recv_from(client, &mut buf) {
            tables += usize::from(buf[..d.len].ends_with(b"rows\n"));
        }
    }
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(tables, 30, "{queue:?}");
}

#[test]
fn datagrams_to_a_silent_receiver_arrive_in_order_across_its_entrys_expiry() {
    // B sends to A after its polls; A sends nothing back, so B's entry for A,
    // from B's own ARP request, expires after 60 s. The datagram sent before the poll
    // that finds it expired waits in B's ring for A's address, the one sent after it
    // on the ARP queue: A must still get them in the order sent.
    // A LAN's half a millisecond each way.
    let faults = Faults {
        latency: Duration::from_micros(500),
        ..Faults::NONE
    };
    let mut w = pair(faults, 209);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let sink = udp_socket(&mut w.stacks[A], 64, 8192);
    w.stacks[A].udp_bind(sink, 5000).unwrap();
    let (mut sent, mut got, mut buf) = (0u32, Vec::new(), [0u8; 16]);
    let wire = w.wire;
    let mut next_send = wire.now();
    w.step_for(Duration::from_secs(62), |host, stack| {
        if host == B && wire.now() >= next_send {
            // At most one every 250 us, after a poll.
            next_send = wire.now() + Duration::from_micros(250);
            if stack
                .send_to(socket, &sent.to_be_bytes(), ep(A, 5000))
                .is_ok()
            {
                sent += 1;
            }
        } else if host == A {
            while let Ok(d) = stack.recv_from(sink, &mut buf) {
                got.push(u32::from_be_bytes(buf[..d.len].try_into().unwrap()));
            }
        }
    });
    let out_of_order: Vec<_> = got.windows(2).filter(|p| p[1] < p[0]).collect();
    assert!(
        out_of_order.is_empty(),
        "{out_of_order:?} {:?}",
        w.stacks[B].arp_queue_stats()
    );
    eprintln!(
        "DBG {:?} {} {sent}",
        w.stacks[B].arp_queue_stats(),
        got.len()
    );
    assert!(got.len() as u32 + 2 >= sent, "{} of {sent}", got.len());
}
