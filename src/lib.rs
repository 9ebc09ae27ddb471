//! ringnet: kernel-like sockets on fixed ring buffers, over smoltcp, with every buffer
//! transition said out loud.
//!
//! A kernel hides its socket buffers: `recv` just blocks, `send` just blocks, and the
//! reasons never show. ringnet gives the same BSD-socket behaviour (the semantics Python's
//! `socket` module exposes) on top of smoltcp, but every ring running full or empty, every
//! zero window, every truncated or dropped datagram and every blocked call is logged through
//! `log` (or defmt, with the `defmt` feature: see `macros.rs`) and counted.
//!
//! The crate is `no_std` and never allocates: all memory is supplied by the caller up front.
//!
//! # Layers
//!
//! - [`phy`]: device wrappers in smoltcp's `phy` style. [`phy::Inspector`] reads every frame
//!   through zero-copy `wire` views so the stack can see zero windows and datagram drops that
//!   smoltcp itself does not report.
//! - [`stack`]: the [`Stack`], which owns the smoltcp `Interface` and a fixed socket table,
//!   and is polled with a caller-supplied time (the core never reads a clock).
//! - [`socket`]: the BSD-style calls. [`socket::tcp`] for streams (listen, accept, connect,
//!   recv, send, shutdown, close), [`socket::udp`] for datagrams (recv_from with `MSG_TRUNC`
//!   reporting, send_to, `SO_BROADCAST`), [`socket::SocketOption`] for `setsockopt` and
//!   `getsockopt`.
//! - `blocking` (feature `blocking`, a default): the blocking forms of those calls. A
//!   `blocking::Waiter` makes the world progress (polls devices, sleeps, or advances a
//!   virtual clock); each block is logged when it starts and when it ends.
//! - [`observe`]: per-socket counters, ring occupancy levels and the stats table.
//! - [`text`]: the text the services send (tables, HTTP heads, JSON) written without
//!   `core::fmt`, which a firmware image has no room for.
//! - [`framing`]: message boundaries over a byte stream (TCP's "sticky packets").
//! - [`services`]: the services every ringnet host runs (echo, file out, file in, UDP
//!   report, stats query, broadcast beacon), as poll-driven state machines.
//! - [`transfer`]: verified file transfer (put and get, resumable, SHA-256 checked),
//!   server and client, over any [`transfer::Store`].
//! - [`http`]: a small HTTP/1.1 server (GET, HEAD, PUT, OPTIONS, ranges, persistent
//!   connections, `/stats` as JSON) on the same stores.
#![cfg_attr(
    feature = "sim",
    doc = " - [`sim`] (feature `sim`, on by default): a simulated Ethernet hub with seeded faults"
)]
#![cfg_attr(
    not(feature = "sim"),
    doc = " - `sim` (feature `sim`, left out of this build): a simulated Ethernet hub with seeded faults"
)]
//!   and a virtual clock, so that two or more stacks can be driven against each other
//!   in-process, deterministically. The firmware builds without it.
//!
//! # Errors
//!
//! Each operation has its own small error enum, in the style of smoltcp: for example
//! [`socket::tcp::RecvError`] and [`socket::udp::SendError`]. `WouldBlock` is the
//! non-blocking answer (`EAGAIN`); a partial stream write returns a count, not an error.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[macro_use]
mod macros;

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod convert;
pub mod digest;
pub mod framing;
pub mod handle;
pub mod http;
pub mod observe;
pub mod phy;
pub mod rate;
pub mod run;
pub mod service_set;
pub mod services;
#[cfg(feature = "sim")]
pub mod sim;
pub mod socket;
pub mod stack;
pub mod text;
pub mod transfer;

pub use handle::{AddressFamily, SocketHandle, SocketType};
pub use smoltcp;
pub use smoltcp::time::{Duration, Instant};
pub use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};
pub use socket::SocketOption;
pub use stack::{ArpQueueResources, ArpQueueStats, Stack, StackConfig, StackResources};
