//! The frame link under the tap device, on the device side of the wire: one frame per
//! `read` or `write` on a non-blocking descriptor, through buffers it keeps, every
//! failure counted and logged (the kernel's `ip -s link` counts the same).
//!
//! With offload ([`FrameLink::with_offload`]) each frame travels behind a virtio-net header
//! ([`vnet`](super::vnet)), as between a virtual machine's NIC and its host. Out: smoltcp
//! leaves TCP checksums to the kernel (`NEEDS_CSUM`, the field holding the pseudo-header
//! sum), and under segmentation offload consecutive segments are joined into one frame of
//! up to 64 KiB for the kernel to cut ([`coalesce`](super::coalesce)). In: the kernel's
//! own large segments come up whole and go to smoltcp as one segment (as GRO hands one to
//! Linux's TCP); their partial TCP checksums are trusted, as Linux trusts its own; any
//! other partial checksum (UDP) is completed here; a TCP checksum the kernel left
//! unverified is checked here, since smoltcp, told the device checks TCP, will not.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use ringnet::phy::BorrowedFrame;
use ringnet::smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use ringnet::Instant;

use super::coalesce::Coalescer;
use super::tun::Offload;
use super::vnet::{
    complete_checksum, fill_tcp_pseudo_header, tcp_checksum_ok, VnetHeader, DATA_VALID, GSO_TCPV4,
    HEADER_LEN, NEEDS_CSUM,
};

/// The largest frame under TCP segmentation offload: an Ethernet header and the largest
/// IPv4 packet its 16-bit total length can say (the kernel's `GSO_MAX_SIZE` is 64 KiB).
pub const MAX_OFFLOAD_FRAME: usize = 14 + 65535;

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
    /// Frames longer than the MTU (under segmentation offload, than
    /// [`MAX_OFFLOAD_FRAME`]), dropped on arrival.
    pub rx_oversized: u64,
    /// Frames whose virtio-net header was short, asked for what was not negotiated, or put
    /// the checksum outside the frame, dropped on arrival.
    pub rx_bad_header: u64,
    /// TCP frames the kernel neither verified nor left partial whose checksum was wrong,
    /// dropped on arrival.
    pub rx_bad_checksum: u64,
}

/// What the virtio-net headers said, each way. All zero without offload.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OffloadCounts {
    /// Frames received behind a header.
    pub frames_in: u64,
    /// Of those, large TCP segments (`GSO_TCPV4`) the kernel handed up whole.
    pub segments_in: u64,
    /// The longest frame received, in bytes (Ethernet header included).
    pub largest_in: usize,
    /// Partial TCP checksums taken on the kernel's word (`NEEDS_CSUM` on its own segments).
    pub trusted_in: u64,
    /// Checksums the kernel had verified (`DATA_VALID`).
    pub valid_in: u64,
    /// Partial checksums of other protocols (UDP) completed here.
    pub completed_in: u64,
    /// Frames written behind a header.
    pub frames_out: u64,
    /// Of those, frames joining several of smoltcp's segments, for the kernel to cut.
    pub segments_out: u64,
    /// smoltcp's segments inside those.
    pub joined_out: u64,
    /// The longest frame written.
    pub largest_out: usize,
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

/// The sending half of a link: the descriptor, the buffer smoltcp writes each frame
/// into, the held segment, and the counts.
struct Output {
    fd: RawFd,
    /// The header's room before each frame: 0, or [`HEADER_LEN`].
    header: usize,
    /// Room for the header and one frame of the MTU.
    buf: Vec<u8>,
    /// Under segmentation offload: the segment being joined.
    coalescer: Option<Coalescer>,
    failures: Failures,
    counts: OffloadCounts,
}

impl Output {
    /// Writes one frame (with its header's room before it, filled or not used).
    fn write(fd: RawFd, bytes: &[u8], failures: &mut Failures) {
        // SAFETY: `bytes` is valid for reads of its length, and `fd` stays open for as
        // long as the link that owns this output owns it.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
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
    }

