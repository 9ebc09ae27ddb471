//! ringnet on a Linux tap interface: the device (with an optional pcap capture) and the
//! real-time [`Driver`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Instant as WallClock;

use ringnet::blocking::{Driver, Progress};
use ringnet::phy::BorrowedFrame;
use ringnet::smoltcp::phy::{
    self, Device, DeviceCapabilities, Medium, PcapMode, PcapSink, PcapWriter, TunTapInterface,
};
use ringnet::{Duration, Instant, Stack};

/// Why the tap could not be opened, in words a user can act on.
#[derive(Debug)]
pub enum TapError {
    /// No interface of that name exists (in this network namespace).
    Missing(String),
    /// Opening `/dev/net/tun` or attaching to the tap was refused.
    Permission(String, io::Error),
    /// Any other failure.
    Other(String, io::Error),
    /// The tap was deleted while the device was attached to it.
    Gone(String, io::Error),
}

impl std::fmt::Display for TapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HOW: &str = "create one inside a network namespace with `sudo scripts/netns.sh up` \
                           and run ringnet there: `sudo ip netns exec ringnet host-sim serve --tap tap0`";
        match self {
            TapError::Missing(name) => write!(
                f,
                "no tap interface '{name}' in this network namespace; {HOW}"
            ),
            TapError::Permission(name, e) => {
                write!(
                    f,
                    "cannot attach to tap '{name}': {e}; run as root (or own the tap); {HOW}"
                )
            }
            TapError::Other(name, e) => write!(f, "cannot attach to tap '{name}': {e}"),
            TapError::Gone(name, e) => write!(
                f,
                "tap '{name}' went away while the device was using it ({e}); was it deleted, or its network namespace?"
            ),
        }
    }
}

impl std::error::Error for TapError {}

/// Prints a device's stats table at the end of a run, and what the tap could not move, if
/// anything. Written, not printed: stdout may be a capture's pipe whose reader has gone,
/// and then there is no one to tell.
pub fn print_stats_table(stack: &Stack<'_>, device: &TapDevice) {
    let mut out = io::stdout();
    let _ = writeln!(out, "{}", stack.stats_table());
    let errors = device.link_errors();
    if errors != LinkErrors::default() {
        let _ = writeln!(
            out,
            "tap: {} frames dropped (queue full), {} writes failed, {} reads failed, {} frames over the MTU",
            errors.tx_dropped, errors.tx_failed, errors.rx_failed, errors.rx_oversized
        );
    }
}

/// A pcap sink that reports its first write error instead of panicking, then stops.
pub struct PcapFile {
    out: Option<BufWriter<File>>,
}

impl PcapFile {
    /// No capture.
    pub fn none() -> PcapFile {
        PcapFile { out: None }
    }

    /// A capture written to `path`.
    pub fn create(path: &Path) -> io::Result<PcapFile> {
        Ok(PcapFile {
            out: Some(BufWriter::new(File::create(path)?)),
        })
    }

    /// Ends the capture after a write error (a full disk, a pipe whose reader quit); the
    /// device carries on without it.
    fn stop(&mut self, error: io::Error) {
        log::warn!("pcap capture stopped: {error}");
        if let Some(out) = self.out.take() {
            // What is still buffered cannot be written either.
            let _ = out.into_parts();
        }
    }
}

impl PcapSink for PcapFile {
    fn write(&mut self, data: &[u8]) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = Write::write_all(out, data) {
                self.stop(e);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = Write::flush(out) {
                self.stop(e);
            }
        }
    }

    fn packet(&mut self, timestamp: Instant, packet: &[u8]) {
        // Without a capture, nothing at all per frame (the default writes the header a
        // field at a time).
        if self.out.is_none() {
            return;
        }
        let captured = packet.len().min(self.max_packet_size() as usize);
        self.packet_header(timestamp, packet.len());
        self.write(&packet[..captured]);
        self.flush();
    }
}

