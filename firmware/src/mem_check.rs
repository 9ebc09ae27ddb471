//! The memcpy check (feature `memcpy-check`): at boot, instead of the stack, the image
//! runs its own copy, move and clear (`mem`) and compares each result byte by byte with
//! a reference:
//!
//! - `__aeabi_memcpy` at every source and destination alignment 0..8 and every length
//!   0..=96, and at lengths 1500 and 4097, into a guard-banded destination; the copy and
//!   the guard bytes around it are compared with the source and with what they held;
//! - `__aeabi_memmove` within one span, at every source alignment 0..8 and every shift
//!   of the destination from -8 to 8 bytes (overlapping both ways), at the same lengths;
//!   the whole span around the move is compared with what it must hold;
//! - `__aeabi_memclr` at every alignment 0..8 and the same lengths, with guard bytes
//!   either side;
//! - `memcmp` at every alignment 0..4 of each side and every length 0..=40 and 1500,
//!   equal and with one byte differing (first, middle, last; greater and smaller, by
//!   its top bit, so that bytes compare unsigned), its sign checked;
//! - `__aeabi_uldivmod` (`div`) for every pair of 64 dividends and 62 divisors (the
//!   edges of 32 and 64 bits, the divisors the firmware uses, and pseudo-random values of
//!   every width), its quotient `q` and remainder `r` checked by multiplication alone:
//!   `q * d + r == n` without overflow and `r < d`.
//!
//! It logs `memcpy check: <cases> cases, <failed> failed` (and the same for `memmove`
//! and `memclr`, and `uldivmod check: ...`, each with its first failure's parameters)
//! and ends QEMU with success
//! when none failed. `scripts/test-firmware.sh` boots it.
//!
//! The calls are `core::ptr::copy_nonoverlapping`, `core::ptr::copy` and
//! `core::ptr::write_bytes` (with 0) on pointers and lengths passed through `black_box`,
//! so that LLVM cannot inline them: each is a call to the `__aeabi_` function (the
//! disassembly of the check's image shows it). The buffers are the services' rings,
//! which this image never hands to the stack.

use core::hint::black_box;
use core::ptr;

/// The lengths beyond 0..=96: a full Ethernet payload, and a page and a byte.
const LONG: [usize; 2] = [1500, 4097];
/// The most any case copies.
const MAX_LEN: usize = 4097;
/// Bytes checked on either side of the destination.
const GUARD: usize = 16;
/// What the guard bytes hold.
const GUARD_BYTE: u8 = 0xa5;
/// The source span: every alignment, the longest copy.
const SRC_SPAN: usize = 8 + MAX_LEN;
/// The destination span: the guards, every alignment, the longest copy.
const DEST_SPAN: usize = GUARD + 8 + MAX_LEN + GUARD;

/// The source's byte `i` in case `case`: differs between neighbouring cases, so that a
/// copy left over from the last case does not pass.
fn pattern(case: u32, i: usize) -> u8 {
    (i as u32)
        .wrapping_mul(7)
        .wrapping_add(case.wrapping_mul(13))
        .wrapping_add(i as u32 >> 8) as u8
}

/// The first failure: alignments, length, and the offset from the destination's start
/// of the first wrong byte (negative within the guard before it).
struct Failure {
    src_align: usize,
    dest_align: usize,
    len: usize,
    at: isize,
}

/// The span a move case uses: the guard, the source's alignment and the shift down
/// before the source, the longest move, the shift up and the guard after it.
const MOVE_SPAN: usize = GUARD + 8 + 8 + MAX_LEN + 8 + GUARD;
const _: () = assert!(MOVE_SPAN <= SRC_SPAN.next_multiple_of(8) + DEST_SPAN);

/// What `run` needs: both spans, each rounded up to an 8-byte boundary.
const AREA: usize = 8 + SRC_SPAN.next_multiple_of(8) + DEST_SPAN;

