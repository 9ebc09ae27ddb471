//! Message boundaries over a byte stream: TCP's "sticky packets".
//!
//! TCP delivers bytes, not messages: two `send`s may arrive as one `recv`, one `send` as
//! several. Two remedies are given here, each as an encoder and an incremental decoder
//! that accepts the stream cut at any point and yields whole frames in bounded memory
//! (`MAX` bytes, fixed at compile time):
//!
//! - [`LengthPrefixDecoder`]: each frame is a 4-byte big-endian length, then the payload.
//! - [`DelimiterDecoder`]: each frame ends with a delimiter byte (e.g. `b'\n'`), which the
//!   payload must not contain.
//!
//! A frame longer than `MAX` is an error, never an overflow: the caller should close the
//! connection, since the stream cannot be resynchronised.

use core::fmt;

use crate::text::{self, Text};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// A framing error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A frame announced or grew beyond the decoder's maximum.
    TooLong {
        /// The frame's length, as announced or as far as it was read.
        len: usize,
        /// The decoder's maximum.
        max: usize,
    },
    /// The payload contains the delimiter, so it cannot be delimiter-framed.
    ContainsDelimiter,
    /// The output buffer is too small for the encoded frame.
    BufferTooSmall,
}

impl FrameError {
    /// Writes the error as its `Display` does, without `core::fmt` (for a reply).
    pub fn write_text(&self, out: &mut Text<'_>) {
        match self {
            FrameError::TooLong { len, max } => out
                .str("frame of ")
                .num(*len as u64)
                .str(" bytes exceeds the maximum of ")
                .num(*max as u64),
            FrameError::ContainsDelimiter => out.str("payload contains the delimiter"),
            FrameError::BufferTooSmall => out.str("output buffer too small"),
        };
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
    }
}

impl core::error::Error for FrameError {}

#[cfg(feature = "defmt")]
impl defmt::Format for FrameError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            FrameError::TooLong { len, max } => {
                defmt::write!(f, "frame of {} bytes exceeds the maximum of {}", len, max)
            }
            FrameError::ContainsDelimiter => defmt::write!(f, "payload contains the delimiter"),
            FrameError::BufferTooSmall => defmt::write!(f, "output buffer too small"),
        }
    }
}

/// The 4-byte prefix announcing a payload of `len` bytes; send it, then the payload.
pub fn length_prefix(len: usize) -> Result<[u8; PREFIX_LEN], FrameError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| FrameError::TooLong {
            len,
            max: u32::MAX as usize,
        })
}

/// Writes `payload` with its length prefix into `out`; returns the bytes written.
pub fn encode_length_prefixed(payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let total = PREFIX_LEN + payload.len();
    if out.len() < total {
        return Err(FrameError::BufferTooSmall);
    }
    out[..PREFIX_LEN].copy_from_slice(&length_prefix(payload.len())?);
    out[PREFIX_LEN..total].copy_from_slice(payload);
    Ok(total)
}

/// Writes `payload` and the `delimiter` into `out`; returns the bytes written.
pub fn encode_delimited(
    payload: &[u8],
    delimiter: u8,
    out: &mut [u8],
) -> Result<usize, FrameError> {
    if payload.contains(&delimiter) {
        return Err(FrameError::ContainsDelimiter);
    }
    let total = payload.len() + 1;
    if out.len() < total {
        return Err(FrameError::BufferTooSmall);
    }
    out[..payload.len()].copy_from_slice(payload);
    out[payload.len()] = delimiter;
    Ok(total)
}

/// Incremental decoder of length-prefixed frames of at most `MAX` bytes.
#[derive(Debug, Default)]
pub struct LengthPrefixDecoder<const MAX: usize> {
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    body: heapless::Vec<u8, MAX>,
    /// Set after a frame was returned, so the next call starts a new one.
    completed: bool,
}

impl<const MAX: usize> LengthPrefixDecoder<MAX> {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        LengthPrefixDecoder {
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            body: heapless::Vec::new(),
            completed: false,
        }
    }

    /// Whether the decoder is between frames (nothing partial buffered): a stream that
    /// ends here ended cleanly.
    pub fn is_idle(&self) -> bool {
        self.completed || (self.prefix_len == 0 && self.body.is_empty())
    }

    /// Consumes bytes from `input` until a frame is complete or `input` runs out.
    /// Returns how many bytes were consumed and the frame, if one completed; call again
    /// with the rest of the input for further frames.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<&[u8]>), FrameError> {
        if self.completed {
            self.completed = false;
            self.prefix_len = 0;
            self.body.clear();
        }
        let mut used = 0;
        if self.prefix_len < PREFIX_LEN {
            let take = (PREFIX_LEN - self.prefix_len).min(input.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&input[..take]);
            self.prefix_len += take;
            used += take;
            if self.prefix_len < PREFIX_LEN {
                return Ok((used, None));
            }
        }
        let len = u32::from_be_bytes(self.prefix) as usize;
        if len > MAX {
            return Err(FrameError::TooLong { len, max: MAX });
        }
        let take = (len - self.body.len()).min(input.len() - used);
        // Cannot fail: `len <= MAX` bounds the body.
        let _ = self.body.extend_from_slice(&input[used..used + take]);
        used += take;
        if self.body.len() == len {
            self.completed = true;
            Ok((used, Some(&self.body)))
        } else {
            Ok((used, None))
        }
    }
}

