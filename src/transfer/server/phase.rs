//! A connection's state: its socket and pending frames, its request decoder, and the
//! phase of the protocol it is in.

use sha2::Sha256;

use super::super::wire::{Digest, MAX_FRAME, MAX_NAME, TRAILER_FRAME};
use crate::framing::LengthPrefixDecoder;
use crate::services::connection::{self, HoldsUpload};
use heapless::String;
use smoltcp::time::{Duration, Instant};

pub(super) enum Phase<U, R> {
    /// Reading the request frame, on a connection accepted at `since`: the whole frame
    /// must be in within the idle timeout of that, so that a client trickling it a byte
    /// at a time (each byte keeping the idle timeout away) cannot hold the socket.
    Request { since: Instant },
    /// Receiving a put's data, hashed as it arrives: by the server (`hasher`), or by a
    /// store that [`Store::hashes`] the upload itself (`None`). `store_full`: since when
    /// the store has had no room ([`Store::upload_room`]), and when to ask it again.
    ///
    /// [`Store::hashes`]: super::super::store::Store::hashes
    /// [`Store::upload_room`]: super::super::store::Store::upload_room
    Receiving {
        upload: Option<U>,
        size: u64,
        received: u64,
        hasher: Option<Sha256>,
        store_full: Option<(Instant, Instant)>,
    },
    /// The data is in and hashed (`digest`; `None` while the store that hashes it has it);
    /// reading the trailer frame, byte for byte (`frame[..have]`), never past it. The
    /// upload stays staged until the trailer's digest is checked. As a request's, the
    /// frame must be whole within the idle timeout of `since`, when the data was in.
    Trailer {
        since: Instant,
        upload: Option<U>,
        size: u64,
        digest: Option<Digest>,
        frame: [u8; TRAILER_FRAME],
        have: usize,
    },
    /// Sending a get's data (after hashing the skipped prefix, for a resume), from the
    /// version of the file opened when the request came; hashed by the server (`hasher`),
    /// or by a store that [`Store::reads_hashed`] the file itself (`None`).
    ///
    /// [`Store::reads_hashed`]: super::super::store::Store::reads_hashed
    Sending {
        name: String<MAX_NAME>,
        reader: R,
        size: u64,
        start: u64,
        hashed: u64,
        sent: u64,
        hasher: Option<Sha256>,
    },
    /// Flushing the final frame, then closing. After a refusal the peer may still be
    /// sending (a refused upload): its bytes are read and dropped until it closes or
    /// pauses for [`DRAIN_PAUSE`] (`drain`), so that unread data cannot reset the
    /// connection and destroy the status before the peer reads it; for at most
    /// [`DRAIN_MAX`], so that a peer that never stops cannot keep the socket.
    Closing { drain: Option<Drain> },
}

/// How long a refused peer's silence ends the draining of its data.
pub(super) const DRAIN_PAUSE: Duration = Duration::from_secs(2);

/// The longest a refused peer's data is drained, however steadily it comes: a client
/// trickling a byte a second would otherwise hold its socket for ever. HTTP's lingering
/// close has the same cap.
pub(super) const DRAIN_MAX: Duration = Duration::from_secs(30);

/// The draining of a refused peer's data ([`Phase::Closing`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    /// When its silence ends the draining: [`DRAIN_PAUSE`] after the last byte it sent.
    pub(super) until: Instant,
    /// When the draining ends whatever the peer does: [`DRAIN_MAX`] after the refusal.
    pub(super) cap: Instant,
}

impl Drain {
    /// Draining that begins at `now`.
    pub(super) fn from(now: Instant) -> Drain {
        Drain {
            until: now + DRAIN_PAUSE,
            cap: now + DRAIN_MAX,
        }
    }
}

impl<U, R> HoldsUpload for Phase<U, R> {
    type Upload = U;

    fn take_upload(&mut self) -> Option<U> {
        match self {
            Phase::Receiving { upload, .. } | Phase::Trailer { upload, .. } => upload.take(),
            _ => None,
        }
    }
}

/// Frames not yet sent: room for two (an accept and, for an empty file, its status).
pub(super) const OUT_MAX: usize = 2 * (MAX_FRAME + 4);

pub(super) struct Connection<U, R> {
    pub(super) io: connection::Connection<OUT_MAX>,
    pub(super) phase: Phase<U, R>,
    pub(super) decoder: LengthPrefixDecoder<MAX_FRAME>,
}
