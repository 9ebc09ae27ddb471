//! UART0 as the log: `log` records stamped with the uptime, written a byte at a time.

use core::fmt::{self, Write};

/// UART0's data register.
const UART0_DR: usize = 0x4000_c000;
/// UART0's flag register.
const UART0_FR: usize = 0x4000_c018;
/// Flag: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;

/// Writes to UART0. QEMU's model needs no set-up (a board would set the baud rate).
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: UART0's FR and DR are always-mapped registers of the LM3S6965;
            // volatile word accesses are how they are meant to be used.
            unsafe {
                while core::ptr::read_volatile(UART0_FR as *const u32) & FR_TXFF != 0 {}
                core::ptr::write_volatile(UART0_DR as *mut u32, u32::from(byte));
            }
        }
        Ok(())
    }
}

/// The `log` backend: one line per record, `[seconds.millis] LEVEL message`. Which
/// levels get here is `log::set_max_level`'s business.
pub struct UartLogger;

impl log::Log for UartLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let millis = crate::clock::now().total_millis();
        // A line is written whole, never with another line inside it.
        cortex_m::interrupt::free(|_| {
            let _ = writeln!(
                Uart,
                "[{:>5}.{:03}] {:<5} {}",
                millis / 1000,
                millis % 1000,
                record.level(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}
