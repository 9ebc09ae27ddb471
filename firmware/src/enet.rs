//! The LM3S6965's Ethernet controller, as QEMU's `stellaris` NIC models it, as a smoltcp
//! [`Device`].
//!
//! Frames move a 32-bit word at a time through the DATA register. Received frames wait
//! in a FIFO of 31 frames; the first word of each holds its length (the frame plus 6: the
//! two length bytes and the CRC) and the frame's first two bytes. A frame to send starts
//! with a word holding the payload length (the frame less its 14-byte header) and the
//! frame's first two bytes; writing TR sends it.
//!
//! The driver computes the checksum of every IPv4 TCP segment it sends, a word at a time
//! (`checksum`), and the stack is told it need not (smoltcp's sum goes two bytes at a
//! time, 1.5 instructions a byte of every segment sent, this one 0.5): the NIC-limit
//! image's segments get theirs the same way, so that its TCP source does file out's work
//! per byte.
//!
//! The driver's own exhaustion is logged like the sockets' is: the RX FIFO holding all its
//! frames (QEMU then keeps further frames back until the FIFO is empty), frames it had to
//! drop, and a transmitter still busy with the previous frame.

use core::fmt;
use core::sync::atomic::Ordering;

use cortex_m::interrupt::InterruptNumber;
use ringnet::phy::BorrowedFrame;
use ringnet::smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::Instant;

use crate::config::{FRAME, FRAME_BUFFER};

const BASE: usize = 0x4004_8000;
/// Raw interrupt status (read) / acknowledge (write).
const RIS: usize = 0x00;
/// Interrupt mask.
const IM: usize = 0x04;
const RCTL: usize = 0x08;
const TCTL: usize = 0x0c;
/// The FIFOs, a word at a time.
const DATA: usize = 0x10;
/// The station address: its first four bytes, then the last two.
const IA0: usize = 0x14;
const IA1: usize = 0x18;
/// Frames waiting in the RX FIFO.
const NP: usize = 0x34;
/// Transmission request; reads back non-zero while a frame is being sent.
const TR: usize = 0x38;

const INT_RX: u32 = 0x01;
const INT_TXER: u32 = 0x02;
const INT_FOV: u32 = 0x08;
const RCTL_RXEN: u32 = 0x01;
const RCTL_RSTFIFO: u32 = 0x10;
const TCTL_TXEN: u32 = 0x01;
const TCTL_PADEN: u32 = 0x02;
const TCTL_CRC: u32 = 0x04;
const TR_NEWTX: u32 = 0x01;

/// Frames the RX FIFO holds.
pub const RX_FIFO_FRAMES: u32 = 31;
/// Ethernet header bytes, which the TX length word does not count.
const HEADER: usize = 14;
/// Bytes a received record adds to its frame: the length half-word and the CRC.
const RECORD_EXTRA: usize = 6;
/// The shortest frame worth handing on: an Ethernet header.
const MIN_FRAME: usize = HEADER;

/// The Ethernet controller's interrupt line (IRQ 42 on the LM3S6965).
#[derive(Clone, Copy)]
pub struct EthernetIrq;

/// The Ethernet controller's interrupt number.
pub const IRQ: u16 = 42;

// SAFETY: 42 is the LM3S6965's Ethernet interrupt, within the NVIC's range.
unsafe impl InterruptNumber for EthernetIrq {
    fn number(self) -> u16 {
        IRQ
    }
}

fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is one of the controller's registers, always mapped on this
    // chip; volatile word accesses are what the hardware expects.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

/// Writes `words` (whole words, from a word boundary: a frame buffer's bytes from the
/// third on) to the TX FIFO, eight at a time: one `LDM` and eight stores to DATA. A loop
/// in Rust took five instructions a word around its store (the bounds of each chunk, the
/// bytes put together), about 1.4 M instructions for every MiB sent.
#[inline(never)]
fn write_fifo(words: &[u8]) {
    debug_assert!((words.as_ptr() as usize).is_multiple_of(4) && words.len().is_multiple_of(4));
    // SAFETY: reads `words`, which is word-aligned and whole words long (the frame
    // buffers' layout), and writes only the DATA register; r3-r5, r8-r12, the two
    // operands and the flags are the only registers changed.
    unsafe {
        core::arch::asm!(
            "subs {n}, {n}, #32",
            "blo 3f",
            "2:",
            "ldmia {p}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "str r3, [{data}]",
            "str r4, [{data}]",
            "str r5, [{data}]",
            "str r8, [{data}]",
            "str r9, [{data}]",
            "str r10, [{data}]",
            "str r11, [{data}]",
            "str r12, [{data}]",
            "subs {n}, {n}, #32",
            "bhs 2b",
            "3:",
            "adds {n}, {n}, #32",
            "beq 5f",
            "4:",
            "ldr r3, [{p}], #4",
            "str r3, [{data}]",
            "subs {n}, {n}, #4",
            "bne 4b",
            "5:",
            p = inout(reg) words.as_ptr() => _,
            n = inout(reg) words.len() => _,
            data = in(reg) BASE + DATA,
            out("r3") _, out("r4") _, out("r5") _, out("r8") _, out("r9") _,
            out("r10") _, out("r11") _, out("r12") _,
            options(nostack),
        );
    }
}

