use heapless::{String, Vec};
use sha2::{Digest as _, Sha256};

use super::idle::{IdleWatch, MinRate, RateWatch, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE};
use super::{listen_for_service, retain_connections, ServiceError, MAX_CONNECTIONS};
use crate::digest::{finish, update, DigestHex};
use crate::handle::SocketHandle;
use crate::socket::tcp::{RecvError, SendError};
use crate::stack::Stack;
use crate::text::Text;
use smoltcp::time::{Duration, Instant};

/// A source could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError;

/// Something [`FileOut`] can send: a file on the host, one built into the firmware, or a
/// generated pattern.
pub trait FileSource {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes from `offset` into `buf`; returns how many (0 only at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError>;
}

/// The byte at `offset` of every ringnet pattern: `(offset * 7 + (offset >> 11)) mod 256`,
/// easy to regenerate anywhere, and not periodic over short spans.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(7).wrapping_add(offset >> 11) & 0xff) as u8
}

/// A generated pattern of `len` bytes (see [`pattern_byte`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern(pub u64);

impl FileSource for Pattern {
    fn len(&self) -> u64 {
        self.0
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let n = (self.0.saturating_sub(offset)).min(buf.len() as u64) as usize;
        // Within a 2048-byte block each byte is 7 more than the last: a run of such bytes
        // is written four at a time (see `fill_run`).
        let mut offset = offset;
        let mut out = &mut buf[..n];
        while !out.is_empty() {
            let in_block = (2048 - (offset % 2048)) as usize;
            let (run, rest) = out.split_at_mut(out.len().min(in_block));
            fill_run(run, pattern_byte(offset));
            offset += run.len() as u64;
            out = rest;
        }
        Ok(n)
    }
}

/// Fills `run` with `first`, `first + 7`, `first + 14`, ... (mod 256). A pattern is file
/// out's payload, so this is per-byte work on every bulk send. The run repeats every
/// [`PERIOD`] bytes (`7 * 256` is 0 mod 256): its first period is computed a word at a
/// time (`fill_words`), the rest copied from what is already written, doubling (256, 512,
/// 1024 bytes). Each copy's source and destination lie a multiple of four bytes apart, so
/// they share their alignment and the image's `memcpy` moves them eight words at a time
/// (`LDM`/`STM`): about 0.15 instructions a byte on a Cortex-M3, where computing every
/// word is seven instructions a word, 1.8 a byte.
fn fill_run(run: &mut [u8], first: u8) {
    let mut filled = run.len().min(PERIOD);
    fill_words(&mut run[..filled], first);
    while filled < run.len() {
        let (done, rest) = run.split_at_mut(filled);
        let n = rest.len().min(filled);
        rest[..n].copy_from_slice(&done[..n]);
        filled += n;
    }
}

/// How often a run of [`fill_run`] repeats itself, in bytes.
const PERIOD: usize = 256;

/// [`fill_run`]'s arithmetic, a word at a time: each word is the last one with 28 added
/// to every byte, carries kept inside the byte (a word of arithmetic and one store beat
/// copying from a table at whatever alignment the ring's free space and the table's
/// offset happen to have: on a Cortex-M3 a misaligned copy goes a byte, or a shifted
/// word, at a time).
fn fill_words(run: &mut [u8], first: u8) {
    const LOW: u32 = 0x7f7f_7f7f;
    const STEP: u32 = 0x1c1c_1c1c;
    let mut word = u32::from_le_bytes([
        first,
        first.wrapping_add(7),
        first.wrapping_add(14),
        first.wrapping_add(21),
    ]);
    let mut chunks = run.chunks_exact_mut(4);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word.to_le_bytes());
        // Every byte plus 28: the low seven bits of each byte take the sum (at most
        // 0x7f + 0x1c, so no carry leaves the byte), the top bit is flipped back in.
        word = ((word & LOW) + STEP) ^ (word & !LOW);
    }
    let tail = chunks.into_remainder();
    let len = tail.len();
    tail.copy_from_slice(&word.to_le_bytes()[..len]);
}

/// A file held in memory (for firmware: built into the image).
#[derive(Debug, Clone, Copy)]
pub struct StaticFile<'f>(pub &'f [u8]);

