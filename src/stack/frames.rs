//! What the inspector saw cross the device, matched against the socket table: datagrams
//! that smoltcp handed to a socket but that did not reach its ring (drops), datagrams
//! and frames the interface discarded before any socket (counted by reason in
//! [`DiscardAccount`]), and the window each TCP segment advertised (zero windows).
//! smoltcp itself reports none of these.

use core::cell::RefCell;

use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, udp, Socket};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::table::{Slot, SlotKind};
use super::Stack;
use crate::handle::{SocketHandle, SocketType};
use crate::observe::{Account, DropReason, EventKind, IntervalLog, Recorder, Source};
use crate::phy::{Discard, Discards, FrameEvent, FrameLog};

/// Lines about one discard reason: at most one per this interval (or the stack's
/// [`LogLimit`](crate::observe::LogLimit) interval, when one is set); the counters count
/// every discard.
const DISCARD_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The interface's discards by reason, and what of them has been logged. Kept small: the
/// firmware's stack lives in `main`'s frame.
#[derive(Debug)]
pub(crate) struct DiscardAccount {
    /// Every discard so far.
    pub counts: Discards,
    /// Each reason's count as of its last line, and when that was.
    logged: [IntervalLog; Discard::ALL.len()],
    /// Some reason may have discards not yet logged (`counts` and `logged` differ).
    unlogged: bool,
}

impl Default for DiscardAccount {
    fn default() -> Self {
        // A constant, which the compiler clears with the rest instead of writing each
        // entry in a loop of its own.
        const UNLOGGED: [IntervalLog; Discard::ALL.len()] = [IntervalLog::NEW; Discard::ALL.len()];
        DiscardAccount {
            counts: Discards::default(),
            logged: UNLOGGED,
            unlogged: false,
        }
    }
}

/// Which discard a line names: source, destination, UDP or TCP destination port (0:
/// none).
type Detail = (Ipv4Address, Ipv4Address, u16);

impl DiscardAccount {
    fn index(reason: Discard) -> usize {
        // ALL lists every variant, so the search always finds it.
        Discard::ALL.iter().position(|&r| r == reason).unwrap_or(0)
    }

    /// Counts a discard and logs it unless its reason was logged within the interval.
    fn count(&mut self, gate: &Recorder<'_>, reason: Discard, detail: Detail, bytes: usize) {
        self.counts.count(reason);
        self.unlogged = true;
        gate.record(
            Source::Interface,
            None,
            EventKind::Drop {
                reason: DropReason::Discarded(reason),
                bytes,
                from: None,
                rx_used: 0,
                rx_capacity: 0,
            },
        );
        self.log_due(gate, reason, Some(detail));
    }

    /// Logs each reason with discards not yet logged whose interval is over.
    fn flush(&mut self, gate: &Recorder<'_>) {
        // Called after every frame, and a discard not yet logged is rare.
        if !self.unlogged {
            return;
        }
        let mut unlogged = false;
        for (i, &reason) in Discard::ALL.iter().enumerate() {
            if self.logged[i].behind(self.counts.get(reason)) {
                self.log_due(gate, reason, None);
                unlogged |= self.logged[i].behind(self.counts.get(reason));
            }
        }
        self.unlogged = unlogged;
    }

