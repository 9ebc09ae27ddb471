//! The guided demo: one scenario per socket behaviour, two stacks (A, the device, and B,
//! its peer) on the simulated wire with small rings, so that every block and every
//! transition shows in the log. Log lines carry the virtual time.

use std::cell::Cell;
use std::io::Write;
use std::path::Path;

use ringnet::blocking::Blocking;
use ringnet::framing::{length_prefix, LengthPrefixDecoder};
use ringnet::sim::{Faults, PeerWaiter, Wire};
use ringnet::socket::{OptionName, SocketOption};
use ringnet::{Duration, Instant, IpEndpoint, Ipv4Address, SocketHandle, Stack};

use super::demo_wire;

use ringnet::digest::DigestHex;
use ringnet::services::{Pattern, TRANSFER_PORT};
use ringnet::transfer::{self, RamStore, TransferServer};
use ringnet_testkit::{ep, pair, tcp_socket, udp_socket, World, A, B};

use crate::trace::{FinishOnDrop, TraceClock, TraceFile};

/// A wire's virtual clock, whatever its number of ports.
trait VirtualClock {
    fn now(&self) -> Instant;
}

impl<const PORTS: usize> VirtualClock for Wire<'static, PORTS> {
    fn now(&self) -> Instant {
        Wire::now(self)
    }
}

thread_local! {
    /// Each scenario's start, for `--plot`: (virtual µs, label).
    static MARKS: std::cell::RefCell<Vec<(f64, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The wire whose virtual clock stamps the log lines.
    static CLOCK: Cell<Option<&'static dyn VirtualClock>> = const { Cell::new(None) };
}

/// Stamps the log lines with `wire`'s virtual time from now on.
pub(super) fn set_clock<const PORTS: usize>(wire: &'static Wire<'static, PORTS>) {
    CLOCK.with(|c| c.set(Some(wire)));
}

/// A failed expectation: the demo checks what it shows.
#[derive(Debug)]
pub struct DemoError(String);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

pub(super) fn check(ok: bool, what: impl Into<String>) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError(what.into()))
    }
}

