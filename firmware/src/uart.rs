//! UART0 as the log: `log` records, stamped with the uptime, written byte by byte.

use core::fmt::{self, Write};

/// UART0's data register.
const UART0_DR: usize = 0x4000_C000;
/// UART0's flag register.
const UART0_FR: usize = 0x4000_C018;
/// Flag: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;

/// Writes to UART0. QEMU's model needs no set-up.
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: UART0's FR and DR are always-mapped MMIO registers of the LM3S6965;
            // volatile 32-bit accesses are how they are meant to be used.
            unsafe {
                while core::ptr::read_volatile(UART0_FR as *const u32) & FR_TXFF != 0 {}
                core::ptr::write_volatile(UART0_DR as *mut u32, u32::from(byte));
            }
        }
        Ok(())
    }
}

/// The `log` backend.
pub struct UartLogger {
    /// The most detailed level written.
    pub level: log::LevelFilter,
}

impl log::Log for UartLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
            && !(metadata.target().starts_with("smoltcp") && metadata.level() > log::Level::Warn)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = crate::clock::now().total_micros();
        // A line is written whole, without an interrupt handler's output inside it.
        cortex_m::interrupt::free(|_| {
            let _ = writeln!(
                Uart,
                "[{:>5}.{:03}] {:<5} {}",
                micros / 1_000_000,
                (micros / 1000) % 1000,
                record.level(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}
