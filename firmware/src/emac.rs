//! The SmartFusion2's MSS Ethernet MAC, as QEMU's `msf2-emac` models it, as a smoltcp
//! [`Device`].
//!
//! Frames move by DMA through two rings of descriptors in memory (here in DDR), each
//! descriptor three words: the buffer's address, a size word whose bit 31 says EMPTY, and
//! the next descriptor's address.
//!
//! - Receiving, the MAC writes a frame into the buffer of the descriptor it is at, its
//!   length into the size word (EMPTY cleared), counts it in DMA_RX_STATUS (the frame
//!   count the driver acknowledges one frame at a time) and moves on to the next. The
//!   driver lends the buffer to the stack as it lies (no copy) and marks the descriptor
//!   EMPTY again once the stack is done with it.
//! - A frame that finds no EMPTY descriptor is lost, and the MAC stops receive DMA
//!   (OVERFLOW); QEMU then holds further frames back until the driver enables it again at
//!   the descriptor the MAC stopped at. The driver logs and counts that, restarts DMA
//!   once half the ring is free again (restarted sooner, the frames QEMU holds would run
//!   it out again at once, one more frame lost each time), and logs the restart.
//! - Sending, the stack writes the frame straight into a free TX buffer; the driver writes
//!   its length (EMPTY cleared) and enables transmit DMA at that descriptor, and the MAC
//!   marks it EMPTY once sent. A send that finds the next descriptor still unsent (the TX
//!   ring full) waits, logged and counted. QEMU sends a frame the moment DMA is enabled,
//!   so there the ring never fills.
//!
//! The receive interrupt (IRQ 12) only masks the MAC's interrupts and wakes the loop; the
//! loop drains the ring.

use core::fmt;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::Ordering;

use cortex_m::interrupt::InterruptNumber;
use ringnet::phy::BorrowedFrame;
use ringnet::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::Instant;

use crate::config::{EMAC_RX_DESCRIPTORS, EMAC_TX_DESCRIPTORS, FRAME};

const BASE: usize = 0x4004_1000;
/// Configuration 1: soft reset, receive and transmit enables.
const CFG1: usize = 0x000;
/// The station address: octets 1 to 4, big-endian.
const STA1: usize = 0x040;
/// The station address: octets 5 and 6 in the upper half.
const STA2: usize = 0x044;
const DMA_TX_CTL: usize = 0x180;
const DMA_TX_DESC: usize = 0x184;
const DMA_RX_CTL: usize = 0x18c;
const DMA_RX_DESC: usize = 0x190;
const DMA_RX_STATUS: usize = 0x194;
const DMA_IRQ_MASK: usize = 0x198;

const CFG1_RESET: u32 = 1 << 31;
const CFG1_RX_EN: u32 = 1 << 2;
const CFG1_TX_EN: u32 = 1 << 0;
const DMA_EN: u32 = 1 << 0;
/// DMA_RX_STATUS: frames received and not yet acknowledged (writing 1 acknowledges one).
const RX_PKT_RCVD: u32 = 1 << 0;
/// DMA_RX_STATUS: a frame found no EMPTY descriptor and receive DMA stopped.
const RX_OVERFLOW: u32 = 1 << 2;
/// DMA_IRQ_MASK: the receive status bits, shifted by 4.
const IRQ_RX: u32 = (RX_PKT_RCVD | RX_OVERFLOW) << 4;

/// A descriptor's size word: the descriptor is free (RX) or sent (TX).
const EMPTY: u32 = 1 << 31;
/// A descriptor's size word: the frame's length.
const SIZE: u32 = 0x7ff;
/// Each descriptor's buffer: the MAC's largest frame (its MAX_FRAME_LENGTH at reset).
pub const BUFFER: usize = 1536;
/// The shortest frame worth handing on: an Ethernet header.
const MIN_FRAME: usize = 14;

