use core::cell::RefCell;

use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Address, Ipv4Packet,
    TcpPacket,
};

use super::ingress::{classify, Acceptance, Discard, Ingress};
use super::mss::{tcp_flags, MssOption, ACK, FIN, RST, SYN};
use super::neighbours::HeardNeighbours;
use crate::rate::TokenBucket;

/// What the [`Inspector`] saw in one frame that the stack cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent {
    /// A UDP datagram arrived that smoltcp hands to a socket if one accepts it: every
    /// check of the interface passed ([`classify`](super::ingress::classify)).
    UdpIn {
        /// Its destination address (this interface's or a broadcast) and port.
        dst: IpEndpoint,
        /// Where it came from.
        src: IpEndpoint,
        /// Its payload length in bytes.
        payload_len: usize,
    },
    /// This stack sent a TCP segment.
    TcpOut {
        /// The sending (local) port.
        src_port: u16,
        /// The remote endpoint.
        dst: IpEndpoint,
        /// The raw window field (before scaling): zero means a zero window.
        window_field: u16,
        /// The sequence number after it, when it occupies sequence space (data, SYN or
        /// FIN; a bare ACK does not): a retransmission ends at or before what was sent.
        seq_end: Option<TcpSeqEnd>,
        /// Its acknowledgment number (0 without the ACK flag: a SYN): the next sequence
        /// number this stack expected when it sent it, at which alone a RST ends the
        /// connection. Not an `Option`, which would grow every event of the log by 4 B.
        ack: u32,
    },
    /// The MSS option of a SYN was lowered to what the socket's rings keep two segments
    /// of ([`mss`](super::mss)).
    MssLowered {
        /// The local port of the socket.
        port: u16,
        /// The peer.
        peer: IpEndpoint,
        /// The MSS the SYN offered.
        offered: u16,
        /// The MSS it offers now.
        left: u16,
        /// The peer's SYN, arriving (the MSS this stack sends by), or this stack's own,
        /// leaving (the MSS the peer sends by).
        incoming: bool,
    },
    /// The interface discards an IPv4 frame before any socket sees it.
    Discarded {
        /// Why.
        reason: Discard,
        /// The IPv4 source (unspecified when the header cannot be read).
        src: Ipv4Address,
        /// The IPv4 destination (likewise).
        dst: Ipv4Address,
        /// The destination port, when the reason concerns one ([`Discard::DuplicateSyn`]);
        /// 0 otherwise.
        port: u16,
    },
}

/// Capacity of a [`FrameLog`]: events between two drains. The stack drains after every
/// ingress frame and every egress round, so this only overflows with very many sockets.
const FRAME_LOG_CAPACITY: usize = 32;

/// Listener ports a [`FrameLog`] can name as starved at once.
const STARVED_PORTS: usize = 8;

/// The largest SYN the inspector holds back: Ethernet, IPv4 and TCP headers with options.
const HELD_SYN: usize = 14 + 60 + 60;

/// Listening ports whose MSS bounds a [`FrameLog`] keeps.
const MSS_LISTENERS: usize = 8;

/// Connections being made whose MSS bounds a [`FrameLog`] keeps: the most recent ones;
/// a bound is needed only until the handshake is over.
const MSS_CONNECTS: usize = 4;

/// UDP ports a [`FrameLog`] can name as bound: with more bound, a datagram's port may be
/// one not listed, and no port unreachable is held back ([`FrameLog::set_udp_ports`]).
const UDP_PORTS: usize = 8;

/// Connections whose peer's FIN a [`FrameLog`] keeps, so that nothing after it reaches
/// smoltcp: with more closed by their peers at once, the oldest is forgotten (its later
/// bytes go to smoltcp, as before the check).
const PEER_FINS: usize = 8;

/// A connection's peer sent its FIN: nothing it sends may reach past `fin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerFin {
    /// The peer.
    pub peer: IpEndpoint,
    /// The local port.
    pub port: u16,
    /// The FIN's sequence number (after the segment's bytes).
    pub fin: u32,
}

/// Linux's `net.ipv4.icmp_msgs_burst`: ICMP errors the host sends at once.
pub const ICMP_BURST: u32 = 50;

/// Linux's `net.ipv4.icmp_msgs_per_sec`: ICMP errors the host sends a second after its
/// burst.
pub const ICMP_PER_SECOND: u32 = 1000;

/// Linux's `net.ipv4.icmp_ratemask` (0x1818): the ICMP types its bucket bounds,
/// destination unreachable (3), source quench (4), time exceeded (11) and parameter
/// problem (12), the errors; an echo reply is not among them.
const ICMP_RATEMASK: u32 = 0x1818;

/// The host's bucket of ICMP errors, full at Linux's figures.
#[derive(Debug)]
struct IcmpBucket(TokenBucket);

impl Default for IcmpBucket {
    fn default() -> Self {
        IcmpBucket(TokenBucket::new(ICMP_BURST, ICMP_PER_SECOND))
    }
}

/// Where a sent TCP segment ends in sequence space ([`FrameEvent::TcpOut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeqEnd {
    /// The sequence number after its data, SYN and FIN.
    pub end: u32,
    /// It is a SYN (or SYN-ACK): a connection's sequence space starts with it.
    pub syn: bool,
}

/// The MSS bounds of the sockets on a local port ([`mss_bound`](super::mss::mss_bound)
/// of their rings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMss {
    /// The local port.
    pub port: u16,
    /// The largest MSS to offer the peer: two segments per rx ring.
    pub rx_bound: u16,
    /// The largest MSS to send by: two segments per tx ring.
    pub tx_bound: u16,
}

/// What a held SYN waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// The stack to look whether a connection holds its four-tuple already (then it is a
    /// duplicate and dropped); it does so after the very frame.
    Check,
    /// The stack to make room in its listener's backlog (a backlog whose every socket is
    /// taken would answer it with RST).
    Room,
    /// Nothing: the frame goes to smoltcp next.
    Released,
}

