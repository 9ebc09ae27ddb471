//! The memcpy check (feature `memcpy-check`): at boot, instead of the stack, the image
//! copies through its own `__aeabi_memcpy` (`mem`) at every source and destination
//! alignment 0..8 and every length 0..=96, and at lengths 1500 and 4097, into a
//! guard-banded destination, compares each copy byte by byte with its source and the
//! guard bytes around it with what they held, logs
//! `memcpy check: <cases> cases, <failed> failed` (and the first failure's parameters),
//! and ends QEMU with success when none failed. `scripts/test-firmware.sh` boots it.
//!
//! The copies are `core::ptr::copy_nonoverlapping` on pointers and lengths passed
//! through `black_box`, so that LLVM cannot inline them: each is a call to
//! `__aeabi_memcpy` (the disassembly of the check's image shows it). The buffers are the
//! services' rings, which this image never hands to the stack.

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
    let Some(f) = first else {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        // Without a debugger attached, as `exit_failure`.
        loop {
            cortex_m::asm::bkpt();
        }
    };
    fw_error!(
        "memcpy check: first failure at src align {}, dest align {}, length {}: byte {} wrong",
        f.src_align,
        f.dest_align,
        f.len,
        f.at
    );
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
