//! The image's `__aeabi_memcpy`, `__aeabi_memcpy4` and `__aeabi_memcpy8` (the ARM EABI
//! names LLVM calls for every copy it does not inline), in place of `compiler_builtins`'
//! weak ones: word-aligned copies go eight words at a time through `LDM`/`STM`. Its
//! `__aeabi_memmove` and `__aeabi_memclr` (each with its `4` and `8` forms) too, for
//! flash: `compiler_builtins`' are unrolled for speed (its `memmove` 1 586 B, its three
//! `memclr` 600 B), and here every move and clear is small (a queue's entries moved down
//! one, a table entry or a hash block zeroed) or rare. And `memcmp`, a byte at a time.
//!
//! The stack's copies between a socket ring and a frame are a bulk transfer's per-byte
//! work besides the pattern and the checksum (a TCP payload of up to 1460 bytes each
//! way, every segment), and the frames and rings are laid out so that they are aligned
//! (see `enet`). `compiler_builtins` copies them a word at a time, about 0.9 instructions
//! per byte; a block of eight words is two instructions and a loop step, 0.125 per byte.
//! A copy whose ends differ in alignment goes a word at a time, loaded unaligned (where
//! `compiler_builtins` shifts and merges aligned words).
//!
//! Written in assembly throughout: a copy loop in Rust could be recognised by LLVM as a
//! memcpy and turned into a call to itself.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dest`: bytes until `dest` is on a word boundary; then,
/// when `src` is too, blocks of eight words through `LDM`/`STM`; then words (loaded
/// unaligned when `src` is not: the Cortex-M3's `LDR` takes any address unless
/// `UNALIGN_TRP` is set, and nothing here sets it); then the last bytes.
///
/// # Safety
///
/// As `memcpy`: `dest` and `src` valid for `n` bytes, not overlapping.
#[inline(always)]
unsafe fn copy(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract; only r3-r5, r8-r12, the three operands and the
    // flags (no `preserves_flags`) are written.
    unsafe {
        asm!(
            // Leading bytes, until dest is word-aligned.
            "2:",
            "cmp {n}, #0",
            "beq 9f",
            "tst {d}, #3",
            "beq 3f",
            "ldrb r3, [{s}], #1",
            "strb r3, [{d}], #1",
            "subs {n}, {n}, #1",
            "b 2b",
            "3:",
            "tst {s}, #3",
            "bne 5f",
            // Both aligned: eight words at a time.
            "subs {n}, {n}, #32",
            "blo 4f",
            "13:",
            "ldmia {s}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "stmia {d}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "subs {n}, {n}, #32",
            "bhs 13b",
            "4:",
            "adds {n}, {n}, #32",
            // Words.
            "5:",
            "subs {n}, {n}, #4",
            "blo 6f",
            "14:",
            "ldr r3, [{s}], #4",
            "str r3, [{d}], #4",
            "subs {n}, {n}, #4",
            "bhs 14b",
            "6:",
            "adds {n}, {n}, #4",
            "beq 9f",
            // The last bytes.
            "15:",
            "ldrb r3, [{s}], #1",
            "strb r3, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 15b",
            "9:",
            d = inout(reg) dest => _,
            s = inout(reg) src => _,
            n = inout(reg) n => _,
            out("r3") _, out("r4") _, out("r5") _, out("r8") _,
            out("r9") _, out("r10") _, out("r11") _, out("r12") _,
            options(nostack),
        );
    }
}

/// `memcpy` at any alignment (the ARM EABI's `__aeabi_memcpy`).
///
/// # Safety
///
/// As `memcpy`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn __aeabi_memcpy(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy(dest, src, n) }
}

/// `memmove` (the ARM EABI's `__aeabi_memmove`): `memcpy`'s forward copy when `dest` lies
/// below `src` or past the source's end (a forward copy reads each block before it
/// writes it, and writes only below what it has still to read); otherwise backwards,
/// a word at a time when both ends are word-aligned, else a byte at a time.
///
/// # Safety
///
/// As `memmove`: `dest` and `src` valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn __aeabi_memmove(dest: *mut u8, src: *const u8, n: usize) {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: the caller's contract; forward is safe here (above).
        unsafe { __aeabi_memcpy(dest, src, n) }
        return;
    }
    // SAFETY: the caller's contract; `dest` lies within the source above `src`, so a
    // copy from the end down reads every byte before it is overwritten. Only r3, the
    // three operands and the flags are written.
    unsafe {
        asm!(
            "adds {d}, {d}, {n}",
            "adds {s}, {s}, {n}",
            "orr r3, {d}, {s}",
            "tst r3, #3",
            "bne 5f",
            "subs {n}, {n}, #4",
            "blo 4f",
            "13:",
            "ldr r3, [{s}, #-4]!",
            "str r3, [{d}, #-4]!",
            "subs {n}, {n}, #4",
            "bhs 13b",
            "4:",
            "adds {n}, {n}, #4",
            "5:",
            "cmp {n}, #0",
            "beq 9f",
            "15:",
            "ldrb r3, [{s}, #-1]!",
            "strb r3, [{d}, #-1]!",
            "subs {n}, {n}, #1",
            "bne 15b",
            "9:",
            d = inout(reg) dest => _,
            s = inout(reg) src => _,
            n = inout(reg) n => _,
            out("r3") _,
            options(nostack),
        );
    }
}

