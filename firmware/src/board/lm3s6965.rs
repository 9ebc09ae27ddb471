//! QEMU's `lm3s6965evb`: a TI Stellaris LM3S6965 (Cortex-M3, 256 KiB flash, 64 KiB SRAM)
//! with the Stellaris Ethernet controller ([`crate::enet`]) and the log on UART0.

pub use crate::enet::{
    EthernetIrq as NicIrq, FrameBuffers as NicMemory, FrameLayout as NicLayout, Stellaris as Nic,
};

/// The board and its NIC, as the boot banner names them (interned under defmt: no flash).
pub fn name() -> crate::logging::Text {
    fw_text!("LM3S6965 (Cortex-M3), Stellaris Ethernet")
}

/// SysTick's clock (the core clock) under QEMU's lm3s6965evb.
pub const CLOCK_HZ: u32 = 12_000_000;

/// The NIC's interrupt number (IRQ 42 on the LM3S6965).
pub const NIC_IRQ: u16 = crate::enet::IRQ;

/// Where the rings are: named in the boot log's memory map (SRAM, as everything else).
pub const RINGS_IN: &str = "";

/// UART0's data register.
const UART0_DR: usize = 0x4000_c000;
/// UART0's flag register.
const UART0_FR: usize = 0x4000_c018;
/// Flag: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;

/// Nothing to set up before `main` uses memory: every static is in SRAM, which the
/// runtime has zeroed and initialised.
pub fn init() {}

/// Writes bytes to UART0. QEMU's model needs no set-up (a board would set the baud rate).
pub fn console_write(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: UART0's FR and DR are always-mapped registers of the LM3S6965;
        // volatile word accesses are how they are meant to be used.
        unsafe {
            while core::ptr::read_volatile(UART0_FR as *const u32) & FR_TXFF != 0 {}
            core::ptr::write_volatile(UART0_DR as *mut u32, u32::from(byte));
        }
    }
}

/// The NIC's interrupt handler.
pub fn on_nic_interrupt() {
    crate::enet::on_interrupt();
}
