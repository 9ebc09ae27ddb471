//! `peer … --trace FILE`: the kernel's side of a connection over time.
//!
//! A thread samples the connection's socket every few milliseconds: the bytes in its
//! receive queue (`SIOCINQ`) and send queue (`SIOCOUTQ`) against `SO_RCVBUF` and
//! `SO_SNDBUF`, and `TCP_INFO`'s unacknowledged segments, congestion window and
//! retransmissions. Each value is written when it changes, stamped with
//! `CLOCK_MONOTONIC` in µs, the clock `serve --trace` stamps the device's events with, so
//! that `host-sim plot device.json linux.json` puts both ends of one connection on one
//! axis. The file is a ringnet trace (docs/trace.md, "Linux side"): pid 1 named
//! `linux <tool> <pid>`, tid 1 the connection, counters `linux rx`, `linux tx` and
//! `linux tcp_info`, all of category `kernel`.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// How often the socket is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// CLOCK_MONOTONIC in µs: the clock of every trace written on a Linux host.
pub fn monotonic_micros() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into memory we own; CLOCK_MONOTONIC
    // always exists on Linux.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
    }
    now.tv_sec as f64 * 1e6 + now.tv_nsec as f64 / 1e3
}

/// One sample of a kernel TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Bytes in the receive queue, not yet read (SIOCINQ).
    pub rx_queued: u32,
    /// SO_RCVBUF.
    pub rx_capacity: u32,
    /// Bytes in the send queue, not yet acknowledged (SIOCOUTQ).
    pub tx_queued: u32,
    /// SO_SNDBUF.
    pub tx_capacity: u32,
    /// TCP_INFO: segments sent and not acknowledged.
    pub unacked: u32,
    /// TCP_INFO: congestion window, segments.
    pub snd_cwnd: u32,
    /// TCP_INFO: segments being retransmitted now.
    pub retrans: u32,
    /// TCP_INFO: retransmissions over the connection's life.
    pub total_retrans: u32,
    /// TCP_INFO: smoothed round-trip time, µs.
    pub rtt_us: u32,
}

fn int_ioctl(fd: RawFd, request: libc::Ioctl) -> io::Result<u32> {
    let mut value: libc::c_int = 0;
    // SAFETY: both requests write one int into `value`; `fd` is a socket we hold open.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(fd, request, &mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.max(0) as u32)
}

/// A socket option's int value (`getsockopt(2)`), a negative one as 0.
pub(crate) fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<u32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.max(0) as u32)
}

