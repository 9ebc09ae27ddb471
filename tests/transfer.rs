//! The transfer protocol over the simulated wire: both directions, faults, vanishing
//! peers and every kind of bad input.

use ringnet::blocking::Blocking;
use ringnet::phy::Discards;
use ringnet::services::{pattern_byte, MinRate, Pattern, ServiceError, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::socket::tcp::RecvError;
use ringnet::transfer::{self, Message, Status, Store, StoreError, TransferError, TransferServer};
use ringnet::{Duration, Instant, SocketHandle, SocketOption, Stack};
use ringnet_testkit::*;
use sha2::{Digest, Sha256};

/// Binds `$sock`, A's blocking view, while `$server` serves on B at least every `$tick_ms`.
macro_rules! served {
    ($w:ident, $server:ident, $sock:ident, $tick_ms:expr) => {
        beside!(
            $w,
            |b: &mut Stack<'static>, _: Instant| $server.poll(b),
            $sock,
            Duration::from_millis($tick_ms)
        );
    };
}

fn lossy(p: f32) -> Faults {
    Faults {
        loss: p,
        corrupt: p,
        duplicate: p,
        reorder: p,
        latency: Duration::from_millis(1),
        rate: None,
    }
}

/// A world with a transfer server on B, and the rings given to A's client socket.
fn setup(
    faults: Faults,
    seed: u64,
    rings: usize,
) -> (World<2>, TransferServer<MemStore>, SocketHandle) {
    setup_with(faults, seed, rings, MemStore::default())
}

/// As [`setup`], with the server keeping its files in `store`.
fn setup_with<S: Store>(
    faults: Faults,
    seed: u64,
    rings: usize,
    store: S,
) -> (World<2>, TransferServer<S>, SocketHandle) {
    let mut w = pair(faults, seed);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], rings, rings))
        .collect();
    let server = TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &backlog, store).unwrap();
    let client = tcp_socket(&mut w.stacks[A], rings, rings);
    (w, server, client)
}

