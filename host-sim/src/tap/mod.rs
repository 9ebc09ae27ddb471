//! ringnet on a Linux tap interface, on the device side of the wire: the tap device
//! (through an optional pcap capture), the host's clock, the real-time [`Waiter`] that
//! polls a stack on them, and [`bring_up`], which puts a device's stack on the tap for
//! every program that runs there.
//!
//! - [`tun`]: opening the tap, plainly or with the virtio-net header and offloads
//!   negotiated (`--offload`), and its MTU (`--mtu`).
//! - [`vnet`]: the virtio-net header, read and written.
//! - [`link`]: the [`FrameLink`] under the device, one frame per `read` or `write`.
//! - [`pcap`]: the capture (`--pcap FILE`), which stops on a write error.

pub mod coalesce;
pub mod link;
pub mod pcap;
pub mod tun;
pub mod vnet;

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant as WallClock;

use ringnet::blocking::{Progress, Waiter};
use ringnet::observe::LogLimit;
use ringnet::smoltcp::phy::{self, Device, DeviceCapabilities, PcapMode, PcapWriter};
use ringnet::smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use ringnet::{run, ArpQueueResources, Duration, Instant, Stack, StackConfig, StackResources};

use crate::trace::{FinishOnDrop, TraceClock, TraceFile};

use link::{FrameLink, LinkErrors};
use pcap::PcapFile;
use tun::{Offload, TapFd};

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
    /// The kernel refused the MTU asked for (`--mtu`).
    Mtu(String, u16, io::Error),
    /// The trace file (`--trace`) could not be created.
    Trace(PathBuf, io::Error),
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
            TapError::Mtu(name, mtu, e) => write!(
                f,
                "cannot set the MTU of tap '{name}' to {mtu}: {e} (`ip -d link show {name}` says the largest it takes: maxmtu, 65521 for a tap)"
            ),
            TapError::Gone(name, e) => write!(
                f,
                "tap '{name}' went away while the device was using it ({e}); was it deleted, or its network namespace?"
            ),
            TapError::Trace(path, e) => write!(f, "--trace {}: {e}", path.display()),
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
            "tap: {} frames dropped (queue full), {} writes failed, {} reads failed, {} frames over the MTU, {} bad virtio-net headers, {} bad TCP checksums",
            errors.tx_dropped,
            errors.tx_failed,
            errors.rx_failed,
            errors.rx_oversized,
            errors.rx_bad_header,
            errors.rx_bad_checksum
        );
    }
    let offload = device.offload();
    if offload != Offload::Off {
        let c = device.offload_counts();
        let _ = writeln!(
            out,
            "tap offload ({offload}): in {} frames, {} large segments (largest {} B), checksums {} trusted, {} verified by the kernel, {} completed; out {} frames, {} large segments (largest {} B)",
            c.frames_in, c.segments_in, c.largest_in, c.trusted_in, c.valid_in, c.completed_in,
            c.frames_out, c.segments_out, c.largest_out
        );
    }
}

/// The tap, seen through a pcap writer (which writes nothing without `--pcap`).
pub struct TapDevice {
    inner: PcapWriter<FrameLink<TapFd>, PcapFile>,
    fd: i32,
}

impl TapDevice {
    /// Attaches to the existing tap `name`, with the virtio-net header and offloads when
    /// `offload` (falling back to a plain tap where the kernel refuses), after setting its
    /// MTU to `mtu` if given. Never creates a tap: one appearing in the wrong network
    /// namespace would put ringnet's traffic where it does not belong.
    pub fn open(
        name: &str,
        pcap: Option<&Path>,
        offload: bool,
        mtu: Option<u16>,
    ) -> Result<TapDevice, TapError> {
        if !Path::new("/sys/class/net").join(name).exists() {
            return Err(TapError::Missing(name.to_string()));
        }
        let refused = |e: io::Error| match e.kind() {
            io::ErrorKind::PermissionDenied => TapError::Permission(name.to_string(), e),
            _ if e.raw_os_error() == Some(libc::EPERM) => TapError::Permission(name.to_string(), e),
            _ => TapError::Other(name.to_string(), e),
        };
        if let Some(mtu) = mtu {
            tun::set_interface_mtu(name, mtu).map_err(|e| match refused(e) {
                TapError::Other(name, e) => TapError::Mtu(name, mtu, e),
                other => other,
            })?;
        }
        let tap = tun::open(name, offload).map_err(refused)?;
        let fd = tap.fd.as_raw_fd();
        let sink = match pcap {
            Some(path) => PcapFile::create(path)
                .map_err(|e| TapError::Other(path.display().to_string(), e))?,
            None => PcapFile::none(),
        };
        let link = FrameLink::with_offload(tap.fd, tap.mtu, tap.offload);
        Ok(TapDevice {
            inner: PcapWriter::new(link, sink, PcapMode::Both),
            fd,
        })
    }

    /// What was negotiated with the kernel.
    pub fn offload(&self) -> Offload {
        self.inner.get_ref().offload()
    }

    /// What the virtio-net headers said so far (all zero without offload).
    pub fn offload_counts(&self) -> link::OffloadCounts {
        self.inner.get_ref().offload_counts()
    }

    /// Sends what the link holds back for joining (offload), then sleeps until the tap
    /// has a frame or `timeout` passes.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        self.inner.get_mut().flush();
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
        = <PcapWriter<FrameLink<TapFd>, PcapFile> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <PcapWriter<FrameLink<TapFd>, PcapFile> as Device>::TxToken<'a>
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
    /// `CLOCK_MONOTONIC` (µs) at `start`: where this clock's zero sits in a trace.
    start_monotonic_us: f64,
}

