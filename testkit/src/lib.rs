//! ringnet's test world: two or three stacks on a simulated wire, with memory leaked for
//! `'static` (test and host code only: the core itself never allocates).
//!
//! The scenario tests, the host's demo and its benchmarks build their stacks here:
//! [`pair`] or [`world_with`] for a [`World`], [`tcp_socket`] and [`udp_socket`] for
//! sockets with leaked rings, [`ep`] for an address on the wire, [`beside!`] for A's
//! blocking view while a server program runs on the other stack, [`client_of!`] for a
//! client connected that way, and [`MemStore`] for a transfer store in memory;
//! [`log_capture`] for the tests that read the log back; [`child_test`] for a test run
//! again in a child process.
#![deny(missing_docs)]

pub mod child_test;
pub mod log_capture;

use std::collections::HashMap;

use ringnet::sim::{Faults, PortQueue, Wire};
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::storage::PacketMetadata as WireMetadata;
use ringnet::smoltcp::wire::{EthernetAddress, Ipv4Cidr};
use ringnet::socket::udp::UdpBuffer;
use ringnet::transfer::{Store, StoreError};
use ringnet::{
    ArpQueueResources, Instant, IpEndpoint, Ipv4Address, SocketHandle, Stack, StackConfig,
    StackResources,
};

/// Binds `$sock`, the blocking view of A, while `$app` (a closure of B's stack and the
/// time) runs on B whenever A waits, and at least every `$tick` of the wire's time.
#[macro_export]
macro_rules! beside {
    ($w:ident, $app:expr, $sock:ident, $tick:expr) => {
        let wire = $w.wire;
        let (a, b) = $w.two($crate::A, $crate::B);
        let mut driver =
            $crate::__ringnet::sim::PeerWaiter::new(wire, $crate::A, b, $crate::B, $app)
                .with_app_tick($tick);
        let mut $sock = $crate::__ringnet::blocking::Blocking::new(a, &mut driver);
    };
}

/// Connects a new stream socket of A (rings `$rings`) to `$port` on B while `$app` (a
/// closure of B's stack and the time) runs on B, and binds `$sock`, the blocking view of
/// A, and `$conn`, the connected socket. `poll $server` stands for the closure that polls
/// `$server` with B's stack.
#[macro_export]
macro_rules! client_of {
    ($w:ident, poll $server:ident, $sock:ident, $conn:ident, $port:expr, $rings:expr) => {
        $crate::client_of!(
            $w,
            |b: &mut $crate::__ringnet::Stack<'static>, _: $crate::__ringnet::Instant| {
                $server.poll(b)
            },
            $sock,
            $conn,
            $port,
            $rings
        );
    };
    ($w:ident, $app:expr, $sock:ident, $conn:ident, $port:expr, $rings:expr) => {
        $crate::beside!(
            $w,
            $app,
            $sock,
            $crate::__ringnet::Duration::from_millis(50)
        );
        let $conn = $crate::tcp_socket($sock.stack(), $rings.0, $rings.1);
        $sock.connect($conn, $crate::ep($crate::B, $port)).unwrap();
    };
}

/// The ringnet the world is built on, for [`client_of!`] in crates that name it otherwise.
#[doc(hidden)]
pub use ringnet as __ringnet;

/// Ports of the stacks on the wire.
pub const A: usize = 0;
/// Port of the second stack.
pub const B: usize = 1;
/// Port of the third stack.
pub const C: usize = 2;

/// Sockets per stack.
pub const SOCKETS: usize = 16;
/// An Ethernet MTU.
pub const ETHERNET_MTU: usize = 1514;

/// Stacks on a wire of `PORTS` ports.
pub struct World<const PORTS: usize> {
    /// The wire, with the virtual clock.
    pub wire: &'static Wire<'static, PORTS>,
    /// One stack per port, named A, B, C.
    pub stacks: Vec<Stack<'static>>,
}

/// `n` zeroed bytes that live for the rest of the process.
pub fn leak(n: usize) -> &'static mut [u8] {
    vec![0u8; n].leak()
}

/// The address of the stack on `port`: 10.0.0.(port + 1).
pub fn ip(port: usize) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, port as u8 + 1)
}

/// An endpoint on the stack at `port`.
pub fn ep(port: usize, tcp_or_udp_port: u16) -> IpEndpoint {
    IpEndpoint::new(ip(port).into(), tcp_or_udp_port)
}