fn digest_of(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn pattern(size: u64) -> Vec<u8> {
    (0..size).map(pattern_byte).collect()
}

/// Puts a pattern of `size` bytes from A, then gets it back; both verified. Returns what
/// B's interface discarded.
fn put_then_get(faults: Faults, seed: u64, size: u64, rings: usize) -> Discards {
    let (mut w, mut server, client) = setup(faults, seed, rings);
    // At 20% loss smoltcp's retransmission backoff reaches a minute; silence is no death,
    // and an average below the minimum rate (about 400 B/s here) is the wire's, not a
    // hostile client's.
    server.set_idle_timeout(Duration::from_secs(600));
    server.set_min_rate(MinRate::OFF);
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let digest = transfer::put(
        &mut sock.stream(client),
        "data.bin",
        &Pattern(size),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(digest, digest_of(&pattern(size)));
    sock.stack().close(client).unwrap();

    let again = tcp_socket(sock.stack(), rings, rings);
    sock.connect(again, ep(B, TRANSFER_PORT)).unwrap();
    let mut got = Vec::new();
    let (got_size, got_digest) = transfer::get(
        &mut sock.stream(again),
        "data.bin",
        (0, Sha256::new()),
        &mut |d| {
            got.extend_from_slice(d);
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((got_size, got_digest), (size, digest));
    assert!(got == pattern(size), "bytes differ");
    sock.stack().close(again).unwrap();
    assert_eq!(server.completed(), 2);
    assert_eq!(server.store().files["data.bin"].len() as u64, size);
    w.stacks[B].discards()
}

#[test]
fn small_files_survive_a_wire_with_twenty_percent_faults() {
    for (seed, size) in [(50, 0), (51, 1), (52, 1 << 20)] {
        put_then_get(lossy(0.2), seed, size, 4096);
    }
}

#[test]
fn a_get_after_a_put_survives_the_wires_duplicates_of_its_syn() {
    // Each of these once failed: the get's SYN, duplicated by the wire, reached the
    // backlog socket the put had left listening, which reset the get's connection. (Seed
    // 66 stands for 67, whose wire no longer duplicates the get's SYN since the server's
    // answers leave in the poll that makes them.)
    for (seed, rings) in [(61, 4096), (62, 8192), (66, 8192)] {
        let discards = put_then_get(lossy(0.2), seed, 300_000, rings);
        assert!(
            discards.duplicate_syn > 0,
            "seed {seed}, {rings} B rings: {discards}"
        );
    }
}

#[test]
fn a_lossy_clients_orphan_lives_as_long_as_it_retransmits() {
    // Each of these once failed: the server's orphan, its file sent but not all
    // acknowledged, waited out smoltcp's minute of backoff and was reset by a 60 s timer
    // before its next retransmission. It is now bounded by its count of them.
    for seed in [60, 75, 83] {
        put_then_get(lossy(0.2), seed, 300_000, 16384);
    }
}

#[test]
fn a_lossy_clients_handshake_has_as_long_as_linux_gives_it() {
    // Each of these once failed: the server's half-open socket listened again 5 s after
    // the SYN, before the client's ACK got through, and the client's data met RST.
    for (seed, rings) in [(94, 16384), (95, 4096)] {
        put_then_get(lossy(0.2), seed, 300_000, rings);
    }
}

#[test]
fn without_duplicates_no_syn_is_dropped() {
    let discards = put_then_get(Faults::NONE, 55, 300_000, 4096);
    assert_eq!(discards, Discards::default());
}

#[test]
fn a_64_mib_file_goes_both_ways_bit_exact() {
    put_then_get(lossy(0.01), 53, 64 << 20, 64 * 1024);
}

#[test]
fn a_resumed_get_fetches_only_the_rest_and_verifies_the_whole() {
    let (mut w, mut server, client) = setup(Faults::NONE, 54, 4096);
    let file = pattern(100_000);
    server.store().files.insert("big".into(), file.clone());
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let kept = &file[..60_000];
    let mut hasher = Sha256::new();
    hasher.update(kept);
    let mut rest = Vec::new();
    let (size, digest) = transfer::get(
        &mut sock.stream(client),
        "big",
        (60_000, hasher),
        &mut |d| {
            rest.extend_from_slice(d);
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(size, 100_000);
    assert_eq!(rest, &file[60_000..]);
    assert_eq!(digest, digest_of(&file));
}

#[test]
fn a_get_from_a_digest_sink_is_refused_before_any_data_not_cut_off() {
    let (mut w, mut server, client) =
        setup_with(Faults::NONE, 56, 4096, transfer::DigestSink::<2>::new());
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let digest = transfer::put(
        &mut sock.stream(client),
        "kept",
        &Pattern(10_000),
        &mut |_, _| {},
    );
    assert_eq!(digest.unwrap(), digest_of(&pattern(10_000)));
    sock.stack().close(client).unwrap();

    let again = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(again, ep(B, TRANSFER_PORT)).unwrap();
    let mut received = 0;
    let result = transfer::get(
        &mut sock.stream(again),
        "kept",
        (0, Sha256::new()),
        &mut |d| {
            received += d.len();
            Ok(())
        },
        &mut |_, _| {},
    );
    match result {
        Err(TransferError::Refused { status, reason }) => {
            assert_eq!(status, Status::Storage);
            assert_eq!(reason.as_str(), StoreError::Unreadable.as_str());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(received, 0);
}

#[test]
fn an_older_put_into_a_digest_sink_is_a_conflict_even_once_the_newer_ones_record_gave_way() {
    // A sink of one record: the newer put of `f` is recorded, then `g`'s record takes its
    // place, and only then does the older put of `f` send the rest of its data and a
    // right trailer. It lost the race all the same: never verified, never recorded.
    let (mut w, mut server, first) =
        setup_with(Faults::NONE, 57, 4096, transfer::DigestSink::<1, 2>::new());
    served!(w, server, sock, 100);
    let older = pattern(6000);
    sock.connect(first, ep(B, TRANSFER_PORT)).unwrap();
    let mut frame = [0u8; 300];
    let n = Message::Put {
        name: "f",
        size: 6000,
    }
    .emit(&mut frame)
    .unwrap();
    sock.send_all(first, &frame[..n]).unwrap();
    sock.send_all(first, &older[..3000]).unwrap();
    sock.flush(first).unwrap();
    for (name, size) in [("f", 100), ("g", 10)] {
        let conn = tcp_socket(sock.stack(), 4096, 4096);
        sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
        let put = transfer::put(&mut sock.stream(conn), name, &Pattern(size), &mut |_, _| {});
        assert_eq!(put, Ok(digest_of(&pattern(size))), "{name}");
        sock.stack().close(conn).unwrap();
    }
    sock.send_all(first, &older[3000..]).unwrap();
    let n = Message::Trailer {
        sha256: digest_of(&older),
    }
    .emit(&mut frame)
    .unwrap();
    sock.send_all(first, &frame[..n]).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(first, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    // The accept (25 bytes), then the status frame: its length, magic, kind, status.
    let status = &reply[25..];
    assert_eq!(&status[4..9], b"RNT2\x04", "{reply:?}");
    assert_eq!(status[9], Status::Conflict as u8, "the older put's status");
    assert_eq!(
        server.store().record("f"),
        None,
        "the older put was never recorded"
    );
    assert_eq!(server.completed(), 2, "the two later puts only");
}

/// Sends raw bytes as a client; returns every byte the server answered with, how the
/// stream ended (`Ok` at EOF), and the server.
fn exchange(
    bytes: &[u8],
    shutdown: bool,
) -> (Vec<u8>, Result<(), RecvError>, TransferServer<MemStore>) {
    let (mut w, mut server, client) = setup(Faults::NONE, 55, 4096);
    server
        .store()
        .files
        .insert("small".into(), b"12345".to_vec());
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(client, bytes).unwrap();
    if shutdown {
        sock.stack().shutdown_write(client).unwrap();
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    let end = loop {
        match sock.recv(client, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    (reply, end, server)
}

/// Sends raw bytes as a client and returns the status the server answers with.
fn raw_status(bytes: &[u8], shutdown: bool) -> (Status, String, TransferServer<MemStore>) {
    let (reply, _, server) = exchange(bytes, shutdown);
    // Skip an Accept frame, if any, to the final status.
    let mut frames = &reply[..];
    loop {
        let len = u32::from_be_bytes(frames[..4].try_into().unwrap()) as usize;
        match Message::parse(&frames[4..4 + len]).unwrap() {
            Message::Status { status, reason, .. } => {
                let reason = reason.to_string();
                return (status, reason, server);
            }
            _ => frames = &frames[4 + len..],
        }
    }
}

/// A version 2 put request, written out by hand (names the emitter would refuse too).
fn put_frame(name: &[u8], size: u64) -> Vec<u8> {
    let mut payload = b"RNT2".to_vec();
    payload.push(1);
    payload.push(name.len() as u8);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&size.to_be_bytes());
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// The trailer frame that follows a put's data.
fn trailer(sha: [u8; 32]) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 37];
    frame.extend_from_slice(b"RNT2\x06");
    frame.extend_from_slice(&sha);
    frame
}

/// A whole put, written at once: request, data, trailer.
fn whole_put(name: &[u8], data: &[u8], sha: [u8; 32]) -> Vec<u8> {
    let mut bytes = put_frame(name, data.len() as u64);
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(&trailer(sha));
    bytes
}

#[test]
fn a_server_sized_for_one_connection_takes_a_backlog_of_one_and_no_more() {
    let mut w = pair(lossy(0.0), 7);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    let too_many = TransferServer::<MemStore, 1>::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &backlog,
        MemStore::default(),
    );
    assert!(matches!(too_many, Err(ServiceError::TooManySockets)));
    let one = TransferServer::<MemStore, 1>::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &backlog[..1],
        MemStore::default(),
    );
    assert!(one.is_ok());
}

#[test]
fn bad_requests_get_a_specific_status_and_store_nothing() {
    let mut bad_magic = put_frame(b"x", 1);
    bad_magic[4] = b'Z';
    assert_eq!(raw_status(&bad_magic, false).0, Status::BadRequest);

    let oversize = 100_000u32.to_be_bytes();
    let (status, reason, _) = raw_status(&oversize, false);
    assert_eq!(status, Status::BadRequest);
    assert!(reason.contains("exceeds"), "{reason}");

    for name in [&b"../x"[..], b"a/b", b"", &[b'n'; 200][..]] {
        let (status, _, server) = raw_status(&put_frame(name, 1), false);
        assert_eq!(
            status,
            Status::BadName,
            "{:?}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(server.completed(), 0);
    }

    let data = b"hello";
    let mut wrong_size = put_frame(b"f", 10);
    wrong_size.extend_from_slice(data);
    let (status, _, mut server) = raw_status(&wrong_size, true);
    assert_eq!(status, Status::SizeMismatch);
    assert_eq!(
        server.store().size("f"),
        Err(StoreError::NotFound),
        "no partial file"
    );

    let wrong_digest = whole_put(b"f", data, [9; 32]);
    let (status, _, mut server) = raw_status(&wrong_digest, false);
    assert_eq!(status, Status::DigestMismatch);
    assert_eq!(
        server.store().size("f"),
        Err(StoreError::NotFound),
        "nothing stored"
    );

    let mut get = b"RNT2".to_vec();
    get.extend_from_slice(&[2, 5]);
    get.extend_from_slice(b"small");
    get.extend_from_slice(&6u64.to_be_bytes());
    let mut frame = (get.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&get);
    assert_eq!(raw_status(&frame, false).0, Status::OffsetBeyondEnd);

    let mut missing = b"RNT2".to_vec();
    missing.extend_from_slice(&[2, 4]);
    missing.extend_from_slice(b"none");
    missing.extend_from_slice(&0u64.to_be_bytes());
    let mut frame = (missing.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&missing);
    assert_eq!(raw_status(&frame, false).0, Status::NotFound);
}

/// The frames of a raw reply, parsed.
fn frames_of(reply: &[u8]) -> Vec<Message<'_>> {
    let mut frames = Vec::new();
    let mut rest = reply;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        frames.push(Message::parse(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    frames
}

/// A client connected to the transfer port that has sent `start`.
fn connected_with<D: ringnet::blocking::Waiter>(
    sock: &mut Blocking<'_, 'static, D>,
    start: &[u8],
) -> SocketHandle {
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(conn, start).unwrap();
    conn
}

/// Sends each client its next `bytes` (without waiting for room) and adds what the server
/// has answered it so far to its reply.
fn trickle<D: ringnet::blocking::Waiter>(
    sock: &mut Blocking<'_, 'static, D>,
    clients: &[SocketHandle],
    bytes: &[&[u8]],
    replies: &mut [Vec<u8>],
) {
    let mut buf = [0u8; 256];
    for ((&conn, reply), bytes) in clients.iter().zip(replies).zip(bytes) {
        let _ = sock.stack().send(conn, bytes);
        while let Ok(n @ 1..) = sock.stack().recv(conn, &mut buf) {
            reply.extend_from_slice(&buf[..n]);
        }
    }
}

/// The digest a new client's put of 5000 bytes (with `token`, if any) was verified with.
fn a_new_clients_put<D: ringnet::blocking::Waiter>(
    sock: &mut Blocking<'_, 'static, D>,
    token: Option<&str>,
) -> Result<[u8; 32], TransferError> {
    let client = tcp_socket(sock.stack(), 8192, 8192);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    transfer::put_with_token(
        &mut sock.stream(client),
        "after.bin",
        token,
        &Pattern(5_000),
        &mut |_, _| {},
    )
}

/// Sends raw bytes as a client and returns every byte the server answers with; the
/// stream must end in order (a status, never a reset).
fn raw_reply(bytes: &[u8], shutdown: bool) -> Vec<u8> {
    let (reply, end, _) = exchange(bytes, shutdown);
    assert_eq!(
        end,
        Ok(()),
        "after {} bytes: a status, never a reset",
        reply.len()
    );
    reply
}

#[test]
fn a_get_followed_by_stray_bytes_is_refused_before_any_accept() {
    let mut get = b"RNT2".to_vec();
    get.extend_from_slice(&[2, 5]);
    get.extend_from_slice(b"small");
    get.extend_from_slice(&0u64.to_be_bytes());
    let mut bytes = (get.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&get);
    bytes.extend_from_slice(b"stray");
    let reply = raw_reply(&bytes, false);
    let frames = frames_of(&reply);
    assert!(
        matches!(
            frames.first(),
            Some(Message::Status {
                status: Status::BadRequest,
                ..
            })
        ),
        "{frames:?}"
    );
    assert_eq!(frames.len(), 1, "no Accept, no data: {frames:?}");
}

#[test]
fn a_truncated_frame_then_fin_gets_a_status_not_a_reset() {
    let whole = put_frame(b"f", 5);
    let reply = raw_reply(&whole[..whole.len() - 7], true);
    let frames = frames_of(&reply);
    assert!(
        matches!(
            frames.as_slice(),
            [Message::Status {
                status: Status::BadRequest,
                ..
            }]
        ),
        "{frames:?}"
    );
}

#[test]
fn a_status_reason_longer_than_emit_writes_is_a_parse_error() {
    // What a server could never have sent: a reason of 65 bytes.
    let status = |reason_len: u8| {
        let mut payload = b"RNT2".to_vec();
        payload.push(4);
        payload.push(Status::NotFound as u8);
        payload.extend_from_slice(&[0; 32]);
        payload.push(reason_len);
        payload.extend_from_slice(&vec![b'r'; usize::from(reason_len)]);
        payload
    };
    assert_eq!(
        Message::parse(&status(65)).map(|_| ()),
        Err(ringnet::transfer::WireError::TooLong)
    );
    // And 64 bytes, the most emit writes, parse.
    let longest = status(64);
    assert!(
        matches!(Message::parse(&longest), Ok(Message::Status { reason, .. }) if reason.len() == 64),
        "{:?}",
        Message::parse(&longest)
    );
}

#[test]
fn a_client_that_aborts_mid_put_leaves_no_file_and_frees_the_socket() {
    let (mut w, mut server, client) = setup(Faults::NONE, 56, 4096);
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let data = pattern(50_000);
    let mut frame = put_frame(b"half", 50_000);
    frame.extend_from_slice(&data[..20_000]);
    sock.send_all(client, &frame).unwrap();
    sock.flush(client).unwrap();
    sock.stack().abort(client).unwrap();
    sock.sleep(Duration::from_millis(500));
    assert_eq!(server.active(), 0, "the server dropped the connection");
    assert_eq!(server.store().size("half"), Err(StoreError::NotFound));
    w.run_for(Duration::from_secs(1));
    // Both backlog sockets are listening again: two new connections are taken at once.
    let fresh: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[A], 1024, 1024))
        .collect();
    for &conn in &fresh {
        w.stacks[A].connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    }
    w.settle();
    for conn in fresh {
        assert_eq!(w.stacks[A].poll_connect(conn), Ok(()));
    }
}

#[test]
fn a_client_that_falls_silent_times_out_and_leaves_no_file() {
    let (mut w, mut server, client) = setup(Faults::NONE, 57, 4096);
    server.set_idle_timeout(Duration::from_secs(2));
    let wire = w.wire;
    let start = wire.now();
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let mut frame = put_frame(b"slow", 1000);
    frame.extend_from_slice(&[1; 10]);
    sock.send_all(client, &frame).unwrap();
    // The client waits for a reply that never comes: the server gives up and resets.
    let mut buf = [0u8; 64];
    let mut seen = Vec::new();
    let outcome = loop {
        match sock.recv(client, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(
        outcome,
        Err(ringnet::socket::tcp::RecvError::ConnectionReset)
    );
    assert!(wire.now() - start >= Duration::from_secs(2));
    assert_eq!(server.active(), 0);
    assert_eq!(server.store().size("slow"), Err(StoreError::NotFound));
}

#[test]
fn a_server_that_vanishes_mid_get_is_an_error_not_a_short_file() {
    let (mut w, mut server, client) = setup(Faults::NONE, 58, 2048);
    server.store().files.insert("big".into(), pattern(200_000));
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut polls = 0;
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        polls += 1;
        if polls < 200 {
            server.poll(b);
        } else if polls == 200 {
            // The server's host dies: every connection reset.
            let handles: Vec<_> = b.handles().collect();
            for h in handles {
                let _ = b.abort(h);
            }
        }
    });
    let mut sock = Blocking::new(a, &mut driver);
    sock.stack()
        .set_option(
            client,
            SocketOption::RecvTimeout(Some(Duration::from_secs(5))),
        )
        .unwrap();
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let mut kept = 0usize;
    let result = transfer::get(
        &mut sock.stream(client),
        "big",
        (0, Sha256::new()),
        &mut |d| {
            kept += d.len();
            Ok(())
        },
        &mut |_, _| {},
    );
    assert!(
        matches!(
            result,
            Err(TransferError::Io(
                embedded_io::ErrorKind::ConnectionReset | embedded_io::ErrorKind::TimedOut
            )) | Err(TransferError::UnexpectedEnd)
        ),
        "{result:?}"
    );
    assert!(kept < 200_000, "the transfer really was cut short ({kept})");
}

/// Puts `data` as `name` from A with `token`, on a server whose token is `required`.
fn put_with(
    required: Option<&str>,
    attempts: &[(Option<&str>, &str)],
) -> (Vec<Result<[u8; 32], TransferError>>, MemStore) {
    let (mut w, mut server, _) = setup(Faults::NONE, 13, 8192);
    server.set_token(required).unwrap();
    served!(w, server, sock, 50);
    let mut results = Vec::new();
    for (token, name) in attempts {
        let client = tcp_socket(sock.stack(), 8192, 8192);
        sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
        results.push(transfer::put_with_token(
            &mut sock.stream(client),
            name,
            *token,
            &Pattern(20_000),
            &mut |_, _| {},
        ));
        sock.stack().close(client).unwrap();
    }
    (results, std::mem::take(server.store()))
}

#[test]
fn a_server_with_a_token_takes_puts_only_with_it_and_says_unauthorized_otherwise() {
    let (results, store) = put_with(
        Some("s3cret"),
        &[
            (None, "none.bin"),
            (Some("wrong"), "wrong.bin"),
            (Some("s3cret"), "right.bin"),
        ],
    );
    for (result, why) in results[..2]
        .iter()
        .zip(["puts need a token", "wrong token"])
    {
        match result {
            Err(TransferError::Refused {
                status: Status::Unauthorized,
                reason,
            }) => assert_eq!(reason, why),
            other => panic!("expected unauthorized ({why}), got {other:?}"),
        }
    }
    assert_eq!(results[2], Ok(digest_of(&pattern(20_000))));
    let mut names: Vec<_> = store.files.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        ["right.bin"],
        "only the put with the token stored anything"
    );
    assert_eq!(store.files["right.bin"], pattern(20_000));
}

#[test]
fn without_a_token_puts_stay_open_with_or_without_one_and_bad_tokens_never_leave() {
    let (results, store) = put_with(None, &[(None, "a.bin"), (Some("any"), "b.bin")]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.files.len(), 2);
    let (results, store) = put_with(Some("t"), &[(Some("has space"), "c.bin")]);
    assert!(
        matches!(
            results[0],
            Err(TransferError::Wire(transfer::WireError::BadToken(
                transfer::TokenError::NotPrintable
            )))
        ),
        "{results:?}"
    );
    assert!(store.files.is_empty());
    let (mut w, _, _) = setup(Faults::NONE, 14, 1024);
    let backlog = tcp_socket(&mut w.stacks[B], 1024, 1024);
    let mut other =
        TransferServer::<MemStore>::new(&mut w.stacks[B], 7100, &[backlog], MemStore::default())
            .unwrap();
    assert_eq!(
        other.set_token(Some(&"x".repeat(65))),
        Err(transfer::TokenError::TooLong)
    );
    assert_eq!(other.set_token(Some("")), Err(transfer::TokenError::Empty));
}

/// The status of a raw exchange, and what the server's store then holds under `name`.
fn status_and_file(bytes: &[u8], shutdown: bool, name: &str) -> (Status, String, Option<Vec<u8>>) {
    let (reply, end, _) = exchange(bytes, shutdown);
    assert_eq!(end, Ok(()), "{:?}", frames_of(&reply));
    let (status, reason, mut server) = raw_status(bytes, shutdown);
    assert_eq!(server.active(), 0, "the connection ended");
    let file = server.store().files.get(name).cloned();
    (status, reason, file)
}

#[test]
fn a_put_written_at_once_request_data_and_trailer_is_verified_and_stored() {
    let data = pattern(3000);
    let (status, _, file) = status_and_file(
        &whole_put(b"at-once", &data, digest_of(&data)),
        false,
        "at-once",
    );
    assert_eq!(status, Status::Ok);
    assert_eq!(file, Some(data));
    let (status, _, file) =
        status_and_file(&whole_put(b"empty", b"", digest_of(b"")), false, "empty");
    assert_eq!(status, Status::Ok);
    assert_eq!(file, Some(Vec::new()), "an empty file is a file");
}

#[test]
fn a_wrong_or_missing_trailer_leaves_no_file_and_never_a_verified_answer() {
    let data = pattern(5000);
    // The trailer's digest is of other data.
    let (status, reason, file) =
        status_and_file(&whole_put(b"f", &data, digest_of(b"other")), false, "f");
    assert_eq!(status, Status::DigestMismatch, "{reason}");
    assert_eq!(file, None);
    // All the data, then FIN: no trailer at all.
    let mut no_trailer = put_frame(b"f", 5000);
    no_trailer.extend_from_slice(&data);
    let (status, reason, file) = status_and_file(&no_trailer, true, "f");
    assert_eq!(status, Status::BadRequest);
    assert!(reason.contains("before the trailer"), "{reason}");
    assert_eq!(file, None);
    // The trailer cut short by FIN.
    let whole = whole_put(b"f", &data, digest_of(&data));
    let (status, _, file) = status_and_file(&whole[..whole.len() - 5], true, "f");
    assert_eq!(status, Status::BadRequest);
    assert_eq!(file, None);
    // Another frame where the trailer belongs: a get of 41 bytes, say.
    let mut wrong_frame = put_frame(b"f", 5000);
    wrong_frame.extend_from_slice(&data);
    let mut get = b"RNT2".to_vec();
    get.extend_from_slice(&[2, 23]);
    get.extend_from_slice(&[b'g'; 23]);
    get.extend_from_slice(&0u64.to_be_bytes());
    wrong_frame.extend_from_slice(&(get.len() as u32).to_be_bytes());
    wrong_frame.extend_from_slice(&get);
    assert_eq!(wrong_frame.len() - 5000 - 19, 41, "as long as a trailer");
    let (status, reason, file) = status_and_file(&wrong_frame, false, "f");
    assert_eq!(status, Status::BadRequest);
    assert!(reason.contains("expected the trailer"), "{reason}");
    assert_eq!(file, None);
    // A version 1 trailer: refused as well.
    let mut v1_trailer = put_frame(b"f", 5000);
    v1_trailer.extend_from_slice(&data);
    let mut t = trailer(digest_of(&data));
    t[4..8].copy_from_slice(b"RNT1");
    v1_trailer.extend_from_slice(&t);
    let (status, _, file) = status_and_file(&v1_trailer, false, "f");
    assert_eq!(status, Status::BadRequest);
    assert_eq!(file, None);
    // Bytes after the trailer, sent with it.
    let mut stray = whole_put(b"f", &data, digest_of(&data));
    stray.extend_from_slice(b"stray");
    let (status, reason, file) = status_and_file(&stray, false, "f");
    assert_eq!(status, Status::BadRequest);
    assert!(reason.contains("after the trailer"), "{reason}");
    assert_eq!(file, None);
}

#[test]
fn a_version_1_request_is_refused_in_a_frame_a_version_1_client_reads() {
    // A version 1 put: the digest in the request, the data right after it.
    let data = b"hello";
    let mut payload = b"RNT1".to_vec();
    payload.extend_from_slice(&[1, 1, b'f']);
    payload.extend_from_slice(&5u64.to_be_bytes());
    payload.extend_from_slice(&digest_of(data));
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(data);
    let (reply, end, mut server) = exchange(&bytes, false);
    assert_eq!(end, Ok(()), "a status, never a reset");
    let len = u32::from_be_bytes(reply[..4].try_into().unwrap()) as usize;
    assert_eq!(reply.len(), 4 + len, "one frame, no Accept");
    let frame = &reply[4..];
    assert_eq!(&frame[..5], b"RNT1\x04", "a version 1 status");
    assert_eq!(frame[5], Status::BadRequest as u8);
    let reason = std::str::from_utf8(&frame[39..]).unwrap();
    assert_eq!(reason, transfer::wire::VERSION1_REFUSAL);
    assert!(reason.contains("version 1") && reason.contains("RNT2"));
    assert_eq!(server.store().size("f"), Err(StoreError::NotFound));
    assert_eq!(server.completed(), 0);
}

#[test]
fn the_upload_is_staged_until_the_trailer_checks() {
    let (mut w, mut server, client) = setup(Faults::NONE, 59, 4096);
    let server = std::cell::RefCell::new(&mut server);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.borrow_mut().poll(b)
    })
    .with_app_tick(Duration::from_millis(50));
    let mut sock = Blocking::new(a, &mut driver);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let data = pattern(40_000);
    let mut bytes = put_frame(b"staged", 40_000);
    bytes.extend_from_slice(&data);
    sock.send_all(client, &bytes).unwrap();
    sock.flush(client).unwrap();
    sock.sleep(Duration::from_millis(500));
    assert_eq!(
        server.borrow_mut().store().size("staged"),
        Err(StoreError::NotFound),
        "all the data is in, the trailer is not: nothing under the name"
    );
    assert_eq!(server.borrow().active(), 1, "still waiting for the trailer");
    sock.send_all(client, &trailer(digest_of(&data))).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(client, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    let frames = frames_of(&reply);
    assert!(
        matches!(
            frames.as_slice(),
            [Message::Accept { size: 40_000, offset: 0 }, Message::Status { status: Status::Ok, digest, .. }]
                if *digest == digest_of(&data)
        ),
        "{frames:?}"
    );
    assert_eq!(server.borrow_mut().store().files["staged"], data);
}

#[test]
fn a_resumed_get_over_twenty_percent_faults_verifies_the_whole_file() {
    let (mut w, mut server, client) = setup(lossy(0.2), 60, 4096);
    // As in `put_then_get`: the wire, not the client, is slow.
    server.set_idle_timeout(Duration::from_secs(600));
    server.set_min_rate(MinRate::OFF);
    let file = pattern(150_000);
    server.store().files.insert("big".into(), file.clone());
    served!(w, server, sock, 100);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let mut hasher = Sha256::new();
    hasher.update(&file[..90_000]);
    let mut rest = Vec::new();
    let (size, digest) = transfer::get(
        &mut sock.stream(client),
        "big",
        (90_000, hasher),
        &mut |d| {
            rest.extend_from_slice(d);
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((size, digest), (150_000, digest_of(&file)));
    assert!(rest == file[90_000..], "only the rest, bit exact");
    // A prefix the client kept wrongly is caught: the digest covers the whole file.
    let again = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(again, ep(B, TRANSFER_PORT)).unwrap();
    let mut wrong = Sha256::new();
    wrong.update(&pattern(90_001)[1..]);
    let result = transfer::get(
        &mut sock.stream(again),
        "big",
        (90_000, wrong),
        &mut |_| Ok(()),
        &mut |_, _| {},
    );
    assert_eq!(result, Err(TransferError::DigestMismatch));
}

#[test]
fn refused_clients_that_trickle_bytes_forever_do_not_hold_the_server() {
    // Two clients whose puts were refused (no token) keep sending a byte a second, never
    // pausing long enough to end the server's drain and never closing: they must not
    // keep both of the server's sockets for ever.
    let (mut w, mut server, _) = setup(Faults::NONE, 15, 4096);
    server.set_token(Some("s3cret")).unwrap();
    served!(w, server, sock, 100);
    let request = put_frame(b"f", 1 << 30);
    let tricklers: Vec<_> = (0..2)
        .map(|_| connected_with(&mut sock, &request))
        .collect();
    let mut replies = vec![Vec::new(); tricklers.len()];
    for _ in 0..150 {
        trickle(&mut sock, &tricklers, &[b"x", b"x"], &mut replies);
        sock.sleep(Duration::from_secs(1));
    }
    for reply in &replies {
        assert!(
            matches!(
                frames_of(reply)[..],
                [Message::Status {
                    status: Status::Unauthorized,
                    ..
                }]
            ),
            "each trickler was told why first: {reply:?}"
        );
    }
    let put = a_new_clients_put(&mut sock, Some("s3cret"));
    assert_eq!(
        put,
        Ok(digest_of(&pattern(5_000))),
        "a real client is served although the tricklers never stop"
    );
}

#[test]
fn requests_and_trailers_trickled_a_byte_at_a_time_are_cut_off_and_told_why() {
    // Two clients send a byte of a frame every 30 s: each byte keeps the idle timeout
    // (60 s) away, and a frame would take up to 2 hours. They must not keep both of the
    // server's sockets meanwhile.
    let (mut w, mut server, _) = setup(Faults::NONE, 16, 4096);
    served!(w, server, sock, 100);
    // One trickles its request; the other sends a put whole, then trickles its trailer.
    let request = put_frame(b"slow.bin", 1);
    let mut put = request.clone();
    put.push(b'x');
    let starts = [&request[..4], &put[..]];
    let rests = [&request[4..], &trailer(digest_of(b"x"))[..]];
    let tricklers: Vec<_> = starts
        .iter()
        .map(|start| connected_with(&mut sock, start))
        .collect();
    let mut replies = vec![Vec::new(); tricklers.len()];
    for i in 0..6 {
        sock.sleep(Duration::from_secs(30));
        let next: Vec<&[u8]> = rests.iter().map(|rest| &rest[i..i + 1]).collect();
        trickle(&mut sock, &tricklers, &next, &mut replies);
    }
    for reply in &replies {
        let frames = frames_of(reply);
        assert!(
            matches!(
                frames[..],
                [Message::Status {
                    status: Status::TimedOut,
                    ..
                }] | [
                    Message::Accept { .. },
                    Message::Status {
                        status: Status::TimedOut,
                        ..
                    }
                ]
            ),
            "each trickler was told why: {frames:?}"
        );
    }
    let put = a_new_clients_put(&mut sock, None);
    assert_eq!(
        put,
        Ok(digest_of(&pattern(5_000))),
        "a real client is served while the tricklers go on"
    );
    // Each trickler counted once as a slow request on the server's rows, none as idle,
    // and the real client's put counted nothing.
    let b = sock.waiter().peer();
    let total = |f: fn(&ringnet::observe::SocketStats) -> u32| -> u32 {
        b.stats_rows()
            .filter(|r| r.local_port == TRANSFER_PORT)
            .map(|r| f(&r.stats))
            .sum()
    };
    assert_eq!(total(|s| s.slow_requests), 2);
    assert_eq!(total(|s| s.idle_timeouts), 0);
    assert_eq!(server.store().size("slow.bin"), Err(StoreError::NotFound));
}

/// A get request frame for `name` from its start.
fn get_frame(name: &str) -> Vec<u8> {
    let mut frame = [0u8; 300];
    let n = Message::Get { name, offset: 0 }.emit(&mut frame).unwrap();
    frame[..n].to_vec()
}

/// The slow and idle counts on the transfer port of B.
fn slow_and_idle(b: &Stack<'_>) -> (u32, u32) {
    (
        port_total(b, TRANSFER_PORT, |s| s.slow_requests),
        port_total(b, TRANSFER_PORT, |s| s.idle_timeouts),
    )
}

#[test]
fn a_put_whose_data_trickles_a_byte_inside_each_idle_timeout_is_cut_off_and_told_why() {
    // The request and 100 bytes of data at once, then a byte every 59 s: the 60 s idle
    // timeout never comes, and the put's 10 000 bytes would take 6 days.
    let (mut w, mut server, _) = setup(Faults::NONE, 17, 4096);
    {
        served!(w, server, sock, 100);
        let mut start = put_frame(b"slow.bin", 10_000);
        start.extend_from_slice(&[b'x'; 100]);
        let conn = connected_with(&mut sock, &start);
        let cut = trickle_until_slow(
            &mut sock,
            TRANSFER_PORT,
            Duration::from_secs(59),
            Duration::from_secs(600),
            |a| {
                let _ = a.send(conn, b"x");
            },
        )
        .expect("the trickler is cut off");
        // 20 s of grace, and a fraction of a second for what moved (the accept frame, the
        // first trickled byte; the data that came with the request is the phase's start).
        assert!(
            Duration::from_secs(20) <= cut && cut <= Duration::from_millis(20_500),
            "cut off after {cut}"
        );
        let reply = read_until_gone(&mut sock, conn);
        assert!(
            matches!(
                frames_of(&reply)[..],
                [
                    Message::Accept { .. },
                    Message::Status {
                        status: Status::TimedOut,
                        reason: "data too slow",
                        ..
                    }
                ]
            ),
            "told why: {:?}",
            frames_of(&reply)
        );
        assert_eq!(slow_and_idle(sock.waiter().peer()), (1, 0));
        assert_eq!(
            a_new_clients_put(&mut sock, None),
            Ok(digest_of(&pattern(5_000)))
        );
    }
    assert_eq!(
        slow_and_idle(&w.stacks[B]),
        (1, 0),
        "the put after counted nothing"
    );
    assert_eq!(server.store().size("slow.bin"), Err(StoreError::NotFound));
}

#[test]
fn a_get_whose_reader_opens_its_window_a_byte_at_a_time_is_reset_at_the_minimum_rate() {
    let (mut w, mut server, _) = setup(Faults::NONE, 18, 4096);
    server.store().files.insert("big".into(), pattern(100_000));
    served!(w, server, sock, 100);
    let conn = connected_with(&mut sock, &get_frame("big"));
    let cut = trickle_until_slow(
        &mut sock,
        TRANSFER_PORT,
        Duration::from_secs(59),
        Duration::from_secs(600),
        |a| {
            let _ = a.recv(conn, &mut [0u8; 1]);
        },
    )
    .expect("the reader is cut off");
    // 20 s of grace, then what it acknowledged: its 4096-byte ring (and the accept frame)
    // at 500 B/s, 8.2 s more.
    assert!(
        Duration::from_millis(28_100) <= cut && cut <= Duration::from_millis(28_700),
        "cut off after {cut}"
    );
    // The ring's bytes (the accept and the data), then a reset: no status can follow data.
    let mut buf = [0u8; 8192];
    assert_eq!(sock.recv(conn, &mut buf), Ok(4096));
    assert_eq!(sock.recv(conn, &mut buf), Err(RecvError::ConnectionReset));
    assert_eq!(slow_and_idle(sock.waiter().peer()), (1, 0));
}

#[test]
fn a_put_and_a_get_slow_but_above_the_minimum_rate_are_served_whole() {
    // 60 bytes every 100 ms (600 B/s) each way, 40 s each: twice the grace.
    let (mut w, mut server, _) = setup(Faults::NONE, 19, 4096);
    served!(w, server, sock, 100);
    let data = pattern(24_000);
    let mut whole = whole_put(b"steady.bin", &data, digest_of(&data));
    let trailer = whole.split_off(whole.len() - 41);
    let conn = connected_with(&mut sock, &whole[..60]);
    for piece in whole[60..].chunks(60) {
        sock.sleep(Duration::from_millis(100));
        sock.send_all(conn, piece).unwrap();
    }
    sock.send_all(conn, &trailer).unwrap();
    let reply = read_until_gone(&mut sock, conn);
    assert!(
        matches!(
            frames_of(&reply)[..],
            [
                Message::Accept { .. },
                Message::Status {
                    status: Status::Ok,
                    ..
                }
            ]
        ),
        "{:?}",
        frames_of(&reply)
    );
    let conn = connected_with(&mut sock, &get_frame("steady.bin"));
    let mut got = Vec::new();
    let mut buf = [0u8; 60];
    loop {
        match sock.recv(conn, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e} after {} bytes", got.len()),
        }
        sock.sleep(Duration::from_millis(100));
    }
    // The accept frame, the data, the status frame.
    let accept = 4 + u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
    assert!(matches!(
        frames_of(&got[..accept])[..],
        [Message::Accept { size: 24_000, .. }]
    ));
    assert!(got[accept..accept + data.len()] == data[..], "bytes differ");
    assert!(matches!(
        frames_of(&got[accept + data.len()..])[..],
        [Message::Status {
            status: Status::Ok,
            ..
        }]
    ));
    assert_eq!(slow_and_idle(sock.waiter().peer()), (0, 0));
}

#[test]
fn a_slow_reader_of_a_get_gets_the_data_and_the_status_and_a_fin() {
    // The server closes once the status is queued behind the data, while thousands of
    // bytes are still in its tx ring: `close()` sends them all and then a FIN (HTTP's
    // lingering close once reset there instead).
    let data = pattern(24_000);
    let (mut w, mut server, client) = setup(Faults::NONE, 58, 1024);
    server.store().files.insert("big".into(), data.clone());
    served!(w, server, sock, 20);
    sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
    let mut get = b"RNT2".to_vec();
    get.extend_from_slice(&[2, 3]);
    get.extend_from_slice(b"big");
    get.extend_from_slice(&0u64.to_be_bytes());
    let mut request = (get.len() as u32).to_be_bytes().to_vec();
    request.extend_from_slice(&get);
    sock.send_all(client, &request).unwrap();
    // 60 bytes every 100 ms: 600 B/s, fewer than the client's ring holds.
    let mut reply = Vec::new();
    let mut buf = [0u8; 60];
    let give_up = sock.stack().now() + Duration::from_secs(120);
    let end = loop {
        match sock.stack().recv(client, &mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(RecvError::WouldBlock) if sock.stack().now() < give_up => {}
            Err(e) => break Err(e),
        }
        sock.sleep(Duration::from_millis(100));
    };
    assert_eq!(
        end,
        Ok(0),
        "a FIN, not a reset, after {} bytes",
        reply.len()
    );
    let accept_len = 4 + u32::from_be_bytes(reply[..4].try_into().unwrap()) as usize;
    assert!(matches!(
        Message::parse(&reply[4..accept_len]),
        Ok(Message::Accept { size: 24_000, .. })
    ));
    let (got, status) = reply[accept_len..].split_at(data.len());
    assert_eq!(got, &data[..]);
    assert!(
        matches!(frames_of(status)[..], [Message::Status { status: Status::Ok, digest, .. }] if digest == digest_of(&data)),
        "{:?}",
        frames_of(status)
    );
}

/// What the server answers is in the socket's tx ring when the poll of the server that
/// made it returns: the Accept after the poll that takes a request, the Status after the
/// poll that commits a put. A frame left queued in the connection went out only at the
/// server's next poll, which nothing but a timer may bring (the client of a put waits for
/// its Status with nothing more to send): the delayed ACK's 10 ms, or on the tap the
/// host's longest sleep, 100 ms.
#[test]
fn the_servers_answers_are_in_the_tx_ring_after_the_poll_that_made_them() {
    let data = pattern(5000);
    let cases = [
        ("a put's request", put_frame(b"later", 5000)),
        (
            "a whole put",
            whole_put(b"at-once", &data, digest_of(&data)),
        ),
        ("a get's request", get_frame("small")),
    ];
    for (what, bytes) in cases {
        let mut w = pair(Faults::NONE, 91);
        let conn = tcp_socket(&mut w.stacks[B], 8192, 8192);
        let mut server: TransferServer<MemStore> = TransferServer::new(
            &mut w.stacks[B],
            TRANSFER_PORT,
            &[conn],
            MemStore::default(),
        )
        .unwrap();
        server
            .store()
            .files
            .insert("small".into(), b"12345".to_vec());
        let client = tcp_socket(&mut w.stacks[A], 8192, 8192);
        w.stacks[A].connect(client, ep(B, TRANSFER_PORT)).unwrap();
        let mut sent = 0;
        // For each poll of the server that took the request or committed the put: the
        // bytes in the tx ring after it.
        let mut answers = Vec::new();
        w.step_for(Duration::from_millis(200), |port, stack| {
            if port == A {
                if let Ok(n) = stack.send(client, &bytes[sent..]) {
                    sent += n;
                }
                return;
            }
            let before = stack.ring_usage(conn).map(|((rx, _), _)| rx);
            let completed = server.completed();
            server.poll(stack);
            let Some(((rx, _), (tx, _))) = stack.ring_usage(conn) else {
                return;
            };
            let took_request = answers.is_empty() && before.is_some_and(|b| b > rx);
            if took_request || server.completed() > completed {
                answers.push(tx);
            }
        });
        assert_eq!(sent, bytes.len(), "{what}: the client sent it all");
        assert!(!answers.is_empty(), "{what}: the server took it");
        assert!(
            answers.iter().all(|&tx| tx > 0),
            "{what}: an answer left in the server's queue after its poll (tx ring after each: {answers:?})"
        );
    }
}