impl HostClock {
    /// A clock at zero now.
    pub fn start() -> HostClock {
        HostClock {
            start: WallClock::now(),
            start_monotonic_us: crate::trace::monotonic_us(),
        }
    }

    /// The time since start.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    /// This clock in a trace: `CLOCK_MONOTONIC`, shared with the Linux side's tools.
    pub fn trace_clock(&self) -> TraceClock {
        TraceClock::Monotonic {
            stack_zero_us: self.start_monotonic_us,
        }
    }
}

/// The real-time waiter: polls the stack on the tap and sleeps on the tap's file
/// descriptor until a frame arrives or a timer is due.
pub struct TapWaiter {
    /// The device.
    pub device: TapDevice,
    /// The clock.
    pub clock: HostClock,
    /// The trace every event of the stack goes to (`--trace`), if any; finished when
    /// the waiter is dropped.
    pub trace: FinishOnDrop,
}

impl Waiter for TapWaiter {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn wait(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> Progress {
        if self.device.gone().is_some() {
            // No frame will ever come: the blocked call fails as if it had timed out.
            return Progress::Stalled;
        }
        let now = self.clock.now();
        // No program runs beside a blocked call: the turn polls the stack alone.
        let turn = run::step(now, stack, &mut self.device, &mut ());
        let mut delay = turn.wait(now, MAX_WAIT);
        if let Some(deadline) = deadline {
            delay = delay.min(if deadline > now {
                deadline - now
            } else {
                Duration::ZERO
            });
        }
        self.device.wait(Some(delay));
        // Take in what the wait brought before the blocked call looks again.
        stack.poll(self.clock.now(), &mut self.device);
        Progress::Continue
    }
}

/// The longest a host on the tap sleeps between two turns: a termination signal or a
/// deleted tap is noticed at least this often.
pub const MAX_WAIT: Duration = Duration::from_millis(100);

/// Where a device sits on the tap, and whether it captures: what every program on the tap
/// (`serve`, `send`, `udp-send`) is given.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The tap interface to attach to (it must exist).
    pub tap: String,
    /// The device's address and prefix on the tap.
    pub ip: Ipv4Cidr,
    /// A default gateway, if any.
    pub gateway: Option<Ipv4Address>,
    /// Capture every frame into this pcap file.
    pub pcap: Option<PathBuf>,
    /// Transition and drop lines each socket may log per second ([`LogLimit`]); 0 for
    /// every one.
    pub log_burst: u16,
    /// Open the tap with the virtio-net header and checksum and TCP segmentation offload
    /// (`--offload`), as a virtual machine's NIC does.
    pub offload: bool,
    /// Set the tap's MTU first (`--mtu`).
    pub mtu: Option<u16>,
    /// Write every event of the stack to this trace file (Perfetto JSON; the log limit
    /// does not apply to it).
    pub trace: Option<PathBuf>,
}

/// The tap host's default [`TapConfig::log_burst`]: a bulk transfer changes a ring's level
/// every few kilobytes, which unthrottled wrote 64 MB of log in 16 minutes of load. The
/// firmware allows 10 a second for its UART; a terminal takes a little more.
pub const DEFAULT_LOG_BURST: u16 = 20;

/// Datagrams the tap stack's ARP queue holds ([`Stack::set_arp_queue`]).
const ARP_QUEUE_SLOTS: usize = 16;
/// Its payload bytes: a whole stats answer and more.
const ARP_QUEUE_BYTES: usize = 16 * 1024;

/// Brings a device up on the tap: attaches to it ([`TapDevice::open`]), starts the clock,
/// and makes the stack `dev` at `mac` with a socket table of `SOCKETS` slots (leaked for
/// `'static`), seeded with the process id. The device and the clock come back as the
/// waiter that polls the stack in real time.
pub fn bring_up<const SOCKETS: usize>(
    config: &TapConfig,
    mac: EthernetAddress,
) -> Result<(Stack<'static>, TapWaiter), TapError> {
    let mut device = TapDevice::open(
        &config.tap,
        config.pcap.as_deref(),
        config.offload,
        config.mtu,
    )?;
    let clock = HostClock::start();
    let resources = Box::leak(Box::new(StackResources::<'static, SOCKETS>::new()));
    let stack_config = StackConfig {
        name: "dev",
        mac,
        ip: config.ip,
        gateway: config.gateway,
        seed: std::process::id() as u64,
    };
    let mut stack = Stack::new(stack_config, &mut device, resources, clock.now());
    let arp_queue = Box::leak(Box::new(ArpQueueResources::<
        'static,
        ARP_QUEUE_SLOTS,
        ARP_QUEUE_BYTES,
    >::new()));
    // The stack's first queue: cannot be refused.
    let _ = stack.set_arp_queue(arp_queue);
    let trace = match &config.trace {
        Some(path) => {
            let file = TraceFile::create(path, clock.trace_clock())
                .map_err(|e| TapError::Trace(path.clone(), e))?;
            stack.set_event_sink(Some(file));
            log::info!("trace: every event to {}", path.display());
            Some(file)
        }
        None => None,
    };
    if config.log_burst > 0 {
        stack.set_log_limit(Some(LogLimit {
            burst: config.log_burst,
            interval: Duration::from_secs(1),
        }));
        log::info!(
            "log: at most {} transition and drop lines per socket per second (--log-limit; 0 for all); the stats table counts them all",
            config.log_burst
        );
    }
    Ok((
        stack,
        TapWaiter {
            device,
            clock,
            trace: FinishOnDrop(trace),
        },
    ))
}
