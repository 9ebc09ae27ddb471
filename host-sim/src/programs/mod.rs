//! ringnet's own programs, the thin shells that choose parts from the layers below: each
//! is behind one or two subcommands of `host-sim`.
//!
//! - [`demo`]: the guided tour over the simulated wire (both stacks are ringnet's).
//! - [`demo_wire`]: the demo's scenarios where the wire decides (sticky-packet remedies
//!   under delay, slow reader and loss; a broadcast burst on four hosts).
//! - [`serve`]: the device on a tap, every service running (device side of the wire).
//! - [`send`]: the device on a tap as a client, `send` and `udp-send` (device side).

pub mod demo;
pub mod demo_wire;
pub mod send;
pub mod serve;