/// Stacks named A, B, C… on a wire with the given faults and seed, MTU `mtu`, `queue_bytes`
/// of queue per port.
pub fn world_with<const PORTS: usize>(
    faults: Faults,
    seed: u64,
    mtu: usize,
    queue_bytes: usize,
) -> World<PORTS> {
    let names = ["A", "B", "C", "D"];
    world_named(
        core::array::from_fn(|port| names[port]),
        faults,
        seed,
        mtu,
        queue_bytes,
    )
}

/// Like [`world_with`], with the stacks named `names` (a second wire in one program, whose
/// stacks must not share the first one's names in its logs and traces).
pub fn world_named<const PORTS: usize>(
    names: [&'static str; PORTS],
    faults: Faults,
    seed: u64,
    mtu: usize,
    queue_bytes: usize,
) -> World<PORTS> {
    let _ = env_logger::builder().is_test(true).try_init();
    let queues: [PortQueue<'static>; PORTS] = core::array::from_fn(|_| PortQueue {
        meta: vec![WireMetadata::EMPTY; 256].leak(),
        bytes: leak(queue_bytes),
        held_meta: vec![WireMetadata::EMPTY; 1].leak(),
        held_bytes: leak(mtu),
    });
    let wire: &'static Wire<'static, PORTS> =
        Box::leak(Box::new(Wire::new(queues, leak(mtu), faults, seed)));
    let stacks = (0..PORTS)
        .map(|port| {
            // Every other stack's table is built in place, the way the firmware builds its
            // own, so that every scenario runs on both kinds.
            let resources: &'static mut StackResources<'static, SOCKETS> = if port % 2 == 1 {
                StackResources::new_in(Box::leak(Box::new_uninit()))
            } else {
                Box::leak(Box::new(StackResources::new()))
            };
            let config = StackConfig {
                name: names[port],
                mac: mac(port),
                ip: Ipv4Cidr::new(ip(port), 24),
                gateway: None,
                seed: seed.wrapping_add(port as u64 * 7919),
            };
            let mut stack = Stack::new(config, &mut wire.port(port), resources, Instant::ZERO);
            // The same for the ARP queue.
            let queue: &'static mut ArpQueueResources<'static, ARP_QUEUE_SLOTS, ARP_QUEUE_BYTES> =
                if port % 2 == 1 {
                    ArpQueueResources::new_in(Box::leak(Box::new_uninit()))
                } else {
                    Box::leak(Box::new(ArpQueueResources::new()))
                };
            stack
                .set_arp_queue(queue)
                .expect("a stack's first ARP queue");
            stack
        })
        .collect();
    World { wire, stacks }
}

/// Two stacks, A and B, on a 1514-byte MTU wire.
pub fn pair(faults: Faults, seed: u64) -> World<2> {
    world_with(faults, seed, ETHERNET_MTU, 256 * 1024)
}

/// A stream socket with rings of `rx` and `tx` bytes.
pub fn tcp_socket(stack: &mut Stack<'static>, rx: usize, tx: usize) -> SocketHandle {
    stack
        .tcp_socket(leak(rx), leak(tx))
        .expect("socket table has room")
}

/// Gives `stack` an ARP queue of [`ARP_QUEUE_SLOTS`] datagrams, [`ARP_QUEUE_BYTES`] bytes,
/// as every stack of a [`World`] has.
pub fn set_arp_queue(stack: &mut Stack<'static>) {
    let queue: &'static mut ArpQueueResources<'static, ARP_QUEUE_SLOTS, ARP_QUEUE_BYTES> =
        Box::leak(Box::new(ArpQueueResources::new()));
    stack
        .set_arp_queue(queue)
        .expect("a stack's first ARP queue");
}

/// Puts a new stack of `port`'s configuration in its place, as a board reset does:
/// nothing is sent on the way, and its connections are gone without a word to their
/// peers. It routes off-subnet traffic through `gateway` and has an ARP queue of
/// `SLOTS` datagrams and `BYTES` payload bytes ([`ARP_QUEUE_SLOTS`] and
/// [`ARP_QUEUE_BYTES`] for a queue like every [`World`] stack's), or none with either 0
/// (a stack that never called `set_arp_queue`).
pub fn new_stack<const PORTS: usize, const SLOTS: usize, const BYTES: usize>(
    w: &mut World<PORTS>,
    port: usize,
    gateway: Option<Ipv4Address>,
    seed: u64,
) {
    let names = ["A", "B", "C", "D"];
    let resources: &'static mut StackResources<'static, SOCKETS> =
        Box::leak(Box::new(StackResources::new()));
    let config = StackConfig {
        name: names[port],
        mac: mac(port),
        ip: Ipv4Cidr::new(ip(port), 24),
        gateway,
        seed,
    };
    let mut stack = Stack::new(config, &mut w.wire.port(port), resources, w.wire.now());
    if SLOTS > 0 && BYTES > 0 {
        let queue: &'static mut ArpQueueResources<'static, SLOTS, BYTES> =
            Box::leak(Box::new(ArpQueueResources::new()));
        stack
            .set_arp_queue(queue)
            .expect("a stack's first ARP queue");
    }
    w.stacks[port] = stack;
}

