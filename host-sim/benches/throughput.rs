//! Bulk TCP between two ringnet stacks over the simulated wire (64 KiB rings, no faults),
//! next to smoltcp's own `examples/loopback_benchmark.rs` built from the registry copy of
//! the smoltcp crate and run in the same invocation. A benchmark, not a test.
//!
//! The ringnet run at MTU 65535 is repeated with every event of both stacks written to a
//! trace file (`--trace`), and the cost of tracing reported as a ratio of the two.
//!
//! `RINGNET_BENCH_BYTES` shortens the ringnet runs (default 1 GiB, as the anchor moves);
//! `RINGNET_BENCH_ANCHOR=0` skips the anchor.

use std::path::Path;
use std::process::Command;
use std::time::Instant as WallClock;

use host_sim::trace::{TraceClock, TraceFile};
use ringnet::socket::tcp::{RecvError, SendError};
use ringnet::Duration;
use ringnet_testkit::{world_with, A, B};

const RING: usize = 64 * 1024;

/// Moves `total` bytes from A to B with non-blocking calls, polling both stacks in turn,
/// as smoltcp's loopback benchmark does; returns Gbit/s. With `trace`, every event of
/// both stacks goes to that file as well.
fn ringnet_bulk(total: u64, mtu: usize, trace: Option<&Path>) -> f64 {
    let mut w = world_with::<2>(ringnet::sim::Faults::NONE, 7, mtu, 1 << 20);
    let trace = trace.map(|path| {
        let file = TraceFile::create(path, TraceClock::Simulated).expect("create the trace");
        for stack in &mut w.stacks {
            stack.set_event_sink(Some(file));
        }
        file
    });
    let (client, server, _) = w.connect(1234, (RING, RING), (RING, RING));
    let wire = w.wire;
    let block: Vec<u8> = (0..RING as u32).map(|i| (i * 7 % 253) as u8).collect();
    let mut buf = vec![0u8; RING];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = WallClock::now();
    while received < total {
        let now = wire.now();
        let (a, b) = w.two(A, B);
        let mut moved = a.poll(now, &mut wire.port(A));
        moved |= b.poll(now, &mut wire.port(B));
        while sent < total {
            let offset = (sent % RING as u64) as usize;
            let end = RING.min(offset + (total - sent) as usize);
            match a.send(client, &block[offset..end]) {
                Ok(n) => {
                    sent += n as u64;
                    moved = true;
                }
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        loop {
            match b.recv(server, &mut buf) {
                Ok(n) => {
                    // Every byte against the pattern at its stream offset (a memcmp: a
                    // byte sum here would cost more than the stack's own copies).
                    let at = (received % RING as u64) as usize;
                    let first = n.min(RING - at);
                    assert!(
                        buf[..first] == block[at..at + first]
                            && buf[first..n] == block[..n - first],
                        "bytes {received}..{} arrived corrupted",
                        received + n as u64
                    );
                    received += n as u64;
                    moved = true;
                }
                Err(RecvError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        if !moved {
            let next = [a.poll_at(), b.poll_at(), wire.next_delivery()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(1));
            wire.advance_to(next.max(now + Duration::from_micros(1)));
        }
    }
    let events = trace.map(|t| t.finish().expect("write the trace"));
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(received, total, "every byte arrived, and no more");
    let gbps = total as f64 * 8.0 / seconds / 1e9;
    let traced = match (events, trace) {
        (Some(n), Some(t)) => {
            let bytes = std::fs::metadata(t.path()).map_or(0, |m| m.len());
            format!(", traced: {n} events, {} MiB of JSON", bytes >> 20)
        }
        _ => String::new(),
    };
    println!(
        "ringnet, 2 stacks on the simulated wire, MTU {mtu:>5}: {:>5} MiB in {seconds:.3} s = {gbps:.2} Gbit/s{traced}",
        total >> 20
    );
    if let Some(t) = trace {
        let _ = std::fs::remove_file(t.path());
    }
    gbps
}

/// Runs smoltcp's loopback benchmark; returns its Gbit/s.
fn smoltcp_anchor() -> Option<f64> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/bench-smoltcp-anchor.sh"
    );
    let output = match Command::new("bash")
        .arg(script)
        .arg("loopback_benchmark")
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            println!("smoltcp anchor: cannot run bash {script}: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let figure = text
        .lines()
        .find(|l| l.contains("bandwidth is"))
        .and_then(|line| {
            println!("smoltcp examples/loopback_benchmark (1 stack, Loopback device):  {line}");
            line.split("bandwidth is ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
    if figure.is_none() {
        // A benchmark, not a test: say why and go on without the anchor.
        let errors = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = errors.lines().collect();
        let mut why: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.to_ascii_lowercase().contains("error"))
            .take(10)
            .collect();
        if why.is_empty() {
            why = lines[lines.len().saturating_sub(10)..].to_vec();
        }
        println!(
            "smoltcp anchor failed ({}), no \"bandwidth is\" line; its stderr says:",
            output.status
        );
        for line in why {
            println!("    {line}");
        }
    }
    figure
}

fn main() {
    // Logging off whatever RUST_LOG says: installed first, this logger makes the one
    // `world_with` would install a no-op, and each log call in the stacks costs one
    // relaxed load and nothing else.
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Off)
        .try_init();
    let total = std::env::var("RINGNET_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64 << 30);
    println!("throughput benchmark: 64 KiB rings, no faults");
    let anchor = if std::env::var("RINGNET_BENCH_ANCHOR").as_deref() == Ok("0") {
        None
    } else {
        smoltcp_anchor()
    };
    let ringnet = ringnet_bulk(total, 65535, None);
    ringnet_bulk(total, 1514, None);
    let trace_path =
        std::env::temp_dir().join(format!("ringnet-bench-{}.json", std::process::id()));
    let traced = ringnet_bulk(total, 65535, Some(&trace_path));
    println!(
        "tracing on / off at MTU 65535 = {:.2} (target: at least 0.70, i.e. tracing costs at most 30%)",
        traced / ringnet
    );
    match anchor {
        Some(anchor) => println!(
            "ratio ringnet/smoltcp at equal MTU, tracing off = {:.2} (goal: at least 2.0): {}",
            ringnet / anchor,
            if ringnet >= 2.0 * anchor {
                "met"
            } else {
                "NOT met"
            }
        ),
        None => println!("smoltcp's loopback benchmark did not run: no ratio"),
    }
}
