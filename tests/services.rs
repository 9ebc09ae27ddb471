//! The services every ringnet host runs, exercised by a client stack over the wire.

use ringnet::blocking::Blocking;
use ringnet::run::Service;
use ringnet::service_set::{no_server, Servers, ServiceSet};
use ringnet::services::{self, pattern_byte, Member, ServicePlan, StaticFile};
use ringnet::sim::Faults;
use ringnet::{SocketHandle, Stack};
use ringnet_testkit::*;
use sha2::{Digest, Sha256};

/// The services the device (stack B) runs, polled by the driver's app closure.
const DEVICE_PLAN: ServicePlan = ServicePlan {
    echo: 1,
    file_out: 1,
    file_in: 1,
    report: true,
    stats: true,
    beacon: true,
    ..ServicePlan::NONE
};

type Device = ServiceSet<'static, (), (), 64>;

fn start_device(b: &mut Stack<'static>, file: &'static [u8]) -> Device {
    let source: &'static StaticFile<'static> = Box::leak(Box::new(StaticFile(file)));
    let mut socket = |b: &mut Stack<'static>, member: Member| {
        Ok(match member {
            Member::Report => udp_socket(b, 4, 2048),
            Member::Stats => udp_socket(b, 2, 2048),
            Member::Beacon => udp_socket(b, 2, 1024),
            _ => tcp_socket(b, 2048, 2048),
        })
    };
    let servers = Servers {
        transfer: no_server,
        http: no_server,
    };
    Device::start(b, DEVICE_PLAN, &mut socket, source, servers).unwrap()
}

fn device_world(seed: u64, file: &'static [u8]) -> (World<2>, Device) {
    let mut w = pair(Faults::NONE, seed);
    let device = start_device(&mut w.stacks[B], file);
    (w, device)
}

#[test]
fn echo_sends_back_everything_even_to_a_slow_client() {
    let (mut w, mut device) = device_world(40, b"");
    client_of!(w, poll device, sock, conn, services::ECHO_PORT, (512, 512));
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 249) as u8).collect();
    let mut echoed = Vec::new();
    let mut buf = [0u8; 700];
    let mut sent = 0;
    for chunk in data.chunks(1000) {
        sock.send_all(conn, chunk).unwrap();
        sent += chunk.len();
        while echoed.len() < sent {
            let n = sock.recv(conn, &mut buf).unwrap();
            echoed.extend_from_slice(&buf[..n]);
        }
    }
    sock.stack().shutdown_write(conn).unwrap();
    echoed.extend(read_to_end(&mut sock, conn));
    assert_eq!(echoed, data);
}

#[test]
fn file_out_sends_its_file_then_closes() {
    static FILE: &[u8] = include_bytes!("../src/lib.rs");
    let (mut w, mut device) = device_world(41, FILE);
    client_of!(w, poll device, sock, conn, services::FILE_OUT_PORT, (1024, 256));
    assert_eq!(read_to_end(&mut sock, conn), FILE);
}

#[test]
fn file_out_sends_a_pattern_of_the_requested_size() {
    let (mut w, mut device) = device_world(42, b"unused");
    client_of!(w, poll device, sock, conn, services::FILE_OUT_PORT, (4096, 256));
    sock.send_all(conn, b"100000\n").unwrap();
    let got = read_to_end(&mut sock, conn);
    assert_eq!(got.len(), 100_000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));
}

