//! The frame link under the tap device, on the device side of the wire: one frame per
//! `read` or `write` on a non-blocking descriptor, through two buffers it keeps, every
//! failure counted and logged (the kernel's `ip -s link` counts the same).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use ringnet::phy::BorrowedFrame;
use ringnet::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use ringnet::Instant;

/// Frames the link could not move, by cause. The kernel's `ip -s link` counts the same
/// for an interface: frames dropped and frames in error, each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkErrors {
    /// Frames not sent because the descriptor would have blocked (its queue was full; a
    /// tap's hardly ever is, and what the kernel drops beyond it is not seen here).
    pub tx_dropped: u64,
    /// Frames not sent because writing failed (the interface is down, or gone).
    pub tx_failed: u64,
    /// Reads that failed for another reason than "nothing to read".
    pub rx_failed: u64,
    /// Frames longer than the MTU, dropped on arrival.
    pub rx_oversized: u64,
}

/// The link's failures: the totals, and the current run of each kind, so that every
/// outage is logged when it starts and when it ends.
#[derive(Debug, Default)]
struct Failures {
    totals: LinkErrors,
    tx_run: u64,
    rx_run: u64,
}

impl Failures {
    fn failed(run: &mut u64, total: &mut u64, what: &str, error: &io::Error) {
        *run += 1;
        *total += 1;
        // The first failure of a run says why; the rest are counted, and logged ever more
        // rarely (the kernel rate-limits the same).
        if run.is_power_of_two() {
            log::warn!("tap: {what} failed ({run} in a row, {total} in all): {error}");
        }
    }

    fn succeeded(run: &mut u64, what: &str) {
        if *run > 0 {
            log::info!("tap: {what} works again after {run} failures");
            *run = 0;
        }
    }
}

/// Read errors after which the descriptor will never give a frame again: the interface
/// was deleted (or its namespace torn down) under the link.
const GONE: [i32; 2] = [libc::EBADFD, libc::ENODEV];

/// A frame link over a file descriptor that moves one frame per `read` or `write`, as a
/// tap does: reads into and writes from two buffers it keeps, so a frame costs no
/// allocation, and a failed read or write is counted and logged, never a panic.
pub struct FrameLink<F: AsRawFd> {
    /// Owns the descriptor (a tap's
    /// [`TunTapInterface`](ringnet::smoltcp::phy::TunTapInterface), or a socket in tests).
    _owner: F,
    /// The descriptor, looked up once (a tap's lookup goes through a `RefCell`).
    fd: RawFd,
    mtu: usize,
    /// One byte more than the MTU, so that a longer frame shows by filling it.
    rx: Vec<u8>,
    tx: Vec<u8>,
    failures: Failures,
    /// The error (one of [`GONE`]) that ended the link.
    gone: Option<i32>,
}

impl<F: AsRawFd> FrameLink<F> {
    /// A link over `owner`'s descriptor (non-blocking) for frames of up to `mtu` bytes
    /// (Ethernet header included).
    pub fn new(owner: F, mtu: usize) -> FrameLink<F> {
        FrameLink {
            fd: owner.as_raw_fd(),
            _owner: owner,
            mtu,
            rx: vec![0; mtu + 1],
            tx: vec![0; mtu],
            failures: Failures::default(),
            gone: None,
        }
    }

    /// What the link could not move so far.
    pub fn errors(&self) -> LinkErrors {
        self.failures.totals
    }

    /// Why the link will never move a frame again, once a read said so.
    pub fn gone(&self) -> Option<io::Error> {
        self.gone.map(io::Error::from_raw_os_error)
    }
}

/// Room for a frame to write to a [`FrameLink`].
pub struct LinkTxToken<'a> {
    fd: RawFd,
    buf: &'a mut [u8],
    failures: &'a mut Failures,
}

impl phy::TxToken for LinkTxToken<'_> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        // smoltcp asks for at most the MTU, the buffer's size.
        let len = len.min(self.buf.len());
        let frame = &mut self.buf[..len];
        let result = f(frame);
        // SAFETY: `frame` is valid for reads of its length, and `fd` stays open for as
        // long as the link that lent this token owns it.
        let written = unsafe { libc::write(self.fd, frame.as_ptr().cast(), frame.len()) };
        let failures = self.failures;
        if written >= 0 {
            Failures::succeeded(&mut failures.tx_run, "write");
        } else {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                failures.totals.tx_dropped += 1;
            } else {
                Failures::failed(
                    &mut failures.tx_run,
                    &mut failures.totals.tx_failed,
                    "write",
                    &error,
                );
            }
        }
        result
    }
}

