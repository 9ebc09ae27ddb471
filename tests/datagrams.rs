//! UDP scenarios: one datagram per call, truncation, drops on a full ring, broadcast.

use ringnet::sim::Faults;
use ringnet::socket::udp::{BindError, RecvError, SendError};
use ringnet::{IpEndpoint, Ipv4Address, SocketOption};
use ringnet_testkit::*;

#[test]
fn recv_from_takes_one_datagram_per_call_with_its_sender() {
    let mut w = pair(Faults::NONE, 20);
    let rx = udp_socket(&mut w.stacks[A], 8, 2048);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 2048);
    w.stacks[B].send_to(tx, b"one", ep(A, 9000)).unwrap();
    w.stacks[B].send_to(tx, b"two", ep(A, 9000)).unwrap();
    w.settle();
    let sender = w.stacks[B].local_addr(tx).unwrap().port;
    let mut buf = [0u8; 64];
    let first = w.stacks[A].recv_from(rx, &mut buf).unwrap();
    assert_eq!(
        (&buf[..first.len], first.from),
        (&b"one"[..], ep(B, sender))
    );
    let second = w.stacks[A].recv_from(rx, &mut buf).unwrap();
    assert_eq!(
        &buf[..second.len],
        b"two",
        "datagrams keep their boundaries"
    );
    assert_eq!(
        w.stacks[A].recv_from(rx, &mut buf),
        Err(RecvError::WouldBlock)
    );
    assert_eq!(w.stacks[A].stats(rx).unwrap().datagrams_in, 2);
}

#[test]
fn a_datagram_larger_than_the_buffer_is_truncated_and_the_loss_reported() {
    let mut w = pair(Faults::NONE, 21);
    let rx = udp_socket(&mut w.stacks[A], 8, 4096);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 4096);
    let big: Vec<u8> = (0..600u16).map(|i| i as u8).collect();
    w.stacks[B].send_to(tx, &big, ep(A, 9000)).unwrap();
    w.stacks[B].send_to(tx, b"next", ep(A, 9000)).unwrap();
    w.settle();
    let mut buf = [0u8; 64];
    let d = w.stacks[A].recv_from(rx, &mut buf).unwrap();
    assert!(d.truncated());
    assert_eq!((d.len, d.lost), (64, 536));
    assert_eq!(&buf[..], &big[..64]);
    let stats = w.stacks[A].stats(rx).unwrap();
    assert_eq!((stats.truncations, stats.truncated_bytes), (1, 536));
    // The rest of the big datagram is gone: the next call returns the next datagram.
    let d = w.stacks[A].recv_from(rx, &mut buf).unwrap();
    assert_eq!(&buf[..d.len], b"next");
}

#[test]
fn datagrams_arriving_at_a_full_ring_are_dropped_and_counted() {
    let mut w = pair(Faults::NONE, 22);
    let rx = udp_socket(&mut w.stacks[A], 8, 256);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 1024);
    for i in 0..5u8 {
        w.stacks[B].send_to(tx, &[i; 100], ep(A, 9000)).unwrap();
    }
    w.settle();
    let stats = w.stacks[A].stats(rx).unwrap();
    assert_eq!(
        stats.rx_drops, 3,
        "256 bytes hold two 100-byte datagrams: {stats:?}"
    );
    let mut buf = [0u8; 128];
    let mut got = Vec::new();
    while let Ok(d) = w.stacks[A].recv_from(rx, &mut buf) {
        got.push(buf[0]);
        assert_eq!(d.len, 100);
    }
    assert_eq!(got, vec![0, 1]);
}

#[test]
fn broadcast_is_refused_without_so_broadcast_and_reaches_every_host_with_it() {
    let mut w = world_with::<3>(Faults::NONE, 23, ETHERNET_MTU, 64 * 1024);
    let sender = udp_socket(&mut w.stacks[A], 4, 1024);
    let listeners: Vec<_> = [B, C]
        .into_iter()
        .map(|port| {
            let s = udp_socket(&mut w.stacks[port], 4, 1024);
            w.stacks[port].udp_bind(s, 9999).unwrap();
            s
        })
        .collect();
    let limited = IpEndpoint::new(Ipv4Address::BROADCAST.into(), 9999);
    let subnet = IpEndpoint::new(Ipv4Address::new(10, 0, 0, 255).into(), 9999);
    for to in [limited, subnet] {
        assert_eq!(
            w.stacks[A].send_to(sender, b"beacon", to),
            Err(SendError::BroadcastDenied)
        );
    }
    assert_eq!(
        w.stacks[A].get_option(sender, ringnet::socket::OptionName::Broadcast),
        Ok(SocketOption::Broadcast(false))
    );
    w.stacks[A]
        .set_option(sender, SocketOption::Broadcast(true))
        .unwrap();
    w.stacks[A].send_to(sender, b"beacon", limited).unwrap();
    w.stacks[A].send_to(sender, b"subnet", subnet).unwrap();
    w.settle();
    for (port, s) in [B, C].into_iter().zip(listeners) {
        let mut buf = [0u8; 16];
        let d = w.stacks[port].recv_from(s, &mut buf).unwrap();
        assert_eq!(&buf[..d.len], b"beacon", "host {port}");
        let d = w.stacks[port].recv_from(s, &mut buf).unwrap();
        assert_eq!(&buf[..d.len], b"subnet", "host {port}");
    }
}

