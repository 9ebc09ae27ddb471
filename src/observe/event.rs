//! The event stream: every change ringnet observes, as a typed, fixed-size [`Event`].
//!
//! The counters of the stats table, the log lines and a host's trace are three views of
//! these events: the stack builds one event per change and hands it to
//! `observe::record`, which counts it, logs it (within the [`LogLimit`](super::LogLimit))
//! and passes it to the [`EventSink`] the host chose, if any. No heap: an event is a few
//! machine words, and the sink sees it by reference.

use smoltcp::socket::tcp::State as TcpState;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use super::{Fill, Ring};
use crate::handle::{SocketHandle, SocketType};
use crate::phy::Discard;

/// Where an event happened: on one socket, or on the interface before any socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The interface itself (frames discarded before any socket saw them).
    Interface,
    /// One socket of the table.
    Socket {
        /// Its number.
        handle: SocketHandle,
        /// Its type, as its log lines name it (`tcp`, `udp`, `listen`).
        kind: SocketType,
    },
}

/// A blocking call, as a blocked-call event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `accept()`: waits for a connection in the backlog.
    Accept,
    /// `connect()`: waits for the handshake.
    Connect,
    /// `recv()`: waits for data in the rx ring.
    Recv,
    /// `recvfrom()`: waits for a datagram in the rx ring.
    RecvFrom,
    /// `send()`: waits for room in the tx ring.
    Send,
    /// `sendto()`: waits for room for the datagram in the tx ring.
    SendTo,
    /// A flush (Rust's `Write::flush`): waits until the peer acknowledged everything.
    Flush,
}

impl Call {
    texts! {
        /// What the call waits for, as its log line says.
        pub fn waits_for / log_waits_for(self) {
            match self {
                Call::Accept => "waiting for a connection",
                Call::Connect => "handshake in progress",
                Call::Recv => "waiting for data",
                Call::RecvFrom => "waiting for a datagram",
                Call::Send => "waiting for the peer to acknowledge",
                Call::SendTo => "waiting for queued datagrams to leave",
                Call::Flush => "waiting for the peer to acknowledge everything",
            }
        }
    }

    texts! {
        /// The call's name, as the log lines and the trace write it.
        pub fn name / log_name(self) {
            match self {
                Call::Accept => "accept",
                Call::Connect => "connect",
                Call::Recv => "recv",
                Call::RecvFrom => "recv_from",
                Call::Send => "send",
                Call::SendTo => "send_to",
                Call::Flush => "flush",
            }
        }
    }
}

/// How a blocked call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblocked {
    /// The call completed; the text says what ended the wait ("data arrived").
    Completed(&'static str),
    /// The socket's timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`) expired: `EAGAIN`.
    TimedOut,
    /// Nothing could ever unblock it (a simulation knows this); it fails as timed out.
    Stalled,
}

impl Unblocked {
    /// The outcome's text, as the trace writes it.
    pub fn describe(self) -> &'static str {
        match self {
            Unblocked::Completed(why) => why,
            Unblocked::TimedOut => "timed out",
            Unblocked::Stalled => "stalled",
        }
    }
}

/// Why a datagram or frame was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The datagram reached its socket but the rx ring had no room (Linux
    /// `RcvbufErrors`): the socket's `rx_drops`.
    RxRingFull,
    /// The interface discarded it before any socket ([`Discard`]).
    Discarded(Discard),
}

impl DropReason {
    /// The reason's name, as the trace writes it.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::RxRingFull => "rx_ring_full",
            DropReason::Discarded(d) => d.name(),
        }
    }
}

/// A timer of the TCP lifecycle or of a service that fired, a backlog socket that gave
/// way, or a service's rate limit that withheld an answer; counted on the listener's row
/// for a backlog socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A half-open connection (SYN-RECEIVED) went back to listening after `waited`.
    HalfOpenExpired {
        /// The backlog socket that went back to listening.
        socket: SocketHandle,
        /// How long it was half-open.
        waited: Duration,
        /// Its port.
        port: u16,
    },
    /// An orphan made no progress within its timers ([`TcpTimers`](crate::stack::TcpTimers)) and
    /// was reset.
    OrphanExpired {
        /// The orphan.
        socket: SocketHandle,
        /// Its state then.
        state: TcpState,
        /// How long it made no progress.
        idle: Duration,
        /// How many times it retransmitted meanwhile.
        retransmits: u8,
    },
    /// A backlog socket gave its place to a new SYN.
    GaveWay {
        /// The socket that gave way.
        socket: SocketHandle,
        /// It was half-open (SYN-RECEIVED), not an orphan.
        half_open: bool,
        /// Its state then.
        state: TcpState,
        /// Its peer, if it had one.
        peer: Option<IpEndpoint>,
        /// The listener's port.
        port: u16,
    },
    /// A service reset a connection that moved no byte for its idle timeout.
    IdleTimeout {
        /// How long it was silent.
        silent: Duration,
    },
    /// A service cut off a connection whose request (an HTTP head, a transfer frame) was
    /// not whole within its deadline, however many bytes trickled in meanwhile (a
    /// slowloris client), or whose body, either way, fell below its minimum rate.
    SlowRequest {
        /// How long the request (or the body) had been coming.
        took: Duration,
    },
    /// A service left a request unanswered because its rate limit had no credit left:
    /// the stats query's answers, which a flood of queries with a victim's address as
    /// their source would otherwise reflect to the victim
    /// ([`StatsQuery`](crate::services::StatsQuery)).
    RateLimited,
}

