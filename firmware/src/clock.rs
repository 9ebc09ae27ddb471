//! Uptime from SysTick: a 10 ms tick counted in the SysTick exception, plus the count
//! inside the current tick, for microsecond timestamps.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use ringnet::Instant;

/// SysTick's clock: the board's core clock.
const CLOCK_HZ: u32 = crate::board::CLOCK_HZ;
/// Ticks per second.
const TICKS_PER_SECOND: u32 = 100;
const RELOAD: u32 = CLOCK_HZ / TICKS_PER_SECOND - 1;

static TICKS: AtomicU32 = AtomicU32::new(0);

/// Starts the tick; its exception also wakes the idle loop every 10 ms.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// The uptime.
pub fn now() -> Instant {
    loop {
        let before = TICKS.load(Ordering::Relaxed);
        let value = SYST::get_current();
        if TICKS.load(Ordering::Relaxed) == before {
            let within = u64::from(RELOAD - value) * 1_000_000 / u64::from(CLOCK_HZ);
            let micros = u64::from(before) * (1_000_000 / u64::from(TICKS_PER_SECOND)) + within;
            return Instant::from_micros(micros as i64);
        }
    }
}