/// The MAC's interrupt line (IRQ 12 on the SmartFusion2's MSS).
#[derive(Clone, Copy)]
pub struct EmacIrq;

/// The MAC's interrupt number.
pub const IRQ: u16 = 12;

// SAFETY: 12 is the MSS Ethernet MAC's interrupt, within the NVIC's range (81 lines).
unsafe impl InterruptNumber for EmacIrq {
    fn number(self) -> u16 {
        IRQ
    }
}

fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is one of the MAC's registers, always mapped on this SoC;
    // volatile word accesses are what the hardware expects.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

/// The interrupt handler's work: mask the MAC (its line stays up while received frames
/// are unacknowledged) and tell the loop.
pub fn on_interrupt() {
    write(DMA_IRQ_MASK, 0);
    crate::board::RX_PENDING.store(true, Ordering::Release);
}

/// One DMA descriptor, as the MAC reads and writes it.
#[repr(C, align(4))]
pub struct Descriptor {
    addr: u32,
    size: u32,
    next: u32,
}

impl Descriptor {
    const ZERO: Descriptor = Descriptor {
        addr: 0,
        size: 0,
        next: 0,
    };
}

/// A descriptor's buffer, its frame starting two bytes past a word boundary (Linux's
/// `NET_IP_ALIGN`): the IPv4 header and a TCP segment's payload then lie on word
/// boundaries, and so the stack's copies between frame and socket ring go a word at a
/// time (misaligned, a copy goes a shifted word at a time). QEMU's model takes any byte
/// address for a buffer; the two bytes at the end keep the MAC's largest frame inside.
#[repr(C, align(4))]
pub struct DmaBuffer {
    _lead: [u8; 2],
    bytes: [u8; BUFFER],
    _tail: [u8; 2],
}

impl DmaBuffer {
    const ZERO: DmaBuffer = DmaBuffer {
        _lead: [0; 2],
        bytes: [0; BUFFER],
        _tail: [0; 2],
    };
}

/// The MAC's descriptor rings and their buffers (in DDR: the board puts them there).
pub struct DmaRings {
    rx: [Descriptor; EMAC_RX_DESCRIPTORS],
    tx: [Descriptor; EMAC_TX_DESCRIPTORS],
    rx_buffers: [DmaBuffer; EMAC_RX_DESCRIPTORS],
    tx_buffers: [DmaBuffer; EMAC_TX_DESCRIPTORS],
}

impl DmaRings {
    /// Both rings, zeroed (the driver links them when it starts).
    pub const fn new() -> DmaRings {
        DmaRings {
            rx: [Descriptor::ZERO; EMAC_RX_DESCRIPTORS],
            tx: [Descriptor::ZERO; EMAC_TX_DESCRIPTORS],
            rx_buffers: [DmaBuffer::ZERO; EMAC_RX_DESCRIPTORS],
            tx_buffers: [DmaBuffer::ZERO; EMAC_TX_DESCRIPTORS],
        }
    }
}

/// What [`DmaRings`] holds, for the boot log's memory map.
pub struct DmaLayout;

impl fmt::Display for DmaLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA descriptors rx {EMAC_RX_DESCRIPTORS} / tx {EMAC_TX_DESCRIPTORS} of {BUFFER} B"
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DmaLayout {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "DMA descriptors rx {=usize} / tx {=usize} of {=usize} B",
            EMAC_RX_DESCRIPTORS,
            EMAC_TX_DESCRIPTORS,
            BUFFER
        )
    }
}

/// The bus address of `value`, as the MAC's DMA sees it (the CPU's own map).
fn bus_address<T>(value: *const T) -> u32 {
    value as usize as u32
}

/// The driver's own counters, printed with the stats table.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    /// Frames received and handed to the stack.
    pub rx_frames: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Times the RX ring was found with every descriptor holding a frame.
    pub rx_ring_full: u32,
    /// Most descriptors seen holding frames at once.
    pub rx_high_water: u32,
    /// Times receive DMA stopped for want of an EMPTY descriptor (each time one frame
    /// was lost) and the driver restarted it.
    pub rx_exhausted: u32,
    /// Frames dropped by the driver: a length it refuses.
    pub rx_dropped: u32,
    /// Times a send found the TX ring full (the next descriptor not yet sent).
    pub tx_ring_full: u32,
}

