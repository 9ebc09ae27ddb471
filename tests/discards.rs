//! What the interface discards before any socket, and what counts as a drop: a datagram
//! counts against a socket's ring only if smoltcp handed it to that socket; every other
//! discard is counted under its own reason ([`Discards`]) and logged once per reason per
//! interval. Frames are put on the hub with `Wire::inject`, built with smoltcp's `Repr`s.
//! Its own test binary, since it installs the process's logger to read the lines back.

use ringnet::phy::Discards;
use ringnet::sim::Faults;
use ringnet::smoltcp::wire::{EthernetAddress, Ipv4Packet};
use ringnet::{Duration, IpEndpoint, Ipv4Address, SocketOption};
use ringnet_testkit::*;

/// A UDP datagram as a frame from `from` (a stranger's MAC) to `to_mac`.
fn udp_frame(
    to_mac: EthernetAddress,
    from: (Ipv4Address, u16),
    to: (Ipv4Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    udp_datagram_frame(
        EthernetAddress([2, 0, 0, 0, 0, 0x99]),
        from,
        to_mac,
        to,
        payload,
    )
}

/// An IPv4 header's offset in a frame, and the UDP header's.
const IP: usize = 14;
const UDP: usize = 14 + 20;

/// Sets the fragment fields of a frame's IPv4 header and fixes its checksum.
fn set_fragment(frame: &mut [u8], more: bool, offset: u16) {
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[IP..]);
    ip.set_more_frags(more);
    ip.set_frag_offset(offset);
    ip.fill_checksum();
}

const STRANGER: Ipv4Address = Ipv4Address::new(10, 0, 0, 77);

#[test]
fn each_kind_of_discard_counts_under_its_own_reason_and_never_as_a_drop() {
    let _one = log_capture::capture();
    let mut w = pair(Faults::NONE, 60);
    let rx = udp_socket(&mut w.stacks[B], 16, 8192);
    w.stacks[B].udp_bind(rx, 9000).unwrap();
    let to_b = (ip(B), 9000);
    let from = (STRANGER, 4000);
    let good = udp_frame(mac(B), from, to_b, b"good");
    let inject = |frame: &[u8]| w.wire.inject(A, frame).unwrap();

    inject(&good);
    let mut bad_udp = good.clone();
    *bad_udp.last_mut().unwrap() ^= 0x20;
    inject(&bad_udp);
    let mut no_checksum = udp_frame(mac(B), from, to_b, b"none");
    no_checksum[UDP + 6..UDP + 8].copy_from_slice(&[0, 0]);
    inject(&no_checksum);
    let mut bad_ip = good.clone();
    bad_ip[IP + 8] ^= 1; // the TTL: only the header checksum notices
    inject(&bad_ip);
    inject(&udp_frame(
        mac(B),
        from,
        (ip(C), 9000),
        b"for another address",
    ));
    inject(&udp_frame(mac(C), from, to_b, b"for another MAC"));
    inject(&udp_frame(mac(B), from, (ip(B), 9001), b"nobody listens"));
    let mut fragment = good.clone();
    set_fragment(&mut fragment, true, 0);
    inject(&fragment);
    let mut long = good.clone();
    long[UDP + 4..UDP + 6].copy_from_slice(&500u16.to_be_bytes());
    inject(&long);
    w.settle();

    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Ok(d) = w.stacks[B].recv_from(rx, &mut buf) {
        got.push(String::from_utf8_lossy(&buf[..d.len]).into_owned());
    }
    assert_eq!(got, ["good", "none"], "a zero UDP checksum means none");
    assert_eq!(w.stacks[B].stats(rx).unwrap().rx_drops, 0);
    assert_eq!(
        w.stacks[B].discards(),
        Discards {
            not_for_us: 2,
            bad_checksum: 2,
            fragments: 1,
            no_socket: 1,
            malformed: 1,
            duplicate_syn: 0,
            icmp_limited: 0,
            inexact_rst: 0,
            after_fin: 0,
        }
    );
    assert_eq!(w.stacks[A].discards(), Discards::default());
    let table = w.stacks[B].stats_table().to_string();
    assert!(
        table.ends_with(
            "discarded before any socket: not_for_us 2, bad_checksum 2, fragment 1, no_socket 1, malformed 1, duplicate_syn 0, icmp_limited 0, inexact_rst 0, after_fin 0\n"
        ),
        "{table}"
    );
    // A full ring is still the socket's drop, and only that.
    for _ in 0..20 {
        inject(&good);
    }
    w.settle();
    let drops = w.stacks[B].stats(rx).unwrap().rx_drops;
    assert_eq!(drops, 4, "16 slots hold 16 of the 20");
    assert_eq!(w.stacks[B].discards().total(), 7, "unchanged");
}

