//! The names of sockets: the bottom of ringnet, imported by every layer above.
//!
//! A [`SocketHandle`] is what a file descriptor is to a kernel socket; [`SocketType`] and
//! [`AddressFamily`] are what `s.type` and `s.family` report.

use core::fmt;

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

#[cfg(feature = "defmt")]
impl defmt::Format for SocketHandle {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "#{=u16}", self.0)
    }

    /// defmt's own body for this (the handle's frame, then the sequence's end), written
    /// here only to be inlined into it: `defmt::export::fmt` for a handle is then too large
    /// to be inlined into each of the lines that name a socket (some forty), and is built
    /// once. The bytes on the wire, and so the decoded lines, are the same.
    #[inline(always)]
    fn _format_data(&self) {
        self.format(defmt::export::make_formatter());
        defmt::export::u16(&0);
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

impl SocketType {
    texts! {
        /// The prefix of a socket's name in log lines and the stats table: `tcp`, `listen`,
        /// `udp` (the `Display` text).
        pub const fn as_str / log_text(self) {
            match self {
                SocketType::Stream => "tcp",
                SocketType::Listener => "listen",
                SocketType::Datagram => "udp",
            }
        }
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

format_interned!(SocketType, log_text);

/// The address family, as `s.family` reports it. ringnet speaks IPv4 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// `AF_INET`.
    Inet,
}
