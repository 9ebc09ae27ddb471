//! The LM3S6965's Ethernet controller, as QEMU's `stellaris` model provides it, as a
//! smoltcp [`Device`]. Frames move word by word through the RX and TX FIFOs; the driver
//! says in the log when the RX FIFO holds its 31 frames (QEMU then keeps further frames
//! back) and when a frame could not be taken.

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use ringnet::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::Instant;

use crate::config::FRAME;

const BASE: usize = 0x4004_8000;
/// Raw interrupt status (read) / acknowledge (write).
const RIS: usize = 0x00;
/// Interrupt mask.
const IM: usize = 0x04;
const RCTL: usize = 0x08;
const TCTL: usize = 0x0c;
/// The FIFOs, a 32-bit word at a time.
const DATA: usize = 0x10;
const IA0: usize = 0x14;
const IA1: usize = 0x18;
/// Frames waiting in the RX FIFO.
const NP: usize = 0x34;
/// Transmission request.
const TR: usize = 0x38;

const INT_RX: u32 = 0x01;
const INT_FOV: u32 = 0x08;
const RCTL_RXEN: u32 = 0x01;
const RCTL_RSTFIFO: u32 = 0x10;
const TCTL_TXEN: u32 = 0x01;
const TCTL_PADEN: u32 = 0x02;
const TCTL_CRC: u32 = 0x04;
const TR_NEWTX: u32 = 0x01;

/// Frames the RX FIFO holds.
const RX_FIFO_FRAMES: u32 = 31;
/// Ethernet header bytes, which the TX length word does not count.
const HEADER: usize = 14;

/// The Ethernet controller's interrupt line.
#[derive(Clone, Copy)]
pub struct EthernetIrq;

// SAFETY: 42 is the LM3S6965's Ethernet interrupt number, within the NVIC's range.
unsafe impl InterruptNumber for EthernetIrq {
    fn number(self) -> u16 {
        42
    }
}

/// Set by the interrupt handler: frames arrived while the loop slept.
pub static RX_PENDING: AtomicBool = AtomicBool::new(false);

fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is one of the controller's documented registers, always
    // mapped on this chip; volatile word reads are the access the hardware expects.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`, for writes.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

/// Called from the interrupt handler: mask the controller's interrupts (the line is
/// level-triggered) and let the main loop drain the FIFO.
pub fn on_interrupt() {
    write(IM, 0);
    RX_PENDING.store(true, Ordering::Release);
}

/// Counters of the driver itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    /// Frames received.
    pub rx_frames: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Times the RX FIFO was found holding all its frames.
    pub rx_fifo_full: u32,
    /// Frames dropped: too long for the driver's buffer, or reported as FIFO overrun.
    pub rx_dropped: u32,
    /// Times a send found the controller still busy with the previous frame.
    pub tx_busy: u32,
}

/// The Stellaris Ethernet controller.
pub struct Stellaris {
    rx: &'static mut [u8; FRAME],
    tx: &'static mut [u8; FRAME],
    fifo_full: bool,
    tx_was_busy: bool,
    /// The driver's counters.
    pub stats: DriverStats,
}

impl Stellaris {
    /// Resets the FIFOs and enables the receiver, the transmitter (with padding and CRC)
    /// and the receive interrupt.
    pub fn new(rx: &'static mut [u8; FRAME], tx: &'static mut [u8; FRAME]) -> Stellaris {
        write(RCTL, RCTL_RSTFIFO);
        write(RCTL, RCTL_RXEN);
        write(TCTL, TCTL_TXEN | TCTL_PADEN | TCTL_CRC);
        write(RIS, 0xff);
        write(IM, INT_RX);
        Stellaris {
            rx,
            tx,
            fifo_full: false,
            tx_was_busy: false,
            stats: DriverStats::default(),
        }
    }

    /// The MAC address the board was given.
    pub fn mac(&self) -> EthernetAddress {
        let low = read(IA0).to_le_bytes();
        let high = read(IA1).to_le_bytes();
        EthernetAddress([low[0], low[1], low[2], low[3], high[0], high[1]])
    }

    /// Frames waiting in the RX FIFO.
    pub fn frames_waiting(&self) -> u32 {
        read(NP)
    }

    /// Re-enables the receive interrupt after the loop drained the FIFO.
    pub fn listen(&self) {
        write(RIS, INT_RX);
        write(IM, INT_RX);
    }

    /// Reads the next frame into the RX buffer; its length, or `None` if there is none
    /// or it had to be dropped.
    fn take_frame(&mut self) -> Option<usize> {
        let waiting = read(NP);
        if waiting >= RX_FIFO_FRAMES && !self.fifo_full {
            self.fifo_full = true;
            self.stats.rx_fifo_full += 1;
            log::warn!(
                "enet: RX FIFO full ({RX_FIFO_FRAMES} frames): QEMU holds further frames back"
            );
        } else if waiting < RX_FIFO_FRAMES / 2 && self.fifo_full {
            self.fifo_full = false;
            log::debug!("enet: RX FIFO has room again ({waiting}/{RX_FIFO_FRAMES} frames)");
        }
        if read(RIS) & INT_FOV != 0 {
            write(RIS, INT_FOV);
            self.stats.rx_dropped += 1;
            log::warn!("enet: a frame too long for the RX FIFO was dropped");
        }
        if waiting == 0 {
            return None;
        }
        let first = read(DATA);
        // The first half-word counts the frame plus its own 2 bytes and the 4-byte CRC.
        let record = (first & 0xffff) as usize;
        let words = record.div_ceil(4);
        let len = record.saturating_sub(6);
        if !(2..=FRAME).contains(&len) {
            for _ in 1..words {
                read(DATA);
            }
            self.stats.rx_dropped += 1;
            log::warn!("enet: dropped a frame of {len} bytes (buffer {FRAME})");
            return None;
        }
        self.rx[..2].copy_from_slice(&first.to_le_bytes()[2..]);
        let mut at = 2;
        for _ in 1..words {
            let bytes = read(DATA).to_le_bytes();
            let n = (len.saturating_sub(at)).min(4);
            self.rx[at..at + n].copy_from_slice(&bytes[..n]);
            at += n;
        }
        self.stats.rx_frames += 1;
        Some(len)
    }

    fn tx_ready(&mut self) -> bool {
        let busy = read(TR) & TR_NEWTX != 0;
        if busy && !self.tx_was_busy {
            self.stats.tx_busy += 1;
            log::debug!("enet: TX FIFO busy with the previous frame");
        }
        self.tx_was_busy = busy;
        !busy
    }
}

/// A received frame.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for a frame to send.
pub struct TxToken<'a> {
    buf: &'a mut [u8; FRAME],
    sent: &'a mut u32,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME);
        let result = f(&mut self.buf[..len]);
        if len >= HEADER {
            let frame = &self.buf[..len];
            // First word: the length without the header, then the frame's first 2 bytes.
            let data_len = (len - HEADER) as u32;
            write(
                DATA,
                data_len | u32::from(frame[0]) << 16 | u32::from(frame[1]) << 24,
            );
            for chunk in frame[2..].chunks(4) {
                let mut word = [0u8; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                write(DATA, u32::from_le_bytes(word));
            }
            write(TR, TR_NEWTX);
            *self.sent += 1;
        }
        result
    }
}

impl Device for Stellaris {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.take_frame()?;
        Some((
            RxToken {
                frame: &self.rx[..len],
            },
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
        caps.max_transmission_unit = 1514;
        // Bursts as large as the peer's window: a burst of one frame throttles badly.
        caps.max_burst_size = None;
        caps
    }
}
