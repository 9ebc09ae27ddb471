//! What the fuzz targets share: two ringnet stacks on the simulated wire, a server on one
//! and a client on the other that sends the fuzz input as a TCP stream.
//!
//! Everything is built afresh for each input, in memory owned by the call (nothing is
//! leaked, so libFuzzer's leak check stays quiet and no state carries over between
//! inputs: a crash replays from its input alone). The clock is virtual and jumps to the
//! next timer, so idle timeouts of a minute cost nothing.

use ringnet::http::HttpServer;
use ringnet::sim::{Faults, PortQueue, Wire};
use ringnet::smoltcp::storage::PacketMetadata;
use ringnet::smoltcp::wire::{EthernetAddress, Ipv4Cidr};
use ringnet::socket::tcp::{ConnectError, RecvError};
use ringnet::transfer::{Store, TransferServer};
use ringnet::{
    Duration, Instant, IpEndpoint, Ipv4Address, SocketHandle, Stack, StackConfig, StackResources,
};

/// A server under test, polled after every poll of its stack.
pub trait Server {
    /// One turn of the server.
    fn poll(&mut self, stack: &mut Stack<'_>);
    /// Its next timer.
    fn poll_at(&self) -> Option<Instant>;
    /// Connections it still holds.
    fn active(&self) -> usize;
}

impl<S: Store, const CONNS: usize> Server for TransferServer<S, CONNS> {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        TransferServer::poll(self, stack)
    }
    fn poll_at(&self) -> Option<Instant> {
        TransferServer::poll_at(self)
    }
    fn active(&self) -> usize {
        TransferServer::active(self)
    }
}

impl<S: Store, const CONNS: usize, const SNAPSHOT: usize> Server
    for HttpServer<S, CONNS, SNAPSHOT>
{
    fn poll(&mut self, stack: &mut Stack<'_>) {
        HttpServer::poll(self, stack)
    }
    fn poll_at(&self) -> Option<Instant> {
        HttpServer::poll_at(self)
    }
    fn active(&self) -> usize {
        HttpServer::active(self)
    }
}

/// How the client sends the input.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// Bytes handed to each `send` (at least 1): the stream cut at different points.
    pub chunk: usize,
    /// Whether the client shuts down writing (FIN) after the input.
    pub fin: bool,
}

impl Script {
    /// The script told by the input's first byte, and the rest of the input.
    pub fn split(data: &[u8]) -> Option<(Script, &[u8])> {
        let (&first, rest) = data.split_first()?;
        let chunk = match first & 0x7f {
            0 => usize::MAX,
            n => usize::from(n),
        };
        Some((
            Script {
                chunk,
                fin: first & 0x80 != 0,
            },
            rest,
        ))
    }
}

/// What the client saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every byte the server sent.
    pub received: Vec<u8>,
    /// Whether the server ended the connection (FIN or reset) before the time ran out.
    pub ended: bool,
    /// Connections the server still held when the time ran out.
    pub still_active: usize,
}

const SERVER_PORT: usize = 1;
const CLIENT_PORT: usize = 0;
const MTU: usize = 1514;
const SOCKETS: usize = 8;

fn config(port: usize, name: &'static str) -> StackConfig {
    StackConfig {
        name,
        mac: EthernetAddress([0x02, 0, 0, 0, 0, port as u8 + 1]),
        ip: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, port as u8 + 1), 24),
        gateway: None,
        seed: 13 + port as u64,
    }
}

