//! UART0, written a byte at a time: the transport of the log (`logging.rs`).

/// UART0's data register.
const UART0_DR: usize = 0x4000_c000;
/// UART0's flag register.
const UART0_FR: usize = 0x4000_c018;
/// Flag: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;

/// Writes `bytes` to UART0, waiting while its transmit FIFO is full. QEMU's model needs
/// no set-up and is not baud-limited (a board would set the baud rate).
pub fn write_bytes(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: UART0's FR and DR are always-mapped registers of the LM3S6965;
        // volatile word accesses are how they are meant to be used.
        unsafe {
            while core::ptr::read_volatile(UART0_FR as *const u32) & FR_TXFF != 0 {}
            core::ptr::write_volatile(UART0_DR as *mut u32, u32::from(byte));
        }
    }
}

/// UART0 as a `core::fmt` sink, for the text log.
#[cfg(feature = "text-log")]
pub struct Uart;

#[cfg(feature = "text-log")]
impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}