/// Sets a socket option whose value is an int (`setsockopt(2)`).
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads `len` bytes from `value`, which outlives the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Samples the TCP socket `fd` once.
pub fn sample(fd: RawFd) -> io::Result<Sample> {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    #[allow(unsafe_code)]
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info` (older kernels fewer).
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Sample {
        // SIOCINQ is FIONREAD and SIOCOUTQ is TIOCOUTQ for sockets (linux/sockios.h).
        rx_queued: int_ioctl(fd, libc::FIONREAD)?,
        rx_capacity: int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?,
        tx_queued: int_ioctl(fd, libc::TIOCOUTQ)?,
        tx_capacity: int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?,
        unacked: info.tcpi_unacked,
        snd_cwnd: info.tcpi_snd_cwnd,
        retrans: info.tcpi_retrans,
        total_retrans: info.tcpi_total_retrans,
        rtt_us: info.tcpi_rtt,
    })
}

/// The events of a Linux-side trace, as they are built up.
struct Events {
    events: Vec<Value>,
    last: Option<Sample>,
}

impl Events {
    fn new(tool: &str, connection: &str) -> Events {
        let process = format!("linux {tool} {}", std::process::id());
        Events {
            events: vec![
                json!({"ph":"M","cat":"__metadata","name":"process_name","pid":1,"args":{"name":process}}),
                json!({"ph":"M","cat":"__metadata","name":"thread_name","pid":1,"tid":1,"args":{"name":connection}}),
            ],
            last: None,
        }
    }

    /// Adds the counters of `s` that changed since the last sample (all of them the
    /// first time, and when `force`).
    fn push(&mut self, ts: f64, s: Sample, force: bool) {
        let last = self.last.filter(|_| !force);
        let counter = |name: &str, args: Value| json!({"ph":"C","cat":"kernel","name":name,"pid":1,"tid":1,"ts":ts,"args":args});
        if last.is_none_or(|l| (l.rx_queued, l.rx_capacity) != (s.rx_queued, s.rx_capacity)) {
            self.events.push(counter(
                "linux rx",
                json!({"used": s.rx_queued, "capacity": s.rx_capacity}),
            ));
        }
        if last.is_none_or(|l| (l.tx_queued, l.tx_capacity) != (s.tx_queued, s.tx_capacity)) {
            self.events.push(counter(
                "linux tx",
                json!({"used": s.tx_queued, "capacity": s.tx_capacity}),
            ));
        }
        let info = |s: Sample| (s.unacked, s.snd_cwnd, s.retrans, s.total_retrans, s.rtt_us);
        if last.is_none_or(|l| info(l) != info(s)) {
            self.events.push(counter(
                "linux tcp_info",
                json!({"unacked": s.unacked, "snd_cwnd": s.snd_cwnd, "retrans": s.retrans,
                       "total_retrans": s.total_retrans, "rtt_us": s.rtt_us}),
            ));
        }
        self.last = Some(s);
    }

    fn document(self) -> Value {
        json!({
            "otherData": {"format":"ringnet-trace","version":1,"clock":"monotonic"},
            "displayTimeUnit": "ms",
            "traceEvents": self.events,
        })
    }
}

/// A running sampler of one connection; [`Sampler::finish`] takes a last sample and
/// writes the trace. Dropped without `finish` (an error path), it writes it as well.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicU64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Sampler {
    /// Starts sampling `stream` every [`SAMPLE_EVERY`] into `path`, as the connection of
    /// `tool` (`get`, `put`, `blast`). The trace file is created now, so a path that
    /// cannot be written is an error before any byte moves.
    pub fn start(stream: &TcpStream, tool: &str, path: &Path) -> io::Result<Sampler> {
        let path: PathBuf = path.to_path_buf();
        std::fs::File::create(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // Its own descriptor of the socket: the sampler outlives no caller, see finish.
        let socket = stream.try_clone()?;
        let connection = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(local), Ok(peer)) => format!("tcp {local} → {peer}"),
            _ => "tcp".to_string(),
        };
        let mut events = Events::new(tool, &connection);
        let first = sample(socket.as_raw_fd())?;
        events.push(monotonic_micros(), first, true);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let taken = Arc::new(AtomicU64::new(1));
        let counting = Arc::clone(&taken);
        let thread = std::thread::spawn(move || {
            let fd = socket.as_raw_fd();
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_EVERY);
                // A socket the kernel has finished with still answers; an error ends
                // the sampling, not the transfer.
                match sample(fd) {
                    Ok(s) => events.push(monotonic_micros(), s, false),
                    Err(_) => break,
                }
                counting.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(s) = sample(fd) {
                events.push(monotonic_micros(), s, true);
            }
            drop(socket);
            let text = serde_json::to_string(&events.document()).map_err(io::Error::other)?;
            std::fs::write(&path, text)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        });
        Ok(Sampler {
            stop,
            taken,
            thread: Some(thread),
        })
    }

    /// Samples taken so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Takes the last sample, closes the sampler's descriptor of the socket and writes
    /// the trace. Call it before the stream is dropped: until then the connection stays
    /// open through the sampler's descriptor.
    pub fn finish(mut self) -> io::Result<()> {
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the trace sampler panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn a_reader_that_does_not_read_shows_in_the_kernels_queues_and_the_trace() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let idle = sample(client.as_raw_fd()).unwrap();
        assert_eq!((idle.rx_queued, idle.tx_queued, idle.unacked), (0, 0, 0));
        assert!(idle.rx_capacity > 0 && idle.tx_capacity > 0);
        assert_eq!(idle.total_retrans, 0);

        let path = std::env::temp_dir().join(format!("sampler-{}.json", std::process::id()));
        let sampler = Sampler::start(&server, "test", &path).unwrap();
        client.write_all(&[7u8; 5000]).unwrap();
        // The bytes wait in the server's receive queue until it reads.
        let start = std::time::Instant::now();
        while sample(server.as_raw_fd()).unwrap().rx_queued < 5000 {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        // Two samples at least while the bytes wait, and two after they were read (on a
        // busy machine the sampler's 2 ms may be much longer).
        let wait_for_samples = |n: u64| {
            let until = sampler.taken() + n;
            let start = std::time::Instant::now();
            while sampler.taken() < until {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "the sampler stalled"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for_samples(2);
        let mut buf = vec![0u8; 5000];
        server.read_exact(&mut buf).unwrap();
        wait_for_samples(2);
        sampler.finish().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        // The rules Perfetto's importer applies hold for the Linux side's trace too.
        crate::trace::check::check(&text).unwrap_or_else(|p| panic!("{p:#?}"));
        let trace: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(trace["otherData"]["clock"], "monotonic");
        let rx: Vec<u64> = trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "linux rx")
            .map(|e| e["args"]["used"].as_u64().unwrap())
            .collect();
        assert_eq!(rx.first(), Some(&0));
        assert!(rx.contains(&5000), "{rx:?}");
        assert_eq!(rx.last(), Some(&0));
        // Stamped with the clock of this machine now.
        let ts = trace["traceEvents"][2]["ts"].as_f64().unwrap();
        assert!(ts <= monotonic_micros() && ts > monotonic_micros() - 60e6);
    }
}