/// Runs every case over `area` (at least `AREA` bytes of memory no one else uses), logs
/// the result and ends QEMU.
///
/// # Safety
///
/// `area` must be valid for writes of `area_len` bytes, used by nothing else from now on.
pub unsafe fn run(area: *mut u8, area_len: usize) -> ! {
    if area_len < AREA {
        fw_error!("memcpy check: {} B of buffers, {} needed", area_len, AREA);
        crate::exit_failure();
    }
    // Both spans start on 8-byte boundaries, so that each alignment is the offset.
    let base = area.wrapping_add(area.align_offset(8));
    let src = base;
    let dest = base.wrapping_add(SRC_SPAN.next_multiple_of(8));
    let (mut cases, mut failed) = (0u32, 0u32);
    let mut first = None;
    for src_align in 0..8 {
        for dest_align in 0..8 {
            for len in (0..=96).chain(LONG) {
                // SAFETY: both spans lie in `area` (checked above), which is this
                // function's alone; every byte read was written first.
                let fault = unsafe { case(src, dest, src_align, dest_align, len, cases) };
                cases += 1;
                if let Some(at) = fault {
                    failed += 1;
                    first.get_or_insert(Failure {
                        src_align,
                        dest_align,
                        len,
                        at,
                    });
                }
            }
        }
    }
    fw_info!("memcpy check: {} cases, {} failed", cases, failed);
    let copy_failure = first;
    // The move and the clear over the area from `base` (both spans; see `MOVE_SPAN`).
    let (mut move_cases, mut move_failed, mut move_first) = (0u32, 0u32, None);
    for src_align in 0..8 {
        for shift in -8..=8isize {
            for len in (0..=96).chain(LONG) {
                // SAFETY: as above; `move_case` stays within `MOVE_SPAN`, which fits.
                let fault = unsafe { move_case(base, src_align, shift, len, move_cases) };
                move_cases += 1;
                if let Some(at) = fault {
                    move_failed += 1;
                    move_first.get_or_insert((src_align, shift, len, at));
                }
            }
        }
    }
    fw_info!(
        "memmove check: {} cases, {} failed",
        move_cases,
        move_failed
    );
    let (mut clear_cases, mut clear_failed, mut clear_first) = (0u32, 0u32, None);
    for align in 0..8 {
        for len in (0..=96).chain(LONG) {
            // SAFETY: as above; `clear_case` stays within `DEST_SPAN`.
            let fault = unsafe { clear_case(base, align, len, clear_cases) };
            clear_cases += 1;
            if let Some(at) = fault {
                clear_failed += 1;
                clear_first.get_or_insert((align, len, at));
            }
        }
    }
    fw_info!(
        "memclr check: {} cases, {} failed",
        clear_cases,
        clear_failed
    );
    if let Some(f) = copy_failure {
        fw_error!(
            "memcpy check: first failure at src align {}, dest align {}, length {}: byte {} wrong",
            f.src_align,
            f.dest_align,
            f.len,
            f.at
        );
    }
    if let Some((src_align, shift, len, at)) = move_first {
        fw_error!(
            "memmove check: first failure at src align {}, shift {}, length {}: byte {} wrong",
            src_align,
            shift,
            len,
            at
        );
    }
    if let Some((align, len, at)) = clear_first {
        fw_error!(
            "memclr check: first failure at align {}, length {}: byte {} wrong",
            align,
            len,
            at
        );
    }
    let (cmp_cases, cmp_failed, cmp_first) = comparisons(base);
    fw_info!("memcmp check: {} cases, {} failed", cmp_cases, cmp_failed);
    if let Some((a_align, b_align, len, at)) = cmp_first {
        fw_error!(
            "memcmp check: first failure at align {} and {}, length {}, difference at {}",
            a_align,
            b_align,
            len,
            at
        );
    }
    let (div_cases, div_failed, div_first) = divisions();
    fw_info!("uldivmod check: {} cases, {} failed", div_cases, div_failed);
    if let Some((n, d)) = div_first {
        fw_error!("uldivmod check: first failure at {} / {}", n, d);
    }
    if failed + move_failed + clear_failed + cmp_failed + div_failed == 0 {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        // Without a debugger attached, as `exit_failure`.
        loop {
            cortex_m::asm::bkpt();
        }
    }
    crate::exit_failure()
}

