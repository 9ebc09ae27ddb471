//! After every poll and every call: each socket's rings are measured and fed to its
//! watches (which log and count the transitions), then a TCP socket takes its lifecycle
//! step.
//!
//! After a poll every socket is looked at, but most have nothing to report: a socket
//! whose rings hold what its watches last saw, whose TCP state is the one its lifecycle
//! last stepped from and that has no timer of its own running is *settled* (see
//! [`Slot::settled`]), and observing it would record nothing and change nothing. That
//! check reads three fields of the smoltcp socket; the full observation, per socket and
//! poll, was a fifth of the firmware's instructions in a bulk transfer.

use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, udp};

use super::table::{ring_usage, Slot, SlotKind};
use super::Stack;
use crate::handle::SocketHandle;
use crate::observe::{Account, Ring, Source};

impl Stack<'_> {
    /// Updates every socket's watches and lifecycle after a poll or a call; with `reap`,
    /// closed connections' slots are freed or recycled too. Settled sockets are passed
    /// over: for them the update would be a no-op.
    pub(crate) fn observe_sockets(&mut self, reap: bool) {
        for index in 0..self.slots.len() {
            let queued = self.arp_queue_held(index);
            let settled = self.slots[index]
                .as_ref()
                .is_none_or(|slot| slot.settled(&self.sockets, queued));
            if !settled {
                self.observe_slot_with(index, reap);
            } else if cfg!(debug_assertions) {
                self.check_settled(index, reap);
            }
        }
    }

    /// In debug builds (every test run), a settled slot is observed in full all the same,
    /// and that must have changed nothing: the check that passing it over is exact.
    fn check_settled(&mut self, index: usize, reap: bool) {
        let look = |slot: &Option<Slot>| {
            slot.as_ref().map(|slot| {
                let state = match &slot.kind {
                    SlotKind::Tcp(t) => Some(t.last_state()),
                    _ => None,
                };
                (
                    slot.stats,
                    state,
                    slot.rx_watch.used(),
                    slot.tx_watch.used(),
                )
            })
        };
        let before = look(&self.slots[index]);
        self.observe_slot_with(index, reap);
        assert_eq!(
            before,
            look(&self.slots[index]),
            "{}: socket {} was taken for settled, but observing it changed it",
            self.name,
            index
        );
    }

    /// Updates one socket's watches and state after a call.
    pub(crate) fn observe_slot(&mut self, index: usize) {
        self.observe_slot_with(index, false);
    }

    fn observe_slot_with(&mut self, index: usize, reap: bool) {
        let handle = SocketHandle(index as u16);
        let queued = self.arp_queue_held(index);
        let rec = self.recorder();
        let Some(slot) = self.slots[index].as_mut() else {
            return;
        };
        let kind = slot.socket_type();
        slot.log_throttle.flush(&rec, kind, handle);
        if let SlotKind::Listener(_) = slot.kind {
            return;
        }
        let (rx, (tx, capacity)) = ring_usage(&self.sockets, &slot.kind);
        // The datagrams the ARP queue holds for it are in its send buffer, as in Linux's.
        let tx = (tx + queued, capacity);
        let source = Source::Socket { handle, kind };
        let mut account = Account::new(&mut slot.stats, &mut slot.log_throttle);
        slot.rx_watch
            .update(&rec, source, &mut account, Ring::Rx, rx);
        slot.tx_watch
            .update(&rec, source, &mut account, Ring::Tx, tx);
        if let SlotKind::Tcp(_) = slot.kind {
            self.tcp_lifecycle(index, reap);
        }
    }
}

impl Slot {
    /// Whether observing this slot now would record nothing and change nothing: no
    /// transition line is waiting to be summed up by its log limit, each ring holds what
    /// its watch last saw, and a TCP socket is settled in its lifecycle
    /// ([`TcpSlot::settled`](super::TcpSlot::settled)). Exact, not a heuristic: every
    /// ring change, state change and timer still goes through the full observation.
    /// `queued` is what the ARP queue holds for it, part of its tx occupancy.
    pub(crate) fn settled(&self, sockets: &SocketSet<'_>, queued: usize) -> bool {
        if self.log_throttle.has_left_out() {
            return false;
        }
        let (rx, tx) = match &self.kind {
            SlotKind::Listener(_) => return true,
            SlotKind::Udp(u) => {
                let s = sockets.get::<udp::Socket>(u.inner);
                (s.recv_queue(), s.send_queue())
            }
            SlotKind::Tcp(t) => {
                let s = sockets.get::<tcp::Socket>(t.inner());
                if !t.settled(s) {
                    return false;
                }
                (s.recv_queue(), s.send_queue())
            }
        };
        self.rx_watch.used() == rx && self.tx_watch.used() == tx + queued
    }
}