/// A SYN, or a RST, held back from smoltcp ([`Hold`]).
#[derive(Debug)]
struct HeldSyn {
    frame: heapless::Vec<u8, HELD_SYN>,
    /// A RST's sequence number; `None` for a SYN.
    rst_seq: Option<u32>,
    /// Its destination address and port.
    dst: Ipv4Address,
    port: u16,
    src: IpEndpoint,
    /// When it arrived.
    at: Instant,
    hold: Hold,
}

/// Events recorded by an [`Inspector`] since the stack last drained them, and frame counts.
#[derive(Debug, Default)]
pub struct FrameLog {
    events: heapless::Vec<FrameEvent, FRAME_LOG_CAPACITY>,
    /// Events that did not fit (observation lost, never data).
    pub overflowed: u32,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// The socket table index the last outgoing segment belonged to: a bulk sender's
    /// segments all do, so the table is searched only when the sender changes.
    pub tcp_out_hint: usize,
    /// The stack's address: only a SYN for it is held back.
    pub local_ip: Option<Ipv4Address>,
    /// What the interface accepts; without it (a log not made for an interface) no
    /// datagram is classified.
    acceptance: Option<Acceptance>,
    /// Ports of listeners with no socket listening but one that could give way: a SYN
    /// for one of them is held back until the stack has made room.
    starved: heapless::Vec<u16, STARVED_PORTS>,
    held: Option<HeldSyn>,
    /// A SYN arrived since the stack last looked: a backlog may have run out of
    /// listening sockets.
    pub syn_seen: bool,
    /// The MSS bounds of listening ports.
    mss_listeners: heapless::Vec<PortMss, MSS_LISTENERS>,
    /// The MSS bounds of connections being made, oldest first.
    mss_connects: heapless::Vec<PortMss, MSS_CONNECTS>,
    /// The ICMP errors this host may still send: spent by each one leaving, refilled
    /// with time ([`FrameLog::set_icmp_limit`]).
    icmp: IcmpBucket,
    /// The UDP ports bound to a socket ([`FrameLog::set_udp_ports`]).
    udp_ports: heapless::Vec<u16, UDP_PORTS>,
    /// Every bound UDP port is in `udp_ports` (none left out for want of room).
    udp_ports_all: bool,
    /// The next hops heard from, as smoltcp's neighbour cache holds them.
    pub neighbours: HeardNeighbours,
    /// Connections that took their peer's FIN ([`FrameLog::peer_closed`]), and where
    /// the next goes when none is free: a ring, so the one noted first gives way.
    peer_fins: [Option<PeerFin>; PEER_FINS],
    peer_fins_next: usize,
    /// A FIN for this stack of a connection not in `peer_fins`, in the frame just given
    /// to smoltcp: the stack looks whether the connection took it.
    pub fin_in: Option<PeerFin>,
}

impl FrameLog {
    // Out of line: every kind of event is recorded from its own place.
    #[inline(never)]
    fn record(&mut self, event: FrameEvent) {
        if self.events.push(event).is_err() {
            self.overflowed += 1;
        }
    }

    /// What a frame smoltcp is given at `now` tells of the neighbours.
    fn hear_neighbours(&mut self, frame: &[u8], now: Instant) {
        if let Some(accept) = &self.acceptance {
            self.neighbours.hear(frame, accept, now);
        }
    }

    /// An empty log for an interface that accepts what `acceptance` says.
    pub fn for_interface(acceptance: Acceptance) -> FrameLog {
        FrameLog {
            local_ip: Some(acceptance.cidr.address()),
            acceptance: Some(acceptance),
            ..FrameLog::default()
        }
    }

    /// Names the ports whose listener's backlog is starved (replacing the last list); a
    /// list longer than the log holds is cut, and the ports left out are answered by
    /// smoltcp as before (RST).
    pub fn set_starved(&mut self, ports: impl Iterator<Item = u16>) {
        self.starved.clear();
        for port in ports {
            if self.starved.push(port).is_err() {
                break;
            }
        }
    }

    /// Names the UDP ports a socket is bound to (replacing the last list): a datagram for
    /// any other port is one smoltcp answers with ICMP port unreachable, which is held
    /// back when the ICMP bucket is empty. With more ports than the log keeps, none is
    /// held back (the limit is not applied rather than a datagram lost).
    pub fn set_udp_ports(&mut self, ports: impl Iterator<Item = u16>) {
        self.udp_ports.clear();
        self.udp_ports_all = true;
        for port in ports {
            if self.udp_ports.push(port).is_err() {
                self.udp_ports_all = false;
                break;
            }
        }
    }

    /// Sets the host's bound on ICMP errors: at most `burst` at once, refilled at
    /// `per_second` (Linux's `icmp_msgs_burst` and `icmp_msgs_per_sec`; [`ICMP_BURST`]
    /// and [`ICMP_PER_SECOND`] by default). The bucket starts full.
    pub fn set_icmp_limit(&mut self, burst: u32, per_second: u32) {
        self.icmp = IcmpBucket(TokenBucket::new(burst, per_second));
    }

    /// Whether smoltcp answers `frame`, which passed the interface as `event` says, with
    /// an ICMP error that the host's bucket has no credit for at `now`; if so, it is
    /// recorded as [`Discard::IcmpLimited`] and the frame is to be withheld from smoltcp.
    /// smoltcp 0.14 (with ringnet's features: no raw sockets, no multicast, no echo
    /// replies) makes exactly two ICMP errors, each the answer to the frame it processes:
    /// port unreachable for a UDP datagram no socket accepts and protocol unreachable for
    /// an IPv4 protocol other than ICMP, UDP and TCP, both only for a unicast packet to
    /// the interface's own address from a unicast source (`icmpv4_reply`). Withholding
    /// such a frame loses nothing: smoltcp would drop it after answering.
    #[inline(never)]
    fn icmp_error_withheld(
        &mut self,
        frame: &[u8],
        event: Option<FrameEvent>,
        now: Instant,
    ) -> bool {
        let (src, dst, port) = match event {
            Some(FrameEvent::UdpIn { dst, src, .. }) => {
                let listed = !self.udp_ports_all || self.udp_ports.contains(&dst.port);
                if listed {
                    return false;
                }
                let (IpAddress::Ipv4(src), IpAddress::Ipv4(dst_ip)) = (src.addr, dst.addr);
                (src, dst_ip, dst.port)
            }
            Some(_) => return false,
            None => match unhandled_protocol(frame) {
                Some((src, dst)) => (src, dst, 0),
                None => return false,
            },
        };
        if Some(dst) != self.local_ip || src.is_unspecified() || self.icmp.0.allows(now) {
            return false;
        }
        self.record(FrameEvent::Discarded {
            reason: Discard::IcmpLimited,
            src,
            dst,
            port,
        });
        true
    }