/// The MSS Ethernet MAC.
pub struct Emac {
    rings: &'static mut DmaRings,
    mac: EthernetAddress,
    /// The RX descriptor the stack is handed next.
    rx_next: usize,
    /// Whether `rx_next`'s frame is lent to the stack (it goes back to the MAC on the
    /// next call).
    rx_lent: bool,
    rx_full: bool,
    rx_stopped: bool,
    /// The TX descriptor the next frame goes into.
    tx_next: usize,
    tx_full: bool,
    /// The driver's counters.
    pub stats: DriverStats,
}

impl Emac {
    /// The station address this driver gives the MAC (QEMU's default for the first NIC).
    const ADDRESS: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    /// Resets the MAC, gives it its station address and `rings` (every RX descriptor
    /// EMPTY, every TX descriptor sent), enables receive and transmit, receive DMA and the
    /// receive interrupt.
    pub fn new(rings: &'static mut DmaRings) -> Emac {
        write(CFG1, CFG1_RESET);
        let mac = Self::ADDRESS;
        let octets = mac.0;
        write(
            STA1,
            u32::from_be_bytes([octets[0], octets[1], octets[2], octets[3]]),
        );
        write(STA2, u32::from_be_bytes([octets[4], octets[5], 0, 0]));
        link(&mut rings.rx, &rings.rx_buffers);
        link(&mut rings.tx, &rings.tx_buffers);
        cortex_m::asm::dmb();
        write(DMA_RX_DESC, bus_address(&rings.rx[0]));
        write(CFG1, CFG1_RX_EN | CFG1_TX_EN);
        write(DMA_RX_CTL, DMA_EN);
        write(DMA_IRQ_MASK, IRQ_RX);
        Emac {
            rings,
            mac,
            rx_next: 0,
            rx_lent: false,
            rx_full: false,
            rx_stopped: false,
            tx_next: 0,
            tx_full: false,
            stats: DriverStats::default(),
        }
    }

    /// The station (MAC) address.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Whether a received frame waits in the ring (or receive DMA waits to be restarted).
    pub fn rx_waiting(&mut self) -> bool {
        self.give_back();
        self.rx_stopped || size_word(&self.rings.rx[self.rx_next]) & EMPTY == 0
    }

    /// Unmasks the receive interrupt again, once the loop has drained the ring; the caller
    /// then checks [`Self::rx_waiting`] once more, since a frame may have arrived in
    /// between.
    pub fn listen(&mut self) {
        self.give_back();
        write(DMA_IRQ_MASK, IRQ_RX);
    }

    /// Times the RX ring was found with every descriptor holding a frame.
    pub fn rx_full_events(&self) -> u32 {
        self.stats.rx_ring_full
    }

    /// Logs the driver's counters (with each stats query).
    pub fn log_stats(&self) {
        let stats = &self.stats;
        fw_info!("emac: rx {} frames, tx {}; RX ring full {} times (high water {}/{}), DMA stopped {} times, {} dropped; TX ring full {} times", stats.rx_frames, stats.tx_frames, stats.rx_ring_full, stats.rx_high_water, EMAC_RX_DESCRIPTORS, stats.rx_exhausted, stats.rx_dropped, stats.tx_ring_full);
    }

    /// Hands the descriptor lent to the stack back to the MAC (the stack's borrow of its
    /// buffer has ended by the time `&mut self` is had again).
    fn give_back(&mut self) {
        if !self.rx_lent {
            return;
        }
        self.rx_lent = false;
        let descriptor = &mut self.rings.rx[self.rx_next];
        // The stack is done reading the buffer before the MAC may write it again.
        cortex_m::asm::dmb();
        set_size_word(descriptor, EMPTY);
        self.rx_next = (self.rx_next + 1) % EMAC_RX_DESCRIPTORS;
    }

