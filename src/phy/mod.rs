//! Device wrappers, in the style of smoltcp's `phy` module.
//!
//! smoltcp hides two things ringnet must show: a datagram dropped because a UDP socket's
//! ring had no room, and a TCP segment advertising a zero window. [`Inspector`] wraps any
//! smoltcp [`Device`](smoltcp::phy::Device) and reads each frame's headers through
//! zero-copy `wire` views as it passes, recording a [`FrameEvent`] for the stack to match
//! against its sockets. [`classify`] decides, over the raw frame and by smoltcp's own
//! rules, whether smoltcp will hand a UDP datagram to a socket or discard it, and why
//! ([`Discard`]): only a datagram smoltcp would have delivered can count as a drop for
//! want of ring room.
//!
//! The inspector also keeps each socket's MSS to what its rings hold two segments of, as
//! Linux keeps it to half the window ([`mss`]), and the next hops heard from beside
//! smoltcp's private neighbour cache ([`HeardNeighbours`]).
//!
//! [`BorrowedFrame`] is the receive token of a device that reads each whole frame into a
//! buffer of its own (a tap, a NIC drained a FIFO word at a time), as the host and the
//! firmware drivers do.

mod ingress;
mod inspect;
pub mod mss;
mod neighbours;
#[cfg(test)]
mod test_frames;

pub use ingress::{classify, Acceptance, Discard, Discards, Ingress};
pub use inspect::{
    FrameEvent, FrameLog, Inspector, PeerFin, PortMss, TcpSeqEnd, ICMP_BURST, ICMP_PER_SECOND,
};
pub use neighbours::{HeardNeighbours, ENTRY_LIFETIME, NEIGHBOURS};

/// A received frame lent from its driver's buffer: a kernel driver's `skb` pointing into
/// the receive ring, handed to the stack without a copy.
pub struct BorrowedFrame<'a>(pub &'a [u8]);

impl smoltcp::phy::RxToken for BorrowedFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::RxToken as _;

    #[test]
    fn a_borrowed_frame_is_consumed_as_it_lies() {
        let buffer = [1u8, 2, 3, 4, 5];
        let frame = BorrowedFrame(&buffer[1..4]);
        assert_eq!(frame.consume(|bytes| bytes.to_vec()), [2, 3, 4]);
    }
}