    /// Names the MSS bounds of the listening ports (replacing the last list); ports
    /// beyond `MSS_LISTENERS` (8) keep the MSS smoltcp chooses.
    pub fn set_listener_mss(&mut self, ports: impl Iterator<Item = PortMss>) {
        self.mss_listeners.clear();
        for port in ports {
            if self.mss_listeners.push(port).is_err() {
                break;
            }
        }
    }

    /// Adds the MSS bounds of a connection being made, forgetting the oldest one when
    /// `MSS_CONNECTS` (4) are kept already.
    pub fn add_connect_mss(&mut self, port: PortMss) {
        self.mss_connects.retain(|p| p.port != port.port);
        if self.mss_connects.is_full() {
            self.mss_connects.remove(0);
        }
        // Room was made just above.
        let _ = self.mss_connects.push(port);
    }

    /// The MSS bounds of the sockets on local `port`, if known: a connection being made
    /// first, then a listener.
    pub fn mss_of(&self, port: u16) -> Option<PortMss> {
        let find = |list: &[PortMss]| list.iter().rev().find(|p| p.port == port).copied();
        find(&self.mss_connects).or_else(|| find(&self.mss_listeners))
    }

    /// The MSS to offer instead of what the SYN's `option` offers, arriving
    /// (`incoming`: the bound of the local socket's tx ring) or leaving (its rx ring's),
    /// when the socket is known and the SYN offers more; recorded as lowered.
    fn lowered_mss(&mut self, option: &MssOption, incoming: bool) -> Option<u16> {
        let ends = option.ends;
        let (local, port, peer) = if incoming {
            (ends.dst, ends.dst_port, (ends.src, ends.src_port))
        } else {
            (ends.src, ends.src_port, (ends.dst, ends.dst_port))
        };
        if self.local_ip.is_some_and(|ip| ip != local) {
            return None;
        }
        let bounds = self.mss_of(port)?;
        let limit = if incoming {
            bounds.tx_bound
        } else {
            bounds.rx_bound
        };
        if option.offered <= limit {
            return None;
        }
        self.record(FrameEvent::MssLowered {
            port,
            peer: IpEndpoint::new(peer.0.into(), peer.1),
            offered: option.offered,
            left: limit,
            incoming,
        });
        Some(limit)
    }

    /// Lowers the MSS the SYN in `frame` offers, if it is one, arriving or leaving
    /// ([`FrameLog::lowered_mss`]).
    fn bound_mss(&mut self, frame: &mut [u8], incoming: bool) {
        if let Some(option) = MssOption::find(frame) {
            if let Some(mss) = self.lowered_mss(&option, incoming) {
                option.set(frame, mss);
            }
        }
    }

    /// The port, the sender and the arrival of a SYN held back and waiting for the stack
    /// to make room, if any.
    pub fn held_syn(&self) -> Option<(u16, IpEndpoint, Instant)> {
        self.held
            .as_ref()
            .filter(|h| h.hold == Hold::Room)
            .map(|h| (h.port, h.src, h.at))
    }

    /// The stack has made room for the held SYN: smoltcp gets it next.
    pub fn release_held_syn(&mut self) {
        if let Some(held) = &mut self.held {
            held.hold = Hold::Released;
        }
    }

