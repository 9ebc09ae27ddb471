//! Hostile and careless peers on the simulated wire: SYNs from a host that never answers,
//! clients that never close or go silent, short connections back to back. A kernel
//! survives each; a fixed backlog must too.

use ringnet::blocking::Blocking;
use ringnet::observe::{SocketStats, StatsRow};
use ringnet::services::{
    Echo, FileIn, FileOut, StaticFile, ECHO_PORT, FILE_IN_PORT, FILE_OUT_PORT,
};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::socket::tcp::{ConnectError, RecvError};
use ringnet::stack::TcpTimers;
use ringnet::{Duration, Instant, Ipv4Address, SocketType, Stack};
use ringnet_testkit::*;

/// A host that exists only as the SYNs it sends: no stack answers for it, so the
/// device's ARP requests for it go unanswered and its SYN-ACK never leaves.
const SPOOFED: Ipv4Address = Ipv4Address::new(10, 0, 0, 77);
const SPOOFED_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x77]);

/// The `n`th spoofed SYN to `port` on B.
fn spoofed_syn(n: u32, port: u16) -> Vec<u8> {
    tcp_syn(
        SPOOFED_MAC,
        (SPOOFED, 30_000 + (n % 30_000) as u16),
        mac(B),
        (ip(B), port),
        n.wrapping_mul(7919),
    )
}

/// The row of the listener on `port`.
fn listener_row(stack: &Stack<'_>, port: u16) -> StatsRow {
    stack
        .stats_rows()
        .find(|r| r.kind == SocketType::Listener && r.local_port == port)
        .unwrap_or_else(|| panic!("no listener on {port}"))
}

/// Echo on B with `backlog` sockets.
fn echo_on_b(w: &mut World<2>, backlog: usize) -> Echo {
    let sockets: Vec<_> = (0..backlog)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    Echo::new(&mut w.stacks[B], ECHO_PORT, &sockets).unwrap()
}

/// A world whose wire takes 2 ms each way, so that a handshake stays half-open long
/// enough for a flood to meet it, with echo on B with `backlog` sockets.
fn echo_two_ms_away(seed: u64, backlog: usize) -> (World<2>, Echo) {
    let faults = Faults {
        latency: Duration::from_millis(2),
        ..Faults::NONE
    };
    let mut w = pair(faults, seed);
    let echo = echo_on_b(&mut w, backlog);
    (w, echo)
}

/// Runs `$client` with `$sock`, A's blocking socket layer, while B's `$echo` serves and
/// one spoofed SYN to echo comes every millisecond, at most 3000: the SYNs sent.
macro_rules! under_a_syn_flood {
    ($w:ident, $echo:ident, |$sock:ident| $client:block) => {{
        let wire = $w.wire;
        let mut sent = 0u32;
        let mut next_syn = Instant::ZERO;
        {
            let (a, b) = $w.two(A, B);
            let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now| {
                if now >= next_syn && sent < 3000 {
                    wire.inject(A, &spoofed_syn(sent, ECHO_PORT)).unwrap();
                    sent += 1;
                    next_syn = now + Duration::from_millis(1);
                }
                $echo.poll(b)
            });
            let mut $sock = Blocking::new(a, &mut waiter);
            $client
        }
        sent
    }};
}

/// File out on B with `backlog` sockets, sending `file`.
fn file_out_on_b(w: &mut World<2>, backlog: usize, file: &'static [u8]) -> FileOut<'static> {
    let sockets: Vec<_> = (0..backlog)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 4096))
        .collect();
    let source: &'static StaticFile<'static> = Box::leak(Box::new(StaticFile(file)));
    FileOut::new(&mut w.stacks[B], FILE_OUT_PORT, &sockets, source).unwrap()
}

#[test]
fn a_syn_burst_from_a_host_that_never_answers_does_not_lock_echo_out() {
    let mut w = pair(Faults::NONE, 101);
    let mut echo = echo_on_b(&mut w, 2);
    // Eight SYNs at once: two take the backlog's sockets, each later one finds both
    // half-open and takes the oldest one's place.
    for n in 0..8 {
        w.wire.inject(A, &spoofed_syn(n, ECHO_PORT)).unwrap();
    }
    w.settle();
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_evicted, 6, "{row}");
    assert_eq!(row.stats.half_open_expired, 0, "{row}");
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"a real client is served during the burst");
        sock.stack().close(conn).unwrap();
    }
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(
        row.stats.half_open_evicted, 7,
        "the client's SYN evicted one: {row}"
    );
    // The half-open one left expires, 63 s after its SYN; nothing else was evicted or
    // expired.
    w.run_for(Duration::from_secs(64));
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_expired, 1, "{row}");
    assert_eq!(
        row.stats.orphans_expired + row.stats.orphans_evicted,
        0,
        "{row}"
    );
}

#[test]
fn a_sustained_syn_flood_does_not_stop_a_real_client() {
    let (mut w, mut echo) = echo_two_ms_away(102, 2);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sent = under_a_syn_flood!(w, echo, |sock| {
        let conn = tcp_socket(sock.stack(), 2048, 2048);
        sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
        for chunk in data.chunks(1000) {
            echo_round(&mut sock, conn, chunk);
        }
        sock.stack().close(conn).unwrap();
    });
    assert!(sent > 200, "the flood ran during the exchange: {sent} SYNs");
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    // Every SYN but the first two and those that came while the client's connection
    // held a socket found no socket listening and took the place of the oldest spoofed
    // half-open one (never the client's handshake: the next test).
    assert!(
        row.stats.half_open_evicted >= sent - 3,
        "{sent} SYNs: {row}"
    );
}

/// The half-open connections that gave way to a new SYN, by their peers' addresses.
#[cfg(feature = "events")]
#[derive(Default)]
struct HalfOpensGivingWay(std::sync::Mutex<Vec<Option<ringnet::IpAddress>>>);

#[cfg(feature = "events")]
impl ringnet::observe::EventSink for HalfOpensGivingWay {
    fn record(&self, _: &'static str, event: &ringnet::observe::Event) {
        use ringnet::observe::{EventKind, Timer};
        if let EventKind::Timer(Timer::GaveWay {
            half_open: true,
            peer,
            ..
        }) = event.kind
        {
            self.0.lock().unwrap().push(peer.map(|p| p.addr));
        }
    }
}

#[cfg(feature = "events")]
#[test]
fn a_spoofed_syn_flood_takes_the_place_of_its_own_half_opens_not_a_clients_handshake() {
    // 2 ms each way: a client's handshake is half-open on B for 4 ms, while a spoofed SYN
    // comes every millisecond to a backlog of 2, so that the client's half-open is soon
    // the oldest. The spoofed ones' SYN-ACKs wait on ARP for ever: they give way first.
    let (mut w, mut echo) = echo_two_ms_away(104, 2);
    let gave_way: &'static HalfOpensGivingWay = Box::leak(Box::default());
    w.stacks[B].set_event_sink(Some(gave_way));
    let sent = under_a_syn_flood!(w, echo, |sock| {
        for round in 0..20 {
            let conn = tcp_socket(sock.stack(), 1024, 1024);
            sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
            echo_round(&mut sock, conn, format!("round {round}").as_bytes());
            sock.stack().close(conn).unwrap();
        }
    });
    assert!(sent > 100, "the flood ran during the rounds: {sent} SYNs");
    let peers = gave_way.0.lock().unwrap();
    let spoofed = peers.iter().filter(|p| **p == Some(SPOOFED.into())).count();
    assert!(
        spoofed as u32 >= sent - 3,
        "the flood's SYNs took each other's places: {spoofed} of {sent}"
    );
    assert_eq!(
        peers.len(),
        spoofed,
        "a client's handshake gave way to a spoofed SYN: {:?}",
        peers
            .iter()
            .filter(|p| **p != Some(SPOOFED.into()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn half_open_connections_expire_and_listen_again() {
    let mut w = pair(Faults::NONE, 103);
    let mut echo = echo_on_b(&mut w, 2);
    w.wire.inject(A, &spoofed_syn(1, ECHO_PORT)).unwrap();
    w.wire.inject(A, &spoofed_syn(2, ECHO_PORT)).unwrap();
    // Linux's five SYN-ACK retries: 1 + 2 + 4 + 8 + 16 s, then 32 s for the last.
    w.run_for(Duration::from_secs(62));
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_expired, 0, "not yet: {row}");
    w.run_for(Duration::from_secs(2));
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_expired, 2, "{row}");
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"served by a socket that listens again");
    }
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(
        row.stats.half_open_evicted, 0,
        "nothing had to give way: {row}"
    );
}

#[test]
fn a_client_that_never_closes_after_a_download_gives_way_and_then_times_out() {
    static FILE: &[u8] = b"a file that every client reads to its end";
    let mut w = pair(Faults::NONE, 104);
    w.stacks[B].set_tcp_timers(TcpTimers {
        fin_timeout: Duration::from_secs(2),
        ..TcpTimers::DEFAULT
    });
    let mut file_out = file_out_on_b(&mut w, 1, FILE);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        file_out.poll(b)
    })
    .with_app_tick(Duration::from_millis(20));
    let mut sock = Blocking::new(a, &mut waiter);
    // The first client reads the file to its end and never closes: the device's only
    // socket waits in FIN-WAIT-2.
    let holder = tcp_socket(sock.stack(), 1024, 256);
    sock.connect(holder, ep(B, FILE_OUT_PORT)).unwrap();
    assert_eq!(read_to_end(&mut sock, holder), FILE);
    // The next client's SYN finds no socket listening: the orphan gives way.
    let next = tcp_socket(sock.stack(), 1024, 256);
    sock.connect(next, ep(B, FILE_OUT_PORT)).unwrap();
    assert_eq!(read_to_end(&mut sock, next), FILE);
    sock.stack().close(next).unwrap();
    let row = listener_row(sock.waiter().peer(), FILE_OUT_PORT);
    assert_eq!(row.stats.orphans_evicted, 1, "{row}");
    // A third holder, and no one after it: its orphan is reset after the fin timeout.
    let third = tcp_socket(sock.stack(), 1024, 256);
    sock.connect(third, ep(B, FILE_OUT_PORT)).unwrap();
    assert_eq!(read_to_end(&mut sock, third), FILE);
    sock.sleep(Duration::from_secs(3));
    let row = listener_row(sock.waiter().peer(), FILE_OUT_PORT);
    assert_eq!(row.stats.orphans_expired, 1, "{row}");
    assert_eq!(
        row.stats.half_open_expired + row.stats.half_open_evicted,
        0,
        "{row}"
    );
    // The holders' own sockets learn it from the RST (or from the first later segment).
    let mut buf = [0u8; 8];
    assert_eq!(sock.stack().recv(third, &mut buf), Ok(0), "EOF stays EOF");
}

/// A download the client never reads: file out queues all of it and closes, and its
/// orphan (FIN-WAIT-1, data unacknowledged) probes the client's zero window under
/// `timers`. Returns B's file-out row after `wait`.
fn orphan_of_a_reader_that_never_reads(timers: TcpTimers, wait: Duration) -> StatsRow {
    static FILE: [u8; 2048] = [b'f'; 2048];
    let mut w = pair(Faults::NONE, 106);
    w.stacks[B].set_tcp_timers(timers);
    let mut file_out = file_out_on_b(&mut w, 1, &FILE);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        file_out.poll(b)
    })
    .with_app_tick(Duration::from_millis(20));
    let mut sock = Blocking::new(a, &mut waiter);
    let reader = tcp_socket(sock.stack(), 256, 256);
    sock.connect(reader, ep(B, FILE_OUT_PORT)).unwrap();
    sock.sleep(wait);
    listener_row(sock.waiter().peer(), FILE_OUT_PORT)
}