pub(super) fn err(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// Logs to stdout, so log lines and scenario headings interleave in order, stamped with
/// the virtual time. `RUST_LOG`, when set, replaces the default filter.
fn init_logging() {
    let mut builder = env_logger::Builder::from_env(crate::log_filter());
    builder
        .target(env_logger::Target::Stdout)
        .format(|out, record| {
            let now = CLOCK.with(|c| c.get().map(|w| w.now()));
            match now {
                Some(t) => write!(out, "[{:>8.3}s] ", t.total_micros() as f64 / 1e6)?,
                None => write!(out, "[        ] ")?,
            }
            writeln!(out, "{:<5} {}", record.level(), record.args())
        });
    let _ = builder.try_init();
}

pub(super) fn heading(number: u32, title: &str, kernel: &str) {
    println!("\n=== {number}. {title}");
    println!("    ({kernel})");
    if let Some(now) = CLOCK.with(|c| c.get().map(|w| w.now())) {
        MARKS.with(|m| {
            m.borrow_mut()
                .push((now.total_micros() as f64, format!("{number}. {title}")))
        });
    }
}

/// Draws the demo's trace into `svg`, with a mark at each scenario's start.
fn draw(trace: &Path, svg: &Path) -> Result<(), DemoError> {
    let mut timeline = crate::plot::Timeline::default();
    timeline.read(trace).map_err(err)?;
    let marks = MARKS.with(|m| m.take());
    let end = timeline.span().map_or(0.0, |(_, b)| b);
    // A scenario lasts until the next one starts.
    let stretches: Vec<crate::plot::Stretch> = marks
        .iter()
        .enumerate()
        .map(|(i, (start, title))| crate::plot::Stretch {
            title: title.clone(),
            from_ms: start / 1000.0,
            // The last one ends with the trace, and shows at least 20 ms after its start.
            to_ms: marks
                .get(i + 1)
                .map_or(end.max(start + 20_000.0) + 5_000.0, |next| next.0)
                / 1000.0,
        })
        .collect();
    let options = crate::plot::PlotOptions {
        title: Some(
            "ringnet demo: each scenario's sockets on the simulated wire (A and B; the broadcast burst's H1..H4)"
                .into(),
        ),
        panel_height: 190,
        ..Default::default()
    };
    let drawn = crate::plot::render_sections(&timeline, &stretches, &options).map_err(err)?;
    std::fs::write(svg, drawn).map_err(|e| DemoError(format!("--plot {}: {e}", svg.display())))?;
    println!("plot: {} scenarios in {}", stretches.len(), svg.display());
    Ok(())
}

/// Runs every scenario; fails if any behaves other than the kernel would. With `trace`,
/// every event of both stacks also goes to that file ([`crate::trace`]), on the wire's
/// virtual clock. With `plot`, the run is drawn into that SVG ([`crate::plot`]), each
/// scenario's start marked and labelled.
pub fn run(trace: Option<&Path>, plot: Option<&Path>) -> Result<(), DemoError> {
    init_logging();
    println!("ringnet demo: stack A (10.0.0.1) and stack B (10.0.0.2) on a simulated wire.");
    println!("Rings are tiny on purpose so that they run full and empty where you can see it.");
    let mut w = pair(Faults::NONE, 2026);
    set_clock(w.wire);
    // `--plot` without `--trace` traces to a file of its own, removed once drawn.
    let scratch = std::env::temp_dir().join(format!("ringnet-demo-{}.json", std::process::id()));
    let trace_path = match (trace, plot) {
        (Some(path), _) => Some(path),
        (None, Some(_)) => Some(scratch.as_path()),
        (None, None) => None,
    };
    let sink = match trace_path {
        Some(path) => {
            let file = TraceFile::create(path, TraceClock::Simulated)
                .map_err(|e| DemoError(format!("--trace {}: {e}", path.display())))?;
            for stack in &mut w.stacks {
                stack.set_event_sink(Some(file));
            }
            Some(file)
        }
        None => None,
    };
    let mut finish = FinishOnDrop(sink);

    heading(0, "connect", "socket(), listen(), connect(), accept()");
    let (client, server, _listener) = w.connect(7, (512, 512), (256, 256));

    recv_blocks(&mut w, client, server)?;
    send_blocks(&mut w, client, server)?;
    short_read(&mut w, client, server)?;
    sticky_packets(&mut w, client, server)?;
    eof_and_broken_pipe(&mut w, client, server)?;
    udp_truncation(&mut w)?;
    broadcast(&mut w)?;
    options(&mut w)?;
    file_transfer(&mut w)?;
    demo_wire::sticky_remedies(&mut w)?;
    let burst = demo_wire::broadcast_burst(w.wire.now(), sink)?;

    println!("\n=== stats");
    for stack in &w.stacks {
        println!("{}", stack.stats_table());
    }
    println!("the broadcast burst's wire:");
    for stack in &burst.stacks {
        println!("{}", stack.stats_table());
    }
    println!("demo finished: every behaviour matched the kernel's.");
    CLOCK.with(|c| c.set(None));
    // The trace is complete once finished; only then can it be drawn.
    finish
        .finish()
        .map_err(|e| DemoError(format!("trace: {e}")))?;
    if let (Some(svg), Some(path)) = (plot, trace_path) {
        let drawn = draw(path, svg);
        if trace.is_none() {
            let _ = std::fs::remove_file(path);
        }
        drawn?;
    }
    Ok(())
}

fn recv_blocks(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
) -> Result<(), DemoError> {
    heading(
        1,
        "recv() blocks on an empty rx ring",
        "a kernel puts the thread to sleep until data arrives",
    );
    let wire = w.wire;
    let wake_at = wire.now() + Duration::from_millis(50);
    let (a, b) = w.two(A, B);
    let mut sent = false;
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now: Instant| {
        if !sent && now >= wake_at {
            sent = b.send(server, b"hello after 50 ms").is_ok();
        }
    });
    let mut buf = [0u8; 64];
    let n = Blocking::new(a, &mut driver)
        .recv(client, &mut buf)
        .map_err(err)?;
    println!(
        "A received {n} bytes: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    check(
        &buf[..n] == b"hello after 50 ms",
        "recv returned the wrong bytes",
    )
}

fn send_blocks(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
) -> Result<(), DemoError> {
    heading(
        2,
        "send() blocks on a full tx ring while a slow reader drains",
        "the receiver's ring fills, it advertises a zero window, the sender's ring fills, send sleeps",
    );
    w.stacks[B]
        .set_option(server, SocketOption::AckDelay(None))
        .map_err(err)?;
    let data: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let mut received = Vec::new();
    let wire = w.wire;
    let mut next_read = wire.now();
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now: Instant| {
        if now >= next_read {
            let mut chunk = [0u8; 128];
            if let Ok(n) = b.recv(server, &mut chunk) {
                received.extend_from_slice(&chunk[..n]);
            }
            next_read = now + Duration::from_millis(20);
        }
    });
    let mut sock = Blocking::new(a, &mut driver);
    sock.send_all(client, &data).map_err(err)?;
    sock.flush(client).map_err(err)?;

    let mut rest = [0u8; 256];
    while let Ok(n) = w.stacks[B].recv(server, &mut rest) {
        received.extend_from_slice(&rest[..n]);
    }
    println!(
        "B read all {} bytes, in order: {}",
        received.len(),
        received == data
    );
    check(
        received == data,
        "the slow reader did not get the data intact",
    )
}