    /// Whether a held SYN goes to smoltcp at the next poll.
    pub fn held_syn_released(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.hold == Hold::Released)
    }

    /// The destination and the sender of a SYN (or a RST, with its sequence number) just
    /// held back until the stack has looked whether a connection holds its four-tuple
    /// ([`FrameLog::checked_held_syn`] says).
    pub fn syn_to_check(&self) -> Option<(IpEndpoint, IpEndpoint, Option<u32>)> {
        self.held
            .as_ref()
            .filter(|h| h.hold == Hold::Check)
            .map(|h| (IpEndpoint::new(h.dst.into(), h.port), h.src, h.rst_seq))
    }

    /// The stack has looked at the SYN of [`FrameLog::syn_to_check`]: a `duplicate` (a
    /// connection holds its four-tuple) is dropped and recorded as
    /// [`Discard::DuplicateSyn`]; any other goes to smoltcp next, or waits for room if its
    /// port is starved ([`FrameLog::set_starved`]).
    ///
    /// With `challenge` (the connection is synchronized), the duplicate goes to smoltcp
    /// all the same, as a SYN-ACK acknowledging `challenge`: no listening socket takes a
    /// segment with an ACK, the connection does, and smoltcp answers an acknowledgment of
    /// data never sent with an ACK of what it has, Linux's challenge ACK to a SYN in a
    /// synchronized state (RFC 5961 4.2). A peer that restarted and reuses the port
    /// answers it with a RST, which ends the old connection, and its next SYN is served.
    ///
    /// A held RST is a `duplicate` when it is in a synchronized connection's window but
    /// not at the next sequence number expected (RFC 5961 3.2): it is dropped and
    /// recorded as [`Discard::InexactRst`]; any other RST goes to smoltcp as it came.
    pub fn checked_held_syn(&mut self, duplicate: bool, challenge: Option<u32>) {
        let Some(held) = self.held.as_mut().filter(|h| h.hold == Hold::Check) else {
            return;
        };
        if !duplicate {
            held.hold = if held.rst_seq.is_none() && self.starved.contains(&held.port) {
                Hold::Room
            } else {
                Hold::Released
            };
            return;
        }
        let IpAddress::Ipv4(src) = held.src.addr;
        let event = FrameEvent::Discarded {
            reason: if held.rst_seq.is_some() {
                Discard::InexactRst
            } else {
                Discard::DuplicateSyn
            },
            src,
            dst: held.dst,
            port: held.port,
        };
        match challenge {
            Some(ack) if super::mss::acknowledge(&mut held.frame, ack).is_some() => {
                held.hold = Hold::Released;
            }
            _ => self.held = None,
        }
        self.record(event);
    }

    /// Holds `frame` back if it is a SYN or a RST for this stack and nothing is held yet,
    /// until the stack has looked at it ([`Hold::Check`]); returns whether it did. A SYN
    /// too long to copy (one carrying data) is not held, nor a segment whose checksums
    /// fail: a damaged segment whose flags read SYN is no duplicate SYN (smoltcp drops
    /// it). A RST too long to copy (over 80 bytes of payload) is dropped, counted as
    /// [`Discard::InexactRst`]: its number cannot be checked, and a peer that meant it
    /// answers the next segment with another.
    // Not inlined: its copy of the frame is gone before smoltcp takes the deepest path.
    #[inline(never)]
    fn hold(&mut self, frame: &[u8], now: Instant) -> bool {
        if self.held.is_some() {
            return false;
        }
        // A bare SYN, or else a RST (with its sequence number).
        let Some((dst, port, src, rst_seq)) = tcp_destination(frame, SYN | ACK, SYN)
            .map(|(dst, port, src, _)| (dst, port, src, None))
            .or_else(|| {
                tcp_destination(frame, RST, RST)
                    .map(|(dst, port, src, (seq, _))| (dst, port, src, Some(seq)))
            })
        else {
            return false;
        };
        if Some(dst) != self.local_ip {
            return false;
        }
        let checksum = self.acceptance.as_ref().map(|a| a.checksum.clone());
        if !checksums_hold(frame, &checksum.unwrap_or_default()) {
            return false;
        }
        let Ok(copy) = heapless::Vec::<u8, HELD_SYN>::from_slice(frame) else {
            if rst_seq.is_some() {
                let IpAddress::Ipv4(src) = src.addr;
                self.record(FrameEvent::Discarded {
                    reason: Discard::InexactRst,
                    src,
                    dst,
                    port,
                });
                return true;
            }
            return false;
        };
        self.held = Some(HeldSyn {
            frame: copy,
            rst_seq,
            dst,
            port,
            src,
            at: now,
            hold: Hold::Check,
        });
        true
    }

    /// The connection of `fin` took its peer's FIN (it is CLOSE-WAIT or later): a segment
    /// of it whose bytes reach past the FIN is withheld from smoltcp from now on,
    /// recorded as [`Discard::AfterFin`]. When `PEER_FINS` (8) are kept already, the
    /// one noted first gives way.
    pub fn peer_closed(&mut self, fin: PeerFin) {
        let free = self.peer_fins.iter().position(Option::is_none);
        let at = free.unwrap_or(self.peer_fins_next % PEER_FINS);
        self.peer_fins[at] = Some(fin);
        self.peer_fins_next = at + 1;
    }

    /// Keeps of the connections that took their peer's FIN those for which `open` says
    /// so (the connection is still there, past its peer's FIN).
    pub fn retain_peer_fins(&mut self, mut open: impl FnMut(&PeerFin) -> bool) {
        for kept in &mut self.peer_fins {
            if kept.as_ref().is_some_and(|fin| !open(fin)) {
                *kept = None;
            }
        }
    }

    /// Whether connections that took their peer's FIN are kept.
    pub fn has_peer_fins(&self) -> bool {
        self.peer_fins.iter().any(Option::is_some)
    }

    /// Whether `frame`, a TCP segment for this stack (no SYN, no RST), carries bytes past
    /// the FIN its connection took already ([`FrameLog::peer_closed`]); if so it is
    /// recorded as [`Discard::AfterFin`] and to be withheld from smoltcp. A FIN of a
    /// connection not kept is noted in `fin_in` for the stack to look at.
    // Out of line: every segment passes here, and all but a close's are done in the
    // first lines.
    #[inline(never)]
    fn after_fin(&mut self, frame: &[u8]) -> bool {
        let Some(flags) = tcp_flags(frame) else {
            return false;
        };
        if flags & (SYN | RST) != 0 || (flags & FIN == 0 && !self.has_peer_fins()) {
            return false;
        }
        let Some((dst, port, peer, (seq, len))) = tcp_destination(frame, 0, 0) else {
            return false;
        };
        if Some(dst) != self.local_ip {
            return false;
        }
        let Some(kept) = self
            .peer_fins
            .iter()
            .flatten()
            .find(|f| f.peer == peer && f.port == port)
        else {
            if flags & FIN != 0 {
                self.fin_in = Some(PeerFin {
                    peer,
                    port,
                    fin: seq.wrapping_add(len),
                });
            }
            return false;
        };
        // Bytes at the FIN's number or beyond (a retransmission of what came with the FIN
        // ends at it, and goes on to smoltcp to be acknowledged again).
        let past = seq.wrapping_add(len).wrapping_sub(kept.fin) as i32;
        if len == 0 || past <= 0 {
            return false;
        }
        let checksum = self.acceptance.as_ref().map(|a| a.checksum.clone());
        if !checksums_hold(frame, &checksum.unwrap_or_default()) {
            return false;
        }
        let IpAddress::Ipv4(src) = peer.addr;
        self.record(FrameEvent::Discarded {
            reason: Discard::AfterFin,
            src,
            dst,
            port,
        });
        true
    }

    /// Removes and returns the oldest event.
    pub fn pop_front(&mut self) -> Option<FrameEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }
}

/// Wraps a device and records a [`FrameEvent`] for every frame that matters.
///
/// A frame the interface discards ([`classify`] says which and why) is withheld from
/// smoltcp, which gets an empty frame instead: smoltcp would drop each of them but a TCP
/// segment to a broadcast or multicast address, which its listeners would answer (RFC
/// 1122 4.2.3.10 says to discard it). Every other frame goes to smoltcp untouched, but a
/// SYN's MSS option ([`mss`](super::mss)); the inspector only reads headers that pass the
/// views' `new_checked`.
pub struct Inspector<'d, 'l, D: Device + ?Sized> {
    inner: &'d mut D,
    log: &'l RefCell<FrameLog>,
}

