//! `host-sim peer …`: raw streams and datagrams on the Linux side of the wire, on the
//! kernel's own sockets (`std::net`), so the same tools work against ringnet or any other
//! host.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use ringnet::digest::DigestHex;

use super::sampler::Sampler;

/// Starts sampling `stream` into `trace`, when given.
pub(super) fn sampler(
    stream: &TcpStream,
    tool: &str,
    trace: Option<&Path>,
) -> io::Result<Option<Sampler>> {
    trace
        .map(|path| Sampler::start(stream, tool, path))
        .transpose()
}

/// Ends the sampling, writing the trace.
pub(super) fn finish(sampler: Option<Sampler>) -> io::Result<()> {
    sampler.map_or(Ok(()), Sampler::finish)
}

fn bar(len: Option<u64>, verb: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(verb.to_string());
    bar
}

/// A finished stream transfer, for the closing throughput line.
pub struct Moved {
    /// Bytes moved.
    pub bytes: u64,
    /// SHA-256 of them, in hex (`None` when asked not to hash).
    pub sha256: Option<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{} bytes in {:.3} s = {:.1} MB/s, sha256 {}",
            self.bytes,
            secs,
            self.bytes as f64 / secs / 1e6,
            self.sha256.as_deref().unwrap_or("not computed")
        )
    }
}

/// Bytes moved per read or write: as many as a 1 MiB buffer holds, so that a bulk
/// transfer costs few system calls.
const CHUNK: usize = 1 << 20;

/// SHA-256 of what passes, unless asked not to (for benchmarks, where hashing would take
/// CPU time from the transfer being measured).
struct MaybeHash(Option<Sha256>);

impl MaybeHash {
    fn new(digest: bool) -> MaybeHash {
        MaybeHash(digest.then(Sha256::new))
    }

    fn update(&mut self, bytes: &[u8]) {
        if let Some(hasher) = self.0.as_mut() {
            hasher.update(bytes);
        }
    }

    fn finish(self) -> Option<String> {
        self.0
            .map(|hasher| DigestHex(&hasher.finalize().into()).to_string())
    }
}

/// Connects to `addr`, with `timeout` for the connection and for every read and write.
pub(super) fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Connects to `addr` and writes everything it sends into `output` until it closes (what
/// `nc ADDR > output` does). With `request`, first sends `"<request>\n"` (ringnet's file
/// out then sends a pattern of that size). Hashes what it gets when `digest`. With
/// `trace`, samples the kernel's socket into that file ([`super::sampler`]).
pub fn get(
    addr: SocketAddr,
    output: &Path,
    request: Option<u64>,
    timeout: Duration,
    quiet: bool,
    digest: bool,
    trace: Option<&Path>,
) -> io::Result<Moved> {
    let mut stream = connect(addr, timeout)?;
    let sampling = sampler(&stream, "get", trace)?;
    if let Some(size) = request {
        stream.write_all(format!("{size}\n").as_bytes())?;
    }
    let mut file = File::create(output)?;
    let progress = bar(request, "get", quiet);
    let start = Instant::now();
    let mut hasher = MaybeHash::new(digest);
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        bytes += n as u64;
        progress.set_position(bytes);
    }
    progress.finish_and_clear();
    finish(sampling)?;
    Ok(Moved {
        bytes,
        sha256: hasher.finish(),
        elapsed: start.elapsed(),
    })
}

/// Sends `input` to `addr`, shuts down writing, and returns what the peer answers (what
/// `nc -N ADDR < input` does; ringnet's file in answers `"<bytes> <sha256>\n"`).
/// Hashes what it sends when `digest`; with `trace`, samples the kernel's socket.
pub fn put(
    input: &Path,
    addr: SocketAddr,
    timeout: Duration,
    quiet: bool,
    digest: bool,
    trace: Option<&Path>,
) -> io::Result<(Moved, String)> {
    let mut file = File::open(input)?;
    let len = file.metadata()?.len();
    let mut stream = connect(addr, timeout)?;
    let sampling = sampler(&stream, "put", trace)?;
    let progress = bar(Some(len), "put", quiet);
    let start = Instant::now();
    let mut hasher = MaybeHash::new(digest);
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        bytes += n as u64;
        progress.set_position(bytes);
    }
    let done = finish_sending(stream, progress, start, bytes, hasher.finish())?;
    finish(sampling)?;
    Ok(done)
}

