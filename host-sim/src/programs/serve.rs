//! `host-sim serve`: ringnet as a network host on a Linux tap interface, running every
//! service on its port, until a time limit or SIGINT/SIGTERM. A program on the device
//! side of the wire: it brings the device up with [`bring_up`] and serves files from the
//! device's [`store`](crate::store).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ringnet::service_set::{ServiceSet, ServiceSockets};
use ringnet::services::{FileSource, Pattern};
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::socket::udp::UdpBuffer;
use ringnet::transfer::DigestSink;
use ringnet::{Duration, SocketHandle, Stack};

use crate::local_file::LocalFile;
use crate::store::{DirStore, HostStore};
use crate::tap::{bring_up, print_stats_table, TapConfig, TapDriver, TapError};

/// The host's services: files from a directory (or digests only), HTTP with room for
/// the stats of every socket, a 512-byte UDP read buffer.
type HostServices = ServiceSet<'static, HostStore, HostStore, HTTP_CONNECTIONS, 16384, 512>;
/// HTTP connections at once (one of them answers 503 when the others are busy).
const HTTP_CONNECTIONS: usize = 4;

/// Connections each stream service takes at once (its backlog of sockets).
const ECHO_BACKLOG: usize = 4;
const DISCARD_BACKLOG: usize = 2;
const FILE_OUT_BACKLOG: usize = 4;
const FILE_IN_BACKLOG: usize = 4;
const TRANSFER_BACKLOG: usize = 2;

/// Slots in the host's socket table: every backlog, a listener for each of the six stream
/// services, and the three datagram sockets. Exactly that many: every poll, and smoltcp
/// for every segment it sends, steps over each slot, empty or not (48 slots cost a bulk
/// sender about 5% more CPU than these 29).
const SOCKETS: usize = ECHO_BACKLOG
    + DISCARD_BACKLOG
    + FILE_OUT_BACKLOG
    + FILE_IN_BACKLOG
    + TRANSFER_BACKLOG
    + HTTP_CONNECTIONS
    + 6
    + 3;

/// The serving device's Ethernet address.
pub const MAC: EthernetAddress = EthernetAddress([0x02, 0x52, 0x4e, 0x00, 0x00, 0x01]);