#[test]
fn file_out_refuses_a_malformed_request() {
    let (mut w, mut device) = device_world(43, b"unused");
    client_of!(w, poll device, sock, conn, services::FILE_OUT_PORT, (4096, 256));
    sock.send_all(conn, b"lots please\n").unwrap();
    let got = read_to_end(&mut sock, conn);
    assert!(
        got.starts_with(b"error:"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn file_in_replies_with_the_size_and_sha256() {
    for size in [0usize, 1, 300_000] {
        let (mut w, mut device) = device_world(44, b"");
        client_of!(w, poll device, sock, conn, services::FILE_IN_PORT, (256, 2048));
        let data: Vec<u8> = (0..size as u64).map(pattern_byte).collect();
        sock.send_all(conn, &data).unwrap();
        sock.stack().shutdown_write(conn).unwrap();
        let reply = String::from_utf8(read_to_end(&mut sock, conn)).unwrap();
        let digest: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(reply, format!("{size} {digest}\n"));
    }
}

#[test]
fn udp_report_tells_the_sender_about_truncation() {
    let (mut w, mut device) = device_world(45, b"");
    let client = udp_socket(&mut w.stacks[A], 4, 4096);
    w.stacks[A]
        .send_to(client, &[1; 10], ep(B, services::REPORT_PORT))
        .unwrap();
    w.stacks[A]
        .send_to(client, &[2; 1000], ep(B, services::REPORT_PORT))
        .unwrap();
    for _ in 0..3 {
        w.settle();
        device.poll(&mut w.stacks[B]);
    }
    let from_port = w.stacks[A].local_addr(client).unwrap().port;
    let mut buf = [0u8; 200];
    let first = w.stacks[A].recv_from(client, &mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..first.len]),
        format!("10 bytes from 10.0.0.1:{from_port}\n")
    );
    let second = w.stacks[A].recv_from(client, &mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..second.len]),
        format!("1000 bytes from 10.0.0.1:{from_port}, truncated: 936 lost\n")
    );
    assert_eq!(
        w.stacks[B]
            .stats(device.report.as_ref().unwrap().socket())
            .unwrap()
            .truncations,
        1
    );
}

#[test]
fn stats_query_answers_with_the_table_and_the_beacon_broadcasts() {
    let (mut w, mut device) = device_world(46, b"");
    let client = udp_socket(&mut w.stacks[A], 4, 4096);
    let listener = udp_socket(&mut w.stacks[A], 4, 4096);
    w.stacks[A]
        .udp_bind(listener, services::BEACON_PORT)
        .unwrap();
    w.stacks[A]
        .send_to(client, b"?", ep(B, services::STATS_PORT))
        .unwrap();
    let table = read_stats_answer(&mut w, &mut device, client);
    assert!(
        table.contains("listen#") && table.contains("bytes in"),
        "{table}"
    );
    let mut buf = [0u8; 2048];
    let beacon = w.stacks[A].recv_from(listener, &mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..beacon.len]).into_owned();
    assert!(
        line.starts_with("ringnet B 10.0.0.2 ") && line.contains("beacon #1"),
        "{line}"
    );
    assert!(device.beacon.as_ref().unwrap().sent() >= 1);
}

/// Polls the device until the stats answer to `client` is complete; returns its text.
/// Checks that every datagram fits one frame and holds whole lines only.
fn read_stats_answer(w: &mut World<2>, device: &mut Device, client: SocketHandle) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 2048];
    for _ in 0..50 {
        device.poll(&mut w.stacks[B]);
        w.settle();
        while let Ok(d) = w.stacks[A].recv_from(client, &mut buf) {
            assert!(d.len <= 1400, "a datagram of {} bytes", d.len);
            let part = String::from_utf8_lossy(&buf[..d.len]).into_owned();
            assert!(part.ends_with('\n'), "a line was cut: {part:?}");
            text.push_str(&part);
        }
        if text.contains("end of table: ") {
            return text;
        }
    }
    panic!("no end of table in {text}");
}

#[test]
fn the_stats_answer_holds_every_row_in_as_many_datagrams_as_it_takes() {
    let (mut w, mut device) = device_world(48, b"");
    // Enough sockets that the table needs three datagrams.
    for _ in 0..6 {
        tcp_socket(&mut w.stacks[B], 256, 256);
    }
    let rows = w.stacks[B].stats_rows().count();
    let client = udp_socket(&mut w.stacks[A], 4, 4096);
    for query in 0..2 {
        w.stacks[A]
            .send_to(client, b"?", ep(B, services::STATS_PORT))
            .unwrap();
        let table = read_stats_answer(&mut w, &mut device, client);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("B: 10.0.0.2 ("), "{table}");
        assert_eq!(lines[1], ringnet::observe::StatsRow::HEADER);
        let row_lines = lines
            .iter()
            .filter(|l| l.starts_with("tcp#") || l.starts_with("udp#") || l.starts_with("listen#"))
            .count();
        assert_eq!(row_lines, rows, "query {query}: {table}");
        assert_eq!(
            lines.last(),
            Some(&format!("end of table: {rows} rows").as_str())
        );
        assert_eq!(lines.len(), rows + 3, "nothing else: {table}");
    }
}

