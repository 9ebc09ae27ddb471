//! The services every ringnet host runs, on the same ports everywhere (the tap host, the
//! firmware): poll-driven state machines over the socket calls, with no memory of their
//! own beyond a few fixed tables. The caller creates the sockets (and so supplies every
//! ring) and hands their handles over.
//!
//! | port | service |
//! |---|---|
//! | TCP [`ECHO_PORT`] | [`Echo`]: sends back what it receives |
//! | TCP [`DISCARD_PORT`] | [`Discard`]: reads and drops everything (tap host) |
//! | TCP [`FILE_OUT_PORT`] | [`FileOut`]: on connect, sends a file (or a pattern of a requested size) and closes |
//! | TCP [`FILE_IN_PORT`] | [`FileIn`]: receives until the peer shuts down writing, replies `<bytes> <sha256-hex>\n`, closes |
//! | UDP [`REPORT_PORT`] | [`UdpReport`]: logs every datagram and answers with a one-line report |
//! | UDP [`STATS_PORT`] | [`StatsQuery`]: answers any datagram with the stats table |
//! | UDP [`BEACON_PORT`] | [`Beacon`]: broadcasts a line naming the host and its services about once a second |

mod datagram;
mod echo;
mod files;

pub use datagram::{Beacon, StatsQuery, UdpReport};
pub use echo::{Discard, Echo};
pub use files::{pattern_byte, FileIn, FileOut, FileSource, Pattern, ReadError, StaticFile};

use core::fmt;

use crate::socket::tcp::ListenError;
use crate::socket::udp::BindError;
use crate::socket::OptionError;

/// TCP echo.
pub const ECHO_PORT: u16 = 7;
/// TCP discard.
pub const DISCARD_PORT: u16 = 9;
/// TCP file out.
pub const FILE_OUT_PORT: u16 = 7001;
/// TCP file in.
pub const FILE_IN_PORT: u16 = 7002;
/// TCP framed transfer protocol.
pub const TRANSFER_PORT: u16 = 7003;
/// UDP receive-and-report.
pub const REPORT_PORT: u16 = 9000;
/// UDP stats query.
pub const STATS_PORT: u16 = 9001;
/// UDP broadcast beacon.
pub const BEACON_PORT: u16 = 9999;

/// Error setting up a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceError {
    /// Listening on the service's TCP port failed.
    Listen(ListenError),
    /// Binding the service's UDP port failed.
    Bind(BindError),
    /// Setting an option the service needs failed.
    Option(OptionError),
    /// More sockets were given than the service can track.
    TooManySockets,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Listen(e) => write!(f, "listen: {e}"),
            ServiceError::Bind(e) => write!(f, "bind: {e}"),
            ServiceError::Option(e) => write!(f, "setsockopt: {e}"),
            ServiceError::TooManySockets => f.write_str("more sockets than the service tracks"),
        }
    }
}

impl core::error::Error for ServiceError {}

impl From<ListenError> for ServiceError {
    fn from(e: ListenError) -> Self {
        ServiceError::Listen(e)
    }
}

impl From<BindError> for ServiceError {
    fn from(e: BindError) -> Self {
        ServiceError::Bind(e)
    }
}

impl From<OptionError> for ServiceError {
    fn from(e: OptionError) -> Self {
        ServiceError::Option(e)
    }
}

/// Connections one TCP service tracks at once (its backlog can be no larger).
pub const MAX_CONNECTIONS: usize = 4;

/// Listens on `port` with `backlog` for a service that tracks at most `max` connections.
pub(crate) fn listen_for_service(
    stack: &mut crate::Stack<'_>,
    port: u16,
    backlog: &[crate::SocketHandle],
    max: usize,
) -> Result<crate::SocketHandle, ServiceError> {
    if backlog.len() > max {
        return Err(ServiceError::TooManySockets);
    }
    Ok(stack.listen(port, backlog)?)
}

/// Room left in a socket's tx ring.
pub(crate) fn tx_room(stack: &crate::Stack<'_>, handle: crate::SocketHandle) -> usize {
    stack
        .ring_usage(handle)
        .map_or(0, |(_, (used, capacity))| capacity - used)
}