#[test]
fn an_orphan_probing_a_window_that_never_opens_is_reset_after_its_retries() {
    let timers = TcpTimers {
        orphan_retries: 2,
        orphan_timeout: Duration::from_secs(3600),
        ..TcpTimers::DEFAULT
    };
    // The first probe's byte is new; it is resent 2, 4 and 8 s later, and the third
    // resend, about 15 s in, is one too many.
    let row = orphan_of_a_reader_that_never_reads(timers, Duration::from_secs(10));
    assert_eq!(
        row.stats.orphans_expired, 0,
        "two probes are allowed: {row}"
    );
    let row = orphan_of_a_reader_that_never_reads(timers, Duration::from_secs(30));
    assert_eq!(row.stats.orphans_expired, 1, "{row}");
}

#[test]
fn an_orphan_stalled_on_a_reader_that_never_reads_gives_way_to_the_next_client() {
    static FILE: [u8; 2048] = [b'f'; 2048];
    let mut w = pair(Faults::NONE, 107);
    let mut file_out = file_out_on_b(&mut w, 1, &FILE);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        file_out.poll(b)
    })
    .with_app_tick(Duration::from_millis(20));
    let mut sock = Blocking::new(a, &mut waiter);
    // The only backlog socket queues the whole file and closes; its reader never reads,
    // so the orphan probes a zero window for minutes before its retries run out.
    let hog = tcp_socket(sock.stack(), 256, 256);
    sock.connect(hog, ep(B, FILE_OUT_PORT)).unwrap();
    sock.sleep(Duration::from_secs(2));
    let next = tcp_socket(sock.stack(), 4096, 256);
    assert_eq!(
        sock.connect(next, ep(B, FILE_OUT_PORT)),
        Err(ConnectError::Refused),
        "one probe resent: the orphan still counts as delivering"
    );
    sock.sleep(Duration::from_secs(10));
    let next = tcp_socket(sock.stack(), 4096, 256);
    sock.connect(next, ep(B, FILE_OUT_PORT)).unwrap();
    assert_eq!(read_to_end(&mut sock, next), FILE);
    let row = listener_row(sock.waiter().peer(), FILE_OUT_PORT);
    assert_eq!(
        (row.stats.orphans_evicted, row.stats.orphans_expired),
        (1, 0),
        "{row}"
    );
}

#[test]
fn an_orphan_that_sends_nothing_countable_is_reset_at_the_time_cap() {
    let timers = TcpTimers {
        orphan_retries: u8::MAX,
        orphan_timeout: Duration::from_secs(10),
        ..TcpTimers::DEFAULT
    };
    let row = orphan_of_a_reader_that_never_reads(timers, Duration::from_secs(8));
    assert_eq!(row.stats.orphans_expired, 0, "{row}");
    let row = orphan_of_a_reader_that_never_reads(timers, Duration::from_secs(12));
    assert_eq!(row.stats.orphans_expired, 1, "{row}");
}

#[test]
fn clients_that_connect_and_go_silent_are_timed_out() {
    let mut w = pair(Faults::NONE, 105);
    let mut echo = echo_on_b(&mut w, 2);
    echo.set_idle_timeout(Duration::from_secs(2));
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        echo.poll(b)
    })
    .with_app_tick(Duration::from_millis(50));
    let mut sock = Blocking::new(a, &mut waiter);
    let silent: Vec<_> = (0..2)
        .map(|_| {
            let conn = tcp_socket(sock.stack(), 1024, 1024);
            sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
            conn
        })
        .collect();
    sock.sleep(Duration::from_secs(1));
    // Both sockets are held: a third client's SYN finds no socket listening, and live
    // connections never give way.
    let third = tcp_socket(sock.stack(), 1024, 1024);
    assert_eq!(
        sock.connect(third, ep(B, ECHO_PORT)),
        Err(ConnectError::Refused)
    );
    sock.sleep(Duration::from_secs(2));
    let timed_out = port_total(sock.waiter().peer(), ECHO_PORT, |s| s.idle_timeouts);
    assert_eq!(timed_out, 2);
    let mut buf = [0u8; 8];
    for conn in silent {
        assert_eq!(
            sock.stack().recv(conn, &mut buf),
            Err(RecvError::ConnectionReset)
        );
    }
    let fourth = tcp_socket(sock.stack(), 1024, 1024);
    sock.connect(fourth, ep(B, ECHO_PORT)).unwrap();
    echo_round(&mut sock, fourth, b"served once the silent ones are gone");
}

#[test]
fn a_thousand_short_downloads_from_two_clients_are_never_refused() {
    static FILE: &[u8] = &[7; 600];
    let mut w = pair(Faults::NONE, 106);
    let mut file_out = file_out_on_b(&mut w, 4, FILE);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        file_out.poll(b)
    })
    .with_app_tick(Duration::from_millis(5));
    let mut sock = Blocking::new(a, &mut waiter);
    let mut refused = 0;
    for _ in 0..500 {
        // Two clients at once, each taking the file and closing after the device did.
        let pair: Vec<_> = (0..2)
            .map(|_| {
                let conn = tcp_socket(sock.stack(), 1024, 256);
                if sock.connect(conn, ep(B, FILE_OUT_PORT)).is_err() {
                    refused += 1;
                }
                conn
            })
            .collect();
        for conn in pair {
            if refused == 0 {
                assert_eq!(read_to_end(&mut sock, conn), FILE);
            }
            sock.stack().close(conn).unwrap();
        }
    }
    assert_eq!(refused, 0);
}

#[test]
fn without_hostile_peers_every_new_counter_stays_at_zero() {
    use ringnet::services::{StatsQuery, STATS_PORT};
    static FILE: &[u8] = b"polite";
    let mut w = pair(Faults::NONE, 107);
    let mut echo = echo_on_b(&mut w, 2);
    let mut file_out = file_out_on_b(&mut w, 2, FILE);
    let mut file_in = file_in_on_b(&mut w, 2);
    let stats_socket = udp_socket(&mut w.stacks[B], 8, 8192);
    let mut stats = StatsQuery::new(&mut w.stacks[B], stats_socket, STATS_PORT).unwrap();
    let mut tables = 0;
    {
        let wire = w.wire;
        let (a, b) = w.two(A, B);
        let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
            stats.poll(b);
            echo.poll(b);
            file_out.poll(b);
            file_in.poll(b)
        });
        let mut sock = Blocking::new(a, &mut waiter);
        let client = udp_socket(sock.stack(), 8, 8192);
        for _ in 0..5 {
            let conn = tcp_socket(sock.stack(), 1024, 1024);
            sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
            echo_round(&mut sock, conn, b"hello");
            sock.stack().close(conn).unwrap();
            let conn = tcp_socket(sock.stack(), 1024, 256);
            sock.connect(conn, ep(B, FILE_OUT_PORT)).unwrap();
            assert_eq!(read_to_end(&mut sock, conn), FILE);
            sock.stack().close(conn).unwrap();
            let conn = tcp_socket(sock.stack(), 1024, 1024);
            sock.connect(conn, ep(B, FILE_IN_PORT)).unwrap();
            sock.send_all(conn, FILE).unwrap();
            sock.stack().shutdown_write(conn).unwrap();
            assert!(read_to_end(&mut sock, conn).starts_with(b"6 "));
            sock.stack().close(conn).unwrap();
            // The stats table, as `top` asks for it, and a datagram to a port nobody
            // listens on (its ICMP port unreachable is sent).
            sock.stack()
                .send_to(client, b"?", ep(B, STATS_PORT))
                .unwrap();
            sock.stack().send_to(client, b"?", ep(B, 7777)).unwrap();
            sock.sleep(Duration::from_millis(100));
            let mut buf = [0u8; 2048];
            while let Ok(d) = sock.stack().recv_from(client, &mut buf) {
                tables +=
                    usize::from(String::from_utf8_lossy(&buf[..d.len]).contains("end of table: "));
            }
        }
        // Past every idle timeout and every minimum rate's grace.
        sock.sleep(Duration::from_secs(70));
    }
    assert_eq!(tables, 5, "every query answered whole");
    assert_eq!(stats.unanswered(), 0);
    assert_eq!(w.stacks[B].discards().no_socket, 5);
    for stack in &w.stacks {
        let discards = stack.discards();
        assert_eq!(discards.duplicate_syn, 0, "{}", stack.name());
        assert_eq!(discards.icmp_limited, 0, "{}", stack.name());
        assert_eq!(discards.inexact_rst, 0, "{}", stack.name());
        assert_eq!(discards.after_fin, 0, "{}", stack.name());
        assert_eq!(
            stack.arp_queue_stats(),
            Some(ringnet::ArpQueueStats::default()),
            "every next hop heard from: nothing queued, {}",
            stack.name()
        );
        for row in stack.stats_rows() {
            let s = row.stats;
            assert_eq!(
                (
                    s.half_open_expired,
                    s.half_open_evicted,
                    s.orphans_expired,
                    s.orphans_evicted,
                    s.idle_timeouts,
                    s.slow_requests,
                    s.rate_limited
                ),
                (0, 0, 0, 0, 0, 0, 0),
                "{}: {row}",
                stack.name()
            );
        }
    }
}

/// RSTs sent from B's file-out port among the frames waiting at `port` (a third port on
/// the hub, which sees every frame).
fn rsts_from_file_out(wire: &ringnet::sim::Wire<'static, 3>, port: usize) -> usize {
    use ringnet::smoltcp::phy::{Device, RxToken};
    use ringnet::smoltcp::wire::{EthernetFrame, Ipv4Packet, TcpPacket};
    let mut rsts = 0;
    let mut sniffer = wire.port(port);
    while let Some((rx, _)) = sniffer.receive(wire.now()) {
        rx.consume(|frame| {
            let Ok(eth) = EthernetFrame::new_checked(frame) else {
                return;
            };
            let Ok(ip4) = Ipv4Packet::new_checked(eth.payload()) else {
                return;
            };
            if ip4.src_addr() != ip(B) {
                return;
            }
            if let Ok(tcp) = TcpPacket::new_checked(ip4.payload()) {
                if tcp.src_port() == FILE_OUT_PORT && tcp.rst() {
                    rsts += 1;
                }
            }
        });
    }
    rsts
}

/// The firmware's turn (`run::act_between`): an orphan whose last allowed probe was just
/// resent expires in the observation after the egress half. The RST its abort queues
/// (the warning says "sending RST") must still leave in the next turn's egress, before
/// the slot goes back to its backlog: a peer that sends nothing more learns its download
/// is over only so.
#[test]
fn an_orphan_expired_after_the_egress_half_still_sends_its_rst() {
    static FILE: [u8; 2048] = [b'f'; 2048];
    let timers = TcpTimers {
        orphan_retries: 2,
        orphan_timeout: Duration::from_secs(3600),
        ..TcpTimers::DEFAULT
    };
    let mut w = world_with::<3>(Faults::NONE, 106, ETHERNET_MTU, 256 * 1024);
    w.stacks[B].set_tcp_timers(timers);
    let sockets: Vec<_> = (0..1)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 4096))
        .collect();
    let source: &'static StaticFile<'static> = Box::leak(Box::new(StaticFile(&FILE)));
    let mut file_out = FileOut::new(&mut w.stacks[B], FILE_OUT_PORT, &sockets, source).unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut rsts = 0;
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        rsts += rsts_from_file_out(wire, 2);
        file_out.poll(b)
    })
    .with_app_tick(Duration::from_millis(20))
    .with_app_between();
    let mut sock = Blocking::new(a, &mut waiter);
    let reader = tcp_socket(sock.stack(), 256, 256);
    sock.connect(reader, ep(B, FILE_OUT_PORT)).unwrap();
    sock.sleep(Duration::from_secs(30));
    let row = listener_row(sock.waiter().peer(), FILE_OUT_PORT);
    assert_eq!(row.stats.orphans_expired, 1, "{row}");
    rsts += rsts_from_file_out(wire, 2);
    // The abort's RST, and (the reader ACKing the last probe) the listening socket's.
    assert_eq!(
        rsts, 2,
        "the expired orphan's RST and the listener's: {row}"
    );
}