/// Runs one connection from a client stack to `server` (started by `start` on the
/// server's stack, given `backlog` fresh sockets, listening on `port`): the client sends
/// `input` as `script` says and reads everything, for at most `limit` of virtual time.
pub fn exchange<V: Server>(
    port: u16,
    backlog: usize,
    start: impl FnOnce(&mut Stack<'_>, &[SocketHandle]) -> V,
    input: &[u8],
    script: Script,
    limit: Duration,
) -> (Outcome, V) {
    let mut queue_meta = [[PacketMetadata::EMPTY; 64], [PacketMetadata::EMPTY; 64]];
    let mut queue_bytes = [vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]];
    let mut held_meta = [[PacketMetadata::EMPTY; 1], [PacketMetadata::EMPTY; 1]];
    let mut held_bytes = [vec![0u8; MTU], vec![0u8; MTU]];
    let mut scratch = vec![0u8; MTU];
    let [qm0, qm1] = &mut queue_meta;
    let [qb0, qb1] = &mut queue_bytes;
    let [hm0, hm1] = &mut held_meta;
    let [hb0, hb1] = &mut held_bytes;
    let queues = [
        PortQueue {
            meta: qm0,
            bytes: qb0,
            held_meta: hm0,
            held_bytes: hb0,
        },
        PortQueue {
            meta: qm1,
            bytes: qb1,
            held_meta: hm1,
            held_bytes: hb1,
        },
    ];
    let wire: Wire<'_, 2> = Wire::new(queues, &mut scratch, Faults::NONE, 1);

    let mut client_table = StackResources::<SOCKETS>::new();
    let mut server_table = StackResources::<SOCKETS>::new();
    let mut client_rings = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut server_rings: Vec<(Vec<u8>, Vec<u8>)> = (0..backlog)
        .map(|_| (vec![0u8; 2048], vec![0u8; 2048]))
        .collect();
    let mut client = Stack::new(
        config(CLIENT_PORT, "client"),
        &mut wire.port(CLIENT_PORT),
        &mut client_table,
        Instant::ZERO,
    );
    let mut server_stack = Stack::new(
        config(SERVER_PORT, "server"),
        &mut wire.port(SERVER_PORT),
        &mut server_table,
        Instant::ZERO,
    );
    let sockets: Vec<SocketHandle> = server_rings
        .iter_mut()
        .map(|(rx, tx)| {
            server_stack
                .tcp_socket(rx, tx)
                .expect("room for the backlog")
        })
        .collect();
    let mut server = start(&mut server_stack, &sockets);
    let conn = client
        .tcp_socket(&mut client_rings.0, &mut client_rings.1)
        .expect("room for the client");
    let remote = IpEndpoint::new(
        Ipv4Address::new(10, 0, 0, SERVER_PORT as u8 + 1).into(),
        port,
    );
    client.connect(conn, remote).expect("connect starts");

    let mut outcome = Outcome::default();
    let mut sent = 0;
    let mut connected = false;
    let mut shut = false;
    let mut closed = false;
    let mut buf = [0u8; 2048];
    let deadline = Instant::ZERO + limit;
    while wire.now() < deadline {
        let now = wire.now();
        let frames_before = wire.stats().sent;
        let mut progress = client.poll(now, &mut wire.port(CLIENT_PORT));
        progress |= server_stack.poll(now, &mut wire.port(SERVER_PORT));
        server.poll(&mut server_stack);
        if !connected {
            match client.poll_connect(conn) {
                Ok(()) => connected = true,
                Err(ConnectError::WouldBlock) => {}
                Err(_) => {
                    outcome.ended = true;
                    closed = true;
                }
            }
        }
        if connected && !closed {
            while sent < input.len() {
                let end = input.len().min(sent.saturating_add(script.chunk));
                match client.send(conn, &input[sent..end]) {
                    Ok(n) if n > 0 => {
                        sent += n;
                        progress = true;
                    }
                    _ => break,
                }
            }
            if sent == input.len() && script.fin && !shut {
                let _ = client.shutdown_write(conn);
                shut = true;
                progress = true;
            }
            loop {
                match client.recv(conn, &mut buf) {
                    Ok(0) => {
                        outcome.ended = true;
                        closed = true;
                        let _ = client.close(conn);
                        progress = true;
                        break;
                    }
                    Ok(n) => {
                        outcome.received.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(RecvError::WouldBlock) => break,
                    Err(_) => {
                        outcome.ended = true;
                        closed = true;
                        let _ = client.abort(conn);
                        progress = true;
                        break;
                    }
                }
            }
        }
        if closed && server.active() == 0 && wire.next_delivery().is_none() {
            break;
        }
        if progress || wire.stats().sent != frames_before {
            continue;
        }
        let next = [
            client.poll_at(),
            server_stack.poll_at(),
            server.poll_at(),
            wire.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(deadline);
        wire.advance_to(next.max(now + Duration::from_micros(1)).min(deadline));
    }
    outcome.still_active = server.active();
    (outcome, server)
}