/// Datagrams a [`World`] stack's ARP queue holds.
pub const ARP_QUEUE_SLOTS: usize = 8;
/// Its payload bytes.
pub const ARP_QUEUE_BYTES: usize = 8192;

/// A datagram socket with `slots` datagrams and `bytes` payload bytes per ring.
pub fn udp_socket(stack: &mut Stack<'static>, slots: usize, bytes: usize) -> SocketHandle {
    let ring = || UdpBuffer {
        slots: vec![PacketMetadata::EMPTY; slots].leak(),
        payload: leak(bytes),
    };
    stack
        .udp_socket(ring(), ring())
        .expect("socket table has room")
}

impl<const PORTS: usize> World<PORTS> {
    /// The stacks on ports `i` and `j`, both mutable.
    pub fn two(&mut self, i: usize, j: usize) -> (&mut Stack<'static>, &mut Stack<'static>) {
        assert!(i != j);
        let (low, high) = self.stacks.split_at_mut(i.max(j));
        if i < j {
            (&mut low[i], &mut high[0])
        } else {
            (&mut high[0], &mut low[j])
        }
    }

    /// Runs every stack until the wire has been quiet for 50 ms (at most 10 s).
    pub fn settle(&mut self) {
        let mut hosts: Vec<(&mut Stack<'static>, usize)> = self
            .stacks
            .iter_mut()
            .enumerate()
            .map(|(port, s)| (s, port))
            .collect();
        ringnet::sim::settle(
            self.wire,
            &mut hosts,
            ringnet::Duration::from_millis(50),
            ringnet::Duration::from_secs(10),
        );
    }

    /// Runs every stack for `duration` of virtual time.
    pub fn run_for(&mut self, duration: ringnet::Duration) {
        let until = self.wire.now() + duration;
        while self.wire.now() < until {
            self.settle();
            if self.wire.now() < until {
                self.wire
                    .advance_to(self.wire.now() + ringnet::Duration::from_millis(10));
            }
        }
    }

    /// Polls every stack for `duration` of virtual time, each followed by `services` (given
    /// the stack's port and the stack), waking when a stack or the wire is due and at least
    /// every 10 ms (a service's own timers), never waiting out a quiet period as
    /// [`World::settle`] does.
    pub fn step_for(
        &mut self,
        duration: ringnet::Duration,
        mut services: impl FnMut(usize, &mut Stack<'static>),
    ) {
        let until = self.wire.now() + duration;
        while self.wire.now() < until {
            let now = self.wire.now();
            for (port, stack) in self.stacks.iter_mut().enumerate() {
                stack.poll(now, &mut self.wire.port(port));
                services(port, stack);
            }
            let next = self
                .stacks
                .iter_mut()
                .filter_map(|stack| stack.poll_at())
                .chain(self.wire.next_delivery())
                .fold(now + ringnet::Duration::from_millis(10), Instant::min)
                .clamp(now + ringnet::Duration::from_micros(1), until);
            self.wire.advance_to(next);
        }
    }

    /// Connects a new socket on A to a new listener on B at `port`; returns
    /// `(client on A, accepted on B, listener on B)`.
    pub fn connect(
        &mut self,
        port: u16,
        a_rings: (usize, usize),
        b_rings: (usize, usize),
    ) -> (SocketHandle, SocketHandle, SocketHandle) {
        let (a, b) = self.two(A, B);
        let client = tcp_socket(a, a_rings.0, a_rings.1);
        let backlog = tcp_socket(b, b_rings.0, b_rings.1);
        let listener = b.listen(port, &[backlog]).expect("listen");
        a.connect(client, ep(B, port)).expect("connect starts");
        // On a lossy wire the handshake may need retransmissions: wait up to a minute.
        let deadline = self.wire.now() + ringnet::Duration::from_secs(60);
        let (accepted, peer) = loop {
            self.settle();
            match self.stacks[B].accept(listener) {
                Ok(connection) => break connection,
                Err(e) if self.wire.now() >= deadline => panic!("no connection: {e}"),
                Err(_) => self
                    .wire
                    .advance_to(self.wire.now() + ringnet::Duration::from_millis(100)),
            }
        };
        assert_eq!(peer, self.stacks[A].local_addr(client).unwrap());
        (client, accepted, listener)
    }
}

/// Files in a HashMap; uploads kept apart until committed.
#[derive(Default)]
pub struct MemStore {
    /// The committed files.
    pub files: HashMap<String, Vec<u8>>,
}

/// An upload into a [`MemStore`].
pub struct MemUpload {
    name: String,
    data: Vec<u8>,
}

impl Store for MemStore {
    type Upload = MemUpload;
    /// A copy of the version opened: later commits never change what a reader reads.
    type Reader = Vec<u8>;
    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.files
            .get(name)
            .map(|f| f.len() as u64)
            .ok_or(StoreError::NotFound)
    }
    fn open(&mut self, name: &str) -> Result<(Vec<u8>, u64), StoreError> {
        let file = self.files.get(name).ok_or(StoreError::NotFound)?;
        Ok((file.clone(), file.len() as u64))
    }
    fn read_at(
        &mut self,
        file: &mut Vec<u8>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let n = (file.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&file[start..start + n]);
        Ok(n)
    }
    fn begin(&mut self, name: &str, _: u64) -> Result<MemUpload, StoreError> {
        Ok(MemUpload {
            name: name.into(),
            data: Vec::new(),
        })
    }
    fn write(&mut self, upload: &mut MemUpload, data: &[u8]) -> Result<(), StoreError> {
        upload.data.extend_from_slice(data);
        Ok(())
    }
    fn commit(&mut self, upload: MemUpload) -> Result<(), StoreError> {
        self.files.insert(upload.name, upload.data);
        Ok(())
    }
    fn abort(&mut self, _: MemUpload) {}
    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.files
            .remove(name)
            .map(drop)
            .ok_or(StoreError::NotFound)
    }
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        for (name, data) in &self.files {
            f(name, data.len() as u64);
        }
    }
}