impl FileSource for StaticFile<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let start = usize::try_from(offset)
            .map_err(|_| ReadError)?
            .min(self.0.len());
        let n = (self.0.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

/// How long [`FileOut`] waits for an optional size request before it sends its file:
/// long enough that a request leaving a moment after the handshake (a loaded machine, a
/// slow link) is not taken for a client that wants the file, short enough to go unnoticed
/// by one that does.
pub const REQUEST_WAIT: Duration = Duration::from_millis(250);

/// Longest size request line accepted (`"<decimal bytes>\n"`).
const REQUEST_MAX: usize = 24;

enum OutState {
    /// Waiting up to [`REQUEST_WAIT`] for `"<size>\n"`.
    Deciding {
        until: Instant,
        request: Vec<u8, REQUEST_MAX>,
    },
    /// Sending the file (or a pattern of `Some(len)` bytes).
    Sending { pattern: Option<u64>, sent: u64 },
}

/// TCP file out: on connect, sends its file and closes (`nc HOST 7001 > f`). A client
/// that first sends a decimal size and a newline (`echo 1048576 | nc HOST 7001`) gets a
/// [`Pattern`] of that size instead. Reads the source only as fast as the tx ring drains.
pub struct FileOut<'f> {
    listener: SocketHandle,
    source: &'f dyn FileSource,
    connections: Vec<(SocketHandle, OutState, IdleWatch, RateWatch), MAX_CONNECTIONS>,
    idle_timeout: Duration,
    min_rate: MinRate,
}

impl<'f> FileOut<'f> {
    /// Listens on `port` with `backlog`, serving `source`.
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
        source: &'f dyn FileSource,
    ) -> Result<Self, ServiceError> {
        Ok(FileOut {
            listener: listen_for_service(stack, port, backlog, MAX_CONNECTIONS)?,
            source,
            connections: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
        })
    }

    /// Changes how long a connection may move no byte before it is reset (default
    /// [`DEFAULT_IDLE_TIMEOUT`]): a reader that stops reading holds its socket no longer.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Changes the rate a reader must take the file at, on average from its connect
    /// (default [`DEFAULT_MIN_RATE`]): a reader that opens its window a byte at a time,
    /// just inside each idle timeout, is reset once below it.
    pub fn set_min_rate(&mut self, rule: MinRate) {
        self.min_rate = rule;
    }

    /// When the first connection still waiting for a size line stops waiting and gets
    /// the file, or the first one times out unless it moves, or falls below the minimum
    /// rate.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|(_, state, idle, rate)| {
                let soonest = idle.deadline(timeout).min(rate.deadline());
                match state {
                    OutState::Deciding { until, .. } => (*until).min(soonest),
                    OutState::Sending { .. } => soonest,
                }
            })
            .min()
    }

    /// Accepts, decides, sends and closes; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((conn, _)) = stack.accept(self.listener) {
            let state = OutState::Deciding {
                until: now + REQUEST_WAIT,
                request: Vec::new(),
            };
            let watches = (
                IdleWatch::new(stack, conn, now),
                RateWatch::new(stack, conn, now),
            );
            let _ = self.connections.push((conn, state, watches.0, watches.1));
        }
        let source = self.source;
        let name = stack.name();
        let (timeout, rule) = (self.idle_timeout, self.min_rate);
        retain_connections(&mut self.connections, |(conn, state, idle, rate)| {
            let keep = 'serve: {
                let conn = *conn;
                if let OutState::Deciding { until, request } = state {
                    match decide(stack, conn, now, *until, request) {
                        Decision::Wait => break 'serve true,
                        Decision::Refuse => {
                            net_warn!("{}: file-out tcp{}: bad size request, closing", name, conn);
                            let _ =
                                stack.send(conn, b"error: expected a decimal size and a newline\n");
                            let _ = stack.close(conn);
                            break 'serve false;
                        }
                        Decision::Send(pattern) => {
                            let len = pattern.map_or(source.len(), |p| p);
                            net_info!("{}: file-out tcp{}: sending {} bytes", name, conn, len);
                            *state = OutState::Sending { pattern, sent: 0 };
                        }
                    }
                }
                let OutState::Sending { pattern, sent } = state else {
                    break 'serve true;
                };
                let pattern_source;
                let source: &dyn FileSource = match pattern {
                    Some(len) => {
                        pattern_source = Pattern(*len);
                        &pattern_source
                    }
                    None => source,
                };
                loop {
                    if *sent >= source.len() {
                        net_info!(
                            "{}: file-out tcp{}: all {} bytes queued, closing",
                            name,
                            conn,
                            sent
                        );
                        let _ = stack.close(conn);
                        break 'serve false;
                    }
                    // Read straight into the tx ring: no buffer, no copy.
                    let mut unreadable = false;
                    // The ring lends its free space in up to two pieces, read one after the other.
                    let mut offset = *sent;
                    let queued = stack.send_with(conn, usize::MAX, |room| {
                        // The file may end inside the first piece the ring lends: the
                        // second then gets nothing, and that is no read error.
                        if offset >= source.len() {
                            return 0;
                        }
                        match source.read_at(offset, room) {
                            Ok(n) if n > 0 => {
                                offset += n as u64;
                                n
                            }
                            _ => {
                                unreadable = true;
                                0
                            }
                        }
                    });
                    if unreadable {
                        net_warn!(
                            "{}: file-out tcp{}: source unreadable at {}, aborting",
                            name,
                            conn,
                            offset
                        );
                        let _ = stack.abort(conn);
                        break 'serve false;
                    }
                    match queued {
                        Ok(0) | Err(SendError::WouldBlock) => break 'serve true,
                        Ok(queued) => *sent += queued as u64,
                        Err(e) => {
                            net_warn!("{}: file-out tcp{}: {} after {} bytes", name, conn, e, sent);
                            let _ = stack.close(conn);
                            break 'serve false;
                        }
                    }
                }
            };
            keep && !idle.expired(stack, *conn, timeout, log_text!("file-out"))
                && !rate.reset_if_slow(stack, *conn, &rule, log_text!("file-out: reset"))
        });
    }
}