#[test]
fn syns_to_broadcast_and_multicast_addresses_take_no_socket_and_get_no_answer() {
    // RFC 1122 4.2.3.10: a SYN to a broadcast or multicast address is silently
    // discarded, as Linux does: no connection can have such an address. smoltcp's
    // listeners take a SYN to any destination, so one SYN to the subnet's broadcast,
    // its sender spoofed as A, made every ringnet host on the subnet answer A (a SYN-ACK
    // from the broadcast address, or a RST from a closed port), which A discards as
    // malformed: a reflection that multiplies by the hosts, from an invalid source.
    let mut w = pair(Faults::NONE, 131);
    let mut echo = echo_on_b(&mut w, 1);
    w.settle();
    let frames_out = w.stacks[B].frame_counts().1;
    let groups = [
        Ipv4Address::BROADCAST,
        Ipv4Address::new(10, 0, 0, 255),
        Ipv4Address::new(224, 0, 0, 1),
    ];
    for (n, dst) in groups.into_iter().enumerate() {
        for port in [ECHO_PORT, 4444] {
            let syn = tcp_syn(
                mac(A),
                (ip(A), 40_000 + n as u16),
                EthernetAddress::BROADCAST,
                (dst, port),
                1000,
            );
            w.wire.inject(A, &syn).unwrap();
            w.settle();
        }
    }
    assert_eq!(
        w.stacks[B].frame_counts().1,
        frames_out,
        "B sent nothing: no SYN-ACK, no RST, not even an ARP request for A"
    );
    assert_eq!(w.stacks[A].discards().malformed, 0, "A got nothing from B");
    assert_eq!(
        w.stacks[B].discards().not_for_us,
        6,
        "each counted as not for this host"
    );
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(
        (row.stats.half_open_expired, row.stats.half_open_evicted),
        (0, 0),
        "{row}"
    );
    // The backlog's one socket still listens: a real client takes it, nothing evicted.
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"served by the only socket");
        sock.stack().close(conn).unwrap();
    }
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_evicted, 0, "{row}");
}

#[test]
fn one_datagram_between_two_hosts_udp_services_does_not_bounce_for_ever() {
    // Every ringnet host answers any datagram to UDP 9000 (a report line) and 9001 (the
    // stats table). One datagram to B's report port whose source is A's stats port (a
    // spoofer's, or A's own stats socket as here) started a loop: B reported to A:9001,
    // A answered B:9000 with its table, B reported that, and so on for ever, both
    // hosts' rings and the wire full of it (CERT CA-1996-01's echo and chargen loop).
    // Neither service may answer a datagram from a port a UDP service answers on.
    use ringnet::services::{StatsQuery, UdpReport, REPORT_PORT, STATS_PORT};
    let mut w = pair(Faults::NONE, 132);
    let mut sockets = Vec::new();
    let mut services: Vec<(UdpReport<512>, StatsQuery)> = (0..2)
        .map(|host| {
            let stack = &mut w.stacks[host];
            let report = udp_socket(stack, 8, 4096);
            let stats = udp_socket(stack, 8, 8192);
            sockets.push((report, stats));
            (
                UdpReport::new(stack, report, REPORT_PORT).unwrap(),
                StatsQuery::new(stack, stats, STATS_PORT).unwrap(),
            )
        })
        .collect();
    let a_stats = sockets[A].1;
    w.stacks[A]
        .send_to(a_stats, b"?", ep(B, REPORT_PORT))
        .unwrap();
    w.step_for(Duration::from_secs(2), |host, stack| {
        let (report, stats) = &mut services[host];
        report.poll(stack);
        stats.poll(stack);
    });
    let datagrams_in = |host: usize, socket| w.stacks[host].stats(socket).unwrap().datagrams_in;
    assert_eq!(
        datagrams_in(B, sockets[B].0),
        1,
        "B's report took the one datagram"
    );
    assert_eq!(
        datagrams_in(A, a_stats),
        0,
        "and did not answer A's stats port"
    );
    // A client on an ordinary port is still answered by both.
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    for port in [REPORT_PORT, STATS_PORT] {
        w.stacks[A].send_to(client, b"?", ep(B, port)).unwrap();
    }
    for _ in 0..200 {
        let now = w.wire.now();
        for (host, (report, stats)) in services.iter_mut().enumerate() {
            let stack = &mut w.stacks[host];
            stack.poll(now, &mut w.wire.port(host));
            report.poll(stack);
            stats.poll(stack);
        }
        w.wire.advance_to(now + Duration::from_millis(1));
    }
    let mut buf = [0u8; 2048];
    let mut answers = 0;
    while w.stacks[A].recv_from(client, &mut buf).is_ok() {
        answers += 1;
    }
    assert!(
        answers >= 2,
        "{answers} answers: the report and the stats table"
    );
}

/// An ARP `operation` aimed at B from `sender` (its MAC made of the address), spoofed:
/// no host has that address.
fn spoofed_arp(sender: Ipv4Address, operation: ringnet::smoltcp::wire::ArpOperation) -> Vec<u8> {
    let [_, _, c, d] = sender.octets();
    let sender_mac = EthernetAddress([0x02, 0, 0, 0xa9, c, d]);
    arp_frame(operation, (sender_mac, sender), (mac(B), ip(B)), mac(B))
}

/// The frames B sends to put one datagram on the wire to A: 1 when B knows A's MAC,
/// 2 when it must ask for it first (an ARP request, then the datagram).
fn frames_for_a_datagram_from_b_to_a(w: &mut World<2>, from: ringnet::SocketHandle) -> u64 {
    let before = w.stacks[B].frame_counts().1;
    w.stacks[B].send_to(from, b"reply", ep(A, 5000)).unwrap();
    w.settle();
    w.stacks[B].frame_counts().1 - before
}

#[test]
fn spoofed_arp_from_every_other_address_of_the_subnet_does_not_evict_a_real_client() {
    // smoltcp fills its neighbour cache from every ARP request or reply aimed at this host
    // from an address on the subnet, and when the cache is full evicts the entry that
    // expires first: with the 8 entries of smoltcp's default, a LAN peer spoofing 8
    // addresses evicted a real client, whose every reply then waited for an ARP round
    // trip (smoltcp drops the packet that found no entry, and asks at most once a second).
    // A host build's cache holds every address of a /24.
    use ringnet::smoltcp::wire::ArpOperation;
    let mut w = pair(Faults::NONE, 133);
    let a_client = udp_socket(&mut w.stacks[A], 4, 1024);
    w.stacks[A].udp_bind(a_client, 5000).unwrap();
    let b_server = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(b_server, 6000).unwrap();
    // A talks to B first: its ARP request puts A in B's cache.
    w.stacks[A]
        .send_to(a_client, b"hello", ep(B, 6000))
        .unwrap();
    w.settle();
    assert_eq!(frames_for_a_datagram_from_b_to_a(&mut w, b_server), 1);
    w.wire.advance_to(w.wire.now() + Duration::from_secs(1));
    // Every other address of 10.0.0.0/24 (not A, B, the network or the broadcast),
    // spoofed, requests or replies in turn.
    let mut spoofed = 0;
    for host in 3..=254u8 {
        let operation = if host % 2 == 0 {
            ArpOperation::Request
        } else {
            ArpOperation::Reply
        };
        let frame = spoofed_arp(Ipv4Address::new(10, 0, 0, host), operation);
        w.wire.inject(A, &frame).unwrap();
        spoofed += 1;
        if spoofed % 16 == 0 {
            w.settle();
        }
    }
    w.settle();
    assert_eq!(spoofed, 252);
    assert_eq!(
        frames_for_a_datagram_from_b_to_a(&mut w, b_server),
        1,
        "B still knows A: no ARP request before its datagram"
    );
    let mut buf = [0u8; 16];
    let mut got = 0;
    while w.stacks[A].recv_from(a_client, &mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 2, "both datagrams reached A");
}

#[test]
fn a_stats_query_to_a_broadcast_or_multicast_address_is_not_answered() {
    // A 1-byte query to the stats port got the whole table back, several 1400-byte
    // datagrams; sent to the subnet's broadcast, its source spoofed as a victim, it made
    // every ringnet host on the subnet send its table to the victim (an amplifier, like
    // ICMP echo to a broadcast, which Linux ignores). The report port still answers a
    // broadcast with its one line (it shows what reached the host).
    use ringnet::services::{StatsQuery, UdpReport, REPORT_PORT, STATS_PORT};
    let mut w = world_with::<3>(Faults::NONE, 134, ETHERNET_MTU, 256 * 1024);
    let mut services: Vec<(UdpReport<512>, StatsQuery)> = (B..=2)
        .map(|host| {
            let stack = &mut w.stacks[host];
            let report = udp_socket(stack, 8, 4096);
            let stats = udp_socket(stack, 8, 8192);
            (
                UdpReport::new(stack, report, REPORT_PORT).unwrap(),
                StatsQuery::new(stack, stats, STATS_PORT).unwrap(),
            )
        })
        .collect();
    let run = |w: &mut World<3>, services: &mut Vec<(UdpReport<512>, StatsQuery)>| {
        for _ in 0..100 {
            let now = w.wire.now();
            for host in 0..3 {
                let stack = &mut w.stacks[host];
                stack.poll(now, &mut w.wire.port(host));
                if let Some((report, stats)) = host.checked_sub(B).map(|i| &mut services[i]) {
                    report.poll(stack);
                    stats.poll(stack);
                }
            }
            w.wire.advance_to(now + Duration::from_millis(1));
        }
    };
    w.settle();
    let frames_out = |w: &World<3>| (w.stacks[B].frame_counts().1, w.stacks[2].frame_counts().1);
    let before = frames_out(&w);
    let groups = [
        (EthernetAddress::BROADCAST, Ipv4Address::new(10, 0, 0, 255)),
        (EthernetAddress::BROADCAST, Ipv4Address::BROADCAST),
        (
            EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]),
            Ipv4Address::new(224, 0, 0, 1),
        ),
    ];
    for (to_mac, to) in groups {
        let query = udp_datagram_frame(mac(A), (ip(A), 40_000), to_mac, (to, STATS_PORT), b"?");
        w.wire.inject(A, &query).unwrap();
    }
    run(&mut w, &mut services);
    assert_eq!(frames_out(&w), before, "neither B nor C answered A");
    for (_, stats) in &services {
        assert_eq!(stats.unanswered(), 3);
    }
    // A query to a host's own address is answered in full, and counts nothing.
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    w.stacks[A]
        .send_to(client, b"?", ep(B, STATS_PORT))
        .unwrap();
    run(&mut w, &mut services);
    let mut buf = [0u8; 2048];
    let mut answer = String::new();
    while let Ok(d) = w.stacks[A].recv_from(client, &mut buf) {
        answer.push_str(std::str::from_utf8(&buf[..d.len]).unwrap());
    }
    assert!(answer.contains("end of table"), "{answer}");
    assert_eq!(services[0].1.unanswered(), 3);
}

