//! The framing decoders on arbitrary bytes: never a panic, and the stream cut at any
//! points gives the same frames (and the same error) as the stream in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringnet::framing::{DelimiterDecoder, FrameError, LengthPrefixDecoder};

const MAX: usize = 64;

/// Every frame of `input` fed in pieces of `cuts` bytes (cycled), then the error if any.
fn length_prefixed(input: &[u8], cuts: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>, bool) {
    let mut decoder = LengthPrefixDecoder::<MAX>::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut cut = cuts.iter().cycle();
    while at < input.len() {
        let piece = usize::from(*cut.next().unwrap_or(&255)).max(1);
        let end = input.len().min(at + piece);
        let mut chunk = &input[at..end];
        while !chunk.is_empty() {
            match decoder.decode(chunk) {
                Ok((used, frame)) => {
                    assert!(used <= chunk.len(), "consumed more than given");
                    if let Some(frame) = frame {
                        assert!(frame.len() <= MAX);
                        frames.push(frame.to_vec());
                    } else {
                        assert_eq!(used, chunk.len(), "stopped early without a frame");
                    }
                    chunk = &chunk[used..];
                }
                Err(e) => return (frames, Some(e), false),
            }
        }
        at = end;
    }
    (frames, None, decoder.is_idle())
}

fn delimited(input: &[u8], cuts: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>, bool) {
    let mut decoder = DelimiterDecoder::<MAX>::new(b'\n');
    let mut frames = Vec::new();
    let mut at = 0;
    let mut cut = cuts.iter().cycle();
    while at < input.len() {
        let piece = usize::from(*cut.next().unwrap_or(&255)).max(1);
        let end = input.len().min(at + piece);
        let mut chunk = &input[at..end];
        while !chunk.is_empty() {
            match decoder.decode(chunk) {
                Ok((used, frame)) => {
                    assert!(used <= chunk.len() && used > 0 || frame.is_some());
                    if let Some(frame) = frame {
                        assert!(!frame.contains(&b'\n'));
                        frames.push(frame.to_vec());
                    }
                    chunk = &chunk[used..];
                }
                Err(e) => return (frames, Some(e), false),
            }
        }
        at = end;
    }
    (frames, None, decoder.is_idle())
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (cuts, input) = rest.split_at(usize::from(n % 8).min(rest.len()));
    let whole = length_prefixed(input, &[]);
    assert_eq!(length_prefixed(input, cuts), whole);
    let whole = delimited(input, &[]);
    let pieces = delimited(input, cuts);
    // A frame too long is found as soon as it is: the reported length may differ with
    // the cuts, so only the kind of error is compared.
    assert_eq!(pieces.0, whole.0);
    assert_eq!(pieces.1.is_some(), whole.1.is_some());
    assert_eq!(pieces.2, whole.2);
    // Every whole frame re-encodes to the bytes it came from.
    let mut out = [0u8; MAX + 4];
    for frame in &whole.0 {
        let n = ringnet::framing::encode_delimited(frame, b'\n', &mut out).unwrap();
        assert_eq!(out[n - 1], b'\n');
    }
});