/// Shuts down writing (the peer sees end of stream), stops the clock, and reads the
/// peer's answer until it closes.
fn finish_sending(
    stream: TcpStream,
    progress: ProgressBar,
    start: Instant,
    bytes: u64,
    sha256: Option<String>,
) -> io::Result<(Moved, String)> {
    stream.shutdown(Shutdown::Write)?;
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    let mut reply = String::new();
    (&stream).read_to_string(&mut reply)?;
    Ok((
        Moved {
            bytes,
            sha256,
            elapsed,
        },
        reply,
    ))
}

/// Sends `bytes` zero bytes from one buffer in memory, shuts down writing, and returns
/// what the peer answers: a load generator that, like smoltcp's benchmark client, costs
/// the Linux side nothing but its `write` calls (no file to read, nothing to hash).
/// With `trace`, samples the kernel's socket into that file.
pub fn blast(
    addr: SocketAddr,
    bytes: u64,
    timeout: Duration,
    quiet: bool,
    trace: Option<&Path>,
) -> io::Result<(Moved, String)> {
    let mut stream = connect(addr, timeout)?;
    let sampling = sampler(&stream, "blast", trace)?;
    let progress = bar(Some(bytes), "blast", quiet);
    let start = Instant::now();
    let buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        stream.write_all(&buf[..n])?;
        sent += n as u64;
        progress.set_position(sent);
    }
    let done = finish_sending(stream, progress, start, sent, None)?;
    finish(sampling)?;
    Ok(done)
}

/// How long `udp` waits for a further datagram of an answer after the last one: an
/// answer in several datagrams (the stats table) arrives back to back.
const ANSWER_GAP: Duration = Duration::from_millis(300);

/// Sends one datagram to `addr` (with `SO_BROADCAST` when `broadcast`), waits up to
/// `timeout` for an answer, and takes every further datagram that follows within
/// 300 ms of the one before (empty: no answer).
pub fn udp(
    addr: SocketAddr,
    payload: &[u8],
    broadcast: bool,
    timeout: Duration,
) -> io::Result<Vec<(Vec<u8>, SocketAddr)>> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_broadcast(broadcast)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(payload, addr)?;
    let mut buf = vec![0u8; 65536];
    let mut answers = Vec::new();
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => answers.push((buf[..n].to_vec(), from)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(answers)
            }
            Err(e) => return Err(e),
        }
        socket.set_read_timeout(Some(ANSWER_GAP))?;
    }
}

/// Receives broadcasts on `port` (bound to 0.0.0.0) until `count` arrived or `timeout`
/// passed; returns them.
pub fn listen_broadcast(
    port: u16,
    count: usize,
    timeout: Duration,
) -> io::Result<Vec<(String, SocketAddr)>> {
    let socket = UdpSocket::bind(("0.0.0.0", port))?;
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while seen.len() < count {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => seen.push((
                String::from_utf8_lossy(&buf[..n]).trim_end().to_string(),
                from,
            )),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(e),
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn blast_sends_exactly_the_bytes_asked_for_and_returns_the_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).unwrap();
            let zeros = received.iter().all(|&b| b == 0);
            writeln!(stream, "{} {zeros}", received.len()).unwrap();
            received.len()
        });
        let bytes = 3 * CHUNK as u64 + 7;
        let (moved, reply) = blast(addr, bytes, Duration::from_secs(10), true, None).unwrap();
        assert_eq!(sink.join().unwrap() as u64, bytes);
        assert_eq!(moved.bytes, bytes);
        assert_eq!(reply, format!("{bytes} true\n"));
    }
}