/// Incremental decoder of frames ended by a delimiter byte, at most `MAX` bytes each
/// (delimiter excluded).
#[derive(Debug)]
pub struct DelimiterDecoder<const MAX: usize> {
    delimiter: u8,
    body: heapless::Vec<u8, MAX>,
    completed: bool,
}

impl<const MAX: usize> DelimiterDecoder<MAX> {
    /// A decoder for frames ended by `delimiter`.
    pub fn new(delimiter: u8) -> Self {
        DelimiterDecoder {
            delimiter,
            body: heapless::Vec::new(),
            completed: false,
        }
    }

    /// Whether the decoder is between frames.
    pub fn is_idle(&self) -> bool {
        self.completed || self.body.is_empty()
    }

    /// Consumes bytes from `input` up to and including the next delimiter. Returns how
    /// many bytes were consumed and the frame (without its delimiter), if one completed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<&[u8]>), FrameError> {
        if self.completed {
            self.completed = false;
            self.body.clear();
        }
        let (chunk, found) = match input.iter().position(|&b| b == self.delimiter) {
            Some(at) => (&input[..at], true),
            None => (input, false),
        };
        if self.body.extend_from_slice(chunk).is_err() {
            return Err(FrameError::TooLong {
                len: self.body.len() + chunk.len(),
                max: MAX,
            });
        }
        if found {
            self.completed = true;
            Ok((chunk.len() + 1, Some(&self.body)))
        } else {
            Ok((chunk.len(), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Decodes `stream` fed in pieces cut at `cuts`, collecting every frame.
    fn decode_all<const MAX: usize>(
        stream: &[u8],
        cuts: &[usize],
        mut decode: impl FnMut(&[u8]) -> Result<(usize, Option<Vec<u8>>), FrameError>,
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        for piece in points.windows(2) {
            let mut input = &stream[piece[0]..piece[1]];
            while !input.is_empty() {
                let (used, frame) = decode(input)?;
                frames.extend(frame);
                input = &input[used..];
            }
        }
        Ok(frames)
    }

    proptest! {
        #[test]
        fn length_prefix_round_trips_at_any_cut(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let mut stream = Vec::new();
            for f in &frames {
                stream.extend_from_slice(&length_prefix(f.len()).unwrap());
                stream.extend_from_slice(f);
            }
            let mut decoder = LengthPrefixDecoder::<300>::new();
            let decoded = decode_all::<300>(&stream, &cuts, |input| {
                decoder.decode(input).map(|(n, f)| (n, f.map(<[u8]>::to_vec)))
            }).unwrap();
            prop_assert_eq!(decoded, frames);
            prop_assert!(decoder.is_idle());
        }

        #[test]
        fn delimiter_round_trips_at_any_cut(
            frames in proptest::collection::vec(proptest::collection::vec(0u8..255, 0..300), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let mut stream = Vec::new();
            let mut out = [0u8; 301];
            for f in &frames {
                let n = encode_delimited(f, 255, &mut out).unwrap();
                stream.extend_from_slice(&out[..n]);
            }
            let mut decoder = DelimiterDecoder::<300>::new(255);
            let decoded = decode_all::<300>(&stream, &cuts, |input| {
                decoder.decode(input).map(|(n, f)| (n, f.map(<[u8]>::to_vec)))
            }).unwrap();
            prop_assert_eq!(decoded, frames);
        }
    }

    #[test]
    fn announced_oversize_frame_is_an_error() {
        let mut decoder = LengthPrefixDecoder::<16>::new();
        assert_eq!(
            decoder.decode(&17u32.to_be_bytes()),
            Err(FrameError::TooLong { len: 17, max: 16 })
        );
    }

    #[test]
    fn undelimited_oversize_frame_is_an_error() {
        let mut decoder = DelimiterDecoder::<4>::new(b'\n');
        assert_eq!(decoder.decode(b"abc"), Ok((3, None)));
        assert_eq!(
            decoder.decode(b"de\n"),
            Err(FrameError::TooLong { len: 5, max: 4 })
        );
    }

    #[test]
    fn delimiter_in_payload_is_refused() {
        let mut out = [0u8; 8];
        assert_eq!(
            encode_delimited(b"a\nb", b'\n', &mut out),
            Err(FrameError::ContainsDelimiter)
        );
        assert_eq!(
            encode_length_prefixed(b"hello", &mut out[..6]),
            Err(FrameError::BufferTooSmall)
        );
    }

    #[test]
    fn two_frames_in_one_read_come_out_one_at_a_time() {
        let mut stream = [0u8; 32];
        let a = encode_length_prefixed(b"hello", &mut stream).unwrap();
        let b = encode_length_prefixed(b"world!", &mut stream[a..]).unwrap();
        let mut decoder = LengthPrefixDecoder::<64>::new();
        let (used, frame) = decoder.decode(&stream[..a + b]).unwrap();
        assert_eq!((used, frame), (a, Some(&b"hello"[..])));
        let (used, frame) = decoder.decode(&stream[a..a + b]).unwrap();
        assert_eq!((used, frame), (b, Some(&b"world!"[..])));
    }
}