/// File in on B with `backlog` sockets.
fn file_in_on_b(w: &mut World<2>, backlog: usize) -> FileIn {
    let sockets: Vec<_> = (0..backlog)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    FileIn::new(&mut w.stacks[B], FILE_IN_PORT, &sockets).unwrap()
}

/// The slow and idle counts on `port` of B.
fn slow_and_idle(stack: &Stack<'_>, port: u16) -> (u32, u32) {
    (
        port_total(stack, port, |s| s.slow_requests),
        port_total(stack, port, |s| s.idle_timeouts),
    )
}

/// The bound of the default minimum rate (20 s, then 500 B/s) on a phase that has moved
/// `moved` bytes, with a poll's slack.
fn rate_bound(moved: u64) -> (Duration, Duration) {
    let deadline = Duration::from_secs(20) + Duration::from_micros(moved * 2000);
    (
        deadline - Duration::from_millis(200),
        deadline + Duration::from_millis(300),
    )
}

#[test]
fn a_file_in_sender_that_trickles_a_byte_inside_each_idle_timeout_is_cut_off_at_the_minimum_rate() {
    // One socket: a sender that moves a byte every 59 s keeps the 60 s idle timeout away
    // for ever, and without the rate nobody else is ever served.
    let mut w = pair(Faults::NONE, 108);
    let mut file_in = file_in_on_b(&mut w, 1);
    {
        client_of!(w, poll file_in, sock, conn, FILE_IN_PORT, (1024, 1024));
        sock.send_all(conn, &[b'x'; 100]).unwrap();
        let cut = trickle_until_slow(
            &mut sock,
            FILE_IN_PORT,
            Duration::from_secs(59),
            Duration::from_secs(600),
            |a| {
                let _ = a.send(conn, b"x");
            },
        )
        .expect("the trickler is cut off");
        let (early, late) = rate_bound(100);
        assert!(early <= cut && cut <= late, "cut off after {cut}");
        let mut buf = [0u8; 8];
        assert_eq!(
            sock.recv(conn, &mut buf),
            Err(RecvError::ConnectionReset),
            "no status in this protocol: a reset"
        );
        // The socket is free for the next sender.
        let next = tcp_socket(sock.stack(), 1024, 1024);
        sock.connect(next, ep(B, FILE_IN_PORT)).unwrap();
        sock.send_all(next, b"hi").unwrap();
        sock.stack().shutdown_write(next).unwrap();
        let reply = read_to_end(&mut sock, next);
        assert!(reply.starts_with(b"2 "), "{reply:?}");
    }
    assert_eq!(slow_and_idle(&w.stacks[B], FILE_IN_PORT), (1, 0));
}

#[test]
fn a_file_in_sender_slow_but_above_the_minimum_rate_is_served_whole() {
    // 60 bytes every 100 ms (600 B/s) for 40 s: twice the grace, never below 500 B/s.
    let mut w = pair(Faults::NONE, 109);
    let mut file_in = file_in_on_b(&mut w, 1);
    {
        client_of!(w, poll file_in, sock, conn, FILE_IN_PORT, (1024, 1024));
        for _ in 0..400 {
            sock.send_all(conn, &[b'x'; 60]).unwrap();
            sock.sleep(Duration::from_millis(100));
        }
        sock.stack().shutdown_write(conn).unwrap();
        let reply = read_to_end(&mut sock, conn);
        assert!(reply.starts_with(b"24000 "), "{reply:?}");
    }
    assert_eq!(slow_and_idle(&w.stacks[B], FILE_IN_PORT), (0, 0));
}

#[test]
fn a_file_out_reader_that_opens_its_window_a_byte_at_a_time_is_cut_off_at_the_minimum_rate() {
    static FILE: &[u8] = &[7; 100_000];
    let mut w = pair(Faults::NONE, 110);
    let mut file_out = file_out_on_b(&mut w, 1, FILE);
    {
        // A 256-byte ring: 256 bytes arrive, then the window opens a byte a read.
        client_of!(w, poll file_out, sock, conn, FILE_OUT_PORT, (256, 256));
        let cut = trickle_until_slow(
            &mut sock,
            FILE_OUT_PORT,
            Duration::from_secs(59),
            Duration::from_secs(600),
            |a| {
                let _ = a.recv(conn, &mut [0u8; 1]);
            },
        )
        .expect("the reader is cut off");
        // What it acknowledged: the ring's 256 bytes (its first read found nothing yet,
        // the next came after the cut).
        let (early, late) = rate_bound(256);
        assert!(early <= cut && cut <= late, "cut off after {cut}");
        let mut buf = [0u8; 512];
        assert_eq!(sock.recv(conn, &mut buf), Ok(256), "the ring's bytes first");
        assert_eq!(
            sock.recv(conn, &mut buf),
            Err(RecvError::ConnectionReset),
            "then the reset: no status can follow the file's bytes"
        );
    }
    assert_eq!(slow_and_idle(&w.stacks[B], FILE_OUT_PORT), (1, 0));
}

#[test]
fn a_file_out_reader_slow_but_above_the_minimum_rate_gets_the_whole_file() {
    // 64 bytes every 100 ms (640 B/s) of a 25 600-byte file: 40 s, twice the grace.
    static FILE: &[u8] = &[7; 25_600];
    let mut w = pair(Faults::NONE, 111);
    let mut file_out = file_out_on_b(&mut w, 1, FILE);
    {
        client_of!(w, poll file_out, sock, conn, FILE_OUT_PORT, (256, 256));
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match sock.recv(conn, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e} after {} bytes", got.len()),
            }
            sock.sleep(Duration::from_millis(100));
        }
        assert_eq!(got, FILE);
    }
    assert_eq!(slow_and_idle(&w.stacks[B], FILE_OUT_PORT), (0, 0));
}

/// A frame sniffed on the hub: its length, and its IPv4 source, destination, protocol
/// and payload.
struct Sniffed {
    len: usize,
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: ringnet::smoltcp::wire::IpProtocol,
    payload: Vec<u8>,
}

/// Every IPv4 frame waiting at `port` (a port of the hub no stack polls, which sees every
/// frame but those it injects itself).
fn sniff<const PORTS: usize>(
    wire: &ringnet::sim::Wire<'static, PORTS>,
    port: usize,
) -> Vec<Sniffed> {
    use ringnet::smoltcp::phy::{Device, RxToken};
    use ringnet::smoltcp::wire::{EthernetFrame, Ipv4Packet};
    let mut frames = Vec::new();
    let mut sniffer = wire.port(port);
    while let Some((rx, _)) = sniffer.receive(wire.now()) {
        rx.consume(|frame| {
            let Ok(eth) = EthernetFrame::new_checked(frame) else {
                return;
            };
            let Ok(ip4) = Ipv4Packet::new_checked(eth.payload()) else {
                return;
            };
            frames.push(Sniffed {
                len: frame.len(),
                src: ip4.src_addr(),
                dst: ip4.dst_addr(),
                protocol: ip4.next_header(),
                payload: ip4.payload().to_vec(),
            });
        });
    }
    frames
}

/// The stats answers B sent to A among `frames`: (datagrams, UDP payload bytes, frame
/// bytes, answers ended by `end of table`).
fn stats_answers_to_a(frames: &[Sniffed]) -> (usize, usize, usize, usize) {
    use ringnet::services::STATS_PORT;
    use ringnet::smoltcp::wire::{IpProtocol, UdpPacket};
    let mut figures = (0, 0, 0, 0);
    for f in frames {
        if f.src != ip(B) || f.dst != ip(A) || f.protocol != IpProtocol::Udp {
            continue;
        }
        let Ok(udp) = UdpPacket::new_checked(&f.payload[..]) else {
            continue;
        };
        if udp.src_port() != STATS_PORT {
            continue;
        }
        figures.0 += 1;
        figures.1 += udp.payload().len();
        figures.2 += f.len;
        let text = String::from_utf8_lossy(udp.payload());
        figures.3 += usize::from(text.contains("end of table: "));
    }
    figures
}

#[test]
fn a_flood_of_spoofed_stats_queries_gets_at_most_the_buckets_worth_of_answers() {
    // A 1-byte query to 9001 got the whole table, whoever its source claimed to be: a
    // flood of them with a victim's address as their source made the host send the
    // victim its table again and again (amplification, as DNS, NTP's monlist and
    // memcached were used). The host's answers now go through one bucket of bytes.
    use ringnet::services::{StatsQuery, STATS_BURST, STATS_PER_SECOND, STATS_PORT};
    let mut w = world_with::<3>(Faults::NONE, 135, ETHERNET_MTU, 256 * 1024);
    // A table of three datagrams: the query socket's row and 12 others.
    for _ in 0..12 {
        tcp_socket(&mut w.stacks[B], 256, 256);
    }
    let socket = udp_socket(&mut w.stacks[B], 8, 8192);
    let mut stats = StatsQuery::new(&mut w.stacks[B], socket, STATS_PORT).unwrap();
    let victim = udp_socket(&mut w.stacks[A], 64, 64 * 1024);
    w.stacks[A].udp_bind(victim, 40_000).unwrap();
    // Polls A and B every millisecond for `ms`, sniffing at C; `inject` puts C's frames
    // for that millisecond on the wire first.
    let run = |w: &mut World<3>,
               stats: &mut StatsQuery,
               ms: u32,
               inject: &mut dyn FnMut(&World<3>, u32)| {
        let mut seen = Vec::new();
        for tick in 0..ms {
            inject(w, tick);
            let now = w.wire.now();
            for host in [A, B] {
                w.stacks[host].poll(now, &mut w.wire.port(host));
            }
            stats.poll(&mut w.stacks[B]);
            let mut buf = [0u8; 2048];
            while w.stacks[A].recv_from(victim, &mut buf).is_ok() {}
            seen.extend(sniff(w.wire, C));
            w.wire.advance_to(now + Duration::from_millis(1));
        }
        seen
    };
    // The victim's own polite query first: it is answered whole (and B learns A's MAC).
    w.stacks[A]
        .send_to(victim, b"?", ep(B, STATS_PORT))
        .unwrap();
    let polite = stats_answers_to_a(&run(&mut w, &mut stats, 50, &mut |_, _| {}));
    assert_eq!((polite.0, polite.3), (3, 1), "one table in three datagrams");
    let table_bytes = polite.1;
    // The flood: two 1-byte queries a millisecond for half a second, from the victim's
    // address and port, put on the wire by C.
    const QUERIES: u32 = 1000;
    let query = udp_datagram_frame(mac(C), (ip(A), 40_000), mac(B), (ip(B), STATS_PORT), b"?");
    let flood_ms = QUERIES / 2;
    let frames = run(&mut w, &mut stats, flood_ms + 100, &mut |w, tick| {
        if tick < flood_ms {
            for _ in 0..2 {
                w.wire.inject(C, &query).unwrap();
            }
        }
    });
    let (datagrams, bytes, frame_bytes, answers) = stats_answers_to_a(&frames);
    let drops = w.stacks[B].stats(socket).unwrap().rx_drops;
    println!(
        "flood of {QUERIES} queries ({} B of UDP payload, {} B of frames): {answers} answers, {datagrams} datagrams, {bytes} B of UDP payload ({:.1}x), {frame_bytes} B of frames ({:.1}x); {} rate-limited, {drops} dropped at the full rx ring; one table {table_bytes} B",
        QUERIES,
        QUERIES as usize * query.len(),
        bytes as f64 / QUERIES as f64,
        frame_bytes as f64 / (QUERIES as usize * query.len()) as f64,
        stats.rate_limited(),
    );
    // The flood took 0.6 s: the bucket let out its burst, the refill, and the rest of
    // the answer under way.
    let bound = STATS_BURST as usize + STATS_PER_SECOND as usize * 6 / 10 + table_bytes;
    assert!(bytes <= bound, "{bytes} B answered, bound {bound}");
    assert!(answers > 1, "the bucket answers its burst");
    // Every query is accounted for, exactly: answered, rate-limited, or dropped at the
    // full ring before the service saw it.
    assert_eq!(answers as u32 + stats.rate_limited() + drops, QUERIES);
    assert_eq!(stats.unanswered(), stats.rate_limited());
    let row = w.stacks[B]
        .stats_rows()
        .find(|r| r.handle == socket)
        .unwrap();
    assert_eq!(row.stats.rate_limited, stats.rate_limited(), "{row}");
    // A second later the bucket has refilled: the polite query gets its whole table.
    w.wire.advance_to(w.wire.now() + Duration::from_secs(1));
    w.stacks[A]
        .send_to(victim, b"?", ep(B, STATS_PORT))
        .unwrap();
    let again = stats_answers_to_a(&run(&mut w, &mut stats, 50, &mut |_, _| {}));
    assert_eq!((again.0, again.3), (3, 1), "the whole table again");
}