#[test]
fn discard_swallows_everything_and_closes_after_the_peer() {
    use ringnet::services::Discard;
    let mut w = pair(Faults::NONE, 47);
    let backlog = [tcp_socket(&mut w.stacks[B], 1024, 1024)];
    let mut discard = Discard::new(&mut w.stacks[B], services::DISCARD_PORT, &backlog).unwrap();
    {
        client_of!(w, poll discard, sock, conn, services::DISCARD_PORT, (512, 4096));
        sock.send_all(conn, &[7; 100_000]).unwrap();
        sock.stack().shutdown_write(conn).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            sock.recv(conn, &mut buf),
            Ok(0),
            "nothing comes back; it closes after us"
        );
    }
    let received: u64 = w.stacks[B]
        .stats_rows()
        .filter(|r| r.local_port == services::DISCARD_PORT)
        .map(|r| r.stats.bytes_in)
        .sum();
    assert_eq!(received, 100_000);
}

#[test]
fn a_reset_while_echo_waits_for_tx_room_frees_its_socket_for_the_next_client() {
    // The client sends and never reads: echo's tx ring runs full, and echo waits for
    // room. The client's reset must end that wait (EPIPE), so the one socket of echo's
    // backlog serves the next client, not only after the idle timeout.
    let (mut w, mut device) = device_world(44, b"");
    client_of!(w, poll device, sock, conn, services::ECHO_PORT, (512, 8192));
    sock.send_all(conn, &[7u8; 6000]).unwrap();
    sock.sleep(ringnet::Duration::from_millis(500));
    assert_eq!(
        sock.stack().ring_usage(conn).map(|(rx, _)| rx),
        Some((512, 512)),
        "the client's rx ring is full, so echo's tx ring is too"
    );
    sock.stack().abort(conn).unwrap();
    sock.sleep(ringnet::Duration::from_millis(200));
    let next = tcp_socket(sock.stack(), 512, 512);
    sock.connect(next, ep(B, services::ECHO_PORT))
        .expect("echo's socket is back in its backlog");
    sock.send_all(next, b"again").unwrap();
    let mut back = [0u8; 5];
    assert_eq!(sock.recv_exact(next, &mut back), Ok(true));
    assert_eq!(&back, b"again");
}

/// The firmware's turn: the services between the device's ingress and egress
/// (`run::act_between`). File out's pattern and file in's digest come out whole, and the
/// observation still sees file in's small ring run full each time.
#[test]
fn services_between_ingress_and_egress_move_the_same_bytes_and_are_observed() {
    let (mut w, mut device) = device_world(46, b"unused");
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver =
        ringnet::sim::PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _| device.poll(b))
            .with_app_tick(ringnet::Duration::from_millis(50))
            .with_app_between();
    let mut sock = Blocking::new(a, &mut driver);

    let conn = tcp_socket(sock.stack(), 4096, 256);
    sock.connect(conn, ep(B, services::FILE_OUT_PORT)).unwrap();
    sock.send_all(conn, b"200000\n").unwrap();
    let got = read_to_end(&mut sock, conn);
    assert_eq!(got.len(), 200_000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));

    let conn = tcp_socket(sock.stack(), 256, 8192);
    sock.connect(conn, ep(B, services::FILE_IN_PORT)).unwrap();
    let data: Vec<u8> = (0..300_000u64).map(pattern_byte).collect();
    sock.send_all(conn, &data).unwrap();
    sock.stack().shutdown_write(conn).unwrap();
    let reply = String::from_utf8(read_to_end(&mut sock, conn)).unwrap();
    let digest: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(reply, format!("300000 {digest}\n"));
    let file_in = driver
        .peer()
        .stats_rows()
        .find(|row| row.local_port == services::FILE_IN_PORT && row.stats.bytes_in > 0)
        .expect("file in's row");
    assert_eq!(file_in.stats.bytes_in, 300_000);
    assert!(file_in.stats.rx_full_events > 0, "{:?}", file_in.stats);
    // The ACK after each read leaves once file in has emptied its ring, with the room in
    // its window: here no zero window went out (after a whole poll, several do).
    assert_eq!(file_in.stats.zero_windows, 0, "{:?}", file_in.stats);
}
