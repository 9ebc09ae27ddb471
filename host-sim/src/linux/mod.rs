//! The Linux side of the wire: tools on the kernel's own sockets that talk to a ringnet
//! device (or any other host). They import nothing of the device side.
//!
//! - [`peer`]: raw streams and datagrams (`host-sim peer get|put|blast|udp|listen-broadcast`).
//! - [`sampler`]: `--trace` of get, put and blast: the kernel socket sampled over time.
//! - [`transfer_client`]: the verified transfer protocol's client (`peer get NAME IP`,
//!   `peer put FILE IP`).

pub mod peer;
pub mod sampler;
pub mod transfer_client;
