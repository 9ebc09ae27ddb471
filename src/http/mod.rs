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

//!
//! The modules, each importing only those above it in this list:
//!
//! | module | concern |
//! |---|---|
//! | `server` | [`HttpServer`]: settings, the connection table, accepting, polling |
//! | `connection` | one connection's steps: read a head, take an upload, send a body, linger; timeouts |
//! | `route` | acting on a request: what each method and target gets |
//! | `state` | what a connection keeps (its phase, head and queue), the shared snapshot, the limits |
//! | `request` | where a head ends, and the small `Request` parsed from it (`httparse`) |
//! | `target` | a request target's path and the store name it decodes to |
//! | `generated` | the file list and the stats as JSON |
//! | `response` | status lines, framing fields, and the table of short text answers |

mod connection;
mod generated;
mod request;
mod response;
mod route;
mod server;
mod state;
mod target;

pub use server::{HttpServer, TokenTooLong};
pub use state::{
    DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT, HEAD_MAX, SNAPSHOT_DEFAULT, TOKEN_MAX,
};