/// The Ethernet address of the stack on `port`.
pub fn mac(port: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, port as u8 + 1])
}

/// An ARP `operation` as a raw Ethernet frame to `eth_dst`, from `from` (its MAC and
/// address) about `to` (the target's MAC, zero in a request, and address), built with
/// smoltcp's `Repr`s: a request or reply, spoofed or not.
pub fn arp_frame(
    operation: ringnet::smoltcp::wire::ArpOperation,
    from: (EthernetAddress, Ipv4Address),
    to: (EthernetAddress, Ipv4Address),
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    use ringnet::smoltcp::wire::{
        ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, EthernetRepr,
    };
    let arp = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: from.0,
        source_protocol_addr: from.1,
        target_hardware_addr: to.0,
        target_protocol_addr: to.1,
    };
    let eth = EthernetRepr {
        src_addr: from.0,
        dst_addr: eth_dst,
        ethertype: EthernetProtocol::Arp,
    };
    let mut frame = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut ethernet);
    arp.emit(&mut ArpPacket::new_unchecked(ethernet.payload_mut()));
    frame
}

/// A UDP datagram as a raw Ethernet frame, from `from` at `from_mac` to `to` at `to_mac`,
/// built with smoltcp's `Repr`s: what a raw socket sends, spoofed or not.
pub fn udp_datagram_frame(
    from_mac: EthernetAddress,
    from: (Ipv4Address, u16),
    to_mac: EthernetAddress,
    to: (Ipv4Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    use ringnet::smoltcp::wire::{IpProtocol, Ipv4Repr, UdpPacket, UdpRepr};
    let udp = UdpRepr {
        src_port: from.1,
        dst_port: to.1,
    };
    let ip4 = Ipv4Repr {
        src_addr: from.0,
        dst_addr: to.0,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    ipv4_frame(from_mac, to_mac, &ip4, |ip_payload, checksums| {
        udp.emit(
            &mut UdpPacket::new_unchecked(ip_payload),
            &from.0.into(),
            &to.0.into(),
            payload.len(),
            |p| p.copy_from_slice(payload),
            checksums,
        )
    })
}

/// A TCP header from port `from` to port `to` at sequence number `seq` carrying
/// `payload`: no flags, no acknowledgment, a window of 1024 and no options, for the
/// raw-frame builders below to set what their segment differs in.
fn tcp_repr<'p>(
    from: u16,
    to: u16,
    seq: u32,
    payload: &'p [u8],
) -> ringnet::smoltcp::wire::TcpRepr<'p> {
    use ringnet::smoltcp::wire::{TcpControl, TcpRepr, TcpSeqNumber};
    TcpRepr {
        src_port: from,
        dst_port: to,
        control: TcpControl::None,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 1024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    }
}