/// The interrupt handler's work: mask the controller (its line is level-triggered and
/// stays up until the FIFO is drained) and tell the loop.
pub fn on_interrupt() {
    write(IM, 0);
    crate::board::RX_PENDING.store(true, Ordering::Release);
}

/// The driver's own counters, printed with the stats table.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    /// Frames received and handed to the stack.
    pub rx_frames: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Times the RX FIFO was found holding all its frames.
    pub rx_fifo_full: u32,
    /// Most frames seen waiting in the RX FIFO at once.
    pub rx_fifo_high_water: u32,
    /// Frames lost: too long for the FIFO (overrun), or of a length the driver refuses.
    pub rx_dropped: u32,
    /// Times a send found the transmitter still busy with the previous frame.
    pub tx_busy: u32,
    /// Frames the controller refused to send (TX error).
    pub tx_errors: u32,
}

/// A frame buffer placed two bytes past a word boundary (Linux's `NET_IP_ALIGN`): the FIFO
/// word holding the length also holds the frame's first two bytes, so every later word
/// of the frame, and the IPv4 header and the TCP payload within it, lands on a word
/// boundary. The driver's word accesses are then aligned, and so are the stack's copies
/// between frame and socket ring (a misaligned copy goes a shifted word at a time).
#[repr(C, align(4))]
struct FrameBuffer {
    _lead: [u8; 2],
    bytes: [u8; FRAME_BUFFER],
}

impl FrameBuffer {
    const fn new() -> FrameBuffer {
        FrameBuffer {
            _lead: [0; 2],
            bytes: [0; FRAME_BUFFER],
        }
    }
}

/// The SRAM kilobyte that shares QEMU's TLB entry with the controller's registers: QEMU
/// translates guest addresses through a direct-mapped TLB of 1 KiB pages (64 to 256
/// entries), where 0x4004_8000 and 0x2000_8000 take the same slot. A frame buffer there
/// has the FIFO loop evict and refill that slot on every word (the NIC-limit mode moved
/// half as much with its transmit buffer there), so the driver warns at start.
const TLB_TWIN: core::ops::Range<usize> = 0x2000_8000..0x2000_8400;

/// The driver's two frame buffers: the frame being read from the RX FIFO and the one
/// being written to the TX FIFO.
pub struct FrameBuffers {
    rx: FrameBuffer,
    tx: FrameBuffer,
}

impl FrameBuffers {
    /// Both buffers, zeroed (so that a static of them costs no flash).
    pub const fn new() -> FrameBuffers {
        FrameBuffers {
            rx: FrameBuffer::new(),
            tx: FrameBuffer::new(),
        }
    }
}

/// What [`FrameBuffers`] holds, for the boot log's memory map.
pub struct FrameLayout;

impl fmt::Display for FrameLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frames {FRAME_BUFFER} x2")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FrameLayout {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "frames {=usize} x2", FRAME_BUFFER)
    }
}

/// The Stellaris Ethernet controller.
pub struct Stellaris {
    rx: &'static mut [u8; FRAME_BUFFER],
    tx: &'static mut [u8; FRAME_BUFFER],
    rx_fifo_full: bool,
    tx_busy: bool,
    /// Received TCP checksums are verified here, not by smoltcp ([`Stellaris::verify_tcp`]).
    verify_tcp: bool,
    /// The driver's counters.
    pub stats: DriverStats,
}

