//! ringnet on a Linux tap interface: the device (with an optional pcap capture), the
//! real-time [`Driver`], and the host's file store.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant as WallClock;

use ringnet::blocking::{Driver, Progress};
use ringnet::smoltcp::phy::{
    self, Device, DeviceCapabilities, Medium, PcapMode, PcapSink, PcapWriter, TunTapInterface,
};
use ringnet::transfer::{DigestSink, Store, StoreError};
use ringnet::{Duration, Instant, Stack};

use crate::transfer::{DirStore, DirUpload};

/// Why the tap could not be opened, in words a user can act on.
#[derive(Debug)]
pub enum TapError {
    /// No interface of that name exists (in this network namespace).
    Missing(String),
    /// Opening `/dev/net/tun` or attaching to the tap was refused.
    Permission(String, io::Error),
    /// Any other failure.
    Other(String, io::Error),
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
        }
    }
}

impl std::error::Error for TapError {}

/// Prints a device's stats table at the end of a run. Written, not printed: stdout may be
/// a capture's pipe whose reader has gone, and then there is no one to tell.
pub fn print_stats_table(stack: &Stack<'_>) {
    let _ = writeln!(io::stdout(), "{}", stack.stats_table());
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

/// The tap, seen through a pcap writer (which writes nothing without `--pcap`).
pub struct TapDevice {
    inner: PcapWriter<TunTapInterface, PcapFile>,
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
        let sink = match pcap {
            Some(path) => PcapFile::create(path)
                .map_err(|e| TapError::Other(path.display().to_string(), e))?,
            None => PcapFile::none(),
        };
        Ok(TapDevice {
            inner: PcapWriter::new(tap, sink, PcapMode::Both),
            fd,
        })
    }

    /// Sleeps until the tap has a frame or `timeout` passes.
    pub fn wait(&self, timeout: Option<Duration>) {
        let _ = phy::wait(self.fd, timeout);
    }
}

impl Device for TapDevice {
    type RxToken<'a>
        = <PcapWriter<TunTapInterface, PcapFile> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <PcapWriter<TunTapInterface, PcapFile> as Device>::TxToken<'a>
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

/// The host's transfer store: a directory (`--files DIR`), or digests only.
pub enum HostStore {
    /// Files in a directory.
    Dir(DirStore),
    /// Sizes and digests of the last uploads.
    Digests(Box<DigestSink<16>>),
}

/// An upload into a [`HostStore`].
pub enum HostUpload {
    /// Into the directory.
    Dir(DirUpload),
    /// Into the digest sink.
    Digests(Box<<DigestSink<16> as Store>::Upload>),
}

impl Store for HostStore {
    type Upload = HostUpload;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        match self {
            HostStore::Dir(s) => s.size(name),
            HostStore::Digests(s) => s.size(name),
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        match self {
            HostStore::Dir(s) => s.read_at(name, offset, buf),
            HostStore::Digests(s) => s.read_at(name, offset, buf),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin(name, size).map(HostUpload::Dir),
            HostStore::Digests(s) => s
                .begin(name, size)
                .map(|u| HostUpload::Digests(Box::new(u))),
        }
    }

    fn begin_verified(
        &mut self,
        name: &str,
        size: u64,
        sha256: &ringnet::transfer::Digest,
    ) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin_verified(name, size, sha256).map(HostUpload::Dir),
            HostStore::Digests(s) => s
                .begin_verified(name, size, sha256)
                .map(|u| HostUpload::Digests(Box::new(u))),
        }
    }

    fn write(&mut self, upload: &mut HostUpload, data: &[u8]) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.write(u, data),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.write(u, data),
            _ => Err(StoreError::Io),
        }
    }

    fn commit(&mut self, upload: HostUpload) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.commit(u),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.commit(*u),
            _ => Err(StoreError::Io),
        }
    }

    fn abort(&mut self, upload: HostUpload) {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.abort(u),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.abort(*u),
            _ => {}
        }
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        match self {
            HostStore::Dir(s) => s.for_each(f),
            HostStore::Digests(s) => s.for_each(f),
        }
    }
}