#[test]
fn a_flood_to_a_closed_port_gets_at_most_the_icmp_buckets_worth_of_errors() {
    // smoltcp answers every datagram to a port no socket is bound to with ICMP port
    // unreachable, and a protocol it does not handle with protocol unreachable: a flood
    // with a victim's address as its source made the host reflect one error per frame.
    // The host's ICMP errors now go through one bucket, Linux's: 50 at once, 1000 a
    // second.
    use ringnet::phy::{ICMP_BURST, ICMP_PER_SECOND};
    use ringnet::smoltcp::wire::{Icmpv4Packet, IpProtocol, Ipv4Repr};
    assert_eq!((ICMP_BURST, ICMP_PER_SECOND), (50, 1000));
    let mut w = world_with::<3>(Faults::NONE, 136, ETHERNET_MTU, 256 * 1024);
    let a_socket = udp_socket(&mut w.stacks[A], 4, 1024);
    let b_socket = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(b_socket, 6000).unwrap();
    // A talks to B first, so B knows where A is (its ARP request).
    w.stacks[A]
        .send_to(a_socket, b"hello", ep(B, 6000))
        .unwrap();
    let run = |w: &mut World<3>, ms: u32| {
        let mut seen = Vec::new();
        for _ in 0..ms {
            let now = w.wire.now();
            for host in [A, B] {
                w.stacks[host].poll(now, &mut w.wire.port(host));
            }
            seen.extend(sniff(w.wire, C));
            w.wire.advance_to(now + Duration::from_millis(1));
        }
        seen
    };
    run(&mut w, 20);
    let closed_port = udp_datagram_frame(mac(C), (ip(A), 5555), mac(B), (ip(B), 7777), b"x");
    let protocol = Ipv4Repr {
        src_addr: ip(A),
        dst_addr: ip(B),
        next_header: IpProtocol::Unknown(253),
        payload_len: 8,
        hop_limit: 64,
    };
    let unhandled = ipv4_frame(mac(C), mac(B), &protocol, |payload, _| payload.fill(7));
    // Codes of the ICMP errors among `frames` from B to A: 3 port, 2 protocol unreachable.
    let errors = |frames: &[Sniffed]| -> Vec<u8> {
        frames
            .iter()
            .filter(|f| f.src == ip(B) && f.dst == ip(A) && f.protocol == IpProtocol::Icmp)
            .filter_map(|f| {
                let icmp = Icmpv4Packet::new_checked(&f.payload[..]).ok()?;
                (u8::from(icmp.msg_type()) == 3).then(|| icmp.msg_code())
            })
            .collect()
    };
    // 200 datagrams and 20 frames of protocol 253, all at once.
    for _ in 0..200 {
        w.wire.inject(C, &closed_port).unwrap();
    }
    for _ in 0..20 {
        w.wire.inject(C, &unhandled).unwrap();
    }
    let sent = errors(&run(&mut w, 5));
    println!("220 frames at once: {} ICMP errors", sent.len());
    assert_eq!(sent, vec![3; 50], "the burst, all port unreachable");
    let discards = w.stacks[B].discards();
    assert_eq!(discards.no_socket, 200);
    assert_eq!(discards.icmp_limited, 170, "every error not sent, counted");
    let table = w.stacks[B].stats_table().to_string();
    assert!(
        table.ends_with(", icmp_limited 170, inexact_rst 0, after_fin 0\n"),
        "{table}"
    );
    // A second later the bucket is full again (50, not 1000): the protocol errors go.
    w.wire.advance_to(w.wire.now() + Duration::from_secs(1));
    for _ in 0..20 {
        w.wire.inject(C, &unhandled).unwrap();
    }
    let sent = errors(&run(&mut w, 5));
    assert_eq!(sent, vec![2; 20]);
    // A sustained flood, 10 a millisecond for 100 ms: the refill's one a millisecond
    // (and the 30 left of the burst), no more.
    let since = w.wire.now();
    let mut sent = Vec::new();
    for _ in 0..100 {
        for _ in 0..10 {
            w.wire.inject(C, &closed_port).unwrap();
        }
        sent.extend(errors(&run(&mut w, 1)));
    }
    sent.extend(errors(&run(&mut w, 5)));
    println!("1000 frames in 100 ms: {} ICMP errors", sent.len());
    let refill = (w.wire.now() - since).total_millis() as usize;
    assert!(
        sent.len() <= 30 + refill,
        "{} errors in {refill} ms",
        sent.len()
    );
    let limited = w.stacks[B].discards().icmp_limited - 170;
    assert_eq!(
        sent.len() as u32 + limited,
        1000,
        "each error sent or counted"
    );
    // The socket on 6000 still got A's datagram, and a datagram to it gets no error.
    let mut buf = [0u8; 16];
    assert!(w.stacks[B].recv_from(b_socket, &mut buf).is_ok());
}

#[test]
fn segments_and_datagrams_from_a_martian_source_take_no_socket_and_get_no_answer() {
    // A source no packet on the wire may carry (Linux's "martian source", dropped in
    // `ip_route_input_slow` and `fib_validate_source`): the host's own address (the
    // "land" attack), a loopback address, or 0.0.0.0 to anything but the limited
    // broadcast (a DHCP client's). smoltcp took them: a SYN from B's own address held a
    // backlog socket half-open while B asked the wire, once a second, who has its own
    // address; a datagram from it reached its socket, whose answer then waited for ever
    // for an ARP reply that never comes.
    let mut w = pair(Faults::NONE, 137);
    let mut echo = echo_on_b(&mut w, 1);
    let server = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(server, 6000).unwrap();
    w.settle();
    let frames_out = w.stacks[B].frame_counts().1;
    let martians = [
        ip(B),
        Ipv4Address::new(127, 0, 0, 1),
        Ipv4Address::UNSPECIFIED,
    ];
    for (n, src) in martians.into_iter().enumerate() {
        let port = 40_000 + n as u16;
        let syn = tcp_syn(mac(A), (src, port), mac(B), (ip(B), ECHO_PORT), 1000);
        w.wire.inject(A, &syn).unwrap();
        let datagram = udp_datagram_frame(mac(A), (src, port), mac(B), (ip(B), 6000), b"who");
        w.wire.inject(A, &datagram).unwrap();
        w.settle();
    }
    w.run_for(Duration::from_secs(3));
    assert_eq!(
        w.stacks[B].frame_counts().1,
        frames_out,
        "B sent nothing: no SYN-ACK, no ARP request for its own address"
    );
    assert_eq!(
        w.stacks[B].discards().malformed,
        6,
        "each counted as malformed"
    );
    let mut buf = [0u8; 16];
    assert!(
        w.stacks[B].recv_from(server, &mut buf).is_err(),
        "no datagram reached the socket"
    );
    // The backlog's one socket still listens: a real client takes it, nothing evicted.
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"served by the only socket");
        sock.stack().close(conn).unwrap();
    }
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(
        (row.stats.half_open_expired, row.stats.half_open_evicted),
        (0, 0),
        "{row}"
    );
}