    /// Notes the ring's fill level and a stop of receive DMA; restarts DMA once half
    /// the ring is free.
    fn watch_rx(&mut self) {
        let status = read(DMA_RX_STATUS);
        let waiting = (status >> 16) & 0xff;
        self.stats.rx_high_water = self.stats.rx_high_water.max(waiting);
        let capacity = EMAC_RX_DESCRIPTORS as u32;
        // A stop of DMA means the MAC found no free descriptor: the ring is full even when
        // the frame count says one less (the descriptor lent to the stack holds a frame the
        // count no longer has).
        let overflow = status & RX_OVERFLOW != 0;
        if (waiting >= capacity || overflow) && !self.rx_full {
            self.rx_full = true;
            self.stats.rx_ring_full += 1;
            fw_debug!(
                "emac: RX ring FULL ({}/{} descriptors hold frames)",
                capacity,
                capacity
            );
        } else if waiting == 0 && self.rx_full {
            self.rx_full = false;
            fw_debug!("emac: RX ring empty after full: frames flow again");
        }
        if overflow && !self.rx_stopped {
            self.rx_stopped = true;
            self.stats.rx_exhausted += 1;
            fw_warn!("emac: RX descriptors exhausted ({}/{} hold frames): DMA stopped, a frame lost; QEMU holds further frames back", waiting, capacity);
        }
        // Restarted with one descriptor free, DMA would fill it from QEMU's queue at once
        // and lose the next frame again: wait until half the ring is free (QEMU holds the
        // frames meanwhile).
        if self.rx_stopped && waiting <= capacity / 2 {
            // The MAC stopped at the descriptor after the newest frame.
            self.restart_rx((self.rx_next + waiting as usize) % EMAC_RX_DESCRIPTORS);
        }
    }

    /// Enables receive DMA again at descriptor `at` (the MAC starts at DMA_RX_DESC):
    /// points DMA_RX_DESC there, clears the overflow and enables.
    fn restart_rx(&mut self, at: usize) {
        write(DMA_RX_DESC, bus_address(&self.rings.rx[at]));
        write(DMA_RX_STATUS, RX_OVERFLOW);
        write(DMA_RX_CTL, DMA_EN);
        self.rx_stopped = false;
        fw_debug!("emac: RX DMA restarted at descriptor {}", at);
    }

    /// The next received frame's length, or `None` if the ring is empty; frames of a
    /// length the driver refuses are dropped on the way.
    fn take_frame(&mut self) -> Option<usize> {
        self.give_back();
        loop {
            self.watch_rx();
            let size = size_word(&self.rings.rx[self.rx_next]);
            if size & EMPTY != 0 {
                // Drained: the MAC fills in order, so every descriptor is free, and if
                // DMA is still stopped (its frame count said otherwise) it starts here.
                if self.rx_stopped {
                    self.restart_rx(self.rx_next);
                }
                return None;
            }
            // The frame was written before its size word: read it only after.
            cortex_m::asm::dmb();
            // One frame fewer for the MAC's count (and its interrupt line).
            write(DMA_RX_STATUS, RX_PKT_RCVD);
            let len = (size & SIZE) as usize;
            self.rx_lent = true;
            if (MIN_FRAME..=FRAME).contains(&len) {
                self.stats.rx_frames += 1;
                return Some(len);
            }
            self.stats.rx_dropped += 1;
            fw_warn!(
                "emac: dropped a received frame of {} bytes (accepts {} to {})",
                len,
                MIN_FRAME,
                FRAME
            );
            self.give_back();
        }
    }

