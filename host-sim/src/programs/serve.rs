//! `host-sim serve`: ringnet as a network host on a Linux tap interface, running every
//! service on its port, until a time limit or SIGINT/SIGTERM. A program on the device
//! side of the wire: it brings the device up with [`bring_up`] and serves files from the
//! device's [`store`](crate::store).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ringnet::http::HttpServer;
use ringnet::run;
use ringnet::service_set::{Servers, ServiceSet};
use ringnet::services::{FileSource, Member, MinRate, Pattern, ServicePlan};
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::socket::udp::UdpBuffer;
use ringnet::stack::{OpenError, TcpTimers};
use ringnet::transfer::{DigestSink, TransferServer};
use ringnet::{Duration, SocketHandle, Stack};

use crate::local_file::LocalFile;
use crate::store::{DirStore, HostStore, SharedStore};
use crate::tap::{bring_up, print_stats_table, TapConfig, TapError, TapWaiter, MAX_WAIT};

/// The services `serve` runs: every one, each stream service taking a few connections
/// at once.
pub const PLAN: ServicePlan = ServicePlan::TAP_HOST;

/// Slots in the host's socket table: exactly what [`PLAN`] needs. Every poll, and smoltcp
/// for every segment it sends, steps over each slot, empty or not (48 slots cost a bulk
/// sender about 5% more CPU than these 29).
const SOCKETS: usize = PLAN.sockets();

/// The host's HTTP server: files from a directory (or digests only), with room for the
/// stats of every socket in its generated pages.
type HostHttp = HttpServer<SharedStore, { PLAN.http }, 16384>;
/// The host's services, with a 512-byte UDP read buffer; HTTP and the transfer server
/// share one store.
type HostServices = ServiceSet<'static, TransferServer<SharedStore>, HostHttp, 512>;

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
    /// The TCP lifecycle's timers (half-open, FIN-WAIT-2, orphan retries).
    pub timers: TcpTimers,
    /// The idle timeout of every service but HTTP.
    pub idle_timeout: Duration,
    /// The token writes need: `Authorization: Bearer` for HTTP's PUT, POST and DELETE, and
    /// in every transfer put; `None`: writes are open.
    pub token: Option<String>,
    /// The largest upload the store takes (besides the free space).
    pub max_upload: Option<u64>,
    /// How long a whole HTTP request head may take.
    pub head_timeout: Duration,
    /// The rate a body must keep, in every service that moves one.
    pub min_rate: MinRate,
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
    /// The trace (`--trace`) could not be written whole.
    Trace(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Tap(e) => write!(f, "{e}"),
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Service(e) => write!(f, "{e}"),
            ServeError::Trace(e) => write!(f, "trace: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

fn leak(n: usize) -> &'static mut [u8] {
    vec![0u8; n].leak()
}

/// A socket for `member` of the plan: every stream service on the `--rx-buf`/`--tx-buf`
/// rings, each datagram service on rings sized for its traffic.
fn service_socket(
    stack: &mut Stack<'static>,
    member: Member,
    (rx, tx): (usize, usize),
) -> Result<SocketHandle, OpenError> {
    let udp = |stack: &mut Stack<'static>, slots: usize, bytes: usize| {
        let ring = || UdpBuffer {
            slots: vec![PacketMetadata::EMPTY; slots].leak(),
            payload: leak(bytes),
        };
        stack.udp_socket(ring(), ring())
    };
    match member {
        Member::Report => udp(stack, 16, 16 * 1024),
        Member::Stats => udp(stack, 4, 4096),
        Member::Beacon => udp(stack, 4, 2048),
        _ => stack.tcp_socket(leak(rx), leak(tx)),
    }
}

/// Runs the host until the time limit or a termination signal; prints the stats table
/// at the end.
pub fn serve(config: ServeConfig) -> Result<(), ServeError> {
    if config.rx_buf == 0 || config.tx_buf == 0 {
        return Err(ServeError::Config(
            "--rx-buf and --tx-buf must be at least 1 byte".into(),
        ));
    }
    // One store, shared by the transfer and HTTP services, so that each sees the other's
    // commits at once; without --files, uploads keep only their size and digest.
    let store = SharedStore::new(match &config.files {
        Some(dir) => HostStore::Dir(
            DirStore::new(dir)
                .map_err(|e| ServeError::Config(format!("--files: {e}")))?
                .with_max_upload(config.max_upload),
        ),
        None => HostStore::Digests(Box::new(DigestSink::new())),
    });
    let (transfer_store, http_store) = (store.clone(), store);
    let token = config.token.clone();
    if let Some(Err(e)) = token
        .as_ref()
        .map(|t| ringnet::transfer::validate_token(t.as_bytes()))
    {
        return Err(ServeError::Config(format!(
            "--token: {e} (1 to {} bytes of visible ASCII)",
            ringnet::transfer::wire::MAX_TOKEN
        )));
    }
    let transfer_token = token.clone();
    let head_timeout = config.head_timeout;
    let min_rate = config.min_rate;
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
    let (
        mut stack,
        TapWaiter {
            mut device,
            clock,
            mut trace,
        },
    ) = bring_up::<SOCKETS>(&config.tap, MAC).map_err(ServeError::Tap)?;
    let rings = (config.rx_buf, config.tx_buf);
    let servers = Servers {
        transfer: |stack: &mut Stack<'static>, backlog: &[SocketHandle]| {
            let mut transfer =
                TransferServer::new(stack, Member::Transfer.port(), backlog, transfer_store)?;
            // Checked above.
            let _ = transfer.set_token(transfer_token.as_deref());
            Ok(transfer)
        },
        http: |stack: &mut Stack<'static>, backlog: &[SocketHandle]| {
            let mut http = HostHttp::new(stack, Member::Http.port(), backlog, http_store)?;
            http.set_head_timeout(head_timeout);
            http.set_min_rate(min_rate);
            // Checked above.
            let _ = http.set_token(token.as_deref());
            Ok(http)
        },
    };
    let mut services = Box::new(
        HostServices::start(
            &mut stack,
            PLAN,
            &mut |stack, member| service_socket(stack, member, rings),
            source,
            servers,
        )
        .map_err(|e| ServeError::Service(e.to_string()))?,
    );
    stack.set_tcp_timers(config.timers);
    services.set_idle_timeout(config.idle_timeout);
    services.set_min_rate(config.min_rate);
    if let Some(transfer) = &mut services.transfer {
        transfer.set_idle_timeout(config.idle_timeout);
        transfer.set_min_rate(config.min_rate);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Fails only if a handler is already set, and this is the only one.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let end = config.duration.map(|d| clock.now() + d);
    log::info!(
        "dev: serving on {} as {}: {}; file out sends {} bytes",
        config.tap.tap,
        config.tap.ip,
        services.plan(),
        source.len()
    );
    while !stop.load(Ordering::SeqCst) && end.is_none_or(|end| clock.now() < end) {
        let now = clock.now();
        // The services between the stack's ingress and its egress, as the firmware's turn:
        // the ACK that follows the data a service has just read leaves in this turn,
        // advertising the room the read made.
        let changed = run::act_between(now, &mut stack, &mut device, &mut *services);
        let turn = run::Turn {
            changed,
            next: run::next_due(&mut stack, &*services),
        };
        // Sleep only when nothing is due: what the services just queued makes the stack
        // due at once, and the next turn sends it without a system call in between.
        let wait = turn.wait(clock.now(), MAX_WAIT);
        if wait > Duration::ZERO {
            device.wait(Some(wait));
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
    trace.finish().map_err(ServeError::Trace)?;
    Ok(())
}
