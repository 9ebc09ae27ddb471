//! The boards this firmware runs on, one chosen when building: QEMU's `lm3s6965evb` (a
//! TI Stellaris LM3S6965 with its Ethernet controller, the default) or, with the feature
//! `sf2`, QEMU's `emcraft-sf2` (a Microsemi SmartFusion2 M2S010 with the MSS Ethernet MAC
//! and 64 MiB of DDR).
//!
//! Each board module gives the rest of the firmware the same names: [`NAME`], the core
//! clock SysTick counts ([`CLOCK_HZ`]), the console's byte output ([`console_write`]), the
//! NIC driver ([`Nic`]) with the memory it works in ([`NicMemory`]), the NIC's interrupt
//! ([`NicIrq`], [`NIC_IRQ`], [`on_nic_interrupt`]) and [`init`], called first thing at
//! boot. Everything above this module (the stack, the services, the loop) is the same on
//! both.

use core::sync::atomic::AtomicBool;

#[cfg(not(feature = "sf2"))]
mod lm3s6965;
#[cfg(not(feature = "sf2"))]
pub use lm3s6965::*;

#[cfg(feature = "sf2")]
mod sf2;
#[cfg(feature = "sf2")]
pub use sf2::*;

/// Set by the NIC's interrupt handler: a frame arrived while the loop was not looking.
pub static RX_PENDING: AtomicBool = AtomicBool::new(false);

/// The device interrupts' part of the vector table, IRQ 0 up to the NIC's, each entry
/// the `DefaultHandler` that serves the NIC's (cortex-m-rt's `device` feature: its
/// generic table has 240 entries, 960 bytes of flash). No other interrupt is unmasked, so
/// none past the NIC's can be taken.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
static __INTERRUPTS: [unsafe extern "C" fn(); NIC_IRQ as usize + 1] =
    [vector::DefaultHandler; NIC_IRQ as usize + 1];

mod vector {
    extern "C" {
        /// The `#[exception] DefaultHandler` in main.rs.
        pub fn DefaultHandler();
    }
}