#[test]
fn send_to_binds_an_ephemeral_port_and_refuses_what_can_never_fit() {
    let mut w = pair(Faults::NONE, 24);
    let s = udp_socket(&mut w.stacks[A], 4, 512);
    assert!(w.stacks[A].local_addr(s).is_err(), "unbound at first");
    assert_eq!(
        w.stacks[A].send_to(s, &[0; 513], ep(B, 9)),
        Err(SendError::TooLarge)
    );
    let big = udp_socket(&mut w.stacks[A], 4, 4096);
    assert_eq!(
        w.stacks[A].send_to(big, &[0; 1500], ep(B, 9)),
        Err(SendError::TooLarge),
        "larger than the MTU"
    );
    assert_eq!(
        w.stacks[A].send_to(s, b"x", ep(B, 0)),
        Err(SendError::Unaddressable)
    );
    w.stacks[A].send_to(s, b"x", ep(B, 9)).unwrap();
    let port = w.stacks[A].local_addr(s).unwrap().port;
    assert!(port >= 49152, "ephemeral port {port}");
}

#[test]
fn a_full_tx_ring_says_would_block() {
    let mut w = pair(Faults::NONE, 25);
    let s = udp_socket(&mut w.stacks[A], 2, 512);
    w.stacks[A].send_to(s, &[1; 200], ep(B, 9)).unwrap();
    w.stacks[A].send_to(s, &[2; 200], ep(B, 9)).unwrap();
    assert_eq!(
        w.stacks[A].send_to(s, &[3; 200], ep(B, 9)),
        Err(SendError::WouldBlock)
    );
    w.settle();
    assert_eq!(
        w.stacks[A].send_to(s, &[3; 200], ep(B, 9)),
        Ok(200),
        "room after the ring drained"
    );
}

#[test]
fn a_udp_port_cannot_be_bound_twice() {
    let mut w = pair(Faults::NONE, 26);
    let first = udp_socket(&mut w.stacks[A], 2, 256);
    let second = udp_socket(&mut w.stacks[A], 2, 256);
    w.stacks[A].udp_bind(first, 5000).unwrap();
    assert_eq!(
        w.stacks[A].udp_bind(second, 5000),
        Err(BindError::AddrInUse)
    );
    assert_eq!(
        w.stacks[A].udp_bind(first, 5001),
        Err(BindError::AlreadyBound)
    );
    assert_eq!(w.stacks[A].udp_bind(second, 0), Err(BindError::InvalidPort));
}

#[test]
fn an_empty_datagram_arriving_at_a_ring_with_every_slot_taken_is_counted_as_dropped() {
    // A datagram of no bytes grows no byte count, so whether it reached the ring can only
    // be told from the ring's slots: with both of its two taken, it is lost, and must be
    // counted as a drop like any other (it once counted as delivered whenever the ring
    // held something). Three empty ones into the ring's two slots, once it is drained.
    let mut w = pair(Faults::NONE, 27);
    let rx = udp_socket(&mut w.stacks[A], 2, 1024);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 1024);
    w.stacks[B].send_to(tx, b"a", ep(A, 9000)).unwrap();
    w.stacks[B].send_to(tx, b"b", ep(A, 9000)).unwrap();
    w.stacks[B].send_to(tx, b"", ep(A, 9000)).unwrap();
    w.settle();
    assert_eq!(
        w.stacks[A].stats(rx).unwrap().rx_drops,
        1,
        "both slots taken"
    );
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while let Ok(d) = w.stacks[A].recv_from(rx, &mut buf) {
        got.push(buf[..d.len].to_vec());
    }
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
    for _ in 0..3 {
        w.stacks[B].send_to(tx, b"", ep(A, 9000)).unwrap();
    }
    w.settle();
    let stats = w.stacks[A].stats(rx).unwrap();
    assert_eq!(stats.rx_drops, 2, "the third empty one found no slot");
    let mut empty = 0;
    while let Ok(d) = w.stacks[A].recv_from(rx, &mut buf) {
        assert_eq!(d.len, 0);
        empty += 1;
    }
    assert_eq!(empty, 2);
    assert_eq!(w.stacks[A].stats(rx).unwrap().datagrams_in, 4);
}

#[test]
fn an_empty_datagram_finds_no_slot_where_wrap_padding_takes_the_last() {
    // A ring of 10 bytes and three slots: "bbbb" at 4..8 and "cccc" wrapped to 0..4 with
    // smoltcp's padding at 8..10 take all three slots, though only two datagrams wait.
    let mut w = pair(Faults::NONE, 28);
    let rx = udp_socket(&mut w.stacks[A], 3, 10);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 1024);
    let mut buf = [0u8; 16];
    w.stacks[B].send_to(tx, b"aaaa", ep(A, 9000)).unwrap();
    w.stacks[B].send_to(tx, b"bbbb", ep(A, 9000)).unwrap();
    w.settle();
    assert_eq!(w.stacks[A].recv_from(rx, &mut buf).unwrap().len, 4);
    w.stacks[B].send_to(tx, b"cccc", ep(A, 9000)).unwrap();
    w.settle();
    w.stacks[B].send_to(tx, b"", ep(A, 9000)).unwrap();
    w.settle();
    assert_eq!(
        w.stacks[A].stats(rx).unwrap().rx_drops,
        1,
        "the padding holds the third slot"
    );
    let mut got = Vec::new();
    while let Ok(d) = w.stacks[A].recv_from(rx, &mut buf) {
        got.push(buf[..d.len].to_vec());
    }
    assert_eq!(got, vec![b"bbbb".to_vec(), b"cccc".to_vec()]);
    // Drained, padding and all: an empty one is delivered.
    w.stacks[B].send_to(tx, b"", ep(A, 9000)).unwrap();
    w.settle();
    assert_eq!(w.stacks[A].recv_from(rx, &mut buf).map(|d| d.len), Ok(0));
    assert_eq!(w.stacks[A].stats(rx).unwrap().rx_drops, 1);
}