impl<'d, 'l, D: Device + ?Sized> Inspector<'d, 'l, D> {
    /// Wraps `inner`, recording into `log`.
    pub fn new(inner: &'d mut D, log: &'l RefCell<FrameLog>) -> Self {
        Inspector { inner, log }
    }
}

// Not inlined: its frame is gone before smoltcp, called next, takes the stack's deepest
// path (the firmware has 2 KiB of headroom to keep).
#[inline(never)]
fn inspect_incoming(frame: &[u8], acceptance: &Acceptance) -> Option<FrameEvent> {
    Some(match classify(frame, acceptance)? {
        Ingress::Udp {
            dst,
            src,
            payload_len,
        } => FrameEvent::UdpIn {
            dst,
            src,
            payload_len,
        },
        Ingress::Discarded { reason, src, dst } => FrameEvent::Discarded {
            reason,
            src,
            dst,
            port: 0,
        },
    })
}

/// The destination address and port, and the sender, of a connection request (SYN
/// without ACK).
fn syn_destination(frame: &[u8]) -> Option<(Ipv4Address, u16, IpEndpoint)> {
    tcp_destination(frame, SYN | ACK, SYN).map(|(dst, port, src, _)| (dst, port, src))
}

/// The destination address and port, the sender, and the sequence number and payload
/// length of an IPv4 TCP segment whose flags, masked with `mask`, are `flags`.
#[inline(never)]
fn tcp_destination(
    frame: &[u8],
    mask: u8,
    flags: u8,
) -> Option<(Ipv4Address, u16, IpEndpoint, (u32, u32))> {
    // Every frame arriving passes here: the full parse only for a bare SYN or a RST (or,
    // with no mask, a segment the FIN check looks at).
    if tcp_flags(frame)? & mask != flags {
        return None;
    }
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let src = IpEndpoint::new(ip.src_addr().into(), tcp.src_port());
    // The flags again, in the header the views checked.
    (ip.payload().get(13)? & mask == flags).then(|| {
        (
            ip.dst_addr(),
            tcp.dst_port(),
            src,
            (tcp.seq_number().0 as u32, tcp.payload().len() as u32),
        )
    })
}

/// Whether an IPv4 TCP frame's header and segment checksums are right, where the
/// device leaves them to the stack to verify.
fn checksums_hold(frame: &[u8], caps: &ChecksumCapabilities) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return false;
    };
    (!caps.ipv4.rx() || ip.verify_checksum())
        && (!caps.tcp.rx() || tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()))
}

/// The source and destination of an IPv4 frame that passed the interface (`classify`
/// said nothing of it, so its IPv4 header was read whole and checked) whose protocol
/// smoltcp does not handle: not ICMP, UDP or TCP. Read at the header's fixed offsets.
fn unhandled_protocol(frame: &[u8]) -> Option<(Ipv4Address, Ipv4Address)> {
    if frame.get(12..14)? != [0x08, 0x00] || matches!(frame.get(14 + 9)?, 1 | 6 | 17) {
        return None;
    }
    let address = |at: usize| {
        Some(Ipv4Address::from_octets(
            frame.get(at..at + 4)?.try_into().ok()?,
        ))
    };
    Some((address(14 + 12)?, address(14 + 16)?))
}

/// Records what a frame leaving says: a TCP segment's window and sequence space, and an
/// ICMP error (a type in [`ICMP_RATEMASK`]), which spends the host's ICMP bucket: each
/// is the answer to a frame the bucket had credit for (`icmp_error_withheld`).
fn inspect_outgoing(frame: &[u8], log: &mut FrameLog) {
    if let Some(event) = outgoing_event(frame, log) {
        log.record(event);
    }
}

fn outgoing_event(frame: &[u8], log: &mut FrameLog) -> Option<FrameEvent> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() == IpProtocol::Icmp {
        let kind = u32::from(*ip.payload().first()?);
        if kind < 32 && ICMP_RATEMASK >> kind & 1 == 1 {
            log.icmp.0.spend(1);
        }
        return None;
    }
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    if tcp.rst() {
        return None;
    }
    let occupied = tcp.payload().len() + usize::from(tcp.syn()) + usize::from(tcp.fin());
    Some(FrameEvent::TcpOut {
        src_port: tcp.src_port(),
        dst: IpEndpoint::new(ip.dst_addr().into(), tcp.dst_port()),
        window_field: tcp.window_len(),
        seq_end: (occupied > 0).then(|| TcpSeqEnd {
            end: (tcp.seq_number() + occupied).0 as u32,
            syn: tcp.syn(),
        }),
        ack: if tcp.ack() {
            tcp.ack_number().0 as u32
        } else {
            0
        },
    })
}

/// Receive token of an [`Inspector`]: a frame from the device, or the SYN it held back.
pub struct InspectRxToken<'l, T> {
    inner: Option<T>,
    log: &'l RefCell<FrameLog>,
    now: Instant,
}

