//! The firmware's log on the board's console UART, in one of two forms chosen when building:
//!
//! - `defmt` (the default): each line is a defmt frame (an index into the strings the ELF
//!   keeps, the arguments' bytes and a microsecond timestamp from [`crate::clock`]),
//!   written a byte at a time to the board's console UART; `defmt-print -e IMAGE` decodes it
//!   on the host. The level is `DEFMT_LOG`'s (`.cargo/config.toml` sets `debug`).
//! - `text-log`: `log` records stamped with the uptime, `[seconds.millis] LEVEL message`,
//!   readable on a bare serial console. The level is `RINGNET_LOG`'s (see build.rs).
//!
//! The firmware's own lines go through the macros here, the core's through its own
//! (`ringnet`'s `net_info!` and the others), so one source serves both forms.

#[cfg(all(feature = "defmt", feature = "text-log"))]
compile_error!(
    "choose one log form: `defmt` (the default) or `text-log` (with --no-default-features)"
);
#[cfg(not(any(feature = "defmt", feature = "text-log")))]
compile_error!("choose a log form: feature `defmt` or `text-log`");

/// One line at `$level`, through the log form the image was built with.
#[cfg(feature = "defmt")]
macro_rules! fw_log {
    ($level:ident, $($arg:tt)+) => { defmt::$level!($($arg)+) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! fw_log {
    ($level:ident, $($arg:tt)+) => { log::$level!($($arg)+) };
}

/// Transitions of the driver's FIFOs and the stack's high water.
macro_rules! fw_debug {
    ($($arg:tt)+) => { fw_log!(debug, $($arg)+) };
}
/// Boot and the driver's counters.
macro_rules! fw_info {
    ($($arg:tt)+) => { fw_log!(info, $($arg)+) };
}
/// Frames dropped or refused, low stack headroom.
macro_rules! fw_warn {
    ($($arg:tt)+) => { fw_log!(warn, $($arg)+) };
}
/// A fault: set-up failed, a panic, a hard fault.
macro_rules! fw_error {
    ($($arg:tt)+) => { fw_log!(error, $($arg)+) };
}

/// A fixed text for a log line's argument: interned under defmt (the ELF keeps it, flash
/// does not; the decoded line reads the same), the `&str` itself in the text log.
#[cfg(feature = "defmt")]
macro_rules! fw_text {
    ($text:literal) => {
        defmt::intern!($text)
    };
}
#[cfg(not(feature = "defmt"))]
macro_rules! fw_text {
    ($text:literal) => {
        $text
    };
}

/// What [`fw_text!`] gives: an interned string under defmt, else a `&str`.
#[cfg(feature = "defmt")]
pub type Text = defmt::Str;
/// What [`fw_text!`] gives: an interned string under defmt, else a `&str`.
#[cfg(not(feature = "defmt"))]
pub type Text = &'static str;

/// What a set-up failure or a fault may be described with: whatever the log form can
/// write (`defmt::Format`, or `Display` for the text log).
#[cfg(feature = "defmt")]
pub trait Reason: defmt::Format {}
#[cfg(feature = "defmt")]
impl<T: defmt::Format + ?Sized> Reason for T {}
#[cfg(not(feature = "defmt"))]
pub trait Reason: core::fmt::Display {}
#[cfg(not(feature = "defmt"))]
impl<T: core::fmt::Display + ?Sized> Reason for T {}

/// Starts the log: nothing to do for defmt; the text log installs its `log` backend at
/// the level chosen with `RINGNET_LOG`.
pub fn start() {
    #[cfg(feature = "text-log")]
    text::start();
}

#[cfg(feature = "defmt")]
mod frames {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    // Every line carries the uptime in microseconds; defmt-print shows it as seconds.
    defmt::timestamp!("{=u64:us}", crate::clock::now().total_micros() as u64);

    /// The encoder of the frame being written, and whether interrupts were on before it
    /// began: touched only between `acquire` and `release`, with interrupts off.
    struct Session {
        taken: AtomicBool,
        interrupts_were_on: UnsafeCell<bool>,
        encoder: UnsafeCell<defmt::Encoder>,
    }

    // SAFETY: the cells are used only inside acquire..release, where interrupts are off
    // on this single core and `taken` refuses a nested acquire.
    unsafe impl Sync for Session {}

    static SESSION: Session = Session {
        taken: AtomicBool::new(false),
        interrupts_were_on: UnsafeCell::new(false),
        encoder: UnsafeCell::new(defmt::Encoder::new()),
    };

    /// defmt's logger on the console UART: one frame at a time, with interrupts off, so that a line
    /// logged from an exception never lands inside another.
    #[defmt::global_logger]
    struct UartLogger;

    // SAFETY: `acquire` disables interrupts and refuses a nested call, so `write` and
    // `release` always run inside one critical section that `acquire` opened.
    unsafe impl defmt::Logger for UartLogger {
        fn acquire() {
            let was_on = cortex_m::register::primask::read().is_active();
            cortex_m::interrupt::disable();
            if SESSION.taken.swap(true, Ordering::Acquire) {
                // Only a fault inside the logger can get here; say nothing more.
                crate::exit_failure();
            }
            // SAFETY: inside the critical section just opened, and not nested.
            unsafe {
                *SESSION.interrupts_were_on.get() = was_on;
                (*SESSION.encoder.get()).start_frame(crate::board::console_write);
            }
        }

        unsafe fn flush() {}

        unsafe fn release() {
            // SAFETY: the caller holds the session `acquire` opened.
            let was_on = unsafe {
                (*SESSION.encoder.get()).end_frame(crate::board::console_write);
                *SESSION.interrupts_were_on.get()
            };
            SESSION.taken.store(false, Ordering::Release);
            if was_on {
                // SAFETY: interrupts were on before `acquire`: this only restores them.
                unsafe { cortex_m::interrupt::enable() };
            }
        }

        unsafe fn write(bytes: &[u8]) {
            // SAFETY: the caller holds the session `acquire` opened.
            unsafe { (*SESSION.encoder.get()).write(bytes, crate::board::console_write) };
        }
    }
}

#[cfg(feature = "text-log")]
mod text {
    /// The log level chosen at build time (`RINGNET_LOG`, see build.rs).
    const LOG_LEVEL: &str = env!("RINGNET_LOG_LEVEL");

    static LOGGER: crate::uart::UartLogger = crate::uart::UartLogger;

    pub fn start() {
        // Fails only if a logger was set already, and this is the only one.
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(match LOG_LEVEL {
            "error" => log::LevelFilter::Error,
            "warn" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            _ => log::LevelFilter::Debug,
        });
    }
}