    // Not inlined: the formatting's frame is only on the stack when a line is due.
    #[inline(never)]
    fn log_due(&mut self, gate: &Recorder<'_>, reason: Discard, detail: Option<Detail>) {
        let i = Self::index(reason);
        let interval = gate.limit.map_or(DISCARD_LOG_INTERVAL, |l| l.interval);
        let total = self.counts.get(reason);
        let Some(new) = self.logged[i].due(total, gate.now, interval) else {
            return;
        };
        let name = gate.stack;
        let interval_ms = interval.total_millis();
        let latest = Latest(detail);
        match reason {
            // A hub or a flooding switch brings other hosts' frames: nothing is lost.
            Discard::NotForUs => net_debug!(
                "{}: discarded {} IPv4 frame(s){}: {} ({} in all; at most one line per {} ms)",
                name,
                new,
                latest,
                reason,
                total,
                interval_ms
            ),
            // The sender is told (ICMP port unreachable), as by Linux.
            Discard::NoSocket => net_info!(
                "{}: discarded {} UDP datagram(s){}: {} ({} in all; at most one line per {} ms)",
                name,
                new,
                latest,
                reason,
                total,
                interval_ms
            ),
            // Nothing is lost: the connection the SYN belongs to goes on.
            Discard::DuplicateSyn => net_info!(
                "{}: discarded {} TCP SYN(s){}: {} ({} in all; at most one line per {} ms)",
                name,
                new,
                latest,
                reason,
                total,
                interval_ms
            ),
            // A frame withheld from smoltcp for its ICMP error (the datagram counted as
            // `no_socket` too): a flood, perhaps with a victim's address as its source.
            // A RST out of place: a peer off the path guessing numbers, perhaps; bytes
            // after a FIN: a peer that means the service to read what it must not.
            Discard::BadChecksum
            | Discard::Fragment
            | Discard::Malformed
            | Discard::IcmpLimited
            | Discard::InexactRst
            | Discard::AfterFin => net_warn!(
                "{}: discarded {} IPv4 frame(s){}: {} ({} in all; at most one line per {} ms)",
                name,
                new,
                latest,
                reason,
                total,
                interval_ms
            ),
        }
    }
}

/// `, the latest SRC -> DST[:PORT]` when a line is written as a discard happens.
struct Latest(Option<Detail>);

#[cfg(feature = "defmt")]
impl defmt::Format for Latest {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            None => {}
            Some((src, dst, 0)) => defmt::write!(f, ", the latest {} -> {}", src, dst),
            Some((src, dst, port)) => {
                defmt::write!(f, ", the latest {} -> {}:{}", src, dst, port)
            }
        }
    }
}

impl core::fmt::Display for Latest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            None => Ok(()),
            Some((src, dst, 0)) => write!(f, ", the latest {src} -> {dst}"),
            Some((src, dst, port)) => write!(f, ", the latest {src} -> {dst}:{port}"),
        }
    }
}

