//! A small HTTP/1.1 server on the core: `no_std`, no heap, requests parsed by `httparse`,
//! files streamed from a [`Store`](crate::transfer::Store) a ring at a time.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the list of files (`text/plain`, one `name size` per line) |
//! | `GET /stats` | the socket counters as JSON |
//! | `GET /NAME`, `HEAD /NAME` | the file (`200`), a single `Range` (`206`, or `416`) |
//! | `PUT /NAME` | stores the body, committed only when complete (`201`); `411` without `Content-Length`, `413` when it does not fit |
//! | `OPTIONS` | `204` with `Allow` |
//! | `POST`, `DELETE`, … | `405` with `Allow`; a method never heard of: `501` |
//!
//! Connections persist in HTTP/1.1 unless `Connection: close`; HTTP/1.0 closes. A head
//! longer than [`HEAD_MAX`] gets `431` (`414` when the request line alone is too long), a
//! client silent for the idle timeout gets `408`, and when every connection is busy a new
//! client gets `503` from a socket kept in reserve.

mod request;
mod response;
mod server;

pub use server::{
    HttpServer, TokenTooLong, DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT, HEAD_MAX,
    SNAPSHOT_DEFAULT, TOKEN_MAX,
};