#[test]
fn on_a_three_host_hub_nothing_counts_as_dropped_where_nothing_was() {
    let _one = log_capture::capture();
    let mut w = world_with::<3>(Faults::NONE, 61, ETHERNET_MTU, 64 * 1024);
    let sender = udp_socket(&mut w.stacks[A], 32, 16 * 1024);
    w.stacks[A]
        .set_option(sender, SocketOption::Broadcast(true))
        .unwrap();
    let listeners: Vec<_> = [B, C]
        .into_iter()
        .map(|port| {
            let s = udp_socket(&mut w.stacks[port], 64, 16 * 1024);
            w.stacks[port].udp_bind(s, 9999).unwrap();
            s
        })
        .collect();
    let limited = IpEndpoint::new(Ipv4Address::BROADCAST.into(), 9999);
    let subnet = IpEndpoint::new(Ipv4Address::new(10, 0, 0, 255).into(), 9999);
    for i in 0..10u8 {
        for to in [limited, subnet, ep(B, 9999)] {
            w.stacks[A].send_to(sender, &[i; 200], to).unwrap();
        }
        w.settle();
    }
    let mut buf = [0u8; 256];
    let mut received = [0; 2];
    for (n, (port, s)) in [B, C].into_iter().zip(&listeners).enumerate() {
        while w.stacks[port].recv_from(*s, &mut buf).is_ok() {
            received[n] += 1;
        }
        assert_eq!(w.stacks[port].stats(*s).unwrap().rx_drops, 0, "host {port}");
    }
    assert_eq!(received, [30, 20], "B gets the unicasts too");
    assert_eq!(w.stacks[B].discards(), Discards::default());
    assert_eq!(
        w.stacks[C].discards(),
        Discards {
            not_for_us: 10,
            ..Discards::default()
        },
        "A's unicasts to B pass C on the hub"
    );
    assert!(log_capture::lines_with("has no room").is_empty());
    // Not-for-us is logged at most once per interval, with the count.
    let not_for_us = log_capture::lines_with("C: discarded");
    assert!(
        !not_for_us.is_empty() && not_for_us.len() <= 2,
        "{not_for_us:#?}"
    );
}

#[test]
fn a_corrupting_wire_counts_bad_checksums_not_drops() {
    let _one = log_capture::capture();
    let faults = Faults {
        corrupt: 0.2,
        ..Faults::NONE
    };
    let mut w = pair(faults, 62);
    let rx = udp_socket(&mut w.stacks[B], 64, 64 * 1024);
    w.stacks[B].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[A], 64, 64 * 1024);
    let mut buf = [0u8; 512];
    let mut received = 0;
    for round in 0..20u8 {
        for _ in 0..10 {
            w.stacks[A].send_to(tx, &[round; 300], ep(B, 9000)).unwrap();
        }
        w.settle();
        while w.stacks[B].recv_from(rx, &mut buf).is_ok() {
            received += 1;
        }
    }
    let corrupted = w.wire.stats().corrupted;
    let discards = w.stacks[B].discards();
    assert_eq!(w.stacks[B].stats(rx).unwrap().rx_drops, 0, "{discards:?}");
    assert!(discards.bad_checksum > 0, "{discards:?}");
    assert!(
        discards.total() + w.stacks[A].discards().total() <= corrupted,
        "{discards:?} with {corrupted} frames corrupted"
    );
    assert_eq!((discards.no_socket, discards.fragments), (0, 0));
    assert!(received > 100, "{received}");
    assert!(log_capture::lines_with("has no room").is_empty());
}

#[test]
fn a_fragmented_datagram_is_counted_and_logged_as_lost_fragments() {
    let _one = log_capture::capture();
    let mut w = pair(Faults::NONE, 63);
    let rx = udp_socket(&mut w.stacks[B], 8, 8192);
    w.stacks[B].udp_bind(rx, 9000).unwrap();
    // A 4000-byte datagram as Linux sends it over a 1500-byte MTU: three fragments of
    // 1480, 1480 and 1048 bytes of IP payload (the UDP header in the first).
    let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    let whole = udp_frame(mac(B), (STRANGER, 4000), (ip(B), 9000), &payload);
    let ip_payload = &whole[UDP..];
    for (offset, piece) in [(0usize, 1480usize), (1480, 1480), (2960, 1048)] {
        let mut frame = whole[..UDP].to_vec();
        frame.extend_from_slice(&ip_payload[offset..offset + piece]);
        Ipv4Packet::new_unchecked(&mut frame[IP..]).set_total_len(20 + piece as u16);
        set_fragment(&mut frame, offset + piece < ip_payload.len(), offset as u16);
        w.wire.inject(A, &frame).unwrap();
    }
    w.settle();
    let mut buf = [0u8; 64];
    assert!(
        w.stacks[B].recv_from(rx, &mut buf).is_err(),
        "nothing arrives"
    );
    assert_eq!(w.stacks[B].stats(rx).unwrap().rx_drops, 0);
    assert_eq!(
        w.stacks[B].discards(),
        Discards {
            fragments: 3,
            ..Discards::default()
        }
    );
    // One line at once; the rest of the interval's fragments in one more line after it.
    w.run_for(Duration::from_millis(1100));
    let lines = log_capture::lines_with("B: discarded");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("IP fragment (no reassembly)") && lines[0].contains("(1 in all"));
    assert!(lines[1].starts_with("B: discarded 2 IPv4 frame(s)") && lines[1].contains("(3 in all"));
}