/// One case: fills the source and the guarded destination, copies `len` bytes through
/// `copy_nonoverlapping`, and returns the offset of the first wrong byte, if any.
///
/// # Safety
///
/// `src` valid for `SRC_SPAN` bytes, `dest` for `DEST_SPAN`, not overlapping.
unsafe fn case(
    src: *mut u8,
    dest: *mut u8,
    src_align: usize,
    dest_align: usize,
    len: usize,
    case: u32,
) -> Option<isize> {
    let window = GUARD + dest_align + len + GUARD;
    // SAFETY (all below): offsets within the spans the caller gave; volatile so that
    // LLVM makes no memset or memcpy of these loops.
    unsafe {
        for i in 0..len {
            ptr::write_volatile(src.add(src_align + i), pattern(case, i));
        }
        for i in 0..window {
            ptr::write_volatile(dest.add(i), GUARD_BYTE);
        }
        let to = black_box(dest.add(GUARD + dest_align));
        let from = black_box(src.add(src_align)).cast_const();
        ptr::copy_nonoverlapping(from, to, black_box(len));
        for i in 0..window {
            let start = GUARD + dest_align;
            let want = if (start..start + len).contains(&i) {
                pattern(case, i - start)
            } else {
                GUARD_BYTE
            };
            if ptr::read_volatile(dest.add(i)) != want {
                return Some(i as isize - start as isize);
            }
        }
    }
    None
}

/// One move case in the span at `base`: fills it with the pattern (each byte by its
/// place), moves `len` bytes from `src_align` past the start (after the guard and room
/// for the shift) to `shift` bytes from there through `ptr::copy`, and returns the offset
/// from the destination's start of the first byte that differs from what a move leaves:
/// the source's bytes, as they were, in the destination; every other byte unchanged.
///
/// # Safety
///
/// `base` valid for `MOVE_SPAN` bytes.
unsafe fn move_case(
    base: *mut u8,
    src_align: usize,
    shift: isize,
    len: usize,
    case: u32,
) -> Option<isize> {
    let from = GUARD + 8 + src_align;
    let to = from.wrapping_add_signed(shift);
    let window = from + len + 8 + GUARD;
    // SAFETY (all below): offsets within the span the caller gave (`window` is at most
    // `MOVE_SPAN`); volatile so that LLVM makes no memset or memmove of these loops.
    unsafe {
        for i in 0..window {
            ptr::write_volatile(base.add(i), pattern(case, i));
        }
        let dest = black_box(base.add(to));
        let src = black_box(base.add(from)).cast_const();
        ptr::copy(src, dest, black_box(len));
        for i in 0..window {
            let want = if (to..to + len).contains(&i) {
                pattern(case, i - to + from)
            } else {
                pattern(case, i)
            };
            if ptr::read_volatile(base.add(i)) != want {
                return Some(i as isize - to as isize);
            }
        }
    }
    None
}

/// One clear case: fills the guarded span at `base` with the pattern, zeroes `len` bytes
/// at `align` past the guard through `ptr::write_bytes`, and returns the offset from the
/// cleared bytes' start of the first wrong byte, if any.
///
/// # Safety
///
/// `base` valid for `DEST_SPAN` bytes.
unsafe fn clear_case(base: *mut u8, align: usize, len: usize, case: u32) -> Option<isize> {
    let start = GUARD + align;
    let window = start + len + GUARD;
    // SAFETY (all below): offsets within the span the caller gave; volatile as above.
    unsafe {
        for i in 0..window {
            ptr::write_volatile(base.add(i), pattern(case, i) | 1);
        }
        ptr::write_bytes(black_box(base.add(start)), 0, black_box(len));
        for i in 0..window {
            let want = if (start..start + len).contains(&i) {
                0
            } else {
                pattern(case, i) | 1
            };
            if ptr::read_volatile(base.add(i)) != want {
                return Some(i as isize - start as isize);
            }
        }
    }
    None
}