    /// Sends the held segment, if any.
    fn flush(&mut self) {
        let Some(coalescer) = self.coalescer.as_mut() else {
            return;
        };
        if let Some((bytes, segments)) = coalescer.take() {
            let counts = &mut self.counts;
            counts.frames_out += 1;
            if segments > 1 {
                counts.segments_out += 1;
                counts.joined_out += u64::from(segments);
            }
            counts.largest_out = counts.largest_out.max(bytes.len() - HEADER_LEN);
            Output::write(self.fd, bytes, &mut self.failures);
        }
    }

    /// Sends the frame of `len` bytes smoltcp wrote into `buf`: joined to the held
    /// segment, held, or written at once behind its header.
    fn send(&mut self, len: usize) {
        let header = self.header;
        if header == 0 {
            Output::write(self.fd, &self.buf[..len], &mut self.failures);
            return;
        }
        if let Some(coalescer) = self.coalescer.as_mut() {
            let frame = &self.buf[header..header + len];
            if coalescer.join(frame) {
                if coalescer.closed() {
                    self.flush();
                }
                return;
            }
            self.flush();
            let coalescer = self.coalescer.as_mut().expect("present");
            if coalescer.hold(&self.buf[header..header + len]) {
                return;
            }
        }
        let (head, frame) = self.buf.split_at_mut(header);
        let frame = &mut frame[..len];
        let vnet = VnetHeader::for_outgoing(frame, None);
        if vnet.flags & NEEDS_CSUM != 0 {
            fill_tcp_pseudo_header(frame);
        }
        vnet.emit(head);
        let counts = &mut self.counts;
        counts.frames_out += 1;
        counts.largest_out = counts.largest_out.max(len);
        Output::write(self.fd, &self.buf[..header + len], &mut self.failures);
    }
}

/// A frame link over a file descriptor that moves one frame per `read` or `write`, as a
/// tap does: reads into and writes from buffers it keeps, so a frame costs no
/// allocation, and a failed read or write is counted and logged, never a panic.
pub struct FrameLink<F: AsRawFd> {
    /// Owns the descriptor (a tap's
    /// [`TunTapInterface`](ringnet::smoltcp::phy::TunTapInterface), or a socket in tests).
    _owner: F,
    /// The descriptor, looked up once (a tap's lookup goes through a `RefCell`).
    fd: RawFd,
    mtu: usize,
    /// The largest frame taken: the MTU, or [`MAX_OFFLOAD_FRAME`] under segmentation.
    max_frame: usize,
    offload: Offload,
    /// The header's room, one byte more than the largest frame, so that a longer frame
    /// shows by filling it.
    rx: Vec<u8>,
    out: Output,
    /// The error (one of [`GONE`]) that ended the link.
    gone: Option<i32>,
}

impl<F: AsRawFd> FrameLink<F> {
    /// A link over `owner`'s descriptor (non-blocking) for frames of up to `mtu` bytes
    /// (Ethernet header included).
    pub fn new(owner: F, mtu: usize) -> FrameLink<F> {
        FrameLink::with_offload(owner, mtu, Offload::Off)
    }

    /// A link whose frames carry the virtio-net header when `offload` says so (a tap opened
    /// with `IFF_VNET_HDR` and the offloads negotiated): under [`Offload::Segmentation`]
    /// frames of up to [`MAX_OFFLOAD_FRAME`] bytes both ways.
    pub fn with_offload(owner: F, mtu: usize, offload: Offload) -> FrameLink<F> {
        let header = if offload.has_header() { HEADER_LEN } else { 0 };
        let segmentation = offload == Offload::Segmentation;
        let max_frame = if segmentation {
            mtu.max(MAX_OFFLOAD_FRAME)
        } else {
            mtu
        };
        let fd = owner.as_raw_fd();
        FrameLink {
            fd,
            _owner: owner,
            mtu,
            max_frame,
            offload,
            rx: vec![0; header + max_frame + 1],
            out: Output {
                fd,
                header,
                buf: vec![0; header + mtu],
                coalescer: segmentation.then(|| Coalescer::new(max_frame)),
                failures: Failures::default(),
                counts: OffloadCounts::default(),
            },
            gone: None,
        }
    }

    /// What the link could not move so far.
    pub fn errors(&self) -> LinkErrors {
        self.out.failures.totals
    }

