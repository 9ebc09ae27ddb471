//! QEMU's `emcraft-sf2`: a Microsemi SmartFusion2 M2S010 (Cortex-M3 at 142 MHz, 256 KiB
//! eNVM, 64 KiB eSRAM) on Emcraft's SOM with 64 MiB of DDR at 0xA000_0000, the MSS
//! Ethernet MAC ([`crate::emac`]) and the log on MMUART0, a 16550.
//!
//! The socket rings and the MAC's descriptor rings live in DDR (statics in the `.ddr`
//! section of memory-sf2.x), which leaves the eSRAM to the socket table, the servers and
//! the stack.

pub use crate::emac::{
    DmaLayout as NicLayout, DmaRings as NicMemory, Emac as Nic, EmacIrq as NicIrq,
};

/// The board and its NIC, as the boot banner names them (interned under defmt: no flash).
pub fn name() -> crate::logging::Text {
    fw_text!("SmartFusion2 M2S010 (Cortex-M3), MSS Ethernet MAC")
}

/// SysTick's clock (the core clock, M3_CLK) on Emcraft's SOM.
pub const CLOCK_HZ: u32 = 142_000_000;

/// The NIC's interrupt number (IRQ 12 on the SmartFusion2's MSS).
pub const NIC_IRQ: u16 = crate::emac::IRQ;

/// Where the rings are: named in the boot log's memory map.
pub const RINGS_IN: &str = " in DDR";

/// MMUART0's transmit holding register (a 16550 with its registers a word apart).
const UART0_THR: usize = 0x4000_0000;
/// MMUART0's line status register.
const UART0_LSR: usize = 0x4000_0014;
/// Line status: the transmit holding register is empty.
const LSR_THRE: u32 = 1 << 5;

extern "C" {
    /// First byte of the `.ddr` statics, from memory-sf2.x.
    static mut __sddr: u32;
    /// First byte past them.
    static mut __eddr: u32;
}

/// Zeroes the `.ddr` statics, as the runtime zeroes `.bss`: they are not loaded, and a
/// static there is all zeros when empty. Called first thing in `main`, before anything
/// refers to them.
pub fn init() {
    // SAFETY: [__sddr, __eddr) is the `.ddr` output section, word-aligned at both ends by
    // memory-sf2.x; nothing has taken a reference into it yet, and all zeros is the
    // initial value of every static there.
    unsafe {
        let start = core::ptr::addr_of_mut!(__sddr);
        let end = core::ptr::addr_of_mut!(__eddr);
        let words = (end as usize - start as usize) / 4;
        core::ptr::write_bytes(start, 0, words);
    }
}

/// Writes bytes to MMUART0. QEMU's 16550 needs no set-up (a board would set the baud
/// rate and line format).
pub fn console_write(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: MMUART0's THR and LSR are always-mapped registers of the MSS; volatile
        // word accesses are how they are meant to be used.
        unsafe {
            while core::ptr::read_volatile(UART0_LSR as *const u32) & LSR_THRE == 0 {}
            core::ptr::write_volatile(UART0_THR as *mut u32, u32::from(byte));
        }
    }
}

/// The NIC's interrupt handler.
pub fn on_nic_interrupt() {
    crate::emac::on_interrupt();
}
