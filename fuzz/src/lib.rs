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

/// What a client saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every byte the server sent it.
    pub received: Vec<u8>,
    /// Whether the server ended the connection (FIN or reset) before the time ran out.
    pub ended: bool,
}

/// One client's input and how it sends it, and the second client's, if any: the
/// `options` byte's bit 1 says there are two, and then the stream starts with the first
/// one's length (2 bytes, big-endian, cut to what there is).
pub fn clients(options: u8, script: Script, input: &[u8]) -> Vec<(&[u8], Script)> {
    if options & 2 == 0 || input.len() < 2 {
        return vec![(input, script)];
    }
    let len = usize::from(u16::from_be_bytes([input[0], input[1]])).min(input.len() - 2);
    let (first, second) = input[2..].split_at(len);
    vec![(first, script), (second, script)]
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

/// A client's progress.
struct Client<'i> {
    socket: SocketHandle,
    input: &'i [u8],
    script: Script,
    sent: usize,
    connected: bool,
    shut: bool,
    closed: bool,
    outcome: Outcome,
}

impl Client<'_> {
    /// Sends what the ring takes, reads what came; whether anything moved.
    fn step(&mut self, stack: &mut Stack<'_>, buf: &mut [u8]) -> bool {
        let mut progress = false;
        if !self.connected && !self.closed {
            match stack.poll_connect(self.socket) {
                Ok(()) => self.connected = true,
                Err(ConnectError::WouldBlock) => {}
                Err(_) => {
                    self.outcome.ended = true;
                    self.closed = true;
                }
            }
        }
        if !self.connected || self.closed {
            return progress;
        }
        while self.sent < self.input.len() {
            let end = self
                .input
                .len()
                .min(self.sent.saturating_add(self.script.chunk));
            match stack.send(self.socket, &self.input[self.sent..end]) {
                Ok(n) if n > 0 => {
                    self.sent += n;
                    progress = true;
                }
                _ => break,
            }
        }
        if self.sent == self.input.len() && self.script.fin && !self.shut {
            let _ = stack.shutdown_write(self.socket);
            self.shut = true;
            progress = true;
        }
        loop {
            match stack.recv(self.socket, buf) {
                Ok(0) => {
                    let _ = stack.close(self.socket);
                    break;
                }
                Ok(n) => {
                    self.outcome.received.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(RecvError::WouldBlock) => return progress,
                Err(_) => {
                    let _ = stack.abort(self.socket);
                    break;
                }
            }
        }
        self.outcome.ended = true;
        self.closed = true;
        true
    }
}

/// Runs connections from a client stack to `server` (started by `start` on the server's
/// stack, given `backlog` fresh sockets, listening on `port`): one client per entry of
/// `inputs`, all connecting at once, each sending its input as its script says and
/// reading everything, for at most `limit` of virtual time. Returns what each client saw,
/// the server, and the connections it still held when the time ran out.
pub fn exchange<V: Server>(
    port: u16,
    backlog: usize,
    start: impl FnOnce(&mut Stack<'_>, &[SocketHandle]) -> V,
    inputs: &[(&[u8], Script)],
    limit: Duration,
) -> (Vec<Outcome>, V, usize) {
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
    let mut client_rings: Vec<(Vec<u8>, Vec<u8>)> = inputs
        .iter()
        .map(|_| (vec![0u8; 4096], vec![0u8; 4096]))
        .collect();
    let mut server_rings: Vec<(Vec<u8>, Vec<u8>)> = (0..backlog)
        .map(|_| (vec![0u8; 2048], vec![0u8; 2048]))
        .collect();
    let mut client_stack = Stack::new(
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
    let remote = IpEndpoint::new(
        Ipv4Address::new(10, 0, 0, SERVER_PORT as u8 + 1).into(),
        port,
    );
    let mut clients: Vec<Client<'_>> = client_rings
        .iter_mut()
        .zip(inputs)
        .map(|((rx, tx), &(input, script))| {
            let socket = client_stack.tcp_socket(rx, tx).expect("room for a client");
            client_stack
                .connect(socket, remote)
                .expect("connect starts");
            Client {
                socket,
                input,
                script,
                sent: 0,
                connected: false,
                shut: false,
                closed: false,
                outcome: Outcome::default(),
            }
        })
        .collect();

    let mut buf = [0u8; 2048];
    let deadline = Instant::ZERO + limit;
    while wire.now() < deadline {
        let now = wire.now();
        let frames_before = wire.stats().sent;
        let mut progress = client_stack.poll(now, &mut wire.port(CLIENT_PORT));
        progress |= server_stack.poll(now, &mut wire.port(SERVER_PORT));
        server.poll(&mut server_stack);
        for client in &mut clients {
            progress |= client.step(&mut client_stack, &mut buf);
        }
        if clients.iter().all(|c| c.closed)
            && server.active() == 0
            && wire.next_delivery().is_none()
        {
            break;
        }
        if progress || wire.stats().sent != frames_before {
            continue;
        }
        let next = [
            client_stack.poll_at(),
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
    let still_active = server.active();
    let outcomes = clients.into_iter().map(|c| c.outcome).collect();
    (outcomes, server, still_active)
}