fn short_read(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
) -> Result<(), DemoError> {
    heading(
        3,
        "a short read leaves the rest for the next call",
        "TCP never loses what did not fit",
    );
    w.stacks[B]
        .send(server, b"0123456789abcdefghij")
        .map_err(err)?;
    w.settle();
    let mut buf = [0u8; 8];
    let mut got = Vec::new();
    while let Ok(n) = w.stacks[A].recv(client, &mut buf) {
        let left = w.stacks[A].ring_usage(client).map_or(0, |(rx, _)| rx.0);
        println!(
            "A recv(8) -> {n} bytes {:?}, {left} left in the ring",
            String::from_utf8_lossy(&buf[..n])
        );
        got.extend_from_slice(&buf[..n]);
    }
    check(got == b"0123456789abcdefghij", "short reads lost bytes")
}

fn sticky_packets(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
) -> Result<(), DemoError> {
    heading(
        4,
        "two sends arrive as one recv (TCP \"sticky packets\")",
        "a byte stream keeps no message boundaries",
    );
    w.stacks[B].send(server, b"hello").map_err(err)?;
    w.stacks[B].send(server, b"world").map_err(err)?;
    w.settle();
    let mut buf = [0u8; 64];
    let n = w.stacks[A].recv(client, &mut buf).map_err(err)?;
    println!(
        "B sent \"hello\" and \"world\"; A's one recv got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    check(
        &buf[..n] == b"helloworld",
        "expected the two sends to stick together",
    )?;
    println!("with a 4-byte length prefix before each message, the boundaries come back:");
    for message in [&b"hello"[..], b"world"] {
        w.stacks[B]
            .send(server, &length_prefix(message.len()).map_err(err)?)
            .map_err(err)?;
        w.stacks[B].send(server, message).map_err(err)?;
    }
    w.settle();
    let n = w.stacks[A].recv(client, &mut buf).map_err(err)?;
    let mut decoder = LengthPrefixDecoder::<64>::new();
    let mut input = &buf[..n];
    let mut messages = Vec::new();
    while !input.is_empty() {
        let (used, frame) = decoder.decode(input).map_err(err)?;
        if let Some(frame) = frame {
            println!("  message: {:?}", String::from_utf8_lossy(frame));
            messages.push(frame.to_vec());
        }
        input = &input[used..];
    }
    check(
        messages == [b"hello".to_vec(), b"world".to_vec()],
        "framing lost a boundary",
    )
}

fn eof_and_broken_pipe(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
) -> Result<(), DemoError> {
    heading(
        5,
        "recv() returns 0 once the peer closed and the ring is drained",
        "Python's recv returns b''",
    );
    w.stacks[B].send(server, b"bye").map_err(err)?;
    w.stacks[B].close(server).map_err(err)?;
    w.settle();
    let mut buf = [0u8; 16];
    let n = w.stacks[A].recv(client, &mut buf).map_err(err)?;
    println!(
        "A recv -> {n} bytes {:?} (buffered before the FIN)",
        String::from_utf8_lossy(&buf[..n])
    );
    let eof = w.stacks[A].recv(client, &mut buf).map_err(err)?;
    println!("A recv -> {eof}: end of stream");
    check(n == 3 && eof == 0, "expected the data, then 0")?;

    heading(
        6,
        "send() to a closed peer ends in BrokenPipe",
        "Linux: the first send gets an RST back, the next one EPIPE",
    );
    let first = w.stacks[A].send(client, b"anyone there?");
    println!("A send -> {first:?} (accepted: the kernel cannot know yet)");
    w.settle();
    let second = w.stacks[A].send(client, b"hello?");
    println!("A send -> {second:?}");
    check(
        second == Err(ringnet::socket::tcp::SendError::BrokenPipe),
        "expected BrokenPipe",
    )?;
    println!("\nthe connection's counters before A closes it:");
    println!("{}", w.stacks[A].stats_table());
    w.stacks[A].close(client).map_err(err)?;
    w.settle();
    Ok(())
}