/// The sockets a [`ServiceSet`] runs on; the caller creates them, and so supplies every ring.
pub struct ServiceSockets<'h> {
    /// Fresh stream sockets for echo's backlog.
    pub echo: &'h [crate::SocketHandle],
    /// Fresh stream sockets for discard's backlog.
    pub discard: &'h [crate::SocketHandle],
    /// Fresh stream sockets for file out's backlog.
    pub file_out: &'h [crate::SocketHandle],
    /// Fresh stream sockets for file in's backlog.
    pub file_in: &'h [crate::SocketHandle],
    /// Fresh stream sockets for the transfer protocol's backlog.
    pub transfer: &'h [crate::SocketHandle],
    /// Fresh stream sockets for HTTP's backlog.
    pub http: &'h [crate::SocketHandle],
    /// An unbound datagram socket for the report service.
    pub report: crate::SocketHandle,
    /// An unbound datagram socket for the stats query.
    pub stats: crate::SocketHandle,
    /// A datagram socket for the beacon.
    pub beacon: crate::SocketHandle,
}

/// Every service of a ringnet host on its port, started and polled together: what the
/// tap host and the firmware both run. `REPORT` is the report service's read buffer.
pub struct ServiceSet<
    'f,
    T: crate::transfer::Store,
    H: crate::transfer::Store,
    const HTTP_CONNS: usize,
    const SNAPSHOT: usize,
    const REPORT: usize,
> {
    /// TCP echo.
    pub echo: Echo,
    /// TCP discard.
    pub discard: Discard,
    /// TCP file out.
    pub file_out: FileOut<'f>,
    /// TCP file in.
    pub file_in: FileIn,
    /// The transfer protocol.
    pub transfer: crate::transfer::TransferServer<T>,
    /// HTTP.
    pub http: crate::http::HttpServer<H, HTTP_CONNS, SNAPSHOT>,
    /// UDP report.
    pub report: UdpReport<REPORT>,
    /// UDP stats query.
    pub stats: StatsQuery,
    /// UDP beacon.
    pub beacon: Beacon,
}

/// HTTP's port.
pub const HTTP_PORT: u16 = 80;

impl<'f, T, H, const HTTP_CONNS: usize, const SNAPSHOT: usize, const REPORT: usize>
    ServiceSet<'f, T, H, HTTP_CONNS, SNAPSHOT, REPORT>
where
    T: crate::transfer::Store,
    H: crate::transfer::Store,
{
    /// Starts every service on its port: file out sends `file`, the transfer protocol
    /// keeps its files in `transfer_store`, HTTP serves `http_store`.
    pub fn start(
        stack: &mut crate::Stack<'_>,
        sockets: ServiceSockets<'_>,
        file: &'f dyn FileSource,
        transfer_store: T,
        http_store: H,
    ) -> Result<Self, ServiceError> {
        Ok(ServiceSet {
            echo: Echo::new(stack, ECHO_PORT, sockets.echo)?,
            discard: Discard::new(stack, DISCARD_PORT, sockets.discard)?,
            file_out: FileOut::new(stack, FILE_OUT_PORT, sockets.file_out, file)?,
            file_in: FileIn::new(stack, FILE_IN_PORT, sockets.file_in)?,
            transfer: crate::transfer::TransferServer::new(
                stack,
                TRANSFER_PORT,
                sockets.transfer,
                transfer_store,
            )?,
            http: crate::http::HttpServer::new(stack, HTTP_PORT, sockets.http, http_store)?,
            report: UdpReport::new(stack, sockets.report, REPORT_PORT)?,
            stats: StatsQuery::new(stack, sockets.stats, STATS_PORT)?,
            beacon: Beacon::new(stack, sockets.beacon, BEACON_PORT, BEACON_INTERVAL)?,
        })
    }

    /// Lets every service act on what the last poll of the stack brought.
    pub fn poll(&mut self, stack: &mut crate::Stack<'_>) {
        self.echo.poll(stack);
        self.discard.poll(stack);
        self.file_out.poll(stack);
        self.file_in.poll(stack);
        self.transfer.poll(stack);
        self.http.poll(stack);
        self.report.poll(stack);
        self.stats.poll(stack);
        self.beacon.poll(stack);
    }

    /// When a service next needs a poll though nothing arrives (the beacon's timer).
    pub fn poll_at(&self) -> crate::Instant {
        self.beacon.poll_at()
    }
}

/// How often the beacon goes out.
pub const BEACON_INTERVAL: crate::Duration = crate::Duration::from_secs(1);
