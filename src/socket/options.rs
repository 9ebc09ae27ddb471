//! `setsockopt` and `getsockopt`: [`SocketOption`], [`OptionName`] and the calls
//! [`Stack::set_option`] and [`Stack::get_option`].
//!
//! Options smoltcp keeps (TTL, Nagle, keep-alive, the delayed ACK) are passed to the
//! smoltcp socket; the others (timeouts, `SO_BROADCAST`) stay in the socket's slot.

use smoltcp::socket::{tcp, udp};

use crate::handle::SocketHandle;
use crate::stack::{visible_mut, SlotKind, Stack};
use smoltcp::time::Duration;

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
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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

error_enum! {
    /// Error from [`Stack::set_option`] and [`Stack::get_option`].
    pub enum OptionError {
        /// The handle names no socket (`EBADF`).
        BadHandle => "no socket with that handle",
        /// The value is outside the option's range (`EINVAL`).
        OutOfRange => "option value out of range",
        /// The option does not apply to this type of socket (`ENOPROTOOPT`), e.g.
        /// `TCP_NODELAY` on a datagram socket or `SO_BROADCAST` on a stream.
        WrongSocketType => "option does not apply to this socket type",
        /// The option is fixed when the socket is created (the ring capacities).
        ReadOnly => "option is fixed at socket creation",
    }
}

impl Stack<'_> {
    /// `setsockopt`: sets one option after checking its range and the socket type.
    pub fn set_option(
        &mut self,
        handle: SocketHandle,
        option: SocketOption,
    ) -> Result<(), OptionError> {
        let name = self.name;
        let slot = visible_mut(self.slots, handle).ok_or(OptionError::BadHandle)?;
        option.validate()?;
        let kind = slot.socket_type();
        match (option, &slot.kind) {
            (SocketOption::RecvBufferSize(_) | SocketOption::SendBufferSize(_), _) => {
                return Err(OptionError::ReadOnly)
            }
            (SocketOption::RecvTimeout(t), _) => slot.options.recv_timeout = t,
            (SocketOption::SendTimeout(t), _) => slot.options.send_timeout = t,
            (SocketOption::Broadcast(on), SlotKind::Udp(_)) => slot.options.broadcast = on,
            (SocketOption::Ttl(ttl), SlotKind::Udp(u)) => self
                .sockets
                .get_mut::<udp::Socket>(u.inner)
                .set_hop_limit(Some(ttl)),
            (SocketOption::Ttl(ttl), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner())
                .set_hop_limit(Some(ttl)),
            (SocketOption::NoDelay(on), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner())
                .set_nagle_enabled(!on),
            (SocketOption::KeepAlive(interval), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner())
                .set_keep_alive(interval),
            (SocketOption::AckDelay(delay), SlotKind::Tcp(t)) => self
                .sockets
                .get_mut::<tcp::Socket>(t.inner())
                .set_ack_delay(delay),
            _ => return Err(OptionError::WrongSocketType),
        }
        let who = crate::observe::Who {
            stack: name,
            kind,
            handle,
        };
        net_info!("{} setsockopt {:?}", who, option);
        Ok(())
    }

    /// `getsockopt`: the option's current value.
    pub fn get_option(
        &self,
        handle: SocketHandle,
        name: OptionName,
    ) -> Result<SocketOption, OptionError> {
        let slot = self.slot(handle).ok_or(OptionError::BadHandle)?;
        let ((_, rx_capacity), (_, tx_capacity)) = self.usage_of(handle.fileno(), &slot.kind);
        let tcp = match &slot.kind {
            SlotKind::Tcp(t) => Some(self.sockets.get::<tcp::Socket>(t.inner())),
            _ => None,
        };
        let ttl = match &slot.kind {
            SlotKind::Tcp(t) => self.sockets.get::<tcp::Socket>(t.inner()).hop_limit(),
            SlotKind::Udp(u) => self.sockets.get::<udp::Socket>(u.inner).hop_limit(),
            SlotKind::Listener(_) => None,
        };
        const DEFAULT_TTL: u8 = 64;
        Ok(match (name, tcp) {
            (OptionName::RecvBufferSize, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::RecvBufferSize(rx_capacity)
            }
            (OptionName::SendBufferSize, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::SendBufferSize(tx_capacity)
            }
            (OptionName::RecvTimeout, _) => SocketOption::RecvTimeout(slot.options.recv_timeout),
            (OptionName::SendTimeout, _) => SocketOption::SendTimeout(slot.options.send_timeout),
            (OptionName::Broadcast, _) if matches!(slot.kind, SlotKind::Udp(_)) => {
                SocketOption::Broadcast(slot.options.broadcast)
            }
            (OptionName::Ttl, _) if !matches!(slot.kind, SlotKind::Listener(_)) => {
                SocketOption::Ttl(ttl.unwrap_or(DEFAULT_TTL))
            }
            (OptionName::NoDelay, Some(s)) => SocketOption::NoDelay(!s.nagle_enabled()),
            (OptionName::KeepAlive, Some(s)) => SocketOption::KeepAlive(s.keep_alive()),
            (OptionName::AckDelay, Some(s)) => SocketOption::AckDelay(s.ack_delay()),
            _ => return Err(OptionError::WrongSocketType),
        })
    }
}
