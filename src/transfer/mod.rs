//! Verified file transfer over TCP (port [`TRANSFER_PORT`](crate::services::TRANSFER_PORT)),
//! in both directions, from both sides.
//!
//! TCP delivers bytes, not files: a transfer that stops early looks like a short file, and
//! a corrupted one like a good one. This protocol frames its requests with a length
//! prefix, announces sizes, and checks SHA-256 end to end, so a file is either complete
//! and verified or reported as failed, never half-there under its final name.
//!
//! A session is one connection and one file:
//!
//! - put: client → `Put{name, size}`; server → `Accept` (or a `Status` error and close);
//!   client → `size` raw bytes, then `Trailer{sha256}` (hashed while the bytes went out);
//!   server → `Status{Ok, sha256}` if its own digest of the data, hashed as it arrived,
//!   matches and the upload was committed, else `Status{DigestMismatch | SizeMismatch |
//!   …}`; close. Each side reads the data once; the server stages the whole upload and
//!   commits it only after the trailer checks.
//! - a put with a token: as a put, with `PutWithToken{name, size, token}`; a server given
//!   a token ([`TransferServer::set_token`]) answers any other put `Status{Unauthorized}`.
//! - get: client → `Get{name, offset}`; server → `Accept{size, offset}` (or a `Status`
//!   error); server → `size - offset` raw bytes, then `Status{Ok, sha256 of the whole
//!   file}`; close. A client resumes an interrupted get by asking from the length it kept.
//!
//! Frames are `u32` big-endian length + payload, payload = `"RNT2"` + kind + fields; see
//! [`wire`] and `docs/transfer.md` for the byte-level layout. A frame over 256 bytes, bad
//! magic, an unknown kind, a bad name: a `Status{BadRequest | BadName}` and the connection
//! closes. A version 1 request (`"RNT1"`, the digest in the request) is answered with a
//! version 1 `Status{BadRequest}` saying that only version 2 is served.

pub mod client;
pub mod server;
pub mod store;
pub mod wire;

pub use crate::digest::DigestHex;
pub use client::{
    get, get_request, get_status, get_with_buffer, put, put_request, put_trailer, put_with_buffer,
    put_with_token, SinkError, TransferError,
};
pub use server::TransferServer;
pub use store::{DigestSink, RamReader, RamStore, RamUpload, Store, StoreError};
pub use wire::{
    validate_name, validate_token, Digest, Message, NameError, Status, TokenError, WireError,
};