/// One datagram from [`SPOOFED`] (an address no host holds) to B's `port`, then a real
/// client on A asking B's `port` once a second for 10 s, with `service` polled on B:
/// the answers the client got, and the counters of B's `socket` and the client's.
fn asks_after_a_spoofed_datagram<S>(
    port: u16,
    start: impl FnOnce(&mut Stack<'static>) -> (ringnet::SocketHandle, S),
    poll: impl Fn(&mut S, &mut Stack<'static>),
) -> (usize, SocketStats, SocketStats) {
    let mut w = pair(Faults::NONE, 138);
    let (server, mut service) = start(&mut w.stacks[B]);
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    let mut run = |w: &mut World<2>, duration: Duration| {
        w.step_for(duration, |host, stack| {
            if host == B {
                poll(&mut service, stack);
            }
        })
    };
    let spoofed = udp_datagram_frame(SPOOFED_MAC, (SPOOFED, 4000), mac(B), (ip(B), port), b"?");
    w.wire.inject(A, &spoofed).unwrap();
    run(&mut w, Duration::from_millis(100));
    let mut answers = 0;
    let mut buf = [0u8; 2048];
    for round in 0..10 {
        w.stacks[A]
            .send_to(client, format!("? {round}").as_bytes(), ep(B, port))
            .unwrap();
        run(&mut w, Duration::from_secs(1));
        while w.stacks[A].recv_from(client, &mut buf).is_ok() {
            answers += 1;
        }
    }
    let server_stats = w.stacks[B].stats(server).unwrap();
    let client_stats = w.stacks[A].stats(client).unwrap();
    (answers, server_stats, client_stats)
}

#[test]
fn one_datagram_from_an_address_no_host_holds_does_not_stop_the_report_answering() {
    // smoltcp keeps a datagram whose next hop does not answer ARP at the head of its
    // socket's tx ring and sends nothing else from that socket meanwhile, for as long as
    // no reply comes. One datagram to the report (9000) from an address of the subnet
    // that no host holds, spoofed, stopped the report's answers to everyone for good.
    // Linux queues on the neighbour and drops what it queued once three ARP probes go
    // unanswered.
    use ringnet::services::{UdpReport, REPORT_PORT};
    let (answers, stats, client) = asks_after_a_spoofed_datagram(
        REPORT_PORT,
        |b| {
            let socket = udp_socket(b, 8, 4096);
            let report: UdpReport<512> = UdpReport::new(b, socket, REPORT_PORT).unwrap();
            (socket, report)
        },
        |report, b| report.poll(b),
    );
    assert!(
        answers >= 6,
        "{answers} of 10 asks answered: the report must answer once the spoofed source's \
         answer is given up"
    );
    assert_eq!(
        stats.datagrams_in, 11,
        "the spoofed datagram and the ten asks"
    );
    assert!(
        stats.unresolved_dropped_bytes > 0,
        "what waited for the spoofed source's ARP reply is counted: {stats:?}"
    );
    // The client's datagrams, to a host that answers ARP, all left: nothing dropped.
    assert_eq!(client.datagrams_out, 10);
    assert_eq!(client.unresolved_dropped_bytes, 0, "{client:?}");
}

#[test]
fn one_query_from_an_address_no_host_holds_does_not_stop_the_stats_answering() {
    // The same for the stats query (9001), which reads no query while an answer waits
    // for room: its rx ring fills meanwhile, and what it held goes with the tx ring,
    // counted as drops.
    use ringnet::services::{StatsQuery, STATS_PORT};
    let (answers, stats, client) = asks_after_a_spoofed_datagram(
        STATS_PORT,
        |b| {
            let socket = udp_socket(b, 8, 8192);
            (socket, StatsQuery::new(b, socket, STATS_PORT).unwrap())
        },
        |query, b| query.poll(b),
    );
    assert!(answers > 0, "the stats table reached the client: {stats:?}");
    assert!(stats.unresolved_dropped_bytes > 0, "{stats:?}");
    assert_eq!(client.unresolved_dropped_bytes, 0, "{client:?}");
}

/// A spoofed datagram to B's `port` every `spoof_every` from an address of the subnet
/// that no host holds (a new one each time), and a real client on A asking once a second
/// for 30 s, with `service` polled on B: the answers the client got, B's ARP queue's
/// counters, and the spoofed datagrams sent.
fn asks_among_spoofed_datagrams<S>(
    port: u16,
    spoof_every: Duration,
    start: impl FnOnce(&mut Stack<'static>) -> S,
    poll: impl Fn(&mut S, &mut Stack<'static>),
) -> (usize, ringnet::ArpQueueStats, u32) {
    let mut w = pair(Faults::NONE, 141);
    let mut service = start(&mut w.stacks[B]);
    let client = udp_socket(&mut w.stacks[A], 8, 8192);
    let (mut answers, mut spoofed, mut buf) = (0, 0u32, [0u8; 2048]);
    let mut next_spoof = w.wire.now();
    let mut next_ask = w.wire.now() + Duration::from_millis(300);
    let mut asks = 0;
    let end = w.wire.now() + Duration::from_secs(31);
    while w.wire.now() < end {
        if w.wire.now() >= next_spoof {
            let source = Ipv4Address::new(10, 0, 0, 100 + (spoofed % 100) as u8);
            let frame =
                udp_datagram_frame(SPOOFED_MAC, (source, 4000), mac(B), (ip(B), port), b"?");
            w.wire.inject(A, &frame).unwrap();
            spoofed += 1;
            next_spoof += spoof_every;
        }
        if w.wire.now() >= next_ask && asks < 30 {
            w.stacks[A]
                .send_to(client, format!("? {asks}").as_bytes(), ep(B, port))
                .unwrap();
            asks += 1;
            next_ask += Duration::from_secs(1);
        }
        w.step_for(Duration::from_millis(100), |host, stack| {
            if host == B {
                poll(&mut service, stack);
            }
        });
        while let Ok(d) = w.stacks[A].recv_from(client, &mut buf) {
            answers += usize::from(
                port != ringnet::services::STATS_PORT || buf[..d.len].ends_with(b"rows\n"),
            );
        }
    }
    assert_eq!(asks, 30);
    (answers, w.stacks[B].arp_queue_stats().unwrap(), spoofed)
}

#[test]
fn spoofed_datagrams_every_second_from_addresses_no_host_holds_do_not_stop_the_report() {
    // One spoofed datagram every 3 s or faster kept the report's tx ring stalled behind
    // ARP for good (0 of 30 asks answered at one a second, 6 of 30 at one every 2.5 s):
    // each answer to a spoofed source waited at the ring's head for a reply that never
    // came, and the real client's answers behind it. The ARP queue takes the answers to
    // next hops not heard from out of the ring.
    use ringnet::services::{UdpReport, REPORT_PORT};
    for every in [Duration::from_millis(1000), Duration::from_millis(300)] {
        let (answers, queue, spoofed) = asks_among_spoofed_datagrams(
            REPORT_PORT,
            every,
            |b| {
                let socket = udp_socket(b, 8, 4096);
                let report: UdpReport<512> = UdpReport::new(b, socket, REPORT_PORT).unwrap();
                report
            },
            |report, b| report.poll(b),
        );
        assert_eq!(answers, 30, "one spoofed datagram every {every}: {queue:?}");
        // Each spoofed source's answer was queued or, while another's held the queue,
        // dropped; every queued one was given up after its 3 s, none sent.
        assert_eq!(
            queue.datagrams_queued + queue.datagrams_dropped_busy,
            spoofed,
            "{queue:?}"
        );
        // Each queued answer holds the queue for its 3 s; the first spoofed datagram
        // after that takes it.
        assert!(queue.datagrams_queued >= 6, "{queue:?}");
        assert_eq!(queue.sent_bytes, 0, "{queue:?}");
        assert!(
            queue.queued_bytes - queue.dropped_unresolved_bytes <= 64,
            "all but the last answer given up: {queue:?}"
        );
    }
}

#[test]
fn spoofed_queries_every_second_from_addresses_no_host_holds_do_not_stop_the_stats() {
    // The same for the stats query, whose answer to each spoofed source is several
    // datagrams: the first goes on the ARP queue, the rest are dropped with it.
    use ringnet::services::{StatsQuery, STATS_PORT};
    let (answers, queue, spoofed) = asks_among_spoofed_datagrams(
        STATS_PORT,
        Duration::from_millis(1000),
        |b| {
            let socket = udp_socket(b, 8, 8192);
            StatsQuery::new(b, socket, STATS_PORT).unwrap()
        },
        |query, b| query.poll(b),
    );
    assert_eq!(
        answers, 30,
        "every table reached the client whole: {queue:?} {spoofed}"
    );
    // Each queued answer holds the queue for its 3 s.
    assert!(queue.datagrams_queued >= 6, "{queue:?}");
    assert_eq!(queue.sent_bytes, 0, "{queue:?}");
}

/// Every datagram waiting at A's `client`: its length and first byte.
fn datagrams_at_a(w: &mut World<2>, client: ringnet::SocketHandle) -> Vec<(usize, u8)> {
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while let Ok(d) = w.stacks[A].recv_from(client, &mut buf) {
        got.push((d.len, buf[0]));
    }
    got
}

#[test]
fn datagrams_to_a_host_not_yet_heard_from_wait_on_the_arp_queue_and_leave_in_order() {
    // B has heard nothing from A: its datagrams to A go on the ARP queue while A's
    // address is asked for, leave once A answers, in the order sent; later ones, A
    // heard from, go through the socket's own ring.
    let mut w = pair(Faults::NONE, 142);
    let socket = udp_socket(&mut w.stacks[B], 8, 4096);
    let client = udp_socket(&mut w.stacks[A], 16, 8192);
    w.stacks[A].udp_bind(client, 5000).unwrap();
    for i in 0..5u8 {
        w.stacks[B].send_to(socket, &[i; 100], ep(A, 5000)).unwrap();
    }
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!((queue.datagrams_queued, queue.queued_bytes), (5, 500));
    w.settle();
    for i in 5..8u8 {
        w.stacks[B].send_to(socket, &[i; 100], ep(A, 5000)).unwrap();
    }
    w.settle();
    assert_eq!(
        datagrams_at_a(&mut w, client),
        (0..8u8).map(|i| (100, i)).collect::<Vec<_>>()
    );
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(
        (queue.datagrams_queued, queue.sent_bytes, queue.high_water),
        (5, 500, 500),
        "the first five queued and sent, the rest not queued: {queue:?}"
    );
    assert_eq!(
        (queue.datagrams_dropped_busy, queue.dropped_unresolved_bytes),
        (0, 0)
    );
    let stats = w.stacks[B].stats(socket).unwrap();
    assert_eq!(
        (stats.datagrams_out, stats.unresolved_dropped_bytes),
        (8, 0)
    );
}

#[test]
fn a_burst_larger_than_the_arp_queue_loses_what_it_cannot_hold_and_the_rest_arrives_in_order() {
    // Twelve datagrams to a host not yet heard from, with room for eight on the queue:
    // the first eight wait there and arrive in order; the other four are dropped and
    // counted, as Linux drops past `unres_qlen_bytes` (in the socket's ring they would
    // wait at its head, every datagram of the socket behind them).
    let mut w = pair(Faults::NONE, 145);
    let socket = udp_socket(&mut w.stacks[B], 16, 8192);
    let client = udp_socket(&mut w.stacks[A], 16, 8192);
    w.stacks[A].udp_bind(client, 5000).unwrap();
    for i in 0..12u8 {
        assert_eq!(w.stacks[B].send_to(socket, &[i; 10], ep(A, 5000)), Ok(10));
    }
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(
        (
            queue.datagrams_queued,
            queue.datagrams_dropped_full,
            queue.dropped_full_bytes
        ),
        (ARP_QUEUE_SLOTS as u32, 4, 40),
        "{queue:?}"
    );
    w.settle();
    assert_eq!(
        datagrams_at_a(&mut w, client),
        (0..8u8).map(|i| (10, i)).collect::<Vec<_>>()
    );
    let stats = w.stacks[B].stats(socket).unwrap();
    assert_eq!(
        (stats.datagrams_out, stats.unresolved_dropped_bytes),
        (12, 40)
    );
}

#[test]
fn a_datagram_that_finds_the_arp_queue_holding_another_destinations_is_dropped_and_counted() {
    // The queue holds one destination's datagrams at a time, as Linux's per neighbour
    // queue holds its own: a datagram for another next hop not heard from meanwhile is
    // dropped (Linux drops past `unres_qlen`), counted on its socket, and the call
    // succeeds, as `sendto` does.
    let mut w = pair(Faults::NONE, 143);
    let first = udp_socket(&mut w.stacks[B], 4, 1024);
    let second = udp_socket(&mut w.stacks[B], 4, 1024);
    let nobody = ringnet::IpEndpoint::new(SPOOFED.into(), 4000);
    assert_eq!(w.stacks[B].send_to(first, b"held", nobody), Ok(4));
    assert_eq!(w.stacks[B].send_to(second, b"dropped", ep(A, 5000)), Ok(7));
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(
        (
            queue.datagrams_queued,
            queue.datagrams_dropped_busy,
            queue.dropped_busy_bytes
        ),
        (1, 1, 7)
    );
    assert_eq!(
        w.stacks[B].stats(second).unwrap().unresolved_dropped_bytes,
        7
    );
    w.step_for(Duration::from_millis(3500), |_, _| {});
    let queue = w.stacks[B].arp_queue_stats().unwrap();
    assert_eq!(queue.dropped_unresolved_bytes, 4, "{queue:?}");
    assert_eq!(
        w.stacks[B].stats(first).unwrap().unresolved_dropped_bytes,
        4
    );
    // Free again: the next datagram for A is queued, and reaches A.
    let client = udp_socket(&mut w.stacks[A], 4, 1024);
    w.stacks[A].udp_bind(client, 5000).unwrap();
    assert_eq!(w.stacks[B].send_to(second, b"again", ep(A, 5000)), Ok(5));
    // smoltcp sends at most one ARP request a second, whatever it asks for: its last
    // one, for the dropped datagrams' next hop, was under a second ago.
    w.step_for(Duration::from_millis(1500), |_, _| {});
    let mut buf = [0u8; 16];
    assert_eq!(
        w.stacks[A].recv_from(client, &mut buf).map(|d| d.len),
        Ok(5)
    );
}

#[test]
fn a_stack_without_an_arp_queue_gives_up_a_stalled_tx_ring_after_three_seconds() {
    // Without an ARP queue a datagram for a next hop that never answers waits at the head
    // of its socket's ring, and the ring is given up after 3 s (A restarted: a stack
    // with no queue set).
    let mut w = pair(Faults::NONE, 144);
    restart_a(&mut w, 144);
    assert_eq!(w.stacks[A].arp_queue_stats(), None);
    let socket = udp_socket(&mut w.stacks[A], 4, 1024);
    let nobody = ringnet::IpEndpoint::new(SPOOFED.into(), 4000);
    w.stacks[A].send_to(socket, b"nobody", nobody).unwrap();
    w.stacks[A].send_to(socket, b"to B", ep(B, 5000)).unwrap();
    w.step_for(Duration::from_millis(2900), |_, _| {});
    assert_eq!(
        w.stacks[A].stats(socket).unwrap().unresolved_dropped_bytes,
        0
    );
    w.step_for(Duration::from_millis(1200), |_, _| {});
    assert_eq!(
        w.stacks[A].stats(socket).unwrap().unresolved_dropped_bytes,
        10,
        "the stalled head and the datagram behind it"
    );
}

#[test]
fn a_lone_datagram_to_an_address_no_host_holds_is_given_up_after_its_three_seconds() {
    // The stack looks for stalled tx rings only while some UDP ring holds a datagram. One
    // datagram, sent after the socket's earlier ones have all left and followed by none,
    // must still be given up at its deadline, and the socket send again after it.
    let mut w = pair(Faults::NONE, 139);
    let socket = udp_socket(&mut w.stacks[B], 4, 1024);
    let client = udp_socket(&mut w.stacks[A], 4, 1024);
    w.stacks[A].udp_bind(client, 5000).unwrap();
    let dropped = |w: &World<2>| w.stacks[B].stats(socket).unwrap().unresolved_dropped_bytes;
    w.stacks[B].send_to(socket, b"to A", ep(A, 5000)).unwrap();
    w.step_for(Duration::from_millis(500), |_, _| {});
    let mut buf = [0u8; 16];
    assert_eq!(
        w.stacks[A].recv_from(client, &mut buf).map(|d| d.len),
        Ok(4)
    );
    w.stacks[B]
        .send_to(
            socket,
            b"nobody",
            ringnet::IpEndpoint::new(SPOOFED.into(), 4000),
        )
        .unwrap();
    w.step_for(Duration::from_millis(2900), |_, _| {});
    assert_eq!(dropped(&w), 0, "within its 3 s the datagram still waits");
    w.step_for(Duration::from_millis(1200), |_, _| {});
    assert_eq!(
        dropped(&w),
        6,
        "given up at its deadline, with nothing sent after it"
    );
    w.stacks[B].send_to(socket, b"again", ep(A, 5000)).unwrap();
    w.step_for(Duration::from_millis(500), |_, _| {});
    assert_eq!(
        w.stacks[A].recv_from(client, &mut buf).map(|d| d.len),
        Ok(5)
    );
    assert_eq!(dropped(&w), 6);
}

/// A restarts: a new stack of A's configuration in its place, nothing sent on the way
/// (a board reset), its connections gone without a word to their peers; without an ARP
/// queue.
fn restart_a<const PORTS: usize>(w: &mut World<PORTS>, seed: u64) {
    new_stack::<_, 0, 0>(w, A, None, seed);
}

#[test]
fn a_client_that_restarts_and_connects_from_the_same_port_is_served_at_its_next_syn() {
    // A client that restarts (a board reset) and connects again from the port its last
    // connection had (a ringnet host picks the same first ephemeral port from the same
    // seed) finds that connection still established here, silent. Its SYN is a duplicate
    // of the connection's four-tuple, which the stack dropped (a listening socket would
    // answer it for another connection): every retransmission was dropped until the
    // service's idle timeout reset the old connection (60 s for echo). Linux answers a
    // SYN to a synchronized connection with a challenge ACK (RFC 5961 4.2): the client,
    // in SYN-SENT, answers that with a RST, which ends the old connection, and its next
    // SYN is served.
    let seed = 139;
    let mut w = pair(Faults::NONE, seed);
    let mut echo = echo_on_b(&mut w, 2);
    let before = {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"before the restart");
        sock.stack().local_addr(conn).unwrap()
    };
    restart_a(&mut w, seed);
    let restarted = w.wire.now();
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        assert_eq!(
            sock.stack().local_addr(conn).unwrap(),
            before,
            "the restarted client connects from the same port"
        );
        echo_round(&mut sock, conn, b"after the restart");
    }
    let waited = w.wire.now() - restarted;
    assert!(
        waited < Duration::from_secs(5),
        "served after {waited} of the wire's time: its SYN retransmission, not B's idle timeout"
    );
    assert!(
        w.stacks[B].discards().duplicate_syn >= 1,
        "the first SYN met the old connection"
    );
}

/// The TCP segments among `frames` from `src`: (sequence number, where it ends in
/// sequence space, acknowledgment number, RST flag).
fn tcp_segments_from(frames: &[Sniffed], src: Ipv4Address) -> Vec<(u32, u32, Option<u32>, bool)> {
    use ringnet::smoltcp::wire::{IpProtocol, TcpPacket};
    frames
        .iter()
        .filter(|f| f.src == src && f.protocol == IpProtocol::Tcp)
        .filter_map(|f| {
            let tcp = TcpPacket::new_checked(&f.payload[..]).ok()?;
            let seq = tcp.seq_number().0 as u32;
            let occupied = tcp.payload().len() + usize::from(tcp.syn()) + usize::from(tcp.fin());
            let ack = tcp.ack().then(|| tcp.ack_number().0 as u32);
            Some((seq, seq.wrapping_add(occupied as u32), ack, tcp.rst()))
        })
        .collect()
}

/// A and B with C on the wire to sniff and spoof, and echo on B with two 1 KiB sockets
/// (their handles and the service).
fn echo_on_b_with_a_sniffer(seed: u64) -> (World<3>, Vec<ringnet::SocketHandle>, Echo) {
    let mut w = world_with::<3>(Faults::NONE, seed, ETHERNET_MTU, 256 * 1024);
    let sockets: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 1024, 1024))
        .collect();
    let echo = Echo::new(&mut w.stacks[B], ECHO_PORT, &sockets).unwrap();
    (w, sockets, echo)
}

