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

pub(crate) mod connection;
mod datagram;
mod echo;
mod files;
mod idle;
mod plan;

pub use datagram::{Beacon, StatsQuery, UdpReport, STATS_BURST, STATS_PER_SECOND};
pub use echo::{Discard, Echo};
pub use files::{pattern_byte, FileIn, FileOut, FileSource, Pattern, ReadError, StaticFile};
pub use idle::{MinRate, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE};
pub use plan::{Announcement, Member, Protocol, ServicePlan};

use core::fmt;

use smoltcp::time::Duration;

use crate::handle::SocketHandle;
use crate::stack::Stack;

use crate::socket::tcp::{ListenError, SendError};
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
/// HTTP.
pub const HTTP_PORT: u16 = 80;
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

#[cfg(feature = "defmt")]
impl defmt::Format for ServiceError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            ServiceError::Listen(e) => defmt::write!(f, "listen: {}", e),
            ServiceError::Bind(e) => defmt::write!(f, "bind: {}", e),
            ServiceError::Option(e) => defmt::write!(f, "setsockopt: {}", e),
            ServiceError::TooManySockets => {
                defmt::write!(f, "more sockets than the service tracks")
            }
        }
    }
}

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
    stack: &mut Stack<'_>,
    port: u16,
    backlog: &[SocketHandle],
    max: usize,
) -> Result<SocketHandle, ServiceError> {
    if backlog.len() > max {
        return Err(ServiceError::TooManySockets);
    }
    Ok(stack.listen(port, backlog)?)
}

/// Room left in a socket's tx ring.
pub(crate) fn tx_room(stack: &Stack<'_>, handle: SocketHandle) -> usize {
    stack
        .ring_usage(handle)
        .map_or(0, |(_, (used, capacity))| capacity - used)
}

/// The tx ring's free room, or the error a `send()` meets there. A ring the peer's reset
/// left full never drains, so no room would wait for ever; Linux wakes a writer blocked
/// on it with `EPIPE`, and so does this, by asking the socket (an empty send) when there
/// is no room.
pub(crate) fn tx_room_or_error(
    stack: &mut Stack<'_>,
    handle: SocketHandle,
) -> Result<usize, SendError> {
    match tx_room(stack, handle) {
        0 => match stack.send(handle, &[]) {
            Ok(_) | Err(SendError::WouldBlock) => Ok(0),
            Err(e) => Err(e),
        },
        room => Ok(room),
    }
}

/// How often the beacon goes out.
pub const BEACON_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the connections for which `keep` says so, in their order, visiting each once as
/// `Vec::retain_mut` does. One loop that moves the rest down by one where a connection
/// leaves: heapless's `retain_mut` builds two loops and a drop guard for every closure,
/// and each TCP service has its own (about 100 B of flash each).
pub(crate) fn retain_connections<T, const N: usize>(
    connections: &mut heapless::Vec<T, N>,
    mut keep: impl FnMut(&mut T) -> bool,
) {
    let mut i = 0;
    while let Some(connection) = connections.get_mut(i) {
        if keep(connection) {
            i += 1;
        } else {
            connections.remove(i);
        }
    }
}