fn udp_truncation(w: &mut World<2>) -> Result<(), DemoError> {
    heading(
        7,
        "a UDP datagram larger than the buffer is truncated",
        "recvfrom takes one datagram; what does not fit is lost (MSG_TRUNC)",
    );
    let rx = udp_socket(&mut w.stacks[A], 4, 1024);
    w.stacks[A].udp_bind(rx, 9000).map_err(err)?;
    let tx = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B]
        .send_to(tx, &[b'x'; 600], ep(A, 9000))
        .map_err(err)?;
    w.settle();
    let mut buf = [0u8; 64];
    let d = w.stacks[A].recv_from(rx, &mut buf).map_err(err)?;
    println!(
        "A recv_from(64) -> {} bytes from {}, {} bytes lost",
        d.len, d.from, d.lost
    );
    check(
        d.len == 64 && d.lost == 536,
        "expected 64 bytes and 536 lost",
    )
}

fn broadcast(w: &mut World<2>) -> Result<(), DemoError> {
    heading(
        8,
        "broadcast needs SO_BROADCAST",
        "Linux refuses sendto a broadcast address with EACCES until the option is set",
    );
    let beacon = udp_socket(&mut w.stacks[A], 4, 1024);
    let listener = udp_socket(&mut w.stacks[B], 4, 1024);
    w.stacks[B].udp_bind(listener, 9999).map_err(err)?;
    let to = IpEndpoint::new(Ipv4Address::BROADCAST.into(), 9999);
    let refused = w.stacks[A].send_to(beacon, b"ringnet beacon", to);
    println!("A send_to 255.255.255.255 -> {refused:?}");
    w.stacks[A]
        .set_option(beacon, SocketOption::Broadcast(true))
        .map_err(err)?;
    w.stacks[A]
        .send_to(beacon, b"ringnet beacon", to)
        .map_err(err)?;
    w.settle();
    let mut buf = [0u8; 64];
    let d = w.stacks[B].recv_from(listener, &mut buf).map_err(err)?;
    println!(
        "B got {:?} from {}",
        String::from_utf8_lossy(&buf[..d.len]),
        d.from
    );
    check(
        refused.is_err() && &buf[..d.len] == b"ringnet beacon",
        "broadcast gate misbehaved",
    )
}

fn options(w: &mut World<2>) -> Result<(), DemoError> {
    heading(9, "options, read and written", "getsockopt / setsockopt");
    let s = tcp_socket(&mut w.stacks[A], 300, 600);
    let stack = &mut w.stacks[A];
    stack
        .set_option(s, SocketOption::NoDelay(true))
        .map_err(err)?;
    stack.set_option(s, SocketOption::Ttl(16)).map_err(err)?;
    stack
        .set_option(
            s,
            SocketOption::RecvTimeout(Some(Duration::from_millis(250))),
        )
        .map_err(err)?;
    for name in [
        OptionName::RecvBufferSize,
        OptionName::SendBufferSize,
        OptionName::NoDelay,
        OptionName::Ttl,
        OptionName::RecvTimeout,
        OptionName::KeepAlive,
    ] {
        println!(
            "getsockopt {name:?} -> {:?}",
            stack.get_option(s, name).map_err(err)?
        );
    }
    let refused = stack.set_option(s, SocketOption::Ttl(0));
    println!("setsockopt Ttl(0) -> {refused:?}");
    println!(
        "fileno {} type {:?} family {:?}",
        s.fileno(),
        stack.socket_type(s),
        stack.family(s)
    );
    check(refused.is_err(), "TTL 0 must be refused")
}

fn file_transfer(w: &mut World<2>) -> Result<(), DemoError> {
    heading(
        10,
        "a verified file transfer through 256-byte rings",
        "the sender blocks every time its ring fills; SHA-256 proves the file arrived whole",
    );
    let backlog = tcp_socket(&mut w.stacks[B], 256, 256);
    let store = RamStore::<1, 4096>::new();
    let mut server: TransferServer<_, 1> =
        TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &[backlog], store).map_err(err)?;
    let conn = tcp_socket(&mut w.stacks[A], 256, 256);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    sock.connect(conn, ep(B, TRANSFER_PORT)).map_err(err)?;
    let file = Pattern(1536);
    let digest =
        transfer::put(&mut sock.stream(conn), "pattern.bin", &file, &mut |_, _| {}).map_err(err)?;
    println!(
        "A put pattern.bin (1536 bytes); both sides agree on SHA-256 {}",
        DigestHex(&digest)
    );
    sock.stack().close(conn).map_err(err)?;
    let stats = a.stats(conn);
    check(stats.is_none(), "the closed socket's handle is gone")?;
    check(
        server.completed() == 1,
        "the server should have stored one file",
    )
}
