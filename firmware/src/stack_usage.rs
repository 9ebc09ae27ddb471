//! The call stack's high water. RAM holds the statics from its bottom up and the stack
//! from its top down, with nothing between them to catch an overflow, so the firmware
//! measures instead: at boot the free stack is filled with a marker word, and the deepest
//! word no longer holding it is as far as the stack has ever reached.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// The marker word.
const PAINT: u32 = 0x5a5a_a5a5;
/// Bytes left unpainted below the painter's own stack pointer.
const MARGIN: usize = 256;
/// Headroom below which the loop warns.
const LOW_HEADROOM: usize = 2048;

extern "C" {
    /// First byte of RAM's statics (`.data`), from cortex-m-rt's linker script.
    static __sdata: u32;
    /// First byte past the statics: the lowest address the stack may reach.
    static _stack_end: u32;
    /// Top of RAM, where the stack starts.
    static _stack_start: u32;
}

fn bounds() -> (usize, usize, usize) {
    // Only the symbols' addresses are taken, never their contents.
    (
        addr_of!(__sdata) as usize,
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    )
}

/// Bytes of RAM taken by statics (`.data`, `.bss`, `.uninit`).
pub fn statics() -> usize {
    let (sdata, end, _) = bounds();
    end - sdata
}

/// Bytes the stack may grow to.
pub fn capacity() -> usize {
    let (_, end, start) = bounds();
    start - end
}

/// Fills the free stack below the caller with the marker. Call once, first thing in
/// `main`.
#[inline(always)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let (_, end, _) = bounds();
    let mut at = end;
    while at + MARGIN < sp {
        // SAFETY: [end, sp - MARGIN) is the unused part of the stack region the linker
        // script reserves; nothing lives there yet, and the words are aligned.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The most stack ever used, in bytes.
pub fn high_water() -> usize {
    let (_, end, start) = bounds();
    let mut at = end;
    // SAFETY: reads aligned words of the stack region, which is always mapped RAM.
    while at < start && unsafe { read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    start - at
}

/// Logs the high water each time it has grown by a step, and warns when little
/// headroom is left.
pub struct StackWatch {
    reported: usize,
    warned: bool,
}

impl StackWatch {
    /// Growth worth a line.
    const STEP: usize = 256;

    /// Logs the high water so far.
    pub fn new() -> StackWatch {
        let used = high_water();
        fw_info!(
            "memory: stack {} of {} bytes used after start-up",
            used,
            capacity()
        );
        StackWatch {
            reported: used,
            warned: false,
        }
    }

    /// Checks the high water again.
    pub fn check(&mut self) {
        let used = high_water();
        let left = capacity().saturating_sub(used);
        // Low headroom is worth a warning however little the stack grew to get there.
        let newly_low = left < LOW_HEADROOM && !self.warned;
        if used < self.reported + Self::STEP && !newly_low {
            return;
        }
        self.reported = used;
        if left < LOW_HEADROOM {
            self.warned = true;
            fw_warn!(
                "memory: stack high water {}/{} bytes: only {} left before the statics",
                used,
                capacity(),
                left
            );
        } else {
            fw_debug!("memory: stack high water {}/{} bytes", used, capacity());
        }
    }
}