/// The dividends and divisors of the division check that are not pseudo-random: the
/// edges of 16, 32 and 64 bits, and what the firmware divides by.
const DIV_EDGES: [u64; 20] = [
    0,
    1,
    2,
    3,
    7,
    1_000,
    0xffff,
    0x1_0000,
    1_000_000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    0x1_2345_6789,
    999_999_999_999,
    1 << 63,
    (1 << 63) + 1,
    u64::MAX - 1,
    u64::MAX,
];

/// The division check: every pair of the edges and 44 pseudo-random values (xorshift,
/// each shifted right by a varying count so that every width occurs) as dividend and, but
/// for 0, as divisor, through `black_box` so that LLVM calls `__aeabi_uldivmod` for
/// each. Returns the cases, the failures and the first failure's operands.
fn divisions() -> (u32, u32, Option<(u64, u64)>) {
    let mut values = [0u64; 64];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for (i, value) in values.iter_mut().enumerate() {
        *value = match DIV_EDGES.get(i) {
            Some(&edge) => edge,
            None => {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x >> (i * 7 % 64)
            }
        };
    }
    let (mut cases, mut failed, mut first) = (0u32, 0u32, None);
    for &n in &values {
        for &d in values.iter().filter(|&&d| d != 0) {
            let (q, r) = (black_box(n) / black_box(d), black_box(n) % black_box(d));
            cases += 1;
            let holds = r < d && q.checked_mul(d).and_then(|m| m.checked_add(r)) == Some(n);
            if !holds {
                failed += 1;
                first.get_or_insert((n, d));
            }
        }
    }
    (cases, failed, first)
}

/// A comparison's failure: both alignments, the length, the place of the difference.
type CmpFailure = (usize, usize, usize, isize);

/// The comparison check over the area at `base` (two spans of 1504 bytes): every
/// alignment of each side, every length to 40 and 1500, each equal, then with one byte of
/// the second side's top bit flipped (at the first, the middle and the last byte), so
/// that it compares greater or smaller as the first side's byte has its top bit set or
/// not. Compares through `<[u8] as Ord>::cmp` on slices passed through `black_box` (core
/// calls `memcmp` for it). Returns the cases, the failures and the first failure's
/// alignments, length and place of the difference (-1: none).
///
/// # Safety
///
/// `base` valid for `2 * 1504` bytes, used by nothing else.
unsafe fn comparisons(base: *mut u8) -> (u32, u32, Option<CmpFailure>) {
    const SIDE: usize = 1504;
    let (a, b) = (base, base.wrapping_add(SIDE));
    let (mut cases, mut failed, mut first) = (0u32, 0u32, None);
    for a_align in 0..4 {
        for b_align in 0..4 {
            for len in (0..=40usize).chain([1500]) {
                let places = [None, Some(0), Some(len / 2), Some(len.wrapping_sub(1))];
                for at in places.into_iter().filter(|at| at.is_none_or(|at| at < len)) {
                    // SAFETY (all below): offsets within the two spans (alignment under 4
                    // plus at most 1500 bytes each); volatile so that LLVM makes no
                    // memcpy or memcmp of the loops.
                    let order = unsafe {
                        for i in 0..len {
                            let byte = pattern(cases, i);
                            ptr::write_volatile(a.add(a_align + i), byte);
                            let flip = if at == Some(i) { 0x80 } else { 0 };
                            ptr::write_volatile(b.add(b_align + i), byte ^ flip);
                        }
                        let x = core::slice::from_raw_parts(black_box(a.add(a_align)), len);
                        let y = core::slice::from_raw_parts(black_box(b.add(b_align)), len);
                        black_box(x).cmp(black_box(y))
                    };
                    let want = match at {
                        None => core::cmp::Ordering::Equal,
                        // SAFETY: as above.
                        Some(i) if unsafe { ptr::read_volatile(a.add(a_align + i)) } >= 0x80 => {
                            core::cmp::Ordering::Greater
                        }
                        Some(_) => core::cmp::Ordering::Less,
                    };
                    cases += 1;
                    if order != want {
                        failed += 1;
                        let place = at.map_or(-1, |i| i as isize);
                        first.get_or_insert((a_align, b_align, len, place));
                    }
                }
            }
        }
    }
    (cases, failed, first)
}