/// Zeroes `n` bytes at `dest` (the ARM EABI's `__aeabi_memclr`, `memset` to 0): bytes
/// until `dest` is on a word boundary, then eight words at a time through `STM` (SHA-256
/// zeroes its 256-byte message schedule for every block it hashes), then words, then
/// the last bytes.
///
/// # Safety
///
/// As `memset`: `dest` valid for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn __aeabi_memclr(dest: *mut u8, n: usize) {
    // SAFETY: the caller's contract; only r3-r5, r8-r12, the two operands and the
    // flags are written.
    unsafe {
        asm!(
            "movs r3, #0",
            "movs r4, #0",
            "movs r5, #0",
            "mov r8, #0",
            "mov r9, #0",
            "mov r10, #0",
            "mov r11, #0",
            "mov r12, #0",
            "2:",
            "cmp {n}, #0",
            "beq 9f",
            "tst {d}, #3",
            "beq 3f",
            "strb r3, [{d}], #1",
            "subs {n}, {n}, #1",
            "b 2b",
            "3:",
            "subs {n}, {n}, #32",
            "blo 4f",
            "13:",
            "stmia {d}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "subs {n}, {n}, #32",
            "bhs 13b",
            "4:",
            "adds {n}, {n}, #32",
            "subs {n}, {n}, #4",
            "blo 6f",
            "14:",
            "str r3, [{d}], #4",
            "subs {n}, {n}, #4",
            "bhs 14b",
            "6:",
            "adds {n}, {n}, #4",
            "beq 9f",
            "15:",
            "strb r3, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 15b",
            "9:",
            d = inout(reg) dest => _,
            n = inout(reg) n => _,
            out("r3") _, out("r4") _, out("r5") _, out("r8") _,
            out("r9") _, out("r10") _, out("r11") _, out("r12") _,
            options(nostack),
        );
    }
}

/// The ARM EABI's forms of a routine for operands aligned to 4 and to 8: these routines
/// need no alignment, so each form does what the routine does (`by` the function the
/// routine's body calls, where it only calls one: the linker then folds all three).
macro_rules! aligned_forms {
    ($routine:ident by $body:ident($($arg:ident: $ty:ty),*) => $four:ident, $eight:ident) => {
        aligned_forms!(@form $routine by $body($($arg: $ty),*) => $four, "4");
        aligned_forms!(@form $routine by $body($($arg: $ty),*) => $eight, "8");
    };
    ($routine:ident($($arg:ident: $ty:ty),*) => $four:ident, $eight:ident) => {
        aligned_forms!($routine by $routine($($arg: $ty),*) => $four, $eight);
    };
    (@form $routine:ident by $body:ident($($arg:ident: $ty:ty),*)
        => $form:ident, $align:literal) => {
        #[doc = concat!("`", stringify!($routine), "` with its operands aligned to ", $align)]
        #[doc = concat!(" (the ARM EABI's `", stringify!($form), "`).")]
        ///
        /// # Safety
        ///
        #[doc = concat!("As `", stringify!($routine), "`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $form($($arg: $ty),*) {
            // SAFETY: the caller's contract.
            unsafe { $body($($arg),*) }
        }
    };
}

aligned_forms!(
    __aeabi_memcpy by copy(dest: *mut u8, src: *const u8, n: usize)
        => __aeabi_memcpy4, __aeabi_memcpy8
);
aligned_forms!(
    __aeabi_memmove(dest: *mut u8, src: *const u8, n: usize)
        => __aeabi_memmove4, __aeabi_memmove8
);
aligned_forms!(__aeabi_memclr(dest: *mut u8, n: usize) => __aeabi_memclr4, __aeabi_memclr8);

/// Compares `n` bytes at `a` and `b` (C's `memcmp`, which slice and `str` comparisons call):
/// the difference of the first pair of bytes that differ, as unsigned bytes, or 0. A byte
/// at a time, in place of `compiler_builtins`' word-at-a-time one (116 B): the image
/// compares only short strings (HTTP methods and header names, file names, a trailer's
/// magic).
///
/// # Safety
///
/// As `memcmp`: `a` and `b` valid for reads of `n` bytes.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let diff: i32;
    // SAFETY: the caller's contract; only the operands, r12 and the flags are written.
    unsafe {
        asm!(
            "movs {r}, #0",
            "2:",
            "cmp {n}, #0",
            "beq 9f",
            "ldrb {r}, [{a}], #1",
            "ldrb r12, [{b}], #1",
            "subs {r}, {r}, r12",
            "bne 9f",
            "subs {n}, {n}, #1",
            "b 2b",
            "9:",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            n = inout(reg) n => _,
            r = out(reg) diff,
            out("r12") _,
            options(nostack, readonly),
        );
    }
    diff
}
