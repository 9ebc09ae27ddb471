//! BSD-style socket calls on the [`Stack`](crate::Stack).
//!
//! The calls themselves are methods of [`Stack`](crate::Stack), grouped by concern:
//! [`tcp`] for stream sockets, [`udp`] for datagram sockets, [`options`] for
//! `setsockopt`/`getsockopt`, and [`introspect`] for what `getsockname`, `getpeername`,
//! `s.type` and `SIOCINQ`-style queries report. The names they take (the handle, the
//! socket type and family) live in [`crate::handle`], below every layer.

pub mod introspect;
pub mod options;
pub mod tcp;
pub mod udp;

pub use crate::handle::{AddressFamily, SocketHandle, SocketType};
pub use introspect::AddrError;
pub use options::{OptionError, OptionName, SocketOption};