/// The UDP socket smoltcp hands a datagram for `dst` to: the first in its set's order
/// whose port matches and whose address, if bound to one, is `dst` (smoltcp's
/// `udp::Socket::accepts`; `dst` has passed the interface, so it is `local_ip` or a
/// broadcast or multicast address, which every socket on the port accepts).
fn accepting_socket(
    sockets: &SocketSet<'_>,
    dst: IpEndpoint,
    local_ip: Option<Ipv4Address>,
) -> Option<smoltcp::iface::SocketHandle> {
    let IpAddress::Ipv4(dst_ip) = dst.addr;
    sockets.iter().find_map(|(handle, socket)| match socket {
        Socket::Udp(u) => {
            let bound = u.endpoint();
            let accepts = bound.port == dst.port
                && (bound.addr.is_none()
                    || bound.addr == Some(dst.addr)
                    || Some(dst_ip) != local_ip);
            accepts.then_some(handle)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

impl Stack<'_> {
    /// Names the ports of the UDP sockets bound to the inspector, for it to tell a
    /// datagram smoltcp answers with port unreachable (`FrameLog::set_udp_ports`). Called
    /// by the one bind (`bind_udp_port`: `udp_bind` and `send_to`'s implicit bind) and the
    /// one close of a UDP socket, which are the only calls that change the list and never
    /// run within a poll; the list is not rebuilt before every ingress.
    #[inline(never)]
    pub(crate) fn name_udp_ports(&mut self) {
        let ports = self
            .slots
            .iter()
            .flatten()
            .filter_map(|slot| match &slot.kind {
                SlotKind::Udp(u) if u.port != 0 => Some(u.port),
                _ => None,
            });
        self.frames.get_mut().set_udp_ports(ports);
    }
}

/// Matches the inspector's frame events against the sockets.
pub(super) fn drain_frame_events(
    gate: &Recorder<'_>,
    frames: &RefCell<FrameLog>,
    slots: &mut [Option<Slot>],
    sockets: &mut SocketSet<'_>,
    discards: &mut DiscardAccount,
) {
    let name = gate.stack;
    let mut frames = frames.borrow_mut();
    while let Some(event) = frames.pop_front() {
        match event {
            FrameEvent::Discarded {
                reason,
                src,
                dst,
                port,
            } => {
                discards.count(gate, reason, (src, dst, port), 0);
            }
            FrameEvent::MssLowered {
                port,
                peer,
                offered,
                left,
                incoming,
            } => {
                // Under defmt each text is an interned symbol, whose code reads alike for every text.
                #[allow(clippy::if_same_then_else)]
                let (whose, ring) = if incoming {
                    (log_text!("offered by"), log_text!("tx"))
                } else {
                    (log_text!("offered to"), log_text!("rx"))
                };
                net_debug!(
                    "{}: port {}: MSS {} {} {} lowered to {} (two segments per {} ring)",
                    name,
                    port,
                    offered,
                    whose,
                    peer,
                    left,
                    ring
                );
            }
            FrameEvent::UdpIn {
                dst,
                src,
                payload_len,
            } => {
                let IpAddress::Ipv4(src_ip) = src.addr;
                let IpAddress::Ipv4(dst_ip) = dst.addr;
                let Some(inner) = accepting_socket(sockets, dst, frames.local_ip) else {
                    discards.count(
                        gate,
                        Discard::NoSocket,
                        (src_ip, dst_ip, dst.port),
                        payload_len,
                    );
                    continue;
                };
                let Some((index, slot)) = slots.iter_mut().enumerate().find_map(|(i, s)| {
                    s.as_mut()
                        .filter(|s| matches!(&s.kind, SlotKind::Udp(u) if u.inner == inner))
                        .map(|s| (i, s))
                }) else {
                    continue;
                };
                let SlotKind::Udp(u) = &mut slot.kind else {
                    continue;
                };
                let socket = sockets.get::<udp::Socket>(u.inner);
                let now_bytes = socket.recv_queue();
                // Delivered datagrams grow the ring by their size (plus any wrap padding).
                // One of no bytes grows nothing: it was delivered if a slot was free. The
                // slots hold the datagrams queued and, when the ring holds more bytes
                // than they do, the padding smoltcp put before one that wrapped.
                let delivered = if payload_len > 0 {
                    now_bytes >= u.rx_bytes_seen + payload_len
                } else {
                    let padding = usize::from(u.rx_bytes_seen > u.queued_bytes);
                    u.queued + padding < socket.packet_recv_capacity()
                };
                u.rx_bytes_seen = now_bytes;
                if delivered {
                    u.queued += 1;
                    u.queued_bytes += payload_len;
                } else {
                    let source = Source::Socket {
                        handle: SocketHandle(index as u16),
                        kind: SocketType::Datagram,
                    };
                    let mut account = Account::new(&mut slot.stats, &mut slot.log_throttle);
                    gate.record(
                        source,
                        Some(&mut account),
                        EventKind::Drop {
                            reason: DropReason::RxRingFull,
                            bytes: payload_len,
                            from: Some(src),
                            rx_used: now_bytes,
                            rx_capacity: socket.payload_recv_capacity(),
                        },
                    );
                }
            }
            FrameEvent::TcpOut {
                src_port,
                dst,
                window_field,
                seq_end,
                ack,
            } => {
                let hint = frames.tcp_out_hint.min(slots.len());
                let (wrapped, from_hint) = slots.split_at_mut(hint);
                let in_order = from_hint
                    .iter_mut()
                    .enumerate()
                    .map(|(i, slot)| (hint + i, slot))
                    .chain(wrapped.iter_mut().enumerate());
                for (index, slot) in in_order {
                    let Some(Slot {
                        kind: SlotKind::Tcp(t),
                        stats,
                        log_throttle,
                        ..
                    }) = slot
                    else {
                        continue;
                    };
                    let socket = sockets.get::<tcp::Socket>(t.inner());
                    let matches = socket.local_endpoint().is_some_and(|l| l.port == src_port)
                        && socket.remote_endpoint() == Some(dst);
                    if matches {
                        let source = Source::Socket {
                            handle: SocketHandle(index as u16),
                            kind: SocketType::Stream,
                        };
                        let mut account = Account::new(stats, log_throttle);
                        t.segment_sent(
                            socket,
                            gate,
                            source,
                            &mut account,
                            window_field,
                            (seq_end, ack),
                        );
                        frames.tcp_out_hint = index;
                        break;
                    }
                }
            }
        }
    }
    discards.flush(gate);
    if frames.overflowed > 0 {
        net_warn!(
            "{}: {} frame events were not observed (inspector log full)",
            name,
            frames.overflowed
        );
        frames.overflowed = 0;
    }
}