impl Timer {
    /// The timer's name, as the trace writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Timer::HalfOpenExpired { .. } => "half-open expired",
            Timer::OrphanExpired { .. } => "orphan expired",
            Timer::GaveWay {
                half_open: true, ..
            } => "half-open gave way",
            Timer::GaveWay { .. } => "orphan gave way",
            Timer::IdleTimeout { .. } => "idle timeout",
            Timer::SlowRequest { .. } => "slow request",
            Timer::RateLimited => "rate limited",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A ring's occupancy changed (after a poll or a call): the trace's ring counters.
    Ring {
        /// Which ring.
        ring: Ring,
        /// Bytes in it now.
        used: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// A ring's [`Fill`] level changed: the transitions the log names.
    Level {
        /// Which ring.
        ring: Ring,
        /// The level before.
        from: Fill,
        /// The level now.
        to: Fill,
        /// Bytes in it now.
        used: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// The window a TCP segment advertised differs from the one before.
    Window {
        /// The window field's value, in bytes before scaling.
        advertised: u16,
    },
    /// The advertised window closed to zero (`closed`) or opened again (TCP).
    ZeroWindow {
        /// Whether it is zero now.
        closed: bool,
        /// The window advertised.
        advertised: u16,
        /// The rx ring's occupancy then.
        rx_used: usize,
        /// The rx ring's capacity.
        rx_capacity: usize,
    },
    /// A blocking call found nothing to do and started to wait.
    BlockStart {
        /// The call.
        call: Call,
        /// The ring it waits on.
        ring: Ring,
        /// That ring's occupancy then.
        used: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// A blocked call stopped waiting.
    BlockEnd {
        /// The call.
        call: Call,
        /// The ring it waited on.
        ring: Ring,
        /// When the wait began.
        started: Instant,
        /// How long it waited.
        waited: Duration,
        /// How many waits (polls) it took.
        polls: u64,
        /// How it ended.
        outcome: Unblocked,
        /// That ring's occupancy at the end.
        used: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// A datagram or frame was lost.
    Drop {
        /// Why.
        reason: DropReason,
        /// Its UDP payload's size (0 where not known).
        bytes: usize,
        /// Its sender, where known.
        from: Option<IpEndpoint>,
        /// The rx ring's occupancy then (a ring-full drop; 0 otherwise).
        rx_used: usize,
        /// The rx ring's capacity (a ring-full drop; 0 otherwise).
        rx_capacity: usize,
    },
    /// `recvfrom()` cut a datagram to the caller's buffer (`MSG_TRUNC`).
    Truncated {
        /// Bytes returned.
        kept: usize,
        /// Bytes lost.
        lost: usize,
        /// The datagram's sender.
        from: IpEndpoint,
    },
    /// A TCP socket's state changed.
    State {
        /// The state before.
        from: TcpState,
        /// The state now.
        to: TcpState,
    },
    /// A timer fired, or a backlog socket gave way.
    Timer(Timer),
}

/// One observed change: when, where, what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The stack's time.
    pub at: Instant,
    /// The socket (or the interface) it happened on.
    pub source: Source,
    /// What happened.
    pub kind: EventKind,
}

/// Where a host wants the events: a trace file, a live view, a test's list.
///
/// Called synchronously for every event, from inside the stack's poll and calls; an
/// implementation should be quick (buffer, do not block). It takes `&self` so that the
/// host can keep a reference to finish its output while the stack holds another;
/// interior mutability is the sink's own business.
pub trait EventSink {
    /// One event of the stack named `stack`.
    fn record(&self, stack: &'static str, event: &Event);
}
