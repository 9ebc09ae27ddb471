//! The frame inspector on arbitrary frames: an [`Inspector`] over a device that returns
//! the fuzz input as frames, first on its own (received and sent), then under a whole
//! stack's poll with a UDP socket and a TCP listener to match its events to. Never a panic.
//!
//! The input is frames, each a 2-byte big-endian length and the bytes. The first byte's
//! bits say whether each frame is first addressed to the stack (MAC and IPv4 destination)
//! and its checksums filled in, so that frames get past smoltcp's checks, and whether
//! the listener's backlog is named starved (a SYN for it is then held back).
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use ringnet::phy::{Acceptance, FrameLog, Inspector};
use ringnet::smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Cidr,
    Ipv4Packet, TcpPacket, UdpPacket,
};
use ringnet::socket::udp::UdpBuffer;
use ringnet::{Duration, Instant, Stack, StackConfig, StackResources};

const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
const IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

/// A device whose received frames are the fuzz input and whose sent frames are dropped.
struct Frames {
    queue: VecDeque<Vec<u8>>,
    scratch: Vec<u8>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Vec<u8>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.clear();
        self.0.resize(len, 0);
        f(self.0)
    }
}

impl Device for Frames {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.queue.pop_front()?;
        Some((Rx(frame), Tx(&mut self.scratch)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.scratch))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// Addresses `frame` to the stack and fills in its IPv4, TCP and UDP checksums.
fn address(frame: &mut [u8]) {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) else {
        return;
    };
    eth.set_dst_addr(MAC);
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return;
    };
    ip.set_dst_addr(IP);
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    match ip.next_header() {
        IpProtocol::Tcp => {
            if let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) {
                udp.fill_checksum(&src, &dst);
            }
        }
        _ => {}
    }
}

fn frames(data: &[u8], fix: bool) -> VecDeque<Vec<u8>> {
    let mut out = VecDeque::new();
    let mut rest = data;
    while rest.len() >= 2 && out.len() < 16 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut frame = rest[2..2 + len].to_vec();
        if fix {
            address(&mut frame);
        }
        out.push_back(frame);
        rest = &rest[2 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (fix, starved) = (flags & 1 == 1, flags & 2 == 2);

    // The inspector alone: every frame received, and sent.
    let mut device = Frames {
        queue: frames(rest, fix),
        scratch: Vec::new(),
    };
    let sent: Vec<Vec<u8>> = device.queue.iter().cloned().collect();
    let log = RefCell::new(FrameLog::for_interface(Acceptance {
        mac: MAC,
        cidr: Ipv4Cidr::new(IP, 24),
        checksum: ringnet::smoltcp::phy::ChecksumCapabilities::default(),
    }));
    if starved {
        log.borrow_mut().set_starved([7u16].into_iter());
    }
    {
        let mut inspector = Inspector::new(&mut device, &log);
        while let Some((rx, _tx)) = inspector.receive(Instant::ZERO) {
            rx.consume(|frame| frame.len());
        }
        for frame in &sent {
            if let Some(tx) = inspector.transmit(Instant::ZERO) {
                tx.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            }
        }
    }
    while log.borrow_mut().pop_front().is_some() {}
    log.borrow_mut().release_held_syn();

    // The inspector under a stack: the frames reach sockets.
    let mut device = Frames {
        queue: frames(rest, fix),
        scratch: Vec::new(),
    };
    let mut table = StackResources::<4>::new();
    let mut rings = [vec![0u8; 1024], vec![0u8; 1024]];
    let mut udp_slots = [[PacketMetadata::EMPTY; 2], [PacketMetadata::EMPTY; 2]];
    let mut udp_bytes = [vec![0u8; 512], vec![0u8; 512]];
    let config = StackConfig {
        name: "fuzz",
        mac: MAC,
        ip: Ipv4Cidr::new(IP, 24),
        gateway: None,
        seed: 1,
    };
    let mut stack = Stack::new(config, &mut device, &mut table, Instant::ZERO);
    let [rx, tx] = &mut rings;
    let backlog = stack.tcp_socket(rx, tx).unwrap();
    let listener = stack.listen(7, &[backlog]).unwrap();
    let [s0, s1] = &mut udp_slots;
    let [b0, b1] = &mut udp_bytes;
    let udp = stack
        .udp_socket(
            UdpBuffer {
                slots: s0,
                payload: b0,
            },
            UdpBuffer {
                slots: s1,
                payload: b1,
            },
        )
        .unwrap();
    stack.udp_bind(udp, 9000).unwrap();
    let mut now = Instant::ZERO;
    let mut buf = [0u8; 256];
    for _ in 0..20 {
        stack.poll(now, &mut device);
        while let Ok((socket, _)) = stack.accept(listener) {
            while let Ok(n) = stack.recv(socket, &mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
        while stack.recv_from(udp, &mut buf).is_ok() {}
        if device.queue.is_empty() {
            break;
        }
        now += Duration::from_millis(100);
    }
});