impl Stellaris {
    /// Resets the RX FIFO, enables the receiver, the transmitter (padding short frames,
    /// appending the CRC) and the receive interrupt, with `memory`'s frame buffers.
    pub fn new(memory: &'static mut FrameBuffers) -> Stellaris {
        let start = memory as *const FrameBuffers as usize;
        let end = start + core::mem::size_of::<FrameBuffers>();
        if start < TLB_TWIN.end && TLB_TWIN.start < end {
            fw_warn!(
                "enet: frame buffers at {:#x}..{:#x} share QEMU's TLB entry with the controller's registers: every FIFO word refills it",
                start,
                end
            );
        }
        write(RCTL, RCTL_RSTFIFO);
        write(RCTL, RCTL_RXEN);
        write(TCTL, TCTL_TXEN | TCTL_PADEN | TCTL_CRC);
        write(RIS, 0xff);
        write(IM, INT_RX);
        Stellaris {
            rx: &mut memory.rx.bytes,
            tx: &mut memory.tx.bytes,
            rx_fifo_full: false,
            tx_busy: false,
            verify_tcp: false,
            stats: DriverStats::default(),
        }
    }

    /// Verifies every received TCP segment's checksum in the driver, a word at a time
    /// (`checksum`), and tells the stack (through [`Device::capabilities`]) that it need
    /// not: smoltcp's own check goes two bytes at a time, about 2 instructions a byte of
    /// every segment received. A segment that fails is dropped, counted in `rx_dropped`
    /// and logged. The stack's image turns this on before the stack reads the
    /// capabilities; the NIC-limit image leaves it off, so its sink is what it was.
    pub fn verify_tcp(&mut self) {
        self.verify_tcp = true;
    }

    /// The station (MAC) address the board was given.
    pub fn mac(&self) -> EthernetAddress {
        let low = read(IA0).to_le_bytes();
        let high = read(IA1).to_le_bytes();
        EthernetAddress([low[0], low[1], low[2], low[3], high[0], high[1]])
    }

    /// Whether a frame waits in the RX FIFO.
    pub fn rx_waiting(&self) -> bool {
        read(NP) > 0
    }

    /// Acknowledges the receive interrupt and unmasks it again, once the loop has
    /// drained the FIFO; the caller then checks [`Self::rx_waiting`] once more, since
    /// a frame may have arrived in between.
    pub fn listen(&self) {
        write(RIS, INT_RX);
        write(IM, INT_RX);
    }

    /// Times the RX FIFO was found holding all its frames.
    pub fn rx_full_events(&self) -> u32 {
        self.stats.rx_fifo_full
    }

    /// Logs the driver's counters (with each stats query).
    pub fn log_stats(&self) {
        let stats = &self.stats;
        fw_info!("enet: rx {} frames, tx {}; RX FIFO full {} times (high water {}/{}), {} dropped; TX busy {} times, {} errors", stats.rx_frames, stats.tx_frames, stats.rx_fifo_full, stats.rx_fifo_high_water, RX_FIFO_FRAMES, stats.rx_dropped, stats.tx_busy, stats.tx_errors);
    }

    /// Notes FIFO overruns and the FIFO's fill level; logs the full and drained edges.
    fn watch_fifo(&mut self, waiting: u32) {
        self.stats.rx_fifo_high_water = self.stats.rx_fifo_high_water.max(waiting);
        if waiting >= RX_FIFO_FRAMES && !self.rx_fifo_full {
            self.rx_fifo_full = true;
            self.stats.rx_fifo_full += 1;
            fw_warn!(
                "enet: RX FIFO FULL ({}/{} frames): QEMU holds further frames back",
                waiting,
                RX_FIFO_FRAMES
            );
        } else if waiting == 0 && self.rx_fifo_full {
            self.rx_fifo_full = false;
            fw_debug!("enet: RX FIFO empty after full: frames flow again");
        }
        let status = read(RIS);
        if status & INT_FOV != 0 {
            write(RIS, INT_FOV);
            self.stats.rx_dropped += 1;
            fw_warn!("enet: RX overrun: a frame too long for the FIFO was dropped");
        }
        if status & INT_TXER != 0 {
            // Acknowledging TXER also empties the TX FIFO.
            write(RIS, INT_TXER);
            self.stats.tx_errors += 1;
            fw_warn!("enet: TX error: the controller refused a frame");
        }
    }