    /// What was negotiated for this link.
    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// What the virtio-net headers said so far.
    pub fn offload_counts(&self) -> OffloadCounts {
        self.out.counts
    }

    /// Sends the segment held for others to join, if any: before the link sleeps, and
    /// whenever the device is polled again.
    pub fn flush(&mut self) {
        self.out.flush();
    }

    /// Why the link will never move a frame again, once a read said so.
    pub fn gone(&self) -> Option<io::Error> {
        self.gone.map(io::Error::from_raw_os_error)
    }
}

impl<F: AsRawFd> Drop for FrameLink<F> {
    fn drop(&mut self) {
        self.out.flush();
    }
}

/// Room for a frame to write to a [`FrameLink`].
pub struct LinkTxToken<'a> {
    out: &'a mut Output,
}

impl phy::TxToken for LinkTxToken<'_> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let out = self.out;
        let header = out.header;
        // smoltcp asks for at most the MTU, the buffer's size.
        let len = len.min(out.buf.len() - header);
        let result = f(&mut out.buf[header..header + len]);
        out.send(len);
        result
    }
}

/// Why a frame read behind a virtio-net header is not handed on.
enum Refusal {
    Header,
    Checksum,
}

/// Reads the header before `frame`, checks it, and settles the frame's checksum as the
/// header says: trusted, completed here, or (neither verified nor partial, TCP) verified
/// here.
fn take_header(head: &[u8], frame: &mut [u8], counts: &mut OffloadCounts) -> Result<(), Refusal> {
    let header = VnetHeader::parse(head).map_err(|_| Refusal::Header)?;
    header.check(frame).map_err(|_| Refusal::Header)?;
    if header.flags & NEEDS_CSUM != 0 {
        if header.partial_tcp_checksum(frame) {
            counts.trusted_in += 1;
        } else {
            complete_checksum(frame, &header);
            counts.completed_in += 1;
        }
    } else if header.flags & DATA_VALID != 0 {
        counts.valid_in += 1;
    } else if tcp_checksum_ok(frame) == Some(false) {
        return Err(Refusal::Checksum);
    }
    counts.frames_in += 1;
    counts.segments_in += u64::from(header.gso_type == GSO_TCPV4);
    counts.largest_in = counts.largest_in.max(frame.len());
    Ok(())
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
        // A new poll: what was held from the last one goes first.
        self.out.flush();
        if self.gone.is_some() {
            return None;
        }
        let fd = self.fd;
        // SAFETY: `rx` is valid for writes of its length, and `fd` is open while `_owner` is.
        let read = unsafe { libc::read(fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
        let out = &mut self.out;
        let failures = &mut out.failures;
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
        let header = out.header;
        if read == 0 {
            // No frame is empty; a descriptor at its end has nothing to give.
            return None;
        }
        if read > header + self.max_frame {
            failures.totals.rx_oversized += 1;
            if failures.totals.rx_oversized.is_power_of_two() {
                log::warn!(
                    "tap: dropped a frame longer than {} bytes ({} so far)",
                    self.max_frame,
                    failures.totals.rx_oversized
                );
            }
            return None;
        }
        if header > 0 {
            let (head, frame) = self.rx[..read].split_at_mut(header.min(read));
            if let Err(refusal) = take_header(head, frame, &mut out.counts) {
                let (total, what) = match refusal {
                    Refusal::Header => (
                        &mut failures.totals.rx_bad_header,
                        "a short, bad or unnegotiated virtio-net header",
                    ),
                    Refusal::Checksum => (
                        &mut failures.totals.rx_bad_checksum,
                        "a wrong TCP checksum the kernel had not verified",
                    ),
                };
                *total += 1;
                if total.is_power_of_two() {
                    log::warn!("tap: dropped a frame with {what} ({total} so far)");
                }
                return None;
            }
        }
        let rx = BorrowedFrame(&self.rx[header.min(read)..read]);
        Some((rx, LinkTxToken { out }))
    }

    fn transmit(&mut self, _: Instant) -> Option<LinkTxToken<'_>> {
        Some(LinkTxToken { out: &mut self.out })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        if self.offload.has_header() {
            // The kernel fills TCP checksums in and vouches for its own; UDP, ICMP and
            // the IP header stay smoltcp's (the link completes the kernel's partial ones).
            caps.checksum.tcp = Checksum::None;
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::vnet::tests::{tcp_frame, udp_frame};
    use ringnet::smoltcp::phy::{RxToken as _, TxToken as _};
    use std::os::unix::net::UnixDatagram;

    /// A link over one end of a datagram socket pair, which, like a tap, moves one frame
    /// per read or write; the other end plays the kernel.
    fn link() -> (FrameLink<UnixDatagram>, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        // A small send buffer, so that a full queue comes after a few frames on any host.
        crate::linux::sampler::set_int_option(
            ours.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            16 * 1024,
        )
        .unwrap();
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

    /// A link with the virtio-net header under segmentation offload, as `--offload`
    /// opens it, over a socket pair whose other end plays the kernel.
    fn offload_link() -> (FrameLink<UnixDatagram>, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        (
            FrameLink::with_offload(ours, 1514, Offload::Segmentation),
            theirs,
        )
    }

    /// What the kernel writes: a header, then the frame.
    fn behind(header: VnetHeader, frame: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_LEN];
        header.emit(&mut bytes);
        bytes.extend_from_slice(frame);
        bytes
    }

    #[test]
    fn a_large_segment_the_kernel_hands_up_reaches_the_stack_whole_its_header_taken_off() {
        let (mut link, kernel) = offload_link();
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i * 13 + i / 251) as u8).collect();
        // Linux's own segment: the checksum field holds only the pseudo-header sum.
        let frame = tcp_frame(&payload, false);
        let gso = VnetHeader {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        kernel.send(&behind(gso, &frame)).unwrap();
        let (rx, _) = link.receive(now()).expect("the segment");
        assert_eq!(rx.consume(|got| got.to_vec()), frame, "whole, as it came");
        let counts = link.offload_counts();
        assert_eq!(
            (counts.frames_in, counts.segments_in, counts.largest_in),
            (1, 1, frame.len())
        );
        assert_eq!((counts.trusted_in, counts.completed_in), (1, 0));
        assert_eq!(link.errors(), LinkErrors::default());
        assert!(
            !link.capabilities().checksum.tcp.rx(),
            "smoltcp is told not to check what the kernel vouched for"
        );
    }

    #[test]
    fn partial_udp_checksums_are_completed_and_unverified_tcp_is_checked() {
        let (mut link, kernel) = offload_link();
        let whole = udp_frame(b"a datagram whose checksum the kernel left partial");
        let mut partial = whole.clone();
        partial[40..42].fill(0);
        // The pseudo-header sum, as Linux leaves it.
        let ip = ringnet::smoltcp::wire::Ipv4Packet::new_checked(&whole[14..]).unwrap();
        let sum = ringnet::smoltcp::wire::checksum::pseudo_header_v4(
            &ip.src_addr(),
            &ip.dst_addr(),
            ringnet::smoltcp::wire::IpProtocol::Udp,
            (whole.len() - 34) as u32,
        );
        partial[40..42].copy_from_slice(&sum.to_be_bytes());
        let needs = VnetHeader {
            flags: NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHeader::default()
        };
        kernel.send(&behind(needs, &partial)).unwrap();
        let (rx, _) = link.receive(now()).expect("the datagram");
        assert_eq!(rx.consume(|got| got.to_vec()), whole, "checksum completed");

        // A TCP segment the kernel neither verified nor left partial: checked here.
        let good = tcp_frame(b"checked", true);
        let mut bad = good.clone();
        bad[60] ^= 0xff;
        kernel.send(&behind(VnetHeader::default(), &bad)).unwrap();
        kernel.send(&behind(VnetHeader::default(), &good)).unwrap();
        assert!(link.receive(now()).is_none(), "the bad one is dropped");
        let (rx, _) = link.receive(now()).expect("the good one");
        assert_eq!(rx.consume(|got| got.to_vec()), good);
        let valid = VnetHeader {
            flags: DATA_VALID,
            ..VnetHeader::default()
        };
        kernel.send(&behind(valid, &bad)).unwrap();
        assert!(
            link.receive(now()).is_some(),
            "DATA_VALID is the kernel's word"
        );
        assert_eq!(link.errors().rx_bad_checksum, 1);
        let counts = link.offload_counts();
        assert_eq!((counts.completed_in, counts.valid_in), (1, 1));
    }

    #[test]
    fn bad_or_unnegotiated_headers_are_dropped_and_counted_never_handed_on() {
        let (mut link, kernel) = offload_link();
        let frame = tcp_frame(&[5; 3000], false);
        let gso = VnetHeader {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let bad = [
            kernel.send(&[1, 2, 3]).map(|_| ()),
            kernel
                .send(&behind(VnetHeader { gso_type: 4, ..gso }, &frame))
                .map(|_| ()),
            kernel
                .send(&behind(VnetHeader { gso_size: 0, ..gso }, &frame))
                .map(|_| ()),
            kernel
                .send(&behind(
                    VnetHeader {
                        csum_start: 5000,
                        ..gso
                    },
                    &frame,
                ))
                .map(|_| ()),
            kernel.send(&behind(gso, &udp_frame(&[1; 100]))).map(|_| ()),
        ];
        assert!(bad.iter().all(|sent| sent.is_ok()));
        for _ in 0..bad.len() {
            assert!(link.receive(now()).is_none());
        }
        assert_eq!(link.errors().rx_bad_header, 5);
        assert_eq!(link.offload_counts().frames_in, 0);
        let too_long = vec![0u8; HEADER_LEN + MAX_OFFLOAD_FRAME + 1];
        kernel.send(&too_long).unwrap();
        assert!(link.receive(now()).is_none());
        assert_eq!(link.errors().rx_oversized, 1);
    }

    #[test]
    fn segments_smoltcp_sends_back_to_back_leave_as_one_frame_at_the_next_poll() {
        let (mut link, kernel) = offload_link();
        let payload: Vec<u8> = (0..1448 * 3).map(|i| (i % 241) as u8).collect();
        let whole = tcp_frame(&payload, false);
        // smoltcp's three segments of it, each with its own sequence number.
        for (i, chunk) in payload.chunks(1448).enumerate() {
            let mut frame = tcp_frame(chunk, false);
            let seq = 1000 + (i * 1448) as u32;
            frame[38..42].copy_from_slice(&seq.to_be_bytes());
            frame[47] = 0x10; // ACK alone: the burst goes on
            let tx = link.transmit(now()).unwrap();
            tx.consume(frame.len(), |room| room.copy_from_slice(&frame));
        }
        let mut got = vec![0u8; 70_000];
        assert!(kernel.recv(&mut got).is_err(), "held for more to join");
        assert!(link.receive(now()).is_none(), "the next poll sends it");
        let n = kernel.recv(&mut got).unwrap();
        let header = VnetHeader::parse(&got[..n]).unwrap();
        assert_eq!((header.gso_type, header.gso_size), (GSO_TCPV4, 1448));
        let frame = &got[HEADER_LEN..n];
        assert_eq!(frame.len(), whole.len());
        assert_eq!(&frame[54..], &payload[..]);
        let counts = link.offload_counts();
        assert_eq!(
            (counts.frames_out, counts.segments_out, counts.joined_out),
            (1, 1, 3)
        );

        // A bare ACK goes at once, with no segmentation and the checksum left partial.
        let ack = tcp_frame(&[], false);
        link.transmit(now())
            .unwrap()
            .consume(ack.len(), |room| room.copy_from_slice(&ack));
        let n = kernel.recv(&mut got).unwrap();
        let header = VnetHeader::parse(&got[..n]).unwrap();
        assert_eq!((header.flags, header.gso_type), (NEEDS_CSUM, 0));
        assert_eq!(n, HEADER_LEN + ack.len());
    }

    #[test]
    fn nothing_to_read_is_no_frame_and_no_error() {
        let (mut link, _kernel) = link();
        assert!(link.receive(now()).is_none());
        assert_eq!(link.errors(), LinkErrors::default());
        assert_eq!(link.offload_counts(), OffloadCounts::default());
        let (mut link, _kernel) = offload_link();
        assert!(link.receive(now()).is_none());
        assert_eq!(link.errors(), LinkErrors::default());
        assert_eq!(link.offload_counts(), OffloadCounts::default());
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
