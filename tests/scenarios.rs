//! One scenario per socket behaviour, two stacks against each other on the simulated wire.

use ringnet::blocking::Blocking;
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::socket::tcp::{RecvError, SendError};
use ringnet::{Duration, Instant, Stack};
use ringnet_testkit::*;

#[test]
fn recv_blocks_on_an_empty_ring_until_data_arrives() {
    let mut w = pair(Faults::NONE, 1);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    let start = w.wire.now();
    let mut sent = false;
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now: Instant| {
        if !sent && now >= start + Duration::from_millis(50) {
            sent = b.send(server, b"hello").unwrap() == 5;
        }
    });
    let mut buf = [0u8; 64];
    let n = Blocking::new(a, &mut driver)
        .recv(client, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
    let stats = a.stats(client).unwrap();
    assert_eq!(stats.rx_blocks, 1);
    assert!(
        stats.time_blocked >= Duration::from_millis(50),
        "{:?}",
        stats.time_blocked
    );
    assert_eq!(stats.bytes_in, 5);
}

#[test]
fn nonblocking_recv_on_an_empty_ring_says_would_block() {
    let mut w = pair(Faults::NONE, 2);
    let (client, _, _) = w.connect(7, (512, 512), (512, 512));
    let mut buf = [0u8; 16];
    assert_eq!(
        w.stacks[A].recv(client, &mut buf),
        Err(RecvError::WouldBlock)
    );
    assert_eq!(w.stacks[A].stats(client).unwrap().rx_would_block, 1);
}

#[test]
fn send_blocks_on_a_full_tx_ring_while_a_slow_reader_drains() {
    let mut w = pair(Faults::NONE, 3);
    let (client, server, _) = w.connect(7, (512, 512), (256, 256));
    // Acknowledge at once, so the segment that fills the ring advertises a zero window.
    w.stacks[B]
        .set_option(server, ringnet::SocketOption::AckDelay(None))
        .unwrap();
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut received = send_to_slow_reader(&mut w, client, server, &data);
    let peer_stats = w.stacks[B].stats(server).unwrap();

    let stats = w.stacks[A].stats(client).unwrap();
    assert!(stats.tx_blocks >= 1, "{stats:?}");
    assert!(stats.tx_full_events >= 1, "{stats:?}");
    assert!(stats.time_blocked > Duration::from_millis(100));
    assert_eq!(stats.bytes_out, 8192);
    assert!(
        peer_stats.zero_windows >= 1,
        "slow reader advertised a zero window: {peer_stats:?}"
    );
    assert_eq!(peer_stats.rx_high_water, 256);
    // The reader drains what is still buffered.
    let mut rest = [0u8; 512];
    while let Ok(n) = w.stacks[B].recv(server, &mut rest) {
        received.extend_from_slice(&rest[..n]);
    }
    assert_eq!(received, data);
}