    /// Reads the next frame into the RX buffer: its length, or `None` if the FIFO is
    /// empty or the frame had to be dropped.
    fn take_frame(&mut self) -> Option<usize> {
        let waiting = read(NP);
        self.watch_fifo(waiting);
        if waiting == 0 {
            return None;
        }
        let first = read(DATA);
        let record = (first & 0xffff) as usize;
        let len = record.saturating_sub(RECORD_EXTRA);
        // Words left after the first: the rest of the frame and the CRC.
        let words = record.div_ceil(4).saturating_sub(1);
        if !(MIN_FRAME..=FRAME).contains(&len) {
            for _ in 0..words {
                read(DATA);
            }
            self.stats.rx_dropped += 1;
            fw_warn!(
                "enet: dropped a received frame of {} bytes (accepts {} to {})",
                len,
                MIN_FRAME,
                FRAME
            );
            return None;
        }
        let [_, _, b0, b1] = first.to_le_bytes();
        self.rx[0] = b0;
        self.rx[1] = b1;
        // Whole words, CRC included: FRAME_BUFFER has room for them past the frame.
        for chunk in self.rx[2..2 + 4 * words].chunks_exact_mut(4) {
            chunk.copy_from_slice(&read(DATA).to_le_bytes());
        }
        self.stats.rx_frames += 1;
        Some(len)
    }

    /// Whether the transmitter can take a frame; logs when it could not and when it can
    /// again. (QEMU sends a frame the moment TR is written, so there it never is busy.)
    fn tx_ready(&mut self) -> bool {
        let busy = read(TR) & TR_NEWTX != 0;
        if busy != self.tx_busy {
            self.tx_busy = busy;
            if busy {
                self.stats.tx_busy += 1;
                fw_debug!("enet: TX busy with the previous frame: send waits");
            } else {
                fw_debug!("enet: TX free again");
            }
        }
        !busy
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    buf: &'a mut [u8; FRAME_BUFFER],
    sent: &'a mut u32,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp asks for at most the MTU, which is FRAME.
        let len = len.min(FRAME);
        let result = f(&mut self.buf[..len]);
        self.send(len);
        result
    }
}

impl TxToken<'_> {
    /// Sends the first `len` bytes of the buffer, a TCP segment's checksum filled in.
    /// Built once, not into each of smoltcp's calls of `consume`.
    #[inline(never)]
    fn send(self, len: usize) {
        if len < HEADER {
            return;
        }
        checksum::fill_tcp(&mut self.buf[..len]);
        let [first, second, ..] = *self.buf;
        write(
            DATA,
            (len - HEADER) as u32 | u32::from(first) << 16 | u32::from(second) << 24,
        );
        // The rest in whole words; the bytes past the frame in the last word are ignored.
        let words = (len - 2).div_ceil(4);
        write_fifo(&self.buf[2..2 + 4 * words]);
        write(TR, TR_NEWTX);
        *self.sent += 1;
    }
}