    /// Whether the next TX descriptor is free; logs when the ring was full and when it
    /// has room again.
    fn tx_ready(&mut self) -> bool {
        let full = size_word(&self.rings.tx[self.tx_next]) & EMPTY == 0;
        if full != self.tx_full {
            self.tx_full = full;
            if full {
                self.stats.tx_ring_full += 1;
                fw_warn!(
                    "emac: TX ring FULL ({}/{} descriptors unsent): send waits",
                    EMAC_TX_DESCRIPTORS,
                    EMAC_TX_DESCRIPTORS
                );
                // Enable DMA again at the oldest unsent frame, in case it had stopped.
                write(DMA_TX_DESC, bus_address(&self.rings.tx[self.tx_next]));
                write(DMA_TX_CTL, DMA_EN);
            } else {
                fw_debug!("emac: TX ring has room again");
            }
        }
        !full
    }

    fn tx_token(&mut self) -> TxToken<'_> {
        let at = self.tx_next;
        TxToken {
            descriptor: &mut self.rings.tx[at],
            buffer: &mut self.rings.tx_buffers[at].bytes,
            next: &mut self.tx_next,
            sent: &mut self.stats.tx_frames,
        }
    }
}

/// Links `descriptors` into a ring over `buffers`, every one EMPTY.
fn link<const N: usize>(descriptors: &mut [Descriptor; N], buffers: &[DmaBuffer; N]) {
    let first = bus_address(&descriptors[0]);
    for (at, buffer) in buffers.iter().enumerate() {
        let next = if at + 1 < N {
            bus_address(&descriptors[at + 1])
        } else {
            first
        };
        let descriptor = &mut descriptors[at];
        descriptor.addr = bus_address(&buffer.bytes);
        descriptor.next = next;
        set_size_word(descriptor, EMPTY);
    }
}

/// A descriptor's size word, as the MAC last wrote it.
fn size_word(descriptor: &Descriptor) -> u32 {
    // SAFETY: the pointer comes from a reference, so it is valid and aligned; the read is
    // volatile because the MAC writes the word behind the compiler's back.
    unsafe { read_volatile(addr_of!(descriptor.size)) }
}

fn set_size_word(descriptor: &mut Descriptor, value: u32) {
    // SAFETY: as in `size_word`; volatile so that the MAC sees the write when it happens.
    unsafe { write_volatile(addr_of_mut!(descriptor.size), value) }
}

/// Room for one frame to send: a TX descriptor's buffer.
pub struct TxToken<'a> {
    descriptor: &'a mut Descriptor,
    buffer: &'a mut [u8; BUFFER],
    /// The driver's next TX descriptor, moved on once this one is used.
    next: &'a mut usize,
    sent: &'a mut u32,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp asks for at most the MTU, which is FRAME.
        let len = len.min(FRAME);
        let result = f(&mut self.buffer[..len]);
        // The frame is in memory before the MAC is told about it.
        cortex_m::asm::dmb();
        set_size_word(self.descriptor, len as u32);
        write(DMA_TX_DESC, bus_address(self.descriptor));
        write(DMA_TX_CTL, DMA_EN);
        *self.next = (*self.next + 1) % EMAC_TX_DESCRIPTORS;
        *self.sent += 1;
        result
    }
}

impl Device for Emac {
    type RxToken<'a> = BorrowedFrame<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(BorrowedFrame<'_>, TxToken<'_>)> {
        // A frame is taken only when an answer to it could be sent.
        if !self.tx_ready() {
            return None;
        }
        let len = self.take_frame()?;
        let at = self.tx_next;
        let rings = &mut *self.rings;
        Some((
            BorrowedFrame(&rings.rx_buffers[self.rx_next].bytes[..len]),
            TxToken {
                descriptor: &mut rings.tx[at],
                buffer: &mut rings.tx_buffers[at].bytes,
                next: &mut self.tx_next,
                sent: &mut self.stats.tx_frames,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if !self.tx_ready() {
            return None;
        }
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        // As many frames as the peer's window allows, as on the Stellaris.
        caps.max_burst_size = None;
        caps
    }
}
