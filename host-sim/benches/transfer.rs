//! Framed, hashed transfer against a raw stream over the simulated wire (64 KiB rings,
//! MTU 65535, no faults), and SHA-256 on its own. A benchmark, not a test: it prints
//! figures. `RINGNET_BENCH_BYTES` shortens the run (default 1 GiB).

use std::time::Instant as WallClock;

use ringnet::blocking::Blocking;
use ringnet::services::{FileSource, ReadError, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, DigestSink, TransferServer};
use ringnet::{Instant, Stack};
use ringnet_testkit::{ep, tcp_socket, world_with, A, B};
use sha2::{Digest, Sha256};

const RING: usize = 64 * 1024;
const MTU: usize = 65535;

/// `len` bytes cycling through a fixed 64 KiB block: generating the data costs nothing.
struct Cyclic {
    block: Vec<u8>,
    len: u64,
}

impl FileSource for Cyclic {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let start = (offset % self.block.len() as u64) as usize;
        let n = (self.block.len() - start)
            .min(buf.len())
            .min((self.len - offset.min(self.len)) as usize);
        buf[..n].copy_from_slice(&self.block[start..start + n]);
        Ok(n)
    }
}

fn bytes_to_move() -> u64 {
    std::env::var("RINGNET_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

fn report(what: &str, bytes: u64, seconds: f64) -> f64 {
    let rate = bytes as f64 / seconds / 1e6;
    println!(
        "{what:<44} {:>6} MiB in {seconds:>6.2} s = {rate:>8.1} MB/s ({:.2} Gbit/s)",
        bytes >> 20,
        rate * 8.0 / 1000.0
    );
    rate
}

fn raw_stream(source: &Cyclic) -> f64 {
    let mut w = world_with::<2>(Faults::NONE, 1, MTU, 1 << 20);
    let (client, server, _) = w.connect(9, (RING, RING), (RING, RING));
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut received = 0u64;
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = b.recv(server, &mut buf) {
            received += n as u64;
        }
    });
    let mut sock = Blocking::new(a, &mut driver);
    let mut chunk = vec![0u8; RING];
    let start = WallClock::now();
    let mut sent = 0;
    while sent < source.len() {
        let n = source.read_at(sent, &mut chunk).expect("cyclic source");
        sock.send_all(client, &chunk[..n]).expect("raw send");
        sent += n as u64;
    }
    sock.flush(client).expect("flush");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(received, source.len(), "every byte arrived");
    report("raw stream (send_all, reader discards)", sent, seconds)
}

fn framed_transfer(source: &Cyclic) -> f64 {
    let mut w = world_with::<2>(Faults::NONE, 2, MTU, 1 << 20);
    let backlog = tcp_socket(&mut w.stacks[B], RING, RING);
    let mut server: TransferServer<_, 1> = TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &[backlog],
        DigestSink::<1>::new(),
    )
    .expect("server");
    let client = tcp_socket(&mut w.stacks[A], RING, RING);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    sock.connect(client, ep(B, TRANSFER_PORT)).expect("connect");
    let start = WallClock::now();
    transfer::put(
        &mut sock.stream(client),
        "bench.bin",
        source,
        &mut |_, _| {},
    )
    .expect("verified put");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(
        server.store().record("bench.bin").map(|r| r.0),
        Some(source.len())
    );
    report(
        "framed put (SHA-256 at both ends, verified)",
        source.len(),
        seconds,
    )
}

fn sha256_alone(source: &Cyclic) -> f64 {
    let mut hasher = Sha256::new();
    let start = WallClock::now();
    let mut offset = 0;
    while offset < source.len() {
        let n = ((source.len() - offset) as usize).min(source.block.len());
        hasher.update(&source.block[..n]);
        offset += n as u64;
    }
    let digest = hasher.finalize();
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(digest);
    report("SHA-256 alone (sha2 crate)", source.len(), seconds)
}

fn main() {
    let len = bytes_to_move();
    let source = Cyclic {
        block: (0..64 * 1024u32).map(|i| (i * 31 % 251) as u8).collect(),
        len,
    };
    println!(
        "transfer benchmark: {} MiB over the simulated wire, 64 KiB rings, MTU {MTU}",
        len >> 20
    );
    let raw = raw_stream(&source);
    let framed = framed_transfer(&source);
    let sha = sha256_alone(&source);
    let cost = (1.0 - framed / raw) * 100.0;
    println!("framing + hashing cost: {cost:.1}% of raw throughput (target: at most 10%)");
    println!(
        "the client hashes the file before sending and the server hashes it on arrival: \
         2 SHA-256 passes at {sha:.0} MB/s bound the framed rate at {:.0} MB/s on one core",
        sha / 2.0
    );
}