impl<T: RxToken> RxToken for InspectRxToken<'_, T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let (log, now) = (self.log, self.now);
        let Some(inner) = self.inner else {
            // The held SYN, copied out so that the log is free while smoltcp answers it;
            // it takes a listening socket, so the stack looks at the backlogs again. Its
            // MSS is bounded now, by the sockets of now.
            let frame = {
                let mut log = log.borrow_mut();
                log.syn_seen = true;
                let mut frame = log.held.take().map(|h| h.frame).unwrap_or_default();
                log.bound_mss(&mut frame, true);
                log.hear_neighbours(&frame, now);
                frame
            };
            return f(&frame);
        };
        inner.consume(|frame| {
            // Released before `f`: smoltcp may transmit a reply from inside it.
            let (held, lowered) = 'look: {
                let mut log = log.borrow_mut();
                log.frames_in += 1;
                let event = log
                    .acceptance
                    .as_ref()
                    .and_then(|a| inspect_incoming(frame, a));
                if let Some(event) = event {
                    log.record(event);
                    // A frame the interface discards never reaches smoltcp: smoltcp
                    // would drop each but a TCP segment to a broadcast or multicast
                    // address, which one of its listeners would answer.
                    if let FrameEvent::Discarded { .. } = event {
                        break 'look (true, None);
                    }
                }
                // Nor one whose answer would be an ICMP error over the host's limit.
                if log.icmp_error_withheld(frame, event, now) {
                    break 'look (true, None);
                }
                if syn_destination(frame).is_some() {
                    log.syn_seen = true;
                }
                // Nor bytes a peer sent after its FIN.
                if log.after_fin(frame) {
                    break 'look (true, None);
                }
                let held = log.hold(frame, now);
                // (A SYN too long to copy, carrying data, keeps its MSS.)
                let lowered = MssOption::find(frame)
                    .filter(|_| !held && frame.len() <= HELD_SYN)
                    .and_then(|option| Some((option, log.lowered_mss(&option, true)?)));
                // What smoltcp is given now tells of the neighbours (a SYN held, when it
                // is given).
                if !held {
                    log.hear_neighbours(frame, now);
                }
                (held, lowered)
            };
            if held {
                // smoltcp gets nothing now (an empty frame, which it drops unparsed): a
                // SYN held goes to it once the stack has looked at it (and made room), a
                // frame discarded never.
                return f(&[]);
            }
            // A SYN offering more than the socket's tx ring keeps two segments of:
            // smoltcp reads a copy with the MSS lowered.
            let copy = lowered.and_then(|(option, mss)| {
                let mut copy = heapless::Vec::<u8, HELD_SYN>::from_slice(frame).ok()?;
                option.set(&mut copy, mss);
                Some(copy)
            });
            match copy {
                Some(copy) => f(&copy),
                None => f(frame),
            }
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.inner
            .as_ref()
            .map_or_else(smoltcp::phy::PacketMeta::default, RxToken::meta)
    }
}

/// Transmit token of an [`Inspector`].
pub struct InspectTxToken<'l, T> {
    inner: T,
    log: &'l RefCell<FrameLog>,
}

impl<T: TxToken> TxToken for InspectTxToken<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let log = self.log;
        self.inner.consume(len, |frame| {
            let result = f(frame);
            let mut log = log.borrow_mut();
            log.frames_out += 1;
            log.bound_mss(frame, false);
            inspect_outgoing(frame, &mut log);
            result
        })
    }

    fn set_meta(&mut self, meta: smoltcp::phy::PacketMeta) {
        self.inner.set_meta(meta)
    }
}