#[test]
fn a_late_duplicate_of_a_connections_syn_is_dropped_not_answered_by_the_backlog() {
    use ringnet::services::{Echo, ECHO_PORT};
    use ringnet::IpAddress;
    let _one = log_capture::capture();
    let mut w = pair(Faults::NONE, 61);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    let mut echo = Echo::new(&mut w.stacks[B], ECHO_PORT, &backlog).unwrap();
    let wire = w.wire;
    {
        client_of!(w, poll echo, sock, conn, ECHO_PORT, (1024, 1024));
        // A second connection takes B's other backlog socket; the first one ends and its
        // socket listens again, ahead of the second's in the table, as after a put
        // followed by a get.
        let second = tcp_socket(sock.stack(), 1024, 1024);
        sock.connect(second, ep(B, ECHO_PORT)).unwrap();
        echo_round(&mut sock, conn, b"first");
        sock.stack().close(conn).unwrap();
        sock.sleep(Duration::from_secs(2));
        echo_round(&mut sock, second, b"before");
        // A connection made and used, no duplicate: nothing counted.
        assert_eq!(sock.stack().discards(), Discards::default());
        let local = sock.stack().local_addr(second).unwrap();
        let IpAddress::Ipv4(addr) = local.addr;
        // The client's SYN again, as a wire that duplicates and delays brings it: B's
        // listening socket would answer it with a SYN-ACK, take the client's ACK as
        // unacceptable and reset the client's connection.
        let syn = tcp_syn(
            mac(A),
            (addr, local.port),
            mac(B),
            (ip(B), ECHO_PORT),
            0x1234_5678,
        );
        wire.inject(A, &syn).unwrap();
        echo_round(&mut sock, second, b"after: the same connection goes on");
        sock.stack().close(second).unwrap();
    }
    w.settle();
    assert_eq!(
        w.stacks[B].discards(),
        Discards {
            duplicate_syn: 1,
            ..Discards::default()
        }
    );
    assert_eq!(w.stacks[A].discards(), Discards::default());
    let lines = log_capture::lines_with("B: discarded 1 TCP SYN(s)");
    assert_eq!(lines.len(), 1, "{:#?}", log_capture::lines());
    assert!(
        lines[0].contains(&format!("10.0.0.1 -> 10.0.0.2:{ECHO_PORT}"))
            && lines[0].contains("SYN of a connection already made"),
        "{lines:#?}"
    );
    assert!(
        log_capture::lines_with("reset").is_empty(),
        "{:#?}",
        log_capture::lines_with("reset")
    );
    let table = w.stacks[B].stats_table().to_string();
    assert!(
        table.ends_with(", duplicate_syn 1, icmp_limited 0, inexact_rst 0, after_fin 0\n"),
        "{table}"
    );
}