#[test]
fn a_short_read_leaves_the_rest_for_the_next_call() {
    let mut w = pair(Faults::NONE, 4);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    let data: Vec<u8> = (0..100u8).collect();
    assert_eq!(w.stacks[B].send(server, &data), Ok(100));
    w.settle();
    let mut got = Vec::new();
    let mut buf = [0u8; 30];
    let n = w.stacks[A].recv(client, &mut buf).unwrap();
    assert_eq!(n, 30);
    got.extend_from_slice(&buf[..n]);
    assert_eq!(w.stacks[A].ring_usage(client).unwrap().0, (70, 512));
    while let Ok(n) = w.stacks[A].recv(client, &mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}

#[test]
fn recv_returns_zero_only_after_the_peer_closed_and_the_ring_drained() {
    let mut w = pair(Faults::NONE, 5);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    w.stacks[B].send(server, b"last words").unwrap();
    w.stacks[B].close(server).unwrap();
    w.settle();
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    loop {
        match w.stacks[A].recv(client, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(got, b"last words");
    assert_eq!(w.stacks[A].recv(client, &mut buf), Ok(0), "EOF repeats");
}

#[test]
fn blocking_recv_wakes_with_zero_when_the_peer_closes() {
    let mut w = pair(Faults::NONE, 6);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let close_at = wire.now() + Duration::from_millis(20);
    let mut closed = false;
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now: Instant| {
        if !closed && now >= close_at {
            closed = b.close(server).is_ok();
        }
    });
    let mut buf = [0u8; 8];
    assert_eq!(Blocking::new(a, &mut driver).recv(client, &mut buf), Ok(0));
}

#[test]
fn sending_to_a_closed_peer_ends_in_broken_pipe() {
    let mut w = pair(Faults::NONE, 7);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    w.stacks[B].close(server).unwrap();
    w.settle();
    let mut buf = [0u8; 8];
    assert_eq!(w.stacks[A].recv(client, &mut buf), Ok(0));
    // As on Linux: the first send after the peer closed is accepted...
    assert_eq!(w.stacks[A].send(client, b"anyone?"), Ok(7));
    w.settle();
    // ...the closed peer answers with RST, and the next send fails.
    assert_eq!(
        w.stacks[A].send(client, b"hello?"),
        Err(SendError::BrokenPipe)
    );
}

#[test]
fn a_peer_reset_is_connection_reset_on_recv_after_the_data() {
    let mut w = pair(Faults::NONE, 8);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    w.stacks[B].send(server, b"partial").unwrap();
    w.settle();
    w.stacks[B].abort(server).unwrap();
    w.settle();
    let mut buf = [0u8; 32];
    assert_eq!(
        w.stacks[A].recv(client, &mut buf),
        Ok(7),
        "data before the RST is kept"
    );
    assert_eq!(
        w.stacks[A].recv(client, &mut buf),
        Err(RecvError::ConnectionReset)
    );
    assert_eq!(w.stacks[A].send(client, b"x"), Err(SendError::BrokenPipe));
}

#[test]
fn two_sends_arrive_as_one_recv_and_a_length_prefix_restores_them() {
    use ringnet::framing::{length_prefix, LengthPrefixDecoder};
    let mut w = pair(Faults::NONE, 9);
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    w.stacks[B].send(server, b"hello").unwrap();
    w.stacks[B].send(server, b"world").unwrap();
    w.settle();
    let mut buf = [0u8; 64];
    let n = w.stacks[A].recv(client, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"helloworld", "the stream keeps no boundaries");

    for message in [&b"hello"[..], b"world"] {
        w.stacks[B]
            .send(server, &length_prefix(message.len()).unwrap())
            .unwrap();
        w.stacks[B].send(server, message).unwrap();
    }
    w.settle();
    let n = w.stacks[A].recv(client, &mut buf).unwrap();
    let mut decoder = LengthPrefixDecoder::<64>::new();
    let mut input = &buf[..n];
    let mut messages = Vec::new();
    while !input.is_empty() {
        let (used, frame) = decoder.decode(input).unwrap();
        messages.extend(frame.map(<[u8]>::to_vec));
        input = &input[used..];
    }
    assert_eq!(messages, vec![b"hello".to_vec(), b"world".to_vec()]);
}

#[test]
fn wrap_around_in_a_small_ring_keeps_the_bytes_in_order() {
    let mut w = pair(Faults::NONE, 10);
    let (client, server, _) = w.connect(7, (100, 100), (100, 100));
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for round in 0..5u8 {
        let chunk: Vec<u8> = (0..70).map(|i| i ^ round).collect();
        assert_eq!(w.stacks[B].send(server, &chunk), Ok(70));
        expected.extend_from_slice(&chunk);
        w.settle();
        let mut buf = [0u8; 100];
        let n = w.stacks[A].recv(client, &mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, expected);
    assert_eq!(w.stacks[A].stats(client).unwrap().rx_high_water, 70);
}

#[test]
fn recv_timeout_expires_with_timed_out() {
    use ringnet::SocketOption;
    let mut w = pair(Faults::NONE, 11);
    let (client, _, _) = w.connect(7, (512, 512), (512, 512));
    w.stacks[A]
        .set_option(
            client,
            SocketOption::RecvTimeout(Some(Duration::from_millis(100))),
        )
        .unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let start = wire.now();
    let mut driver = PeerWaiter::new(wire, A, b, B, |_: &mut Stack<'static>, _: Instant| {});
    let mut buf = [0u8; 8];
    assert_eq!(
        Blocking::new(a, &mut driver).recv(client, &mut buf),
        Err(RecvError::TimedOut)
    );
    assert!(wire.now() - start >= Duration::from_millis(100));
    assert!(wire.now() - start < Duration::from_millis(200));
}

#[test]
fn a_call_nothing_can_unblock_gives_up_instead_of_hanging() {
    let mut w = pair(Faults::NONE, 12);
    let (client, _, _) = w.connect(7, (512, 512), (512, 512));
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |_: &mut Stack<'static>, _: Instant| {});
    let mut buf = [0u8; 8];
    assert_eq!(
        Blocking::new(a, &mut driver).recv(client, &mut buf),
        Err(RecvError::TimedOut)
    );
    assert!(wire.now() >= Instant::ZERO + ringnet::sim::STALL_AFTER);
}

#[test]
fn accept_takes_connections_in_order_and_a_full_backlog_refuses() {
    use ringnet::socket::tcp::{AcceptError, ConnectError};
    let mut w = pair(Faults::NONE, 13);
    let backlog = [
        tcp_socket(&mut w.stacks[B], 256, 256),
        tcp_socket(&mut w.stacks[B], 256, 256),
    ];
    let listener = w.stacks[B].listen(80, &backlog).unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| tcp_socket(&mut w.stacks[A], 256, 256))
        .collect();
    for &c in &clients[..2] {
        w.stacks[A].connect(c, ep(B, 80)).unwrap();
        w.settle();
    }
    w.stacks[A].connect(clients[2], ep(B, 80)).unwrap();
    w.settle();
    assert_eq!(
        w.stacks[A].poll_connect(clients[2]),
        Err(ConnectError::Refused)
    );
    let (first, peer1) = w.stacks[B].accept(listener).unwrap();
    let (second, peer2) = w.stacks[B].accept(listener).unwrap();
    assert_eq!(peer1, w.stacks[A].local_addr(clients[0]).unwrap());
    assert_eq!(peer2, w.stacks[A].local_addr(clients[1]).unwrap());
    assert_eq!(w.stacks[B].accept(listener), Err(AcceptError::WouldBlock));
    // Closing an accepted socket returns it to the backlog once its connection is over.
    w.stacks[B].close(first).unwrap();
    w.stacks[A].close(clients[0]).unwrap();
    w.run_for(Duration::from_millis(500));
    let again = tcp_socket(&mut w.stacks[A], 256, 256);
    w.stacks[A].connect(again, ep(B, 80)).unwrap();
    w.settle();
    assert_eq!(w.stacks[A].poll_connect(again), Ok(()));
    let (third, _) = w.stacks[B].accept(listener).unwrap();
    assert_eq!(
        third, first,
        "the recycled backlog socket took the connection"
    );
    assert_ne!(third, second);
}

#[test]
fn a_lossy_wire_still_delivers_every_byte_in_order_and_reproducibly() {
    let faults = Faults {
        loss: 0.1,
        corrupt: 0.05,
        duplicate: 0.05,
        reorder: 0.1,
        latency: Duration::from_millis(2),
        rate: Some(10_000_000),
    };
    let run = |seed| {
        let mut w = pair(faults, seed);
        let (client, server, _) = w.connect(7, (4096, 4096), (4096, 4096));
        let data: Vec<u8> = (0..128 * 1024u32).map(|i| (i % 253) as u8).collect();
        let mut received = Vec::new();
        let wire = w.wire;
        let (a, b) = w.two(A, B);
        let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
            let mut chunk = [0u8; 1024];
            while let Ok(n) = b.recv(server, &mut chunk) {
                received.extend_from_slice(&chunk[..n]);
            }
        });
        let mut sock = Blocking::new(a, &mut driver);
        sock.send_all(client, &data).unwrap();
        sock.flush(client).unwrap();

        w.settle();
        let mut chunk = [0u8; 1024];
        while let Ok(n) = w.stacks[B].recv(server, &mut chunk) {
            received.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(received.len(), data.len());
        assert!(received == data, "bytes differ");
        (w.wire.stats(), w.wire.now())
    };
    let (stats, end) = run(42);
    assert!(
        stats.lost > 0 && stats.corrupted > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "{stats:?}"
    );
    assert_eq!(run(42), (stats, end), "same seed, same run");
}

#[test]
fn a_send_larger_than_the_room_returns_a_partial_count_then_would_block() {
    let mut w = pair(Faults::NONE, 14);
    let (client, _, _) = w.connect(7, (128, 128), (128, 128));
    let a = &mut w.stacks[A];
    assert_eq!(a.send(client, &[7; 100]), Ok(100));
    assert_eq!(
        a.send(client, &[8; 100]),
        Ok(28),
        "only the room left is taken"
    );
    assert_eq!(a.send(client, &[9; 1]), Err(SendError::WouldBlock));
    let stats = a.stats(client).unwrap();
    assert_eq!(
        (stats.bytes_out, stats.tx_would_block, stats.tx_full_events),
        (128, 1, 1)
    );
    assert_eq!(a.ring_usage(client).unwrap().1, (128, 128));
}

#[test]
fn zero_copy_recv_lends_wrapped_bytes_in_order_and_keeps_the_rest() {
    let mut w = pair(Faults::NONE, 13);
    let (client, server, _) = w.connect(7, (100, 100), (100, 100));
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut pieces = 0;
    for round in 0..5u8 {
        let chunk: Vec<u8> = (0..70).map(|i| i ^ round).collect();
        assert_eq!(w.stacks[B].send(server, &chunk), Ok(70));
        expected.extend_from_slice(&chunk);
        w.settle();
        // Two calls: a short one, then the rest, which wraps around the ring's end.
        let n = w.stacks[A]
            .recv_with(client, 25, |bytes| {
                pieces += 1;
                got.extend_from_slice(bytes)
            })
            .unwrap();
        assert_eq!(n, 25);
        let n = w.stacks[A]
            .recv_with(client, 1000, |bytes| {
                pieces += 1;
                got.extend_from_slice(bytes)
            })
            .unwrap();
        assert_eq!(n, 45);
        assert_eq!(w.stacks[A].ring_usage(client).unwrap().0, (0, 100));
    }
    assert_eq!(got, expected);
    assert!(pieces > 10, "some reads wrapped into two pieces: {pieces}");
    assert_eq!(w.stacks[A].stats(client).unwrap().bytes_in, 350);
    assert_eq!(
        w.stacks[A].recv_with(client, 10, |_| panic!("nothing to lend")),
        Err(RecvError::WouldBlock)
    );
    w.stacks[B].close(server).unwrap();
    w.settle();
    assert_eq!(
        w.stacks[A].recv_with(client, 10, |_| {}),
        Ok(0),
        "end of stream"
    );
}

#[test]
fn zero_copy_send_queues_what_the_filler_wrote_and_blocks_when_full() {
    let mut w = pair(Faults::NONE, 14);
    let (client, server, _) = w.connect(7, (512, 512), (512, 100));
    // The filler writes only 30 of what it is lent: only those are queued.
    let n = w.stacks[B]
        .send_with(server, 1000, |room| {
            room[..30].fill(b'a');
            30
        })
        .unwrap();
    assert_eq!(n, 30);
    let n = w.stacks[B]
        .send_with(server, 1000, |room| {
            room.fill(b'b');
            room.len()
        })
        .unwrap();
    assert_eq!(n, 70, "the rest of the 100-byte ring");
    assert_eq!(
        w.stacks[B].send_with(server, 1000, |_| panic!("no room to lend")),
        Err(SendError::WouldBlock)
    );
    w.settle();
    let mut buf = [0u8; 200];
    let n = w.stacks[A].recv(client, &mut buf).unwrap();
    let mut expected = vec![b'a'; 30];
    expected.extend_from_slice(&[b'b'; 70]);
    assert_eq!(&buf[..n], &expected[..]);
    assert_eq!(w.stacks[B].stats(server).unwrap().bytes_out, 100);
}

#[test]
fn a_backlog_socket_in_time_wait_makes_way_for_the_next_syn() {
    let mut w = pair(Faults::NONE, 17);
    let (client, server, listener) = w.connect(7003, (256, 256), (256, 256));
    // The server closes first, so its socket, the backlog's only one, ends in TIME-WAIT.
    w.stacks[B].send(server, b"bye").unwrap();
    w.stacks[B].close(server).unwrap();
    w.step_for(Duration::from_millis(5), |_, _| {});
    let mut buf = [0u8; 8];
    assert_eq!(w.stacks[A].recv(client, &mut buf), Ok(3));
    assert_eq!(w.stacks[A].recv(client, &mut buf), Ok(0));
    w.stacks[A].close(client).unwrap();
    // Well inside the 50 ms short TIME-WAIT: once the ACK of the client's FIN is out, the
    // starved backlog takes its socket back, and the next client is served, not refused.
    w.step_for(Duration::from_millis(2), |_, _| {});
    let again = tcp_socket(&mut w.stacks[A], 256, 256);
    w.stacks[A].connect(again, ep(B, 7003)).unwrap();
    w.step_for(Duration::from_millis(5), |_, _| {});
    assert_eq!(w.stacks[A].poll_connect(again), Ok(()));
    assert!(w.stacks[B].accept(listener).is_ok());
}

#[test]
fn a_backlog_socket_in_time_wait_rejoins_after_a_short_wait_that_poll_at_announces() {
    let mut w = pair(Faults::NONE, 19);
    let backlog = [
        tcp_socket(&mut w.stacks[B], 256, 256),
        tcp_socket(&mut w.stacks[B], 256, 256),
    ];
    let listener = w.stacks[B].listen(7003, &backlog).unwrap();
    let client = tcp_socket(&mut w.stacks[A], 256, 256);
    w.stacks[A].connect(client, ep(B, 7003)).unwrap();
    w.step_for(Duration::from_millis(5), |_, _| {});
    let (server, _) = w.stacks[B].accept(listener).unwrap();
    w.stacks[B].close(server).unwrap();
    w.step_for(Duration::from_millis(5), |_, _| {});
    w.stacks[A].close(client).unwrap();
    w.step_for(Duration::from_millis(5), |_, _| {});
    // The other backlog socket still listens, so this one waits out the short TIME-WAIT,
    // and the stack says when to poll for it (nothing else is due).
    let now = w.wire.now();
    let due = w.stacks[B]
        .poll_at()
        .expect("a TIME-WAIT socket to recycle");
    assert!(
        due > now && due <= now + Duration::from_millis(50),
        "{due:?}"
    );
    w.step_for(Duration::from_millis(50), |_, _| {});
    assert_eq!(
        w.stacks[B].poll_at(),
        None,
        "both backlog sockets listen again"
    );
}
