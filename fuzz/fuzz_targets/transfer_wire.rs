//! The transfer protocol's frame parser on arbitrary payloads: never a panic, and what
//! it accepts it can write again, and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringnet::transfer::wire::{Message, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let mut out = [0u8; MAX_FRAME + 4];
    let n = message
        .emit(&mut out)
        .expect("a parsed frame can be written again");
    let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, n - 4);
    assert!(len <= MAX_FRAME);
    assert_eq!(Message::parse(&out[4..n]), Ok(message));
    // The same bytes unless a status reason was unreadable (then replaced by a note).
    if !matches!(message, Message::Status { .. }) {
        assert_eq!(&out[4..n], data);
    }
});