#[test]
fn icmp_errors_and_stats_answers_over_their_limits_are_counted_and_logged_once_a_second() {
    use ringnet::services::{StatsQuery, STATS_PORT};
    let _one = log_capture::capture();
    let mut w = pair(Faults::NONE, 65);
    let client = udp_socket(&mut w.stacks[A], 16, 16 * 1024);
    let stats_socket = udp_socket(&mut w.stacks[B], 16, 8192);
    let mut stats = StatsQuery::new(&mut w.stacks[B], stats_socket, STATS_PORT).unwrap();
    // One error, one answer, then nothing: no refill.
    w.stacks[B].set_icmp_limit(1, 0);
    stats.set_rate_limit(1, 0);
    let run = |w: &mut World<2>, stats: &mut StatsQuery, ms: u32| {
        for _ in 0..ms {
            let now = w.wire.now();
            for host in [A, B] {
                w.stacks[host].poll(now, &mut w.wire.port(host));
            }
            stats.poll(&mut w.stacks[B]);
            w.wire.advance_to(now + Duration::from_millis(1));
        }
    };
    // A's own query makes B learn A's address; it is answered (the bucket's one).
    w.stacks[A]
        .send_to(client, b"?", ep(B, STATS_PORT))
        .unwrap();
    run(&mut w, &mut stats, 20);
    for _ in 0..4 {
        w.stacks[A]
            .send_to(client, b"?", ep(B, STATS_PORT))
            .unwrap();
    }
    let closed = udp_frame(mac(B), (ip(A), 5555), (ip(B), 7777), b"x");
    for _ in 0..20 {
        w.wire.inject(A, &closed).unwrap();
    }
    run(&mut w, &mut stats, 1100);
    // One more of each, past the interval.
    w.stacks[A]
        .send_to(client, b"?", ep(B, STATS_PORT))
        .unwrap();
    w.wire.inject(A, &closed).unwrap();
    run(&mut w, &mut stats, 20);
    let discards = w.stacks[B].discards();
    assert_eq!((discards.no_socket, discards.icmp_limited), (21, 20));
    assert_eq!(stats.rate_limited(), 5);
    // The flood's first at once, the rest of it when the interval is over; the last one,
    // within the next interval, waits for its line (the count has it).
    let icmp = log_capture::lines_with("its ICMP error over the rate limit");
    assert_eq!(icmp.len(), 2, "{icmp:#?}");
    assert!(
        icmp[0].starts_with("B: discarded 1 IPv4 frame(s), the latest 10.0.0.1 -> 10.0.0.2:7777")
            && icmp[0].contains("(1 in all")
    );
    assert!(icmp[1].contains("discarded 18 IPv4 frame(s)") && icmp[1].contains("(19 in all"));
    let limited = log_capture::lines_with("B: stats query:");
    assert_eq!(limited.len(), 2, "{limited:#?}");
    assert!(limited[0].contains("stats query: 1 not answered") && limited[0].contains("(1 in all"));
    assert!(limited[1].contains("stats query: 4 not answered") && limited[1].contains("(5 in all"));
}

#[test]
fn a_udp_port_closed_and_bound_again_is_seen_so_by_the_inspector_each_time() {
    // The inspector holds back a datagram whose ICMP port unreachable the host's bucket
    // has no credit for, and so must know the ports bound: the stack names them at every
    // bind and close. A list gone stale loses a datagram to a port bound again (withheld
    // as if no socket took it), or lets an error out for a port closed.
    let mut w = pair(Faults::NONE, 66);
    // No ICMP error may leave: every datagram to a closed port is withheld and counted.
    w.stacks[B].set_icmp_limit(0, 0);
    let run = |w: &mut World<2>| {
        for _ in 0..5 {
            let now = w.wire.now();
            for host in [A, B] {
                w.stacks[host].poll(now, &mut w.wire.port(host));
            }
            w.wire.advance_to(now + Duration::from_millis(1));
        }
    };
    let to = |port| udp_frame(mac(B), (ip(A), 5555), (ip(B), port), b"x");
    let counts = |w: &World<2>| {
        let d = w.stacks[B].discards();
        (d.no_socket, d.icmp_limited)
    };
    let mut buf = [0u8; 8];
    let first = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(first, 7777).unwrap();
    w.wire.inject(A, &to(7777)).unwrap();
    run(&mut w);
    assert_eq!(w.stacks[B].recv_from(first, &mut buf).map(|d| d.len), Ok(1));
    assert_eq!(counts(&w), (0, 0));
    // Closed: the next datagram to 7777 finds no socket and its error is withheld.
    w.stacks[B].close(first).unwrap();
    w.wire.inject(A, &to(7777)).unwrap();
    run(&mut w);
    assert_eq!(
        counts(&w),
        (1, 1),
        "7777 closed: no socket, its error withheld"
    );
    // Bound again by another socket: delivered, nothing withheld.
    let second = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(second, 7777).unwrap();
    w.wire.inject(A, &to(7777)).unwrap();
    run(&mut w);
    assert_eq!(
        w.stacks[B].recv_from(second, &mut buf).map(|d| d.len),
        Ok(1),
        "7777 bound again: the datagram reaches the new socket"
    );
    assert_eq!(counts(&w), (1, 1));
    // The implicit bind of `send_to` names its ephemeral port too.
    let implicit = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].send_to(implicit, b"hi", ep(A, 9)).unwrap();
    let port = w.stacks[B].local_addr(implicit).unwrap().port;
    w.wire.inject(A, &to(port)).unwrap();
    run(&mut w);
    assert_eq!(
        w.stacks[B].recv_from(implicit, &mut buf).map(|d| d.len),
        Ok(1)
    );
    assert_eq!(counts(&w), (1, 1));
    // Closing one of two leaves the other's port listed, and only that one.
    w.stacks[B].close(second).unwrap();
    for port in [7777, port] {
        w.wire.inject(A, &to(port)).unwrap();
    }
    run(&mut w);
    assert_eq!(counts(&w), (2, 2), "7777 closed again, {port} still bound");
    assert_eq!(
        w.stacks[B].recv_from(implicit, &mut buf).map(|d| d.len),
        Ok(1)
    );
}