/// Frames the link could not move, by cause. The kernel's `ip -s link` counts the same
/// for an interface: frames dropped and frames in error, each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkErrors {
    /// Frames not sent because the descriptor would have blocked (its queue was full; a
    /// tap's hardly ever is, and what the kernel drops beyond it is not seen here).
    pub tx_dropped: u64,
    /// Frames not sent because writing failed (the interface is down, or gone).
    pub tx_failed: u64,
    /// Reads that failed for another reason than "nothing to read".
    pub rx_failed: u64,
    /// Frames longer than the MTU, dropped on arrival.
    pub rx_oversized: u64,
}

/// The link's failures: the totals, and the current run of each kind, so that every
/// outage is logged when it starts and when it ends.
#[derive(Debug, Default)]
struct Failures {
    totals: LinkErrors,
    tx_run: u64,
    rx_run: u64,
}

impl Failures {
    fn failed(run: &mut u64, total: &mut u64, what: &str, error: &io::Error) {
        *run += 1;
        *total += 1;
        // The first failure of a run says why; the rest are counted, and logged ever more
        // rarely (the kernel rate-limits the same).
        if run.is_power_of_two() {
            log::warn!("tap: {what} failed ({run} in a row, {total} in all): {error}");
        }
    }

    fn succeeded(run: &mut u64, what: &str) {
        if *run > 0 {
            log::info!("tap: {what} works again after {run} failures");
            *run = 0;
        }
    }
}

/// Read errors after which the descriptor will never give a frame again: the interface
/// was deleted (or its namespace torn down) under the link.
const GONE: [i32; 2] = [libc::EBADFD, libc::ENODEV];

/// A frame link over a file descriptor that moves one frame per `read` or `write`, as a
/// tap does: reads into and writes from two buffers it keeps, so a frame costs no
/// allocation, and a failed read or write is counted and logged, never a panic.
pub struct FrameLink<F: AsRawFd> {
    /// Owns the descriptor (a tap's [`TunTapInterface`], or a socket in tests).
    _owner: F,
    /// The descriptor, looked up once (a tap's lookup goes through a `RefCell`).
    fd: RawFd,
    mtu: usize,
    /// One byte more than the MTU, so that a longer frame shows by filling it.
    rx: Vec<u8>,
    tx: Vec<u8>,
    failures: Failures,
    /// The error (one of [`GONE`]) that ended the link.
    gone: Option<i32>,
}

impl<F: AsRawFd> FrameLink<F> {
    /// A link over `owner`'s descriptor (non-blocking) for frames of up to `mtu` bytes
    /// (Ethernet header included).
    pub fn new(owner: F, mtu: usize) -> FrameLink<F> {
        FrameLink {
            fd: owner.as_raw_fd(),
            _owner: owner,
            mtu,
            rx: vec![0; mtu + 1],
            tx: vec![0; mtu],
            failures: Failures::default(),
            gone: None,
        }
    }

    /// What the link could not move so far.
    pub fn errors(&self) -> LinkErrors {
        self.failures.totals
    }

    /// Why the link will never move a frame again, once a read said so.
    pub fn gone(&self) -> Option<io::Error> {
        self.gone.map(io::Error::from_raw_os_error)
    }
}

/// Room for a frame to write to a [`FrameLink`].
pub struct LinkTxToken<'a> {
    fd: RawFd,
    buf: &'a mut [u8],
    failures: &'a mut Failures,
}

impl phy::TxToken for LinkTxToken<'_> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        // smoltcp asks for at most the MTU, the buffer's size.
        let len = len.min(self.buf.len());
        let frame = &mut self.buf[..len];
        let result = f(frame);
        // SAFETY: `frame` is valid for reads of its length, and `fd` stays open for as
        // long as the link that lent this token owns it.
        let written = unsafe { libc::write(self.fd, frame.as_ptr().cast(), frame.len()) };
        let failures = self.failures;
        if written >= 0 {
            Failures::succeeded(&mut failures.tx_run, "write");
        } else {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                failures.totals.tx_dropped += 1;
            } else {
                Failures::failed(
                    &mut failures.tx_run,
                    &mut failures.totals.tx_failed,
                    "write",
                    &error,
                );
            }
        }
        result
    }
}

