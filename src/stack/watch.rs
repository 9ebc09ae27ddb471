//! After every poll and every call: each socket's rings are measured and fed to its
//! watches (which log and count the transitions), then a TCP socket takes its lifecycle
//! step.

use super::table::{ring_usage, SlotKind};
use super::Stack;
use crate::handle::SocketHandle;
use crate::observe::{Account, Ring, Source};

impl Stack<'_> {
    /// Updates every socket's watches and lifecycle after a poll or a call; with `reap`,
    /// closed connections' slots are freed or recycled too.
    pub(crate) fn observe_sockets(&mut self, reap: bool) {
        for index in 0..self.slots.len() {
            self.observe_slot_with(index, reap);
        }
    }

    /// Updates one socket's watches and state after a call.
    pub(crate) fn observe_slot(&mut self, index: usize) {
        self.observe_slot_with(index, false);
    }

    fn observe_slot_with(&mut self, index: usize, reap: bool) {
        let handle = SocketHandle(index as u16);
        let rec = self.recorder();
        let Some(slot) = self.slots[index].as_mut() else {
            return;
        };
        let kind = slot.socket_type();
        slot.log_throttle.flush(&rec, kind, handle);
        if let SlotKind::Listener(_) = slot.kind {
            return;
        }
        let (rx, tx) = ring_usage(&self.sockets, &slot.kind);
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
