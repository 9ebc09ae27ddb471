//! ringnet on a host: stacks on the simulated wire, and the guided demo.

/// Stacks on a simulated wire with memory leaked for `'static`: the same builder the
/// scenario tests use.
#[path = "../../tests/support/mod.rs"]
pub mod world;

pub mod demo;
pub mod device_client;
pub mod peer;
pub mod serve;
pub mod tap;
pub mod transfer;