enum Decision {
    Wait,
    Refuse,
    Send(Option<u64>),
}

fn decide(
    stack: &mut Stack<'_>,
    conn: SocketHandle,
    now: Instant,
    until: Instant,
    request: &mut Vec<u8, REQUEST_MAX>,
) -> Decision {
    let mut byte = [0u8; 1];
    loop {
        match stack.recv(conn, &mut byte) {
            Ok(1) if byte[0] == b'\n' => {
                let text = core::str::from_utf8(request).unwrap_or("").trim_ascii();
                return match crate::text::parse_u64(text) {
                    Some(len) => Decision::Send(Some(len)),
                    None => Decision::Refuse,
                };
            }
            Ok(1) => {
                if request.push(byte[0]).is_err() {
                    return Decision::Refuse;
                }
            }
            // End of stream before any request: the client only wants the file.
            Ok(_) if request.is_empty() => return Decision::Send(None),
            Ok(_) => return Decision::Refuse,
            Err(RecvError::WouldBlock) if now < until => return Decision::Wait,
            Err(RecvError::WouldBlock) if request.is_empty() => return Decision::Send(None),
            Err(_) => return Decision::Refuse,
        }
    }
}

struct Incoming {
    conn: SocketHandle,
    idle: IdleWatch,
    rate: RateWatch,
    received: u64,
    hasher: Sha256,
    reply: Option<(String<96>, usize)>,
}

/// TCP file in: counts and hashes everything received until the peer shuts down its
/// write side, then replies `"<bytes> <sha256-hex>\n"` and closes (`nc -N HOST 7002 < f`).
pub struct FileIn {
    listener: SocketHandle,
    connections: Vec<Incoming, MAX_CONNECTIONS>,
    idle_timeout: Duration,
    min_rate: MinRate,
}

impl FileIn {
    /// Listens on `port` with `backlog`.
    pub fn new(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<Self, ServiceError> {
        Ok(FileIn {
            listener: listen_for_service(stack, port, backlog, MAX_CONNECTIONS)?,
            connections: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
        })
    }

    /// Changes how long a connection may move no byte before it is reset (default
    /// [`DEFAULT_IDLE_TIMEOUT`]): a sender that goes silent holds its socket no longer.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Changes the rate a sender must keep, on average from its connect (default
    /// [`DEFAULT_MIN_RATE`]): one that sends a byte just inside each idle timeout is reset
    /// once below it.
    pub fn set_min_rate(&mut self, rule: MinRate) {
        self.min_rate = rule;
    }

    /// When the first connection times out unless it moves, or falls below the minimum
    /// rate.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.idle_timeout;
        self.connections
            .iter()
            .map(|incoming| {
                incoming
                    .idle
                    .deadline(timeout)
                    .min(incoming.rate.deadline())
            })
            .min()
    }

