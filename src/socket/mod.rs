//! BSD-style socket calls on the [`Stack`](crate::Stack).
//!
//! The calls themselves are methods of [`Stack`](crate::Stack), grouped by protocol:
//! [`tcp`] for stream sockets and [`udp`] for datagram sockets. This module holds what both
//! share: the handle (the file descriptor), the socket type and family, and the options of
//! `setsockopt`/`getsockopt`.

/// Declares an error enum with a `Display` text per variant, smoltcp-style.
macro_rules! error_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(match self { $( $name::$variant => $text, )* })
            }
        }

        impl core::error::Error for $name {}
    };
}

pub mod tcp;
pub mod udp;

use core::fmt;

use crate::Duration;

/// A socket's number in its stack's table: what `fileno()` returns for a kernel socket.
///
/// As with file descriptors, a number is reused once its socket is gone, and a call on a
/// number that names no socket fails with a `BadHandle` error (`EBADF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle(pub(crate) u16);

impl SocketHandle {
    /// The table index, as an integer (Python's `s.fileno()`).
    pub fn fileno(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The kind of socket, as `s.type` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// A byte stream (`SOCK_STREAM`): a connected TCP socket, or one not yet connected.
    Stream,
    /// A listening stream socket: `listen()` was called on it and `accept()` takes
    /// connections from it.
    Listener,
    /// A datagram socket (`SOCK_DGRAM`): UDP.
    Datagram,
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketType::Stream => "tcp",
            SocketType::Listener => "listen",
            SocketType::Datagram => "udp",
        })
    }
}

/// The address family, as `s.family` reports it. ringnet speaks IPv4 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// `AF_INET`.
    Inet,
}

/// The name of an option, for [`Stack::get_option`](crate::Stack::get_option): the
/// `(level, optname)` pair of `getsockopt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionName {
    /// `SO_RCVBUF`: capacity of the receive ring in bytes.
    RecvBufferSize,
    /// `SO_SNDBUF`: capacity of the transmit ring in bytes.
    SendBufferSize,
    /// `TCP_NODELAY`: Nagle's algorithm off.
    NoDelay,
    /// `SO_KEEPALIVE` with `TCP_KEEPINTVL`.
    KeepAlive,
    /// `IP_TTL`.
    Ttl,
    /// `SO_RCVTIMEO`.
    RecvTimeout,
    /// `SO_SNDTIMEO`.
    SendTimeout,
    /// `SO_BROADCAST`.
    Broadcast,
    /// The delayed-ACK timer (Linux tunes it with `TCP_QUICKACK`).
    AckDelay,
}

/// An option with its value: the `(level, optname, value)` triple of `setsockopt`, and what
/// `getsockopt` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOption {
    /// `SO_RCVBUF`. The ring is fixed when the socket is created, so this can be read but
    /// not set ([`OptionError::ReadOnly`]); unlike Linux, the figure is not doubled.
    RecvBufferSize(usize),
    /// `SO_SNDBUF`. Read-only, like [`SocketOption::RecvBufferSize`].
    SendBufferSize(usize),
    /// `TCP_NODELAY`: `true` sends small segments at once instead of coalescing them
    /// (Nagle's algorithm). Stream sockets only. Default `false`.
    NoDelay(bool),
    /// `SO_KEEPALIVE`: `Some(interval)` probes an idle connection every `interval`
    /// (1 s to 32767 s, Linux's `TCP_KEEPINTVL` range); `None` turns it off (the default).
    /// Stream sockets only.
    KeepAlive(Option<Duration>),
    /// `IP_TTL`: hop limit of outgoing packets, 1 to 255 (default 64).
    Ttl(u8),
    /// `SO_RCVTIMEO`: how long a blocking receive (or accept, or connect) may wait before
    /// it fails with `TimedOut`. `None` waits for ever (the default). A zero duration is
    /// refused: use `None`.
    RecvTimeout(Option<Duration>),
    /// `SO_SNDTIMEO`: how long a blocking send may wait on a full transmit ring.
    SendTimeout(Option<Duration>),
    /// `SO_BROADCAST`: whether `send_to` may target a broadcast address. Datagram sockets
    /// only. Default `false`, and sending to a broadcast address fails with
    /// `BroadcastDenied` (Linux: `EACCES`).
    Broadcast(bool),
    /// The delayed-ACK timer: `None` acknowledges every segment at once (like
    /// `TCP_QUICKACK`), `Some(d)` waits up to `d` (at most 500 ms, RFC 1122) to piggyback
    /// the ACK. Stream sockets only. Default 10 ms.
    AckDelay(Option<Duration>),
}

impl SocketOption {
    /// Which option this is.
    pub fn name(&self) -> OptionName {
        match self {
            SocketOption::RecvBufferSize(_) => OptionName::RecvBufferSize,
            SocketOption::SendBufferSize(_) => OptionName::SendBufferSize,
            SocketOption::NoDelay(_) => OptionName::NoDelay,
            SocketOption::KeepAlive(_) => OptionName::KeepAlive,
            SocketOption::Ttl(_) => OptionName::Ttl,
            SocketOption::RecvTimeout(_) => OptionName::RecvTimeout,
            SocketOption::SendTimeout(_) => OptionName::SendTimeout,
            SocketOption::Broadcast(_) => OptionName::Broadcast,
            SocketOption::AckDelay(_) => OptionName::AckDelay,
        }
    }

    /// Checks the value's range, as the kernel does before it stores an option.
    pub(crate) fn validate(&self) -> Result<(), OptionError> {
        const KEEPALIVE_MIN: Duration = Duration::from_secs(1);
        const KEEPALIVE_MAX: Duration = Duration::from_secs(32767);
        const ACK_DELAY_MAX: Duration = Duration::from_millis(500);
        let in_range = match *self {
            SocketOption::Ttl(ttl) => ttl != 0,
            SocketOption::KeepAlive(Some(interval)) => {
                (KEEPALIVE_MIN..=KEEPALIVE_MAX).contains(&interval)
            }
            SocketOption::RecvTimeout(Some(t)) | SocketOption::SendTimeout(Some(t)) => {
                t != Duration::ZERO
            }
            SocketOption::AckDelay(Some(d)) => d <= ACK_DELAY_MAX,
            _ => true,
        };
        if in_range {
            Ok(())
        } else {
            Err(OptionError::OutOfRange)
        }
    }
}

/// Error from [`Stack::set_option`](crate::Stack::set_option) and
/// [`Stack::get_option`](crate::Stack::get_option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionError {
    /// The handle names no socket (`EBADF`).
    BadHandle,
    /// The value is outside the option's range (`EINVAL`).
    OutOfRange,
    /// The option does not apply to this type of socket (`ENOPROTOOPT`), e.g. `TCP_NODELAY`
    /// on a datagram socket or `SO_BROADCAST` on a stream.
    WrongSocketType,
    /// The option is fixed when the socket is created (the ring capacities).
    ReadOnly,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptionError::BadHandle => "no socket with that handle",
            OptionError::OutOfRange => "option value out of range",
            OptionError::WrongSocketType => "option does not apply to this socket type",
            OptionError::ReadOnly => "option is fixed at socket creation",
        })
    }
}

impl core::error::Error for OptionError {}

/// Options kept by ringnet itself rather than by the smoltcp socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LocalOptions {
    pub recv_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub broadcast: bool,
}