impl<F: AsRawFd> Device for FrameLink<F> {
    type RxToken<'a>
        = BorrowedFrame<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = LinkTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(BorrowedFrame<'_>, LinkTxToken<'_>)> {
        if self.gone.is_some() {
            return None;
        }
        let fd = self.fd;
        // SAFETY: `rx` is valid for writes of its length, and `fd` is open while `_owner` is.
        let read = unsafe { libc::read(fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
        let failures = &mut self.failures;
        if read < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                return None;
            }
            Failures::failed(
                &mut failures.rx_run,
                &mut failures.totals.rx_failed,
                "read",
                &error,
            );
            if let Some(code) = error.raw_os_error().filter(|code| GONE.contains(code)) {
                log::error!("tap: the interface is gone: {error}");
                self.gone = Some(code);
            }
            return None;
        }
        Failures::succeeded(&mut failures.rx_run, "read");
        let read = read as usize;
        if read == 0 {
            // No frame is empty; a descriptor at its end has nothing to give.
            return None;
        }
        if read > self.mtu {
            failures.totals.rx_oversized += 1;
            if failures.totals.rx_oversized.is_power_of_two() {
                log::warn!(
                    "tap: dropped a frame longer than the MTU of {} ({} so far)",
                    self.mtu,
                    failures.totals.rx_oversized
                );
            }
            return None;
        }
        let rx = BorrowedFrame(&self.rx[..read]);
        let tx = LinkTxToken {
            fd,
            buf: &mut self.tx,
            failures,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _: Instant) -> Option<LinkTxToken<'_>> {
        Some(LinkTxToken {
            fd: self.fd,
            buf: &mut self.tx,
            failures: &mut self.failures,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnet::smoltcp::phy::{RxToken as _, TxToken as _};
    use std::os::unix::net::UnixDatagram;

    /// A link over one end of a datagram socket pair, which, like a tap, moves one frame
    /// per read or write; the other end plays the kernel.
    fn link() -> (FrameLink<UnixDatagram>, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        // A small send buffer, so that a full queue comes after a few frames on any host.
        let size: libc::c_int = 16 * 1024;
        // SAFETY: `size` is a live c_int and its length is given.
        let set = unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", io::Error::last_os_error());
        (FrameLink::new(ours, 1514), theirs)
    }

    fn now() -> Instant {
        Instant::from_millis(0)
    }

    #[test]
    fn frames_cross_both_ways_whole_through_the_reused_buffers() {
        let (mut link, kernel) = link();
        for len in [1514usize, 60, 1000] {
            let frame: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            kernel.send(&frame).unwrap();
            let (rx, _) = link.receive(now()).expect("a frame waits");
            assert_eq!(rx.consume(|got| got.to_vec()), frame, "received {len}");

            let tx = link.transmit(now()).unwrap();
            tx.consume(len, |room| room.copy_from_slice(&frame));
            let mut got = vec![0u8; 2000];
            let n = kernel.recv(&mut got).unwrap();
            assert_eq!(&got[..n], &frame[..], "sent {len}");
        }
        assert_eq!(link.errors(), LinkErrors::default());
    }

    #[test]
    fn a_frame_longer_than_the_mtu_is_dropped_and_counted_not_cut_short() {
        let (mut link, kernel) = link();
        kernel.send(&[7u8; 1518]).unwrap();
        kernel.send(&[8u8; 64]).unwrap();
        assert!(
            link.receive(now()).is_none(),
            "the long frame is not delivered"
        );
        assert_eq!(link.errors().rx_oversized, 1);
        let (rx, _) = link.receive(now()).expect("the next frame");
        assert_eq!(rx.consume(|got| got.to_vec()), vec![8u8; 64]);
    }

    #[test]
    fn nothing_to_read_is_no_frame_and_no_error() {
        let (mut link, _kernel) = link();
        assert!(link.receive(now()).is_none());
        assert_eq!(link.errors(), LinkErrors::default());
    }

    #[test]
    fn a_full_queue_drops_frames_and_a_dead_peer_fails_them_counted_not_panicking() {
        let (mut link, kernel) = link();
        let mut sent = 0;
        while link.errors().tx_dropped == 0 && sent < 10_000 {
            link.transmit(now())
                .unwrap()
                .consume(100, |room| room.fill(1));
            sent += 1;
        }
        assert_eq!(
            link.errors().tx_dropped,
            1,
            "the queue filled after {sent} frames"
        );

        drop(kernel);
        link.transmit(now())
            .unwrap()
            .consume(100, |room| room.fill(2));
        assert_eq!(link.errors().tx_failed, 1);
        assert!(link.receive(now()).is_none(), "{:?}", link.errors());
    }
}