impl<F: AsRawFd> Device for FrameLink<F> {
    type RxToken<'a>
        = BorrowedFrame<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = LinkTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(BorrowedFrame<'_>, LinkTxToken<'_>)> {
        if self.gone.is_some() {
            return None;
        }
        let fd = self.fd;
        // SAFETY: `rx` is valid for writes of its length, and `fd` is open while `_owner` is.
        let read = unsafe { libc::read(fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
        let failures = &mut self.failures;
        if read < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                return None;
            }
            Failures::failed(
                &mut failures.rx_run,
                &mut failures.totals.rx_failed,
                "read",
                &error,
            );
            if let Some(code) = error.raw_os_error().filter(|code| GONE.contains(code)) {
                log::error!("tap: the interface is gone: {error}");
                self.gone = Some(code);
            }
            return None;
        }
        Failures::succeeded(&mut failures.rx_run, "read");
        let read = read as usize;
        if read == 0 {
            // No frame is empty; a descriptor at its end has nothing to give.
            return None;
        }
        if read > self.mtu {
            failures.totals.rx_oversized += 1;
            if failures.totals.rx_oversized.is_power_of_two() {
                log::warn!(
                    "tap: dropped a frame longer than the MTU of {} ({} so far)",
                    self.mtu,
                    failures.totals.rx_oversized
                );
            }
            return None;
        }
        let rx = BorrowedFrame(&self.rx[..read]);
        let tx = LinkTxToken {
            fd,
            buf: &mut self.tx,
            failures,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _: Instant) -> Option<LinkTxToken<'_>> {
        Some(LinkTxToken {
            fd: self.fd,
            buf: &mut self.tx,
            failures: &mut self.failures,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// The tap, seen through a pcap writer (which writes nothing without `--pcap`).
pub struct TapDevice {
    inner: PcapWriter<FrameLink<TunTapInterface>, PcapFile>,
    fd: i32,
}

impl TapDevice {
    /// Attaches to the existing tap `name`. Never creates one: a tap appearing in the
    /// wrong network namespace would put ringnet's traffic where it does not belong.
    pub fn open(name: &str, pcap: Option<&Path>) -> Result<TapDevice, TapError> {
        if !Path::new("/sys/class/net").join(name).exists() {
            return Err(TapError::Missing(name.to_string()));
        }
        let tap = TunTapInterface::new(name, Medium::Ethernet).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => TapError::Permission(name.to_string(), e),
            _ if e.raw_os_error() == Some(1) => TapError::Permission(name.to_string(), e),
            _ => TapError::Other(name.to_string(), e),
        })?;
        let fd = tap.as_raw_fd();
        // smoltcp's own device reads the interface's MTU and adds the Ethernet header.
        let mtu = tap.capabilities().max_transmission_unit;
        let sink = match pcap {
            Some(path) => PcapFile::create(path)
                .map_err(|e| TapError::Other(path.display().to_string(), e))?,
            None => PcapFile::none(),
        };
        Ok(TapDevice {
            inner: PcapWriter::new(FrameLink::new(tap, mtu), sink, PcapMode::Both),
            fd,
        })
    }

    /// Sleeps until the tap has a frame or `timeout` passes.
    pub fn wait(&self, timeout: Option<Duration>) {
        let _ = phy::wait(self.fd, timeout);
    }

    /// Frames the tap could not move so far.
    pub fn link_errors(&self) -> LinkErrors {
        self.inner.get_ref().errors()
    }

    /// Why the tap will never move a frame again (it was deleted under the device).
    pub fn gone(&self) -> Option<io::Error> {
        self.inner.get_ref().gone()
    }
}

impl Device for TapDevice {
    type RxToken<'a>
        = <PcapWriter<FrameLink<TunTapInterface>, PcapFile> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <PcapWriter<FrameLink<TunTapInterface>, PcapFile> as Device>::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

/// The host's clock as smoltcp time, counted from when the program started.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    start: WallClock,
}

impl HostClock {
    /// A clock at zero now.
    pub fn start() -> HostClock {
        HostClock {
            start: WallClock::now(),
        }
    }

    /// The time since start.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }
}

/// The real-time driver: polls the stack on the tap and sleeps on the tap's file
/// descriptor until a frame arrives or a timer is due.
pub struct TapDriver {
    /// The device.
    pub device: TapDevice,
    /// The clock.
    pub clock: HostClock,
}

impl Driver for TapDriver {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn wait(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> Progress {
        if self.device.gone().is_some() {
            // No frame will ever come: the blocked call fails as if it had timed out.
            return Progress::Stalled;
        }
        let now = self.clock.now();
        stack.poll(now, &mut self.device);
        let mut delay = stack.poll_delay().unwrap_or(Duration::from_millis(100));
        if let Some(deadline) = deadline {
            delay = delay.min(if deadline > now {
                deadline - now
            } else {
                Duration::ZERO
            });
        }
        self.device
            .wait(Some(delay.min(Duration::from_millis(100))));
        stack.poll(self.clock.now(), &mut self.device);
        Progress::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnet::smoltcp::phy::{RxToken as _, TxToken as _};
    use std::os::unix::net::UnixDatagram;

    /// A link over one end of a datagram socket pair, which, like a tap, moves one frame
    /// per read or write; the other end plays the kernel.
    fn link() -> (FrameLink<UnixDatagram>, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        // A small send buffer, so that a full queue comes after a few frames on any host.
        let size: libc::c_int = 16 * 1024;
        // SAFETY: `size` is a live c_int and its length is given.
        let set = unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", io::Error::last_os_error());
        (FrameLink::new(ours, 1514), theirs)
    }

    fn now() -> Instant {
        Instant::from_millis(0)
    }

    #[test]
    fn frames_cross_both_ways_whole_through_the_reused_buffers() {
        let (mut link, kernel) = link();
        for len in [1514usize, 60, 1000] {
            let frame: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            kernel.send(&frame).unwrap();
            let (rx, _) = link.receive(now()).expect("a frame waits");
            assert_eq!(rx.consume(|got| got.to_vec()), frame, "received {len}");

            let tx = link.transmit(now()).unwrap();
            tx.consume(len, |room| room.copy_from_slice(&frame));
            let mut got = vec![0u8; 2000];
            let n = kernel.recv(&mut got).unwrap();
            assert_eq!(&got[..n], &frame[..], "sent {len}");
        }
        assert_eq!(link.errors(), LinkErrors::default());
    }

    #[test]
    fn a_frame_longer_than_the_mtu_is_dropped_and_counted_not_cut_short() {
        let (mut link, kernel) = link();
        kernel.send(&[7u8; 1518]).unwrap();
        kernel.send(&[8u8; 64]).unwrap();
        assert!(
            link.receive(now()).is_none(),
            "the long frame is not delivered"
        );
        assert_eq!(link.errors().rx_oversized, 1);
        let (rx, _) = link.receive(now()).expect("the next frame");
        assert_eq!(rx.consume(|got| got.to_vec()), vec![8u8; 64]);
    }

    #[test]
    fn nothing_to_read_is_no_frame_and_no_error() {
        let (mut link, _kernel) = link();
        assert!(link.receive(now()).is_none());
        assert_eq!(link.errors(), LinkErrors::default());
    }

    #[test]
    fn a_full_queue_drops_frames_and_a_dead_peer_fails_them_counted_not_panicking() {
        let (mut link, kernel) = link();
        let mut sent = 0;
        while link.errors().tx_dropped == 0 && sent < 10_000 {
            link.transmit(now())
                .unwrap()
                .consume(100, |room| room.fill(1));
            sent += 1;
        }
        assert_eq!(
            link.errors().tx_dropped,
            1,
            "the queue filled after {sent} frames"
        );

        drop(kernel);
        link.transmit(now())
            .unwrap()
            .consume(100, |room| room.fill(2));
        assert_eq!(link.errors().tx_failed, 1);
        assert!(link.receive(now()).is_none(), "{:?}", link.errors());
    }
}
