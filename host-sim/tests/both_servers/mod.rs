//! `serve --files DIR` on the simulated wire, for the tests that drive both of its
//! protocols against one store: the world's B runs the HTTP server and the transfer
//! server on one [`DirStore`], A is the client.

use std::path::Path;

use host_sim::store::{DirStore, HostStore, SharedStore};
use ringnet::blocking::{Blocking, Progress, Waiter};
use ringnet::http::HttpServer;
use ringnet::services::{StaticFile, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, TransferError, TransferServer};
use ringnet::{Duration, Instant, SocketHandle, Stack};
use ringnet_testkit::{ep, http_response, pair, tcp_socket, A, B};
use sha2::{Digest as _, Sha256};

pub const HTTP_PORT: u16 = 80;

/// The world's waiter, its type (a closure's) left unnamed.
pub struct Driver<'w>(&'w mut dyn Waiter);

impl Waiter for Driver<'_> {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn wait(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> Progress {
        self.0.wait(stack, deadline)
    }
}

pub type Client<'c, 'w> = Blocking<'c, 'static, Driver<'w>>;

/// The world's B runs both servers on one store in `dir`; `client` plays A, given the
/// blocking socket layer and two fresh connected sockets of 4 KiB rings: one to the HTTP
/// server, one to the transfer server.
pub fn with_both_servers(dir: &Path, client: impl FnOnce(&mut Client, SocketHandle, SocketHandle)) {
    let mut w = pair(Faults::NONE, 77);
    let store = SharedStore::new(HostStore::Dir(DirStore::new(dir).unwrap()));
    let mut backlog = || -> Vec<SocketHandle> {
        (0..2)
            .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
            .collect()
    };
    let (http_backlog, transfer_backlog) = (backlog(), backlog());
    let mut http: HttpServer<SharedStore, 2> =
        HttpServer::new(&mut w.stacks[B], HTTP_PORT, &http_backlog, store.clone()).unwrap();
    let mut transfer: TransferServer<SharedStore, 2> =
        TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &transfer_backlog, store).unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        http.poll(b);
        transfer.poll(b);
    })
    .with_app_tick(Duration::from_millis(20));
    let mut driver = Driver(&mut driver);
    let mut sock = Blocking::new(a, &mut driver);
    let web = tcp_socket(sock.stack(), 4096, 4096);
    let framed = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(web, ep(B, HTTP_PORT)).unwrap();
    sock.connect(framed, ep(B, TRANSFER_PORT)).unwrap();
    client(&mut sock, web, framed);
}

/// The head of an HTTP `PUT` of `size` bytes as `name`.
pub fn put_head(name: &str, size: usize) -> String {
    format!("PUT /{name} HTTP/1.1\r\nContent-Length: {size}\r\n\r\n")
}

/// An HTTP `PUT` of `body` as `f`, whole: the status.
pub fn http_put(sock: &mut Client, web: SocketHandle, body: &[u8]) -> u16 {
    sock.send_all(web, put_head("f", body.len()).as_bytes())
        .unwrap();
    sock.send_all(web, body).unwrap();
    http_response(sock, web).0
}

/// A transfer put of `data` as `f`, whole: what the client's put returns.
pub fn transfer_put(
    sock: &mut Client,
    framed: SocketHandle,
    data: &[u8],
) -> Result<transfer::Digest, TransferError> {
    transfer::put(
        &mut sock.stream(framed),
        "f",
        &StaticFile(data),
        &mut |_, _| {},
    )
}

pub fn digest(data: &[u8]) -> transfer::Digest {
    Sha256::digest(data).into()
}
