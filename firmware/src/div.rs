//! The image's `__aeabi_uldivmod` (the ARM EABI's unsigned 64-bit division, which LLVM
//! calls for every `u64` `/` and `%`), in place of `compiler_builtins`' weak one: that one
//! is built for speed at every width (932 B with its helpers); here, when both operands
//! fit in 32 bits, which is every division the firmware makes in its first 71 minutes
//! (microsecond instants and durations into milliseconds, the idle timeouts, the log
//! lines' and the stats table's figures), one `UDIV`; otherwise 64 steps of shift and
//! subtract (about 700 instructions, where the divisions are a few per received ACK at
//! most).

use core::arch::naked_asm;

/// `n / d` and `n % d` for `u64` (the ARM EABI's `__aeabi_uldivmod`): `n` in r0 (low
/// word) and r1, `d` in r2 and r3; the quotient returned in r0 and r1, the remainder in
/// r2 and r3.
///
/// The long form keeps the remainder in r4 and r5 and shifts the dividend's bits into it
/// from the top, one a step, while the quotient's bits shift in at the bottom of r0 and
/// r1 where the dividend's have left: a step subtracts `d` where the remainder is at
/// least `d`, and sets the quotient's bit. After `k` steps the remainder is at most the
/// dividend's top `k` bits, so it never overflows its 64.
///
/// # Safety
///
/// Only as the EABI calls it: `d` not zero (Rust checks before it divides).
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn __aeabi_uldivmod() {
    naked_asm!(
        // Both high words zero: one 32-bit division.
        "orrs r12, r1, r3",
        "bne 1f",
        "udiv r12, r0, r2",
        "mls r2, r12, r2, r0",
        "mov r0, r12",
        "movs r1, #0",
        "movs r3, #0",
        "bx lr",
        "1:",
        "push {{r4, r5, r6, r7, lr}}",
        "movs r4, #0",
        "movs r5, #0",
        "movs r6, #64",
        "2:",
        // Remainder and dividend, one 128-bit value, shifted left by one.
        "adds r0, r0, r0",
        "adcs r1, r1, r1",
        "adcs r4, r4, r4",
        "adc r5, r5, r5",
        // Remainder minus d, kept where it does not borrow.
        "subs r7, r4, r2",
        "sbcs r12, r5, r3",
        "bcc 4f",
        "mov r4, r7",
        "mov r5, r12",
        "orr r0, r0, #1",
        "4:",
        "subs r6, r6, #1",
        "bne 2b",
        "mov r2, r4",
        "mov r3, r5",
        "pop {{r4, r5, r6, r7, pc}}",
    )
}