    /// Accepts, hashes, replies and closes; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        while let Ok((conn, _)) = stack.accept(self.listener) {
            let _ = self.connections.push(Incoming {
                conn,
                idle: IdleWatch::new(stack, conn, now),
                rate: RateWatch::new(stack, conn, now),
                received: 0,
                hasher: Sha256::new(),
                reply: None,
            });
        }
        let name = stack.name();
        let (timeout, rule) = (self.idle_timeout, self.min_rate);
        retain_connections(&mut self.connections, |incoming| {
            let conn = incoming.conn;
            let keep = 'serve: {
                let conn = incoming.conn;
                while incoming.reply.is_none() {
                    // Hashed where they lie in the rx ring: no buffer, no copy.
                    let hasher = &mut incoming.hasher;
                    match stack.recv_with(conn, usize::MAX, |bytes| update(hasher, bytes)) {
                        Ok(0) => {
                            let digest = finish(core::mem::take(&mut incoming.hasher));
                            let mut line = String::new();
                            let mut text = Text::new(&mut line);
                            text.num(incoming.received).str(" ");
                            DigestHex(&digest).write_text(&mut text);
                            text.str("\n");
                            net_info!("{}: file-in tcp{}: {}", name, conn, line.trim_ascii_end());
                            incoming.reply = Some((line, 0));
                        }
                        Ok(n) => incoming.received += n as u64,
                        Err(RecvError::WouldBlock) => break 'serve true,
                        Err(e) => {
                            net_warn!(
                                "{}: file-in tcp{}: {} after {} bytes",
                                name,
                                conn,
                                e,
                                incoming.received
                            );
                            let _ = stack.close(conn);
                            break 'serve false;
                        }
                    }
                }
                let Some((line, sent)) = &mut incoming.reply else {
                    break 'serve true;
                };
                match stack.send(conn, &line.as_bytes()[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(SendError::WouldBlock) => break 'serve true,
                    Err(_) => {
                        let _ = stack.close(conn);
                        break 'serve false;
                    }
                }
                if *sent == line.len() {
                    let _ = stack.close(conn);
                    break 'serve false;
                }
                true
            };
            keep && !incoming
                .idle
                .expired(stack, conn, timeout, log_text!("file-in"))
                && !incoming
                    .rate
                    .reset_if_slow(stack, conn, &rule, log_text!("file-in: reset"))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_reads_match_pattern_bytes_at_any_offset() {
        let pattern = Pattern(5000);
        let mut buf = [0u8; 700];
        let n = pattern.read_at(4500, &mut buf).unwrap();
        assert_eq!(n, 500);
        assert!(buf[..n]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern_byte(4500 + i as u64)));
        assert_eq!(pattern.read_at(5000, &mut buf), Ok(0));
        assert_eq!(pattern.read_at(u64::MAX, &mut buf), Ok(0));
    }

    #[test]
    fn pattern_reads_across_block_boundaries_match_pattern_bytes() {
        let pattern = Pattern(1 << 40);
        let mut buf = [0u8; 5000];
        for (offset, len) in [
            (0, 5000),
            (2047, 2),
            (2040, 600),
            (4095, 4097),
            ((1 << 39) + 3, 4999),
        ] {
            let n = pattern.read_at(offset, &mut buf[..len]).unwrap();
            assert_eq!(n, len);
            for (i, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, pattern_byte(offset + i as u64), "offset {offset} + {i}");
            }
        }
    }

    #[test]
    fn runs_of_every_length_from_every_first_byte_match_the_pattern() {
        let mut buf = [0u8; 37];
        for first in 0..=255u8 {
            for len in 0..buf.len() {
                buf.fill(0xaa);
                fill_run(&mut buf[..len], first);
                for (i, &b) in buf[..len].iter().enumerate() {
                    assert_eq!(
                        b,
                        first.wrapping_add((7 * i) as u8),
                        "first {first}, len {len}, at {i}"
                    );
                }
                assert!(buf[len..].iter().all(|&b| b == 0xaa), "wrote past {len}");
            }
        }
    }

    #[test]
    fn runs_past_the_period_match_the_pattern_at_every_length_and_alignment() {
        let mut buf = [0u8; 2048 + 8];
        for start in 0..4 {
            for len in (0..=2048).filter(|len| len % 64 < 6 || len % 256 > 250) {
                buf.fill(0xaa);
                let first = (len * 3) as u8;
                fill_run(&mut buf[start..start + len], first);
                for (i, &b) in buf[start..start + len].iter().enumerate() {
                    assert_eq!(
                        b,
                        first.wrapping_add((7 * i) as u8),
                        "start {start}, len {len}, at {i}"
                    );
                }
                assert!(
                    buf[..start].iter().all(|&b| b == 0xaa),
                    "wrote before {start}"
                );
                assert!(
                    buf[start + len..].iter().all(|&b| b == 0xaa),
                    "wrote past {len}"
                );
            }
        }
    }

    #[test]
    fn static_file_reads_clamp_at_the_end() {
        let file = StaticFile(b"0123456789");
        let mut buf = [0u8; 4];
        assert_eq!(file.read_at(8, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"89");
        assert_eq!(file.read_at(11, &mut buf), Ok(0));
    }
}
