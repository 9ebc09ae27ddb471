//! Device wrappers, in the style of smoltcp's `phy` module.
//!
//! smoltcp hides two things ringnet must show: a datagram dropped because a UDP socket's
//! ring had no room, and a TCP segment advertising a zero window. [`Inspector`] wraps any
//! smoltcp [`Device`](smoltcp::phy::Device) and reads each frame's headers through
//! zero-copy `wire` views as it passes, recording a [`FrameEvent`] for the stack to match
//! against its sockets.

mod inspect;

pub use inspect::{FrameEvent, FrameLog, Inspector};
