//! Framed, hashed transfer (protocol version 2: a put and a get) against a raw stream over
//! the simulated wire (64 KiB rings, MTU 65535, no faults), and SHA-256 on its own, all in
//! the same run. A benchmark, not a test: it prints figures. `RINGNET_BENCH_BYTES`
//! shortens the run (default 1 GiB); `RINGNET_BENCH_RUNS` repeats it (default 3) and
//! prints every run's figures and ratios, then their medians.
//!
//! Both stacks, the client and the server run on one thread here: each side hashes the
//! data once, as it passes, but the two passes add up on the one core, so the framed put
//! into a digest sink and the get are bounded by `1 / (1/raw + 2/sha)`; on two machines
//! (or the tap, with two processes) the passes run side by side. The put into a
//! `DirStore` (a directory on /dev/shm, as `serve --files` keeps them) leaves the
//! server's pass to the store's writer thread, which also writes the file: one pass on
//! the bench's thread, bounded by `1 / (1/raw + 1/sha)`.

use std::time::Instant as WallClock;

use ringnet::blocking::Blocking;
use ringnet::services::{FileSource, ReadError, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, DigestSink, TransferServer};
use ringnet::transfer::{Store, StoreError};
use ringnet::{Instant, Stack};
use ringnet_testkit::{ep, tcp_socket, world_with, A, B};

use host_sim::store::DirStore;
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

/// A read-only store holding one file, `bench.bin`: the [`Cyclic`] data, for the get.
struct CyclicStore<'a>(&'a Cyclic);

impl Store for CyclicStore<'_> {
    type Upload = ();
    type Reader = ();

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        match name {
            "bench.bin" => Ok(self.0.len),
            _ => Err(StoreError::NotFound),
        }
    }
    fn open(&mut self, name: &str) -> Result<((), u64), StoreError> {
        Ok(((), self.size(name)?))
    }
    fn read_at(&mut self, _: &mut (), offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        self.0.read_at(offset, buf).map_err(|_| StoreError::Io)
    }
    fn begin(&mut self, _: &str, _: u64) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }
    fn write(&mut self, _: &mut (), _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }
    fn commit(&mut self, _: ()) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }
    fn abort(&mut self, _: ()) {}
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        f("bench.bin", self.0.len)
    }
}

fn runs() -> usize {
    std::env::var("RINGNET_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
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
    report("  raw stream (send_all, reader discards)", sent, seconds)
}

/// A verified put of `source` as `bench.bin` into `store`; the seconds it took, once
/// `check` looked at the store.
fn put_into<S: Store>(source: &Cyclic, store: S, seed: u64, check: impl FnOnce(&mut S)) -> f64 {
    let mut w = world_with::<2>(Faults::NONE, seed, MTU, 1 << 20);
    let backlog = tcp_socket(&mut w.stacks[B], RING, RING);
    let mut server: TransferServer<_, 1> =
        TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &[backlog], store).expect("server");
    let client = tcp_socket(&mut w.stacks[A], RING, RING);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    sock.connect(client, ep(B, TRANSFER_PORT)).expect("connect");
    let start = WallClock::now();
    let mut buf = vec![0u8; RING];
    transfer::put_with_buffer(
        &mut sock.stream(client),
        "bench.bin",
        None,
        source,
        &mut buf,
        &mut |_, _| {},
    )
    .expect("verified put");
    let seconds = start.elapsed().as_secs_f64();
    check(server.store());
    seconds
}

fn framed_transfer(source: &Cyclic) -> f64 {
    let seconds = put_into(source, DigestSink::<1>::new(), 2, |sink| {
        assert_eq!(sink.record("bench.bin").map(|r| r.0), Some(source.len()));
    });
    report(
        "  framed put v2 (one SHA-256 pass each end)",
        source.len(),
        seconds,
    )
}

fn framed_put_into_dir(source: &Cyclic) -> f64 {
    let dir = std::env::temp_dir().join(format!("ringnet-bench-put-{}", std::process::id()));
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join(dir.file_name().expect("a name"))
    } else {
        dir
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    let store = DirStore::new(&dir).expect("store");
    let seconds = put_into(source, store, 4, |store| {
        assert_eq!(store.size("bench.bin"), Ok(source.len()));
    });
    let _ = std::fs::remove_dir_all(&dir);
    report(
        "  framed put v2 into DirStore (writer thread hashes)",
        source.len(),
        seconds,
    )
}

fn framed_get(source: &Cyclic) -> f64 {
    let mut w = world_with::<2>(Faults::NONE, 3, MTU, 1 << 20);
    let backlog = tcp_socket(&mut w.stacks[B], RING, RING);
    let mut server: TransferServer<_, 1> = TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &[backlog],
        CyclicStore(source),
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
    let mut buf = vec![0u8; RING];
    let mut received = 0u64;
    let (size, _) = transfer::get_with_buffer(
        &mut sock.stream(client),
        "bench.bin",
        (0, Sha256::new()),
        &mut buf,
        &mut |d| {
            received += d.len() as u64;
            Ok(())
        },
        &mut |_, _| {},
    )
    .expect("verified get");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!((size, received), (source.len(), source.len()));
    report(
        "  framed get v2 (one SHA-256 pass each end)",
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
    report("  SHA-256 alone (sha2 crate)", source.len(), seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    let len = bytes_to_move();
    let source = Cyclic {
        block: (0..64 * 1024u32).map(|i| (i * 31 % 251) as u8).collect(),
        len,
    };
    let runs = runs();
    println!(
        "transfer benchmark: {} MiB over the simulated wire, 64 KiB rings, MTU {MTU}, {runs} runs \
         (one thread; the machine is shared and noisy: compare within a run)",
        len >> 20
    );
    let mut ratios = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        println!("run {run}:");
        let raw = raw_stream(&source);
        let put = framed_transfer(&source);
        let dir_put = framed_put_into_dir(&source);
        let get = framed_get(&source);
        let sha = sha256_alone(&source);
        let bound = 1.0 / (1.0 / raw + 2.0 / sha);
        let one_pass = 1.0 / (1.0 / raw + 1.0 / sha);
        println!(
            "  put/raw {:.2}, get/raw {:.2}; one thread doing raw + 2 SHA-256 passes bounds \
             them at {bound:.0} MB/s: put/bound {:.2}, get/bound {:.2}",
            put / raw,
            get / raw,
            put / bound,
            get / bound
        );
        println!(
            "  put into DirStore/raw {:.2}; raw + 1 SHA-256 pass on this thread bounds it at \
             {one_pass:.0} MB/s: /bound {:.2}",
            dir_put / raw,
            dir_put / one_pass
        );
        ratios.0.push(put / raw);
        ratios.1.push(get / raw);
        ratios.2.push(put / bound);
        ratios.3.push(dir_put / raw);
    }
    println!(
        "median of {runs}: put/raw {:.2}, get/raw {:.2}, put/bound {:.2}, put into DirStore/raw {:.2}",
        median(ratios.0),
        median(ratios.1),
        median(ratios.2),
        median(ratios.3)
    );
}