impl Device for Stellaris {
    type RxToken<'a> = BorrowedFrame<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(BorrowedFrame<'_>, TxToken<'_>)> {
        let mut len = self.take_frame()?;
        while self.verify_tcp && checksum::tcp_fails(&self.rx[..len]) {
            self.stats.rx_dropped += 1;
            fw_warn!("enet: dropped a received TCP segment whose checksum fails");
            len = self.take_frame()?;
        }
        Some((
            BorrowedFrame(&self.rx[..len]),
            TxToken {
                buf: self.tx,
                sent: &mut self.stats.tx_frames,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if !self.tx_ready() {
            return None;
        }
        Some(TxToken {
            buf: self.tx,
            sent: &mut self.stats.tx_frames,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        // As many frames as the peer's window allows: a burst of one throttles a bulk
        // transfer into the device to a trickle.
        caps.max_burst_size = None;
        // Computed here sending; verified here receiving too once asked, else by smoltcp.
        caps.checksum.tcp = if self.verify_tcp {
            Checksum::None
        } else {
            Checksum::Rx
        };
        caps
    }
}

/// The Internet checksum over TCP segments received and sent, a 32-bit word at a time.
mod checksum {
    use core::arch::asm;

    /// The one's-complement sum of `data` in 32-bit little-endian words (a last partial
    /// word padded with zeros), added to `sum`, folded to 16 bits. The Internet checksum
    /// is this sum of big-endian 16-bit words; the byte order changes nothing but the
    /// order of the folded result's two bytes (RFC 1071), and a sum that verifies is
    /// 0xffff either way.
    fn fold_sum(data: &[u8], sum: u64) -> u16 {
        let mut sum = sum;
        let mut rest = data;
        if (data.as_ptr() as usize) & 3 == 0 && data.len() >= 16 {
            let blocks = data.len() / 16 * 16;
            let mut acc: u32 = 0;
            // The carries out of each block, counted apart (an end-around add could
            // carry out again).
            let mut carries: u32 = 0;
            // SAFETY: reads `blocks` bytes from the word-aligned start of `data`, within
            // it; writes only the operands, r3-r5, r12 and the flags.
            unsafe {
                asm!(
                    "2:",
                    "ldmia {p}!, {{r3, r4, r5, r12}}",
                    "adds {acc}, {acc}, r3",
                    "adcs {acc}, {acc}, r4",
                    "adcs {acc}, {acc}, r5",
                    "adcs {acc}, {acc}, r12",
                    "adc {carries}, {carries}, #0",
                    "subs {n}, {n}, #16",
                    "bne 2b",
                    p = inout(reg) data.as_ptr() => _,
                    n = inout(reg) blocks => _,
                    acc = inout(reg) acc,
                    carries = inout(reg) carries,
                    out("r3") _, out("r4") _, out("r5") _, out("r12") _,
                    options(nostack, readonly),
                );
            }
            sum += u64::from(acc) + u64::from(carries);
            rest = data.get(blocks..).unwrap_or_default();
        }
        let mut words = rest.chunks_exact(4);
        for word in &mut words {
            sum += u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
        }
        // A last partial word, padded with zeros.
        let mut last = 0;
        for (i, &byte) in words.remainder().iter().enumerate() {
            last |= u32::from(byte) << (8 * i);
        }
        sum += u64::from(last);
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// Where the TCP segment of `frame` lies, if it is an IPv4 TCP segment with lengths
    /// that add up and not a fragment: the IPv4 header's length, and the TCP segment's
    /// end (both from the IPv4 header's start).
    fn tcp_segment(frame: &[u8]) -> Option<(usize, usize)> {
        let (&[.., type_hi, type_lo], ip) = frame.split_first_chunk::<14>()?;
        if [type_hi, type_lo] != [0x08, 0x00] {
            return None;
        }
        let &[version_ihl, _, total_hi, total_lo, _, _, flags_hi, offset_lo, _, protocol] =
            ip.first_chunk::<10>()?;
        let header = usize::from(version_ihl & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([total_hi, total_lo]));
        let fragment = u16::from_be_bytes([flags_hi, offset_lo]) & 0x3fff != 0;
        let fits = version_ihl >> 4 == 4
            && protocol == 6
            && header >= 20
            && total >= header + 20
            && total <= ip.len()
            && !fragment;
        fits.then_some((header, total))
    }

    /// The sum of a segment with the IPv4 pseudo-header (source, destination, zero,
    /// protocol, TCP length) of the IPv4 header `ip` (`header` bytes long) it follows.
    fn segment_sum(ip: &[u8], header: usize, total: usize) -> u16 {
        let len = total - header;
        let pseudo = fold_sum(
            &ip[12..20],
            u64::from(u32::from_le_bytes([0, 6, (len >> 8) as u8, len as u8])),
        );
        fold_sum(&ip[header..total], u64::from(pseudo))
    }

    /// Whether `frame` is an IPv4 TCP segment whose IPv4 header checksum holds and whose
    /// TCP checksum does not. Anything else (not IPv4 or not TCP, a fragment, lengths
    /// that do not add up, a wrong header checksum) goes on to the stack unverified here,
    /// which drops and counts it as it always did.
    pub(super) fn tcp_fails(frame: &[u8]) -> bool {
        let Some((header, total)) = tcp_segment(frame) else {
            return false;
        };
        let ip = &frame[14..];
        fold_sum(&ip[..header], 0) == 0xffff && segment_sum(ip, header, total) != 0xffff
    }

    /// Writes the TCP checksum of `frame` if it is an IPv4 TCP segment (as
    /// [`tcp_segment`] takes one); leaves anything else as it is.
    #[inline(never)]
    pub(super) fn fill_tcp(frame: &mut [u8]) {
        let Some((header, total)) = tcp_segment(frame) else {
            return;
        };
        let ip = &mut frame[14..];
        let field = header + 16;
        // Summed as zero; what is there is a stale frame's (the NIC-limit image's source
        // writes no checksum of its own).
        if let Some(checksum) = ip[field..].first_chunk_mut::<2>() {
            *checksum = [0, 0];
        }
        // The sum of little-endian words is the Internet checksum with its two bytes
        // swapped, so its complement goes in little-endian (RFC 1071).
        let sum = segment_sum(ip, header, total);
        if let Some(checksum) = ip[field..].first_chunk_mut::<2>() {
            *checksum = (!sum).to_le_bytes();
        }
    }
}