/// What `serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the device sits on the tap.
    pub tap: TapConfig,
    /// Directory for the transfer service's files (and `--file`).
    pub files: Option<PathBuf>,
    /// The file TCP 7001 sends, inside `files`; without it, a pattern of `pattern_size`.
    pub file: Option<String>,
    /// Size of the default pattern TCP 7001 sends.
    pub pattern_size: u64,
    /// Ring sizes of every TCP service socket.
    pub rx_buf: usize,
    /// Ring sizes of every TCP service socket.
    pub tx_buf: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// Why `serve` stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// The tap.
    Tap(TapError),
    /// A bad option value.
    Config(String),
    /// A service could not start.
    Service(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Tap(e) => write!(f, "{e}"),
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Service(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

fn leak(n: usize) -> &'static mut [u8] {
    vec![0u8; n].leak()
}

fn udp_socket(
    stack: &mut Stack<'static>,
    slots: usize,
    bytes: usize,
) -> Result<SocketHandle, ServeError> {
    let ring = || UdpBuffer {
        slots: vec![PacketMetadata::EMPTY; slots].leak(),
        payload: leak(bytes),
    };
    stack
        .udp_socket(ring(), ring())
        .map_err(|e| ServeError::Service(format!("udp socket: {e}")))
}

fn backlog(
    stack: &mut Stack<'static>,
    n: usize,
    rx: usize,
    tx: usize,
) -> Result<Vec<SocketHandle>, ServeError> {
    (0..n)
        .map(|_| {
            stack
                .tcp_socket(leak(rx), leak(tx))
                .map_err(|e| ServeError::Service(format!("tcp socket: {e}")))
        })
        .collect()
}

/// Runs the host until the time limit or a termination signal; prints the stats table
/// at the end.
pub fn serve(config: ServeConfig) -> Result<(), ServeError> {
    if config.rx_buf == 0 || config.tx_buf == 0 {
        return Err(ServeError::Config(
            "--rx-buf and --tx-buf must be at least 1 byte".into(),
        ));
    }
    // The transfer and HTTP services each get a store on the same directory; without
    // --files, uploads keep only their size and digest.
    let open_files = || -> Result<HostStore, ServeError> {
        Ok(match &config.files {
            Some(dir) => HostStore::Dir(
                DirStore::new(dir).map_err(|e| ServeError::Config(format!("--files: {e}")))?,
            ),
            None => HostStore::Digests(Box::new(DigestSink::new())),
        })
    };
    let transfer_store = open_files()?;
    let http_store = open_files()?;
    let source: &'static dyn FileSource = match (&config.file, &config.files) {
        (Some(name), Some(dir)) => {
            let path = dir.join(name);
            Box::leak(Box::new(LocalFile::open(&path).map_err(|e| {
                ServeError::Config(format!("--file {}: {e}", path.display()))
            })?))
        }
        (Some(_), None) => return Err(ServeError::Config("--file needs --files DIR".into())),
        (None, _) => Box::leak(Box::new(Pattern(config.pattern_size))),
    };
    let (mut stack, TapDriver { mut device, clock }) =
        bring_up::<SOCKETS>(&config.tap, MAC).map_err(ServeError::Tap)?;
    let (rx, tx) = (config.rx_buf, config.tx_buf);
    let service = |e: ringnet::services::ServiceError| ServeError::Service(e.to_string());

    let echo = backlog(&mut stack, ECHO_BACKLOG, rx, tx)?;
    let discard = backlog(&mut stack, DISCARD_BACKLOG, rx, tx)?;
    let file_out = backlog(&mut stack, FILE_OUT_BACKLOG, rx, tx)?;
    let file_in = backlog(&mut stack, FILE_IN_BACKLOG, rx, tx)?;
    let transfer = backlog(&mut stack, TRANSFER_BACKLOG, rx, tx)?;
    let http = backlog(&mut stack, HTTP_CONNECTIONS, rx, tx)?;
    let sockets = ServiceSockets {
        echo: &echo,
        discard: &discard,
        file_out: &file_out,
        file_in: &file_in,
        transfer: &transfer,
        http: &http,
        report: udp_socket(&mut stack, 16, 16 * 1024)?,
        stats: udp_socket(&mut stack, 4, 4096)?,
        beacon: udp_socket(&mut stack, 4, 2048)?,
    };
    let mut services = Box::new(
        HostServices::start(&mut stack, sockets, source, transfer_store, http_store)
            .map_err(service)?,
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Fails only if a handler is already set, and this is the only one.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let end = config.duration.map(|d| clock.now() + d);
    log::info!(
        "dev: serving on {} as {}: echo 7, discard 9, http 80, file out 7001 ({} bytes), file in 7002, transfer 7003, udp 9000/9001, beacon 9999",
        config.tap.tap,
        config.tap.ip,
        source.len()
    );
    while !stop.load(Ordering::SeqCst) && end.is_none_or(|end| clock.now() < end) {
        stack.poll(clock.now(), &mut device);
        services.poll(&mut stack);
        // Sleep only when nothing is due: what the services just queued makes the stack
        // due at once, and the next poll sends it without a system call in between.
        let now = clock.now();
        let beacon_in = if services.poll_at() > now {
            services.poll_at() - now
        } else {
            Duration::ZERO
        };
        let delay = stack
            .poll_delay()
            .unwrap_or(Duration::from_millis(100))
            .min(beacon_in)
            .min(Duration::from_millis(100));
        if delay > Duration::ZERO {
            device.wait(Some(delay));
        }
        if let Some(error) = device.gone() {
            let gone = TapError::Gone(config.tap.tap.clone(), error);
            log::error!("dev: stopping: {gone}");
            print_stats_table(&stack, &device);
            return Err(ServeError::Tap(gone));
        }
    }
    log::info!("dev: stopping");
    print_stats_table(&stack, &device);
    Ok(())
}
