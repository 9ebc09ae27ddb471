//! What the inspector saw cross the device, matched against the socket table: datagrams
//! that arrived for a socket but did not reach its ring (drops), and the window each TCP
//! segment advertised (zero windows). smoltcp itself reports neither.

use core::cell::RefCell;

use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, udp};

use super::table::{Slot, SlotKind};
use crate::handle::SocketHandle;
use crate::observe::LogGate;
use crate::phy::{FrameEvent, FrameLog};

/// Matches the inspector's frame events against the sockets.
pub(super) fn drain_frame_events(
    gate: &LogGate<'_>,
    frames: &RefCell<FrameLog>,
    slots: &mut [Option<Slot>],
    sockets: &mut SocketSet<'_>,
) {
    let name = gate.stack;
    let mut frames = frames.borrow_mut();
    while let Some(event) = frames.pop_front() {
        match event {
            FrameEvent::UdpIn {
                dst_port,
                src,
                payload_len,
            } => {
                let Some((index, slot)) = slots.iter_mut().enumerate().find_map(|(i, s)| {
                    s.as_mut()
                        .filter(|s| matches!(&s.kind, SlotKind::Udp(u) if u.port == dst_port))
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
                let delivered = now_bytes >= u.rx_bytes_seen + payload_len
                    && (payload_len > 0 || socket.can_recv());
                u.rx_bytes_seen = now_bytes;
                if !delivered {
                    slot.stats.rx_drops += 1;
                    log::warn!(
                        "{name}: udp#{index} dropped a {payload_len}-byte datagram from {src}: rx ring {}/{} has no room (drops: {})",
                        now_bytes,
                        socket.payload_recv_capacity(),
                        slot.stats.rx_drops
                    );
                }
            }
            FrameEvent::TcpOut {
                src_port,
                dst,
                window_field,
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
                        t.segment_sent(
                            socket,
                            gate,
                            log_throttle,
                            SocketHandle(index as u16),
                            window_field,
                            stats,
                        );
                        frames.tcp_out_hint = index;
                        break;
                    }
                }
            }
        }
    }
    if frames.overflowed > 0 {
        log::warn!(
            "{name}: {} frame events were not observed (inspector log full)",
            frames.overflowed
        );
        frames.overflowed = 0;
    }
}
