//! A connection's state: its socket and pending frames, its request decoder, and the
//! phase of the protocol it is in.

use sha2::Sha256;

use super::super::wire::{Digest, MAX_FRAME, MAX_NAME, TRAILER_FRAME};
use crate::framing::LengthPrefixDecoder;
use crate::services::connection::{self, HoldsUpload};
use heapless::String;
use smoltcp::time::{Duration, Instant};

pub(super) enum Phase<U, R> {
    /// Reading the request frame.
    Request,
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
    /// upload stays staged until the trailer's digest is checked.
    Trailer {
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
    /// pauses for [`DRAIN_PAUSE`] (`drain_until`), so that unread data cannot reset the
    /// connection and destroy the status before the peer reads it.
    Closing { drain_until: Option<Instant> },
}

/// How long a refused peer's silence ends the draining of its data.
pub(super) const DRAIN_PAUSE: Duration = Duration::from_secs(2);

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