impl<'l, D: Device + ?Sized> Device for Inspector<'_, 'l, D> {
    type RxToken<'a>
        = InspectRxToken<'l, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = InspectTxToken<'l, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let log = self.log;
        let released = log.borrow().held_syn_released();
        if released {
            // The held SYN goes first, with a transmit token for smoltcp's SYN-ACK.
            return self.inner.transmit(timestamp).map(|tx| {
                (
                    InspectRxToken {
                        inner: None,
                        log,
                        now: timestamp,
                    },
                    InspectTxToken { inner: tx, log },
                )
            });
        }
        self.inner.receive(timestamp).map(|(rx, tx)| {
            (
                InspectRxToken {
                    inner: Some(rx),
                    log,
                    now: timestamp,
                },
                InspectTxToken { inner: tx, log },
            )
        })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let log = self.log;
        self.inner
            .transmit(timestamp)
            .map(|tx| InspectTxToken { inner: tx, log })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

    fn acceptance() -> Acceptance {
        Acceptance {
            mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 2), 24),
            checksum: smoltcp::phy::ChecksumCapabilities::default(),
        }
    }

    /// An Ethernet + IPv4 + UDP frame from 10.0.0.1 to 10.0.0.2.
    fn udp_frame(payload: &[u8]) -> std::vec::Vec<u8> {
        crate::phy::test_frames::udp(
            EthernetAddress([2, 0, 0, 0, 0, 2]),
            Ipv4Address::new(10, 0, 0, 1),
            Ipv4Address::new(10, 0, 0, 2),
            payload,
        )
    }

    #[test]
    fn sees_udp_arrival() {
        let frame = udp_frame(b"hello");
        assert_eq!(
            inspect_incoming(&frame, &acceptance()),
            Some(FrameEvent::UdpIn {
                dst: IpEndpoint::new(Ipv4Address::new(10, 0, 0, 2).into(), 9000),
                src: IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 4000),
                payload_len: 5,
            })
        );
    }

    #[test]
    fn truncated_frames_are_never_arrivals_nor_panicked_on() {
        let frame = udp_frame(b"hello");
        for cut in 0..frame.len() - 5 {
            let event = inspect_incoming(&frame[..cut], &acceptance());
            assert!(
                !matches!(event, Some(FrameEvent::UdpIn { .. })),
                "cut at {cut}: {event:?}"
            );
        }
        let mut log = FrameLog::default();
        inspect_outgoing(&frame, &mut log);
        assert_eq!(log.pop_front(), None, "UDP is not a TCP event");
        assert_eq!(log.icmp.0.tokens(), ICMP_BURST as i32, "nor an ICMP error");
    }

    #[test]
    fn a_syns_mss_is_lowered_to_its_sockets_rings_each_way_and_nothing_else_is_touched() {
        use crate::phy::mss::tests::{parsed, syn};
        // The frames go from 10.0.0.1:4000 to 10.0.0.2:80.
        let peer = IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 4000);
        let mut log = FrameLog::for_interface(acceptance());
        let mut frame = syn(Some(65481), false);
        log.bound_mss(&mut frame, true);
        assert_eq!(parsed(&frame), (Some(65481), true), "no socket known on 80");
        assert_eq!(log.pop_front(), None);

        let bounds = PortMss {
            port: 80,
            rx_bound: 16384,
            tx_bound: 32767,
        };
        log.set_listener_mss([bounds].into_iter());
        assert_eq!(log.mss_of(80), Some(bounds));
        log.bound_mss(&mut frame, true);
        assert_eq!(parsed(&frame), (Some(32767), true), "by the tx ring");
        assert_eq!(
            log.pop_front(),
            Some(FrameEvent::MssLowered {
                port: 80,
                peer,
                offered: 65481,
                left: 32767,
                incoming: true
            })
        );
        let mut within = syn(Some(1460), true);
        log.bound_mss(&mut within, true);
        assert_eq!(parsed(&within), (Some(1460), true));
        assert_eq!(log.pop_front(), None, "nothing lowered, nothing recorded");
        // Leaving from 10.0.0.2 it would be ours; from 10.0.0.1 it is not.
        let mut theirs = syn(Some(65481), true);
        log.bound_mss(&mut theirs, false);
        assert_eq!(parsed(&theirs).0, Some(65481));
        assert_eq!(log.pop_front(), None);

        // Seen from 10.0.0.1, connecting from port 4000: its own SYN leaves bounded by its
        // rx ring; the connection's bound comes before a listener's on the same port.
        let mut client = FrameLog::for_interface(Acceptance {
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 1), 24),
            ..acceptance()
        });
        client.set_listener_mss(
            [PortMss {
                port: 4000,
                rx_bound: 100,
                tx_bound: 100,
            }]
            .into_iter(),
        );
        for port in 3000..3000 + MSS_CONNECTS as u16 {
            client.add_connect_mss(PortMss { port, ..bounds });
        }
        client.add_connect_mss(PortMss {
            port: 4000,
            rx_bound: 8192,
            tx_bound: 1024,
        });
        assert_eq!(client.mss_of(3000), None, "the oldest connection forgotten");
        let mut own = syn(Some(65481), false);
        client.bound_mss(&mut own, false);
        assert_eq!(parsed(&own), (Some(8192), true));
        assert!(matches!(
            client.pop_front(),
            Some(FrameEvent::MssLowered {
                port: 4000,
                left: 8192,
                incoming: false,
                ..
            })
        ));
    }

    /// The peer 10.0.0.1:4000 of `mss::tests::syn`.
    fn syn_sender() -> IpEndpoint {
        IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 4000)
    }

    #[test]
    fn a_bare_syn_for_us_waits_for_the_check_and_a_duplicate_is_recorded_and_forgotten() {
        use crate::phy::mss::tests::syn;
        let us = IpEndpoint::new(Ipv4Address::new(10, 0, 0, 2).into(), 80);
        let mut log = FrameLog::for_interface(acceptance());
        let t0 = Instant::from_millis(5);
        assert!(
            !log.hold(&syn(Some(1460), true), t0),
            "a SYN-ACK is no request"
        );
        assert!(!log.hold(&udp_frame(b"x"), t0));
        let mut damaged = syn(Some(1460), false);
        let last = damaged.len() - 1;
        damaged[last] ^= 0x5a;
        assert!(!log.hold(&damaged, t0), "its TCP checksum fails");
        assert_eq!(log.syn_to_check(), None);
        assert!(log.hold(&syn(Some(1460), false), t0));
        assert_eq!(log.syn_to_check(), Some((us, syn_sender(), None)));
        assert_eq!(log.held_syn(), None, "not waiting for room");
        assert!(!log.held_syn_released());
        assert!(!log.hold(&syn(None, false), t0), "one held at a time");

        log.checked_held_syn(true, None);
        assert_eq!(log.syn_to_check(), None);
        assert!(!log.held_syn_released(), "dropped, never given to smoltcp");
        assert_eq!(
            log.pop_front(),
            Some(FrameEvent::Discarded {
                reason: Discard::DuplicateSyn,
                src: Ipv4Address::new(10, 0, 0, 1),
                dst: Ipv4Address::new(10, 0, 0, 2),
                port: 80,
            })
        );
        assert_eq!(log.pop_front(), None);
        assert!(log.hold(&syn(None, false), t0), "the slot is free again");
    }

    /// The SYN of `mss::tests::syn` turned into a RST (sequence number 1000), its
    /// checksum right.
    fn rst() -> std::vec::Vec<u8> {
        let mut frame = crate::phy::mss::tests::syn(None, false);
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        tcp.set_syn(false);
        tcp.set_rst(true);
        tcp.fill_checksum(&src, &dst);
        frame
    }

    #[test]
    fn a_rst_for_us_waits_for_the_check_and_an_inexact_one_is_dropped() {
        let us = IpEndpoint::new(Ipv4Address::new(10, 0, 0, 2).into(), 80);
        let mut log = FrameLog::for_interface(acceptance());
        let t0 = Instant::from_millis(5);
        // A RST to a starved port goes on at once all the same: it takes no socket.
        log.set_starved([80].into_iter());
        assert!(log.hold(&rst(), t0));
        assert_eq!(log.syn_to_check(), Some((us, syn_sender(), Some(1000))));
        log.checked_held_syn(false, None);
        assert!(
            log.held_syn_released(),
            "obeyed: smoltcp gets it as it came"
        );
        assert_eq!(log.held.as_ref().map(|h| &h.frame[..]), Some(&rst()[..]));
        assert_eq!(log.pop_front(), None, "nothing discarded");
        log.held = None;

        assert!(log.hold(&rst(), t0));
        log.checked_held_syn(true, None);
        assert!(log.held.is_none(), "dropped, never given to smoltcp");
        assert_eq!(
            log.pop_front(),
            Some(FrameEvent::Discarded {
                reason: Discard::InexactRst,
                src: Ipv4Address::new(10, 0, 0, 1),
                dst: Ipv4Address::new(10, 0, 0, 2),
                port: 80,
            })
        );
        assert_eq!(log.pop_front(), None);
    }

    #[test]
    fn bytes_past_a_fin_taken_are_withheld_and_the_fins_own_segment_is_not() {
        use crate::phy::test_frames::tcp;
        let mut log = FrameLog::for_interface(acceptance());
        let fin = PeerFin {
            peer: syn_sender(),
            port: 80,
            fin: 1003,
        };
        // Nothing kept: data goes on, and a FIN is noted for the stack to look at.
        assert!(!log.after_fin(&tcp(1004, b"late", false)));
        assert_eq!(log.fin_in, None);
        assert!(!log.after_fin(&tcp(1000, b"bye", true)));
        assert_eq!(log.fin_in.take(), Some(fin));
        // The stack found the connection past it.
        log.peer_closed(fin);
        assert!(
            !log.after_fin(&tcp(1000, b"bye", true)),
            "the FIN's segment again"
        );
        assert!(
            !log.after_fin(&tcp(1001, b"ye", false)),
            "a part of it again"
        );
        assert!(!log.after_fin(&tcp(1003, b"", false)), "a bare ACK");
        assert_eq!(
            log.fin_in, None,
            "a FIN of a connection kept is not noted again"
        );
        assert_eq!(log.pop_front(), None);
        for (seq, payload) in [(1004, &b"late"[..]), (1003, b"x"), (1001, b"ye!")] {
            assert!(log.after_fin(&tcp(seq, payload, false)), "{seq}");
            assert_eq!(
                log.pop_front(),
                Some(FrameEvent::Discarded {
                    reason: Discard::AfterFin,
                    src: Ipv4Address::new(10, 0, 0, 1),
                    dst: Ipv4Address::new(10, 0, 0, 2),
                    port: 80,
                })
            );
        }
        let mut damaged = tcp(1004, b"late", false);
        let last = damaged.len() - 1;
        damaged[last] ^= 0x5a;
        assert!(!log.after_fin(&damaged), "smoltcp drops it as damaged");
        // Gone once the stack says the connection is.
        log.retain_peer_fins(|_| false);
        assert!(!log.has_peer_fins());
        assert!(!log.after_fin(&tcp(1004, b"late", false)));
    }

    #[test]
    fn a_syn_no_connection_holds_goes_on_at_once_or_waits_for_room() {
        use crate::phy::mss::tests::syn;
        let mut log = FrameLog::for_interface(acceptance());
        let t0 = Instant::from_millis(5);
        assert!(log.hold(&syn(Some(1460), false), t0));
        log.checked_held_syn(false, None);
        assert!(log.held_syn_released());
        assert_eq!(log.pop_front(), None, "nothing discarded");
        log.held = None;

        log.set_starved([80].into_iter());
        assert!(log.hold(&syn(Some(1460), false), t0));
        log.checked_held_syn(false, None);
        assert_eq!(log.held_syn(), Some((80, syn_sender(), t0)));
        assert!(!log.held_syn_released());
        log.checked_held_syn(true, None);
        assert_eq!(log.held_syn(), Some((80, syn_sender(), t0)), "checked once");
        assert_eq!(log.pop_front(), None);

        let mut elsewhere = FrameLog::for_interface(Acceptance {
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 3), 24),
            ..acceptance()
        });
        assert!(
            !elsewhere.hold(&syn(Some(1460), false), t0),
            "for another address"
        );
    }

    #[test]
    fn a_frame_smoltcp_answers_with_an_icmp_error_is_withheld_only_when_the_bucket_is_empty() {
        let t0 = Instant::from_millis(5);
        let frame = udp_frame(b"x");
        let event = inspect_incoming(&frame, &acceptance());
        let mut log = FrameLog::for_interface(acceptance());
        log.set_udp_ports([53, 7000].into_iter());
        assert!(
            !log.icmp_error_withheld(&frame, event, t0),
            "the bucket is full"
        );
        log.set_icmp_limit(0, 0);
        assert!(
            log.icmp_error_withheld(&frame, event, t0),
            "9000: no socket"
        );
        assert_eq!(
            log.pop_front(),
            Some(FrameEvent::Discarded {
                reason: Discard::IcmpLimited,
                src: Ipv4Address::new(10, 0, 0, 1),
                dst: Ipv4Address::new(10, 0, 0, 2),
                port: 9000,
            })
        );
        log.set_udp_ports([9000].into_iter());
        assert!(
            !log.icmp_error_withheld(&frame, event, t0),
            "a socket takes it"
        );
        log.set_udp_ports(1..=UDP_PORTS as u16 + 1);
        assert!(
            !log.icmp_error_withheld(&frame, event, t0),
            "ports left out: never withheld"
        );
        // Protocol 253 to us is answered protocol unreachable; TCP and ICMP are not.
        log.set_udp_ports(core::iter::empty());
        let mut other = frame.clone();
        for (protocol, withheld) in [(253u8, true), (6, false), (1, false)] {
            other[14 + 9] = protocol;
            assert_eq!(
                log.icmp_error_withheld(&other, None, t0),
                withheld,
                "{protocol}"
            );
        }
        // Nothing for a broadcast, nor from an unspecified source.
        let broadcast = crate::phy::test_frames::udp(
            EthernetAddress::BROADCAST,
            Ipv4Address::new(10, 0, 0, 1),
            Ipv4Address::BROADCAST,
            b"x",
        );
        let event = inspect_incoming(&broadcast, &acceptance());
        assert!(!log.icmp_error_withheld(&broadcast, event, t0));
        other[14 + 12..14 + 16].fill(0);
        other[14 + 9] = 253;
        assert!(!log.icmp_error_withheld(&other, None, t0));
        while log.pop_front().is_some() {}
    }

    #[test]
    fn an_icmp_error_leaving_spends_the_bucket_and_an_echo_reply_does_not() {
        let mut frame = udp_frame(b"12345678");
        frame[14 + 9] = 1;
        let mut log = FrameLog::default();
        for (kind, spent) in [(3u8, 1), (11, 1), (12, 1), (0, 0), (8, 0)] {
            frame[14 + 20] = kind;
            let before = log.icmp.0.tokens();
            inspect_outgoing(&frame, &mut log);
            assert_eq!(before - log.icmp.0.tokens(), spent, "type {kind}");
        }
        assert_eq!(log.pop_front(), None);
    }

    #[test]
    fn log_overflow_is_counted() {
        let mut log = FrameLog::default();
        let event = FrameEvent::TcpOut {
            src_port: 1,
            dst: IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 2),
            window_field: 0,
            seq_end: None,
            ack: 0,
        };
        for _ in 0..FRAME_LOG_CAPACITY + 3 {
            log.record(event);
        }
        assert_eq!(log.overflowed, 3);
        assert_eq!(log.pop_front(), Some(event));
    }
}