/// `tcp` in an IPv4 packet from `from` to `to`, in an Ethernet frame from `from_mac` to
/// `to_mac`, its checksums filled in.
fn tcp_frame(
    from_mac: EthernetAddress,
    from: Ipv4Address,
    to_mac: EthernetAddress,
    to: Ipv4Address,
    tcp: &ringnet::smoltcp::wire::TcpRepr<'_>,
) -> Vec<u8> {
    use ringnet::smoltcp::wire::{IpProtocol, Ipv4Repr, TcpPacket};
    let ip = Ipv4Repr {
        src_addr: from,
        dst_addr: to,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    ipv4_frame(from_mac, to_mac, &ip, |ip_payload, checksums| {
        tcp.emit(
            &mut TcpPacket::new_unchecked(ip_payload),
            &from.into(),
            &to.into(),
            checksums,
        )
    })
}

/// A connection request (SYN) as a raw Ethernet frame, from `from` at `from_mac` to `to`
/// at `to_mac`: what a raw socket sends to spoof a client that never answers the SYN-ACK.
pub fn tcp_syn(
    from_mac: EthernetAddress,
    from: (Ipv4Address, u16),
    to_mac: EthernetAddress,
    to: (Ipv4Address, u16),
    seq: u32,
) -> Vec<u8> {
    use ringnet::smoltcp::wire::{TcpControl, TcpRepr};
    let tcp = TcpRepr {
        control: TcpControl::Syn,
        window_len: 64240,
        max_seg_size: Some(1460),
        ..tcp_repr(from.1, to.1, seq, &[])
    };
    tcp_frame(from_mac, from.0, to_mac, to.0, &tcp)
}

/// A TCP segment as a raw Ethernet frame, from `from` at `from_mac` to `to` at `to_mac`:
/// sequence number `seq`, acknowledgment `ack` (the ACK flag with it), `control` (a RST,
/// a FIN, or none) and `payload`, a window of 1024 and no options. What a raw socket
/// sends into a connection whose numbers it has seen, or guessed.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    from_mac: EthernetAddress,
    from: (Ipv4Address, u16),
    to_mac: EthernetAddress,
    to: (Ipv4Address, u16),
    seq: u32,
    ack: Option<u32>,
    control: ringnet::smoltcp::wire::TcpControl,
    payload: &[u8],
) -> Vec<u8> {
    use ringnet::smoltcp::wire::{TcpRepr, TcpSeqNumber};
    let tcp = TcpRepr {
        control,
        ack_number: ack.map(|ack| TcpSeqNumber(ack as i32)),
        ..tcp_repr(from.1, to.1, seq, payload)
    };
    tcp_frame(from_mac, from.0, to_mac, to.0, &tcp)
}

/// An IPv4 packet `ip` in an Ethernet frame from `from_mac` to `to_mac`, its payload
/// written by `emit` (given the payload's bytes and the checksums to fill in).
pub fn ipv4_frame(
    from_mac: EthernetAddress,
    to_mac: EthernetAddress,
    ip: &ringnet::smoltcp::wire::Ipv4Repr,
    emit: impl FnOnce(&mut [u8], &ringnet::smoltcp::phy::ChecksumCapabilities),
) -> Vec<u8> {
    use ringnet::smoltcp::phy::ChecksumCapabilities;
    use ringnet::smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet};
    let mut frame = vec![0u8; 14 + ip.buffer_len() + ip.payload_len];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_src_addr(from_mac);
    eth.set_dst_addr(to_mac);
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let checksums = ChecksumCapabilities::default();
    let mut ip_packet = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.emit(&mut ip_packet, &checksums);
    emit(ip_packet.payload_mut(), &checksums);
    frame
}

