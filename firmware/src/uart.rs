//! The board's UART as the text log (feature `text-log`): `log` records stamped with the
//! uptime, written a byte at a time. The defmt log writes its frames in `logging.rs`.

use core::fmt::{self, Write};

/// Writes to the board's console UART (see [`crate::board::console_write`]).
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::board::console_write(s.as_bytes());
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