#[test]
fn a_reset_in_the_window_but_not_at_the_next_sequence_number_is_dropped() {
    // smoltcp ends a connection on any RST whose sequence number falls in its receive
    // window (RFC 793): a peer off the path that knows the four-tuple needs to guess only
    // one number per window's worth of the 2^32 (4 million RSTs for a 1024-byte ring,
    // fewer for larger ones) to reset it. RFC 5961 3.2, as Linux does: a RST ends the
    // connection only at exactly the next sequence number expected (one elsewhere in the
    // window gets a challenge ACK there; here it is dropped, and the connection's next
    // ACK does the challenge's work).
    use ringnet::smoltcp::wire::TcpControl;
    let (mut w, _, mut echo) = echo_on_b_with_a_sniffer(140);
    let wire = w.wire;
    client_of!(
        w,
        |b: &mut Stack<'static>, _: Instant| echo.poll(b),
        sock,
        conn,
        ECHO_PORT,
        (1024, 1024)
    );
    echo_round(&mut sock, conn, b"before the blind resets");
    sock.sleep(Duration::from_millis(100));
    let from = sock.stack().local_addr(conn).unwrap();
    let from = (ip(A), from.port);
    let sent = tcp_segments_from(&sniff(wire, C), ip(A));
    let rcv_nxt = sent.last().unwrap().1;
    // RSTs spoofed as A's, in B's window but not at its next number: with and without
    // an ACK, one of them carrying bytes.
    for (offset, ack, payload) in [
        (1u32, None, &b""[..]),
        (300, Some(0), &b""[..]),
        (1000, None, &b"diagnostic"[..]),
    ] {
        let rst = tcp_segment(
            mac(A),
            from,
            mac(B),
            (ip(B), ECHO_PORT),
            rcv_nxt.wrapping_add(offset),
            ack,
            TcpControl::Rst,
            payload,
        );
        wire.inject(C, &rst).unwrap();
        sock.sleep(Duration::from_millis(1100));
    }
    let answers = tcp_segments_from(&sniff(wire, C), ip(B));
    assert!(answers.is_empty(), "B sends nothing: {answers:?}");
    assert_eq!(sock.waiter().peer().discards().inexact_rst, 3);
    echo_round(&mut sock, conn, b"the connection lives");
    // A RST at exactly the next number ends the connection, as before.
    let sent = tcp_segments_from(&sniff(wire, C), ip(A));
    let rcv_nxt = sent.last().unwrap().1;
    let rst = tcp_segment(
        mac(A),
        from,
        mac(B),
        (ip(B), ECHO_PORT),
        rcv_nxt,
        None,
        TcpControl::Rst,
        &[],
    );
    wire.inject(C, &rst).unwrap();
    sock.sleep(Duration::from_millis(100));
    assert_eq!(sock.waiter().peer().discards().inexact_rst, 3);
    // B answers what A sends next with a RST (or A's delayed ACK got one already).
    let reset = sock.send_all(conn, b"gone?").is_err() || {
        let mut back = [0u8; 5];
        matches!(
            sock.recv_exact(conn, &mut back),
            Err(RecvError::ConnectionReset)
        )
    };
    assert!(reset, "B's connection ended at the exact RST");
}

#[test]
fn a_peer_that_sends_and_resets_at_once_still_ends_the_connection_at_the_next_ack() {
    // The price of dropping a RST not at the number last acknowledged: a peer that sends
    // data and resets before it is acknowledged (its RST beyond that number). The
    // connection's ACK of the data follows within the delayed ACK's 10 ms (echo's answer
    // with it), the peer, which has no connection any more, answers it with a RST at the
    // number it carries, and the connection ends there.
    use ringnet::smoltcp::wire::TcpControl;
    let seed = 141;
    let (mut w, sockets, mut echo) = echo_on_b_with_a_sniffer(seed);
    let wire = w.wire;
    let from = {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"before the reset");
        sock.sleep(Duration::from_millis(100));
        sock.stack().local_addr(conn).unwrap()
    };
    let connected =
        |b: &Stack<'static>| sockets.iter().filter(|&&s| b.peer_addr(s).is_ok()).count();
    assert_eq!(connected(&w.stacks[B]), 1);
    // A's connection is gone with nothing sent (a new stack of the same configuration),
    // and the last of its data and its RST arrive together.
    restart_a(&mut w, seed);
    let frames = sniff(wire, C);
    let rcv_nxt = tcp_segments_from(&frames, ip(A)).last().unwrap().1;
    let ack = Some(tcp_segments_from(&frames, ip(B)).last().unwrap().1);
    let from = (ip(A), from.port);
    let to = (ip(B), ECHO_PORT);
    let data = tcp_segment(
        mac(A),
        from,
        mac(B),
        to,
        rcv_nxt,
        ack,
        TcpControl::Psh,
        b"last",
    );
    let rst = tcp_segment(
        mac(A),
        from,
        mac(B),
        to,
        rcv_nxt + 4,
        ack,
        TcpControl::Rst,
        &[],
    );
    wire.inject(C, &data).unwrap();
    wire.inject(C, &rst).unwrap();
    let start = wire.now();
    while connected(&w.stacks[B]) > 0 && wire.now() - start < Duration::from_secs(5) {
        w.step_for(Duration::from_millis(10), |host, stack| {
            if host == B {
                echo.poll(stack)
            }
        });
    }
    assert_eq!(
        w.stacks[B].discards().inexact_rst,
        1,
        "the RST came before B's ACK"
    );
    assert_eq!(connected(&w.stacks[B]), 0, "the connection ended");
    let took = wire.now() - start;
    // A's new stack asks B's address by ARP before its first RST, which smoltcp drops
    // meanwhile: B's retransmission 1 s later is answered (a peer that just reset has
    // the address already, and answers the first).
    assert!(took < Duration::from_secs(2), "ended {took} after the RST");
}