/// Sends `data` from A's `client` with blocking calls (`send_all`, then a flush) to B's
/// `server`, which reads 64 bytes every 10 ms: the slow reader that fills the sender's
/// tx ring and makes the reader advertise zero windows. Returns what B read meanwhile;
/// the rest is still in B's rx ring.
pub fn send_to_slow_reader(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
    data: &[u8],
) -> Vec<u8> {
    let mut received = Vec::new();
    let mut next_read = w.wire.now();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver =
        ringnet::sim::PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, now: Instant| {
            if now >= next_read {
                let mut chunk = [0u8; 64];
                if let Ok(n) = b.recv(server, &mut chunk) {
                    received.extend_from_slice(&chunk[..n]);
                }
                next_read = now + ringnet::Duration::from_millis(10);
            }
        });
    let mut sock = ringnet::blocking::Blocking::new(a, &mut driver);
    sock.send_all(client, data).unwrap();
    sock.flush(client).unwrap();
    received
}

/// Everything `conn` receives until the peer closes (`recv` returns 0); an error first
/// fails the test.
pub fn read_to_end<W: ringnet::blocking::Waiter>(
    sock: &mut ringnet::blocking::Blocking<'_, 'static, W>,
    conn: SocketHandle,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv(conn, &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("recv: {e} after {} bytes", got.len()),
        }
    }
}

/// One HTTP response head on `conn` and its `Content-Length` body (none without one):
/// the status and the body. A head or body cut short fails the test.
pub fn http_response<W: ringnet::blocking::Waiter>(
    sock: &mut ringnet::blocking::Blocking<'_, 'static, W>,
    conn: SocketHandle,
) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(sock.recv(conn, &mut byte), Ok(1), "the head ended early");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("a text head");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    let mut body = vec![0u8; length];
    assert_eq!(
        sock.recv_exact(conn, &mut body),
        Ok(true),
        "the body ended early"
    );
    (head[9..12].parse().expect("a status"), body)
}

/// The names in `dir`, sorted: what a store left on disk, temporaries included.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("a directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Everything `conn` receives until the peer closes or the connection fails (a reset,
/// a timeout): what a client reads of an answer that may end either way.
pub fn read_until_gone<W: ringnet::blocking::Waiter>(
    sock: &mut ringnet::blocking::Blocking<'_, 'static, W>,
    conn: SocketHandle,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = sock.recv(conn, &mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Echoes `data` through `conn` with blocking calls and checks it comes back whole.
pub fn echo_round<W: ringnet::blocking::Waiter>(
    sock: &mut ringnet::blocking::Blocking<'_, 'static, W>,
    conn: SocketHandle,
    data: &[u8],
) {
    sock.send_all(conn, data).unwrap();
    let mut back = vec![0u8; data.len()];
    sock.recv_exact(conn, &mut back).unwrap();
    assert_eq!(back, data);
}

/// The counters of every row of `stack` on `port` (a listener and its backlog), added up
/// with `f`: what a service counted over all its connections.
pub fn port_total(
    stack: &Stack<'_>,
    port: u16,
    f: impl Fn(&ringnet::observe::SocketStats) -> u32,
) -> u32 {
    stack
        .stats_rows()
        .filter(|r| r.local_port == port)
        .map(|r| f(&r.stats))
        .sum()
}

/// A client of B that trickles: `trickle` runs on A's stack at once and then every
/// `every` of the wire's time (to send or to read a byte), while B's rows on `port` are
/// looked at every 100 ms. Returns how long after the start B first counted a slow
/// request there (its `slow_requests`: the minimum rate, or a request's deadline, cut the
/// client off), or `None` if it did not within `limit`.
pub fn trickle_until_slow<F>(
    sock: &mut ringnet::blocking::Blocking<
        '_,
        'static,
        ringnet::sim::PeerWaiter<'_, '_, 'static, F, 2>,
    >,
    port: u16,
    every: ringnet::Duration,
    limit: ringnet::Duration,
    mut trickle: impl FnMut(&mut Stack<'static>),
) -> Option<ringnet::Duration>
where
    F: FnMut(&mut Stack<'static>, Instant),
{
    let start = sock.stack().now();
    let mut next = start;
    loop {
        let now = sock.stack().now();
        if port_total(sock.waiter().peer(), port, |s| s.slow_requests) > 0 {
            return Some(now - start);
        }
        if now - start > limit {
            return None;
        }
        if now >= next {
            trickle(sock.stack());
            next = now + every;
        }
        sock.sleep(ringnet::Duration::from_millis(100));
    }
}
