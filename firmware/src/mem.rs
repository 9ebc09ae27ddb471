//! The image's `__aeabi_memcpy`, `__aeabi_memcpy4` and `__aeabi_memcpy8` (the ARM EABI
//! names LLVM calls for every copy it does not inline), in place of `compiler_builtins`'
//! weak ones: word-aligned copies go eight words at a time through `LDM`/`STM`.
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
pub unsafe extern "C" fn __aeabi_memcpy(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy(dest, src, n) }
}

/// `memcpy` with `dest` and `src` word-aligned (the ARM EABI's `__aeabi_memcpy4`).
///
/// # Safety
///
/// As `memcpy`.
#[no_mangle]
pub unsafe extern "C" fn __aeabi_memcpy4(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy(dest, src, n) }
}

/// `memcpy` with `dest` and `src` aligned to 8 (the ARM EABI's `__aeabi_memcpy8`).
///
/// # Safety
///
/// As `memcpy`.
#[no_mangle]
pub unsafe extern "C" fn __aeabi_memcpy8(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy(dest, src, n) }
}