/// The payload of every TCP segment among `frames` from `src`, in the order sent (a
/// retransmission appears twice).
fn tcp_payloads_from(frames: &[Sniffed], src: Ipv4Address) -> Vec<u8> {
    use ringnet::smoltcp::wire::{IpProtocol, TcpPacket};
    frames
        .iter()
        .filter(|f| f.src == src && f.protocol == IpProtocol::Tcp)
        .filter_map(|f| {
            Some(
                TcpPacket::new_checked(&f.payload[..])
                    .ok()?
                    .payload()
                    .to_vec(),
            )
        })
        .flatten()
        .collect()
}

#[test]
fn bytes_a_peer_sends_after_its_fin_never_reach_the_service() {
    // A FIN ends what the peer sends: RFC 9293 (3.10.7.4, CLOSE-WAIT and on) says to
    // ignore the text of any later segment, and Linux does (`tcp_rcv_state_process`:
    // nothing at or past RCV.NXT is queued once the FIN is in). smoltcp, in CLOSE-WAIT,
    // takes a segment at the number after the FIN as the next in order and queues its
    // bytes behind the FIN's, where the service reads them as if the peer had sent them
    // before it closed.
    use ringnet::smoltcp::wire::TcpControl;
    let seed = 142;
    let (mut w, _, mut echo) = echo_on_b_with_a_sniffer(seed);
    let wire = w.wire;
    let from = {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| echo.poll(b),
            sock,
            conn,
            ECHO_PORT,
            (1024, 1024)
        );
        echo_round(&mut sock, conn, b"before the FIN");
        sock.sleep(Duration::from_millis(100));
        sock.stack().local_addr(conn).unwrap()
    };
    // A's connection is gone with nothing sent (a new stack of the same configuration):
    // its last segments are spoofed from C, a FIN with data and data after it, together.
    restart_a(&mut w, seed);
    let frames = sniff(wire, C);
    let rcv_nxt = tcp_segments_from(&frames, ip(A)).last().unwrap().1;
    let ack = Some(tcp_segments_from(&frames, ip(B)).last().unwrap().1);
    let from = (ip(A), from.port);
    let to = (ip(B), ECHO_PORT);
    let fin = tcp_segment(
        mac(A),
        from,
        mac(B),
        to,
        rcv_nxt,
        ack,
        TcpControl::Fin,
        b"bye",
    );
    let after = tcp_segment(
        mac(A),
        from,
        mac(B),
        to,
        rcv_nxt + 4,
        ack,
        TcpControl::Psh,
        b"sent after the FIN",
    );
    wire.inject(C, &fin).unwrap();
    wire.inject(C, &after).unwrap();
    // B alone runs (C's stack would take the frames the sniffer reads, and A's new one
    // has nothing to say).
    let run_b = |w: &mut World<3>, echo: &mut Echo, for_ms: u64| {
        let until = wire.now() + Duration::from_millis(for_ms);
        while wire.now() < until {
            w.stacks[B].poll(wire.now(), &mut wire.port(B));
            echo.poll(&mut w.stacks[B]);
            wire.advance_to(wire.now() + Duration::from_millis(1));
        }
    };
    run_b(&mut w, &mut echo, 500);
    let echoed = tcp_payloads_from(&sniff(wire, C), ip(B));
    assert_eq!(
        String::from_utf8_lossy(&echoed),
        "bye",
        "echo answers what came before the FIN, and only that"
    );
    assert_eq!(w.stacks[B].discards().after_fin, 1);
    // The FIN's segment again (a peer whose ACK of it was lost) is acknowledged again and
    // not counted; bytes after the FIN once the connection is LAST-ACK (echo has closed)
    // are counted and withheld the same.
    wire.inject(C, &fin).unwrap();
    run_b(&mut w, &mut echo, 100);
    let answers = tcp_segments_from(&sniff(wire, C), ip(B));
    assert!(
        answers
            .iter()
            .any(|&(_, _, ack, _)| ack == Some(rcv_nxt + 4)),
        "B acknowledges the FIN again: {answers:?}"
    );
    assert_eq!(w.stacks[B].discards().after_fin, 1);
    wire.inject(C, &after).unwrap();
    run_b(&mut w, &mut echo, 100);
    assert_eq!(w.stacks[B].discards().after_fin, 2);
    let answers = tcp_segments_from(&sniff(wire, C), ip(B));
    assert!(
        answers
            .iter()
            .all(|&(_, _, ack, rst)| ack == Some(rcv_nxt + 4) && !rst),
        "B takes nothing after the FIN: {answers:?}"
    );
}

/// How long a client on A took to connect to B's `echo` (its handshake, in the wire's
/// time), then one echo round on the connection.
fn timed_echo_round(w: &mut World<2>, echo: &mut Echo) -> Duration {
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _| echo.poll(b));
    let mut sock = Blocking::new(a, &mut waiter);
    let conn = tcp_socket(sock.stack(), 1024, 1024);
    let start = sock.stack().now();
    sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
    let handshake = sock.stack().now() - start;
    echo_round(&mut sock, conn, b"served on the first SYN");
    sock.stack().close(conn).unwrap();
    handshake
}

#[test]
fn a_client_that_takes_a_spoofed_half_opens_place_gets_its_syn_ack_at_once() {
    // 2 ms each way and a backlog of 1: a spoofed SYN holds echo's only socket, whose
    // SYN-ACK waits on ARP, and smoltcp keeps a socket that found no neighbour silent for
    // a second. A real client's SYN takes the half-open's place: its SYN-ACK must leave
    // at once, not a second later at the client's SYN retransmission.
    let (mut w, mut echo) = echo_two_ms_away(106, 1);
    w.wire.inject(A, &spoofed_syn(0, ECHO_PORT)).unwrap();
    w.run_for(Duration::from_millis(10));
    let handshake = timed_echo_round(&mut w, &mut echo);
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_evicted, 1, "{row}");
    assert!(
        handshake < Duration::from_millis(100),
        "the client's handshake took {handshake} (a round trip is 4 ms)"
    );
}

#[test]
fn a_spoofed_syn_does_not_take_the_place_of_a_young_handshake_even_when_it_is_the_only_one() {
    // 2 ms each way and a backlog of 1. A first round teaches B's listener how long a
    // handshake takes (4 ms). Then A's second handshake is half-open on B, the backlog's
    // only socket, when a spoofed SYN comes: A's half-open is younger than four
    // handshakes, so it is left to finish and the spoofed SYN finds no room, instead of
    // A being reset at its ACK.
    let (mut w, mut echo) = echo_two_ms_away(105, 1);
    {
        client_of!(w, poll echo, sock, conn, ECHO_PORT, (1024, 1024));
        echo_round(&mut sock, conn, b"a first handshake, timed by B");
        sock.stack().close(conn).unwrap();
    }
    w.run_for(Duration::from_millis(200));
    let wire = w.wire;
    let mut injected = false;
    {
        let (a, b) = w.two(A, B);
        // The client's SYN reaches B at +2 ms, the spoofed one at +5 ms.
        let inject_at = a.now() + Duration::from_millis(3);
        let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now| {
            if !injected && now >= inject_at {
                wire.inject(A, &spoofed_syn(1, ECHO_PORT)).unwrap();
                injected = true;
            }
            echo.poll(b)
        });
        let mut sock = Blocking::new(a, &mut waiter);
        let conn = tcp_socket(sock.stack(), 1024, 1024);
        sock.connect(conn, ep(B, ECHO_PORT)).unwrap();
        echo_round(
            &mut sock,
            conn,
            b"the handshake under way was not given away",
        );
        sock.stack().close(conn).unwrap();
    }
    assert!(injected, "the spoofed SYN came during the handshake");
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(row.stats.half_open_evicted, 0, "{row}");
}

#[test]
fn a_spoofed_syn_that_finds_no_room_leaves_the_hold_to_a_clients_syn_to_another_port() {
    // 2 ms each way, echo and a second echo on 7070 each with a backlog of 1. A spoofed
    // half-open holds 7070's socket. A spoofed SYN to echo comes during a real client's
    // young handshake there, which it may not evict, and then echo's socket holds a live
    // connection. Its SYN-ACK could never leave, so it must not wait in the inspector's
    // one hold: the client's next SYN, to 7070, needs the hold to make room there.
    const OTHER_PORT: u16 = 7070;
    let (mut w, mut echo) = echo_two_ms_away(107, 1);
    let other_socket = tcp_socket(&mut w.stacks[B], 1024, 1024);
    let mut other = Echo::new(&mut w.stacks[B], OTHER_PORT, &[other_socket]).unwrap();
    {
        client_of!(w, poll echo, sock, conn, ECHO_PORT, (1024, 1024));
        echo_round(&mut sock, conn, b"a first handshake, timed by B");
        sock.stack().close(conn).unwrap();
    }
    w.run_for(Duration::from_millis(200));
    w.wire.inject(A, &spoofed_syn(1, OTHER_PORT)).unwrap();
    w.run_for(Duration::from_millis(10));
    let wire = w.wire;
    let mut injected = false;
    let to_other = {
        let (a, b) = w.two(A, B);
        // The client's SYN reaches B at +2 ms, the spoofed one at +5 ms, its ACK at +6 ms.
        let inject_at = a.now() + Duration::from_millis(3);
        let mut waiter = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now| {
            if !injected && now >= inject_at {
                wire.inject(A, &spoofed_syn(2, ECHO_PORT)).unwrap();
                injected = true;
            }
            echo.poll(b);
            other.poll(b);
        });
        let mut sock = Blocking::new(a, &mut waiter);
        let live = tcp_socket(sock.stack(), 1024, 1024);
        sock.connect(live, ep(B, ECHO_PORT)).unwrap();
        let conn = tcp_socket(sock.stack(), 1024, 1024);
        let to_other = sock.connect(conn, ep(B, OTHER_PORT));
        if to_other.is_ok() {
            echo_round(&mut sock, conn, b"served beside a held SYN");
        }
        echo_round(&mut sock, live, b"and the live one still is");
        to_other
    };
    assert!(injected, "the spoofed SYN came during the handshake");
    assert_eq!(to_other, Ok(()), "the SYN to {OTHER_PORT} met a RST");
}

#[test]
fn a_spoofed_syn_and_its_reset_leave_no_silence_on_the_socket_for_the_next_client() {
    // A spoofed SYN takes echo's only socket, whose SYN-ACK waits on ARP (smoltcp then
    // keeps the socket silent for a second); a RST at the sequence number after the
    // spoofer's own ISN takes it back to listening in smoltcp itself, with nothing given
    // way. The next real client's SYN-ACK must still leave at once.
    let (mut w, mut echo) = echo_two_ms_away(108, 1);
    w.wire.inject(A, &spoofed_syn(0, ECHO_PORT)).unwrap();
    w.run_for(Duration::from_millis(10));
    let rst = tcp_segment(
        SPOOFED_MAC,
        (SPOOFED, 30_000),
        mac(B),
        (ip(B), ECHO_PORT),
        1,
        None,
        ringnet::smoltcp::wire::TcpControl::Rst,
        &[],
    );
    w.wire.inject(A, &rst).unwrap();
    w.run_for(Duration::from_millis(10));
    let handshake = timed_echo_round(&mut w, &mut echo);
    let row = listener_row(&w.stacks[B], ECHO_PORT);
    assert_eq!(
        row.stats.half_open_evicted, 0,
        "smoltcp's RST did it: {row}"
    );
    assert!(
        handshake < Duration::from_millis(100),
        "the client's handshake took {handshake} (a round trip is 4 ms)"
    );
}
