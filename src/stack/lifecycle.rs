//! The stack's part in a socket's life: `close()` and `abort()`, a listener's close, when
//! a backlog socket in TIME-WAIT may rejoin its backlog, and the lifecycle step after
//! every poll, which frees or recycles a slot whose connection is over. The TCP state
//! itself changes only in `TcpSlot`'s methods.

use core::cell::RefCell;

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr};

use super::arp_queue::neighbour_for;
use super::table::{listeners, tcp_slots, Slot, SlotKind};
use super::tcp_slot::GaveWay;
use super::Stack;
use crate::handle::{SocketHandle, SocketType};
use crate::observe::{Account, EventKind, Recorder, Source, Timer};
use crate::phy::{FrameLog, HeardNeighbours, PeerFin};

error_enum! {
    /// Error from [`Stack::close`] and [`Stack::abort`].
    pub enum CloseError {
        /// The handle names no socket (`EBADF`), for instance because it was closed already.
        BadHandle => "no socket with that handle",
    }
}

impl<'a> Stack<'a> {
    /// `close()`: the handle is released at once. A stream's connection closes in the
    /// background (FIN after the queued data) and its slot is reused once it is closed;
    /// unread received data makes it a reset instead, as Linux does.
    pub fn close(&mut self, handle: SocketHandle) -> Result<(), CloseError> {
        let name = self.name;
        let kind = self
            .slot(handle)
            .ok_or(CloseError::BadHandle)?
            .socket_type();
        match kind {
            SocketType::Listener => self.close_listener(handle),
            SocketType::Stream => self.close_stream(handle, false),
            SocketType::Datagram => {
                if let Some(Some(Slot {
                    kind: SlotKind::Udp(u),
                    ..
                })) = self.slots.get(handle.fileno())
                {
                    self.sockets.remove(u.inner);
                }
                self.slots[handle.fileno()] = None;
                self.arp_queue_socket_closed(handle);
                self.name_udp_ports();
            }
        }
        let who = crate::observe::Who {
            stack: name,
            kind,
            handle,
        };
        net_info!("{} closed", who);
        Ok(())
    }

    /// Aborts a stream with RST (`SO_LINGER` with a zero timeout, then `close()`); other
    /// sockets are simply closed.
    pub fn abort(&mut self, handle: SocketHandle) -> Result<(), CloseError> {
        match self
            .slot(handle)
            .ok_or(CloseError::BadHandle)?
            .socket_type()
        {
            SocketType::Stream => {
                self.close_stream(handle, true);
                net_info!("{}: tcp{} aborted (RST)", self.name, handle);
                Ok(())
            }
            _ => self.close(handle),
        }
    }

    fn close_stream(&mut self, handle: SocketHandle, abort: bool) {
        let Some(Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        })) = self.slots.get_mut(handle.fileno())
        else {
            return;
        };
        t.close(
            self.sockets.get_mut::<tcp::Socket>(t.inner()),
            abort,
            self.name,
            handle,
            self.now,
        );
        self.observe_slot(handle.fileno());
    }

    fn close_listener(&mut self, listener: SocketHandle) {
        for index in 0..self.slots.len() {
            if let Some(Slot {
                kind: SlotKind::Tcp(t),
                ..
            }) = &mut self.slots[index]
            {
                t.leave_backlog_of(
                    listener,
                    self.sockets.get_mut::<tcp::Socket>(t.inner()),
                    self.now,
                );
            }
        }
        self.slots[listener.fileno()] = None;
        self.observe_sockets(false);
    }

    /// The earliest moment a backlog socket in TIME-WAIT may go back to listening.
    /// The next moment a TCP socket's lifecycle moves without a frame: a backlog socket
    /// in TIME-WAIT rejoining its backlog, or a timer of [`TcpTimers`](super::TcpTimers)
    /// firing.
    pub(super) fn next_lifecycle_event(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        for t in tcp_slots(self.slots) {
            // Without a timer of its own running, a socket has no event to come.
            if !t.may_time_out() {
                continue;
            }
            let socket = self.sockets.get::<tcp::Socket>(t.inner());
            // Whether the backlog is starved matters only in TIME-WAIT: asked there
            // alone, the search of the table stays rare.
            take(
                t.time_wait_listener()
                    .and_then(|l| t.backlog_return_at(socket, self.backlog_starved(l))),
            );
            take(t.timer_at(socket, &self.timers));
        }
        next
    }

    /// Whether no socket of `listener`'s backlog is listening: a SYN would meet a RST.
    fn backlog_starved(&self, listener: SocketHandle) -> bool {
        !self
            .slots
            .iter()
            .flatten()
            .any(|slot| matches!(&slot.kind, SlotKind::Tcp(t) if t.listening_for(listener)))
    }

    /// One lifecycle step of the TCP socket in slot `index`, after its ring watches
    /// (`TcpSlot::step`); with `reap`, a connection that is over leaves its slot free or
    /// back in its backlog (only after a poll, so a pending RST or ACK has left).
    pub(super) fn tcp_lifecycle(&mut self, index: usize, reap: bool) {
        let starved = match self.slots[index].as_ref().map(|slot| &slot.kind) {
            Some(SlotKind::Tcp(t)) => t
                .time_wait_listener()
                .is_some_and(|l| self.backlog_starved(l)),
            _ => false,
        };
        let handle = SocketHandle(index as u16);
        let Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        }) = self.slots[index].as_mut()
        else {
            return;
        };
        let inner = t.inner();
        let listener = t.listener();
        let state_before = t.last_state();
        let step = t.step(
            self.sockets.get_mut::<tcp::Socket>(inner),
            self.name,
            handle,
            self.now,
            &self.timers,
            starved,
            reap,
            &mut self.ready_counter,
        );
        if step.relistened {
            t.renew(&mut self.sockets);
        }
        if t.last_state() != state_before || step.expired.is_some() {
            self.backlogs_changed = true;
        }
        let state_after = t.last_state();
        if state_after != state_before {
            self.record(
                handle,
                EventKind::State {
                    from: state_before,
                    to: state_after,
                },
            );
        }
        if let Some(timer) = step.expired {
            // A backlog's timers are the listener's story; elsewhere the socket's own.
            self.record(listener.unwrap_or(handle), EventKind::Timer(timer));
        }
        if let (Some(took), Some(listener)) = (step.handshake, listener) {
            if let Some(Some(Slot {
                kind: SlotKind::Listener(l),
                ..
            })) = self.slots.get_mut(listener.fileno())
            {
                l.note_handshake(took);
            }
        }
        if step.freed {
            self.sockets.remove(inner);
            self.slots[index] = None;
            net_debug!("{}: tcp{} connection gone, slot free", self.name, handle);
        }
    }
}

/// How long a SYN that found no room may be held back while an orphan of its backlog
/// is still delivering its last data: about what the client's own first retransmission
/// would wait, without the RST that makes it give up.
pub(super) const SYN_HOLD: Duration = Duration::from_millis(500);

/// Keeps every listener ready for the next SYN, as Linux keeps its accept queue apart
/// from the connections: after a frame, drops a SYN the inspector held whose four-tuple a
/// connection holds already (a duplicate, which a listening socket would answer for
/// another connection, resetting it) and lets any other go on; names the listeners whose backlog has no socket
/// listening but one that could give way or soon will (the inspector then holds a SYN
/// for them back), and makes room for a SYN the inspector holds; one that finds no room
/// within [`SYN_HOLD`], or at once if its peer's next hop was never heard from (a
/// spoofed source), goes to smoltcp, which answers RST as before: the inspector holds
/// one SYN, and a spoofed one waiting in vain would leave a real client's SYN to another
/// port no hold.
pub(super) fn guard_backlogs(
    rec: &Recorder<'_>,
    frames: &RefCell<FrameLog>,
    slots: &mut [Option<Slot>],
    sockets: &mut SocketSet<'_>,
    changed: &mut bool,
    route: Route,
) {
    let now = rec.now;
    let to_check = frames.borrow().syn_to_check();
    if let Some((local, from, rst_seq)) = to_check {
        let duplicate = match rst_seq {
            None => connection_of(slots, sockets, local, from),
            Some(seq) => inexact_rst(slots, sockets, local, from, seq),
        };
        frames
            .borrow_mut()
            .checked_held_syn(duplicate.is_some(), duplicate.flatten());
    }
    let (syn_seen, held) = {
        let mut frames = frames.borrow_mut();
        (core::mem::take(&mut frames.syn_seen), frames.held_syn())
    };
    if let Some((port, from, at)) = held {
        let heard = |peer| route.heard(&frames.borrow().neighbours, peer, now);
        let made = make_room(rec, slots, sockets, port, from, &heard);
        // A SYN whose next hop was never heard from (a spoofed source's, whose SYN-ACK
        // cannot leave; or a host silent for the neighbours' 60 s) waits for nothing: the
        // inspector holds one SYN, which a heard client's, to any port, may need.
        if made || now >= at + SYN_HOLD || !heard(from) {
            frames.borrow_mut().release_held_syn();
            *changed = true;
        }
    }
    if syn_seen || *changed {
        *changed = false;
        let starved = listeners(slots)
            .filter(|(listener, _)| {
                !listening(slots, sockets, *listener)
                    && room_may_come(slots, sockets, *listener, now)
            })
            .map(|(_, port)| port);
        frames.borrow_mut().set_starved(starved);
    }
}

/// Whether `listener`'s backlog holds a socket that could give way to a SYN, or will once
/// it has delivered its last data.
fn room_may_come(
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    listener: SocketHandle,
    now: Instant,
) -> bool {
    tcp_slots(slots).any(|t| {
        let socket = sockets.get::<tcp::Socket>(t.inner());
        t.may_give_way(listener, socket, now).is_some() || t.delivering_for(listener, socket)
    })
}

/// Whether a socket of `listener`'s backlog is listening (can take a SYN now). Not
/// inlined: the backlog guard and `make_room` both ask.
#[inline(never)]
fn listening(slots: &[Option<Slot>], sockets: &SocketSet<'_>, listener: SocketHandle) -> bool {
    tcp_slots(slots).any(|t| {
        t.listener() == Some(listener)
            && sockets.get::<tcp::Socket>(t.inner()).state() == tcp::State::Listen
    })
}

/// The connection of this stack with the four-tuple `local`, `remote` in SYN-RECEIVED or
/// later (TIME-WAIT excepted: a bare SYN with that four-tuple is then a duplicate, which a
/// listening socket must not take), if any; with the acknowledgment number that makes
/// smoltcp answer a SYN of that four-tuple with a challenge ACK when the connection is
/// synchronized (RFC 5961 4.2): its `SND.NXT` plus 2^30, an acknowledgment of data never
/// sent, to which smoltcp answers with an ACK of what it has (once a second at most).
/// A half-open connection gets none: its peer is still in its handshake.
fn connection_of(
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    local: IpEndpoint,
    remote: IpEndpoint,
) -> Option<Option<u32>> {
    connection_with(slots, sockets, local, remote).map(|c| c.challenge)
}

/// Whether a RST with sequence number `seq` from `remote` to `local` is one to drop
/// rather than obey (RFC 5961 3.2): a synchronized connection holds the four-tuple and
/// `seq` lies in its window (its rx ring's reach beyond the acknowledgment number it
/// sent last) but not at that number. `Some(None)` then: [`FrameLog::checked_held_syn`]
/// drops it. `None` lets smoltcp have the RST as it came (it obeys one at the next
/// number, and drops one outside its window). Linux answers such a RST with a challenge
/// ACK; here the connection's own next ACK does that: a peer's RST beyond the number last
/// acknowledged follows data not acknowledged yet, whose ACK leaves within the delayed
/// ACK's 10 ms, and a peer that meant its RST answers that ACK with a RST at the number
/// it carries, which the connection obeys.
///
/// [`FrameLog::checked_held_syn`]: crate::phy::FrameLog::checked_held_syn
// Not inlined: what it looks at stays out of the poll's frame, which smoltcp's deepest
// path sits on.
#[inline(never)]
fn inexact_rst(
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    local: IpEndpoint,
    remote: IpEndpoint,
    seq: u32,
) -> Option<Option<u32>> {
    let found = connection_with(slots, sockets, local, remote)?;
    let ahead = seq.wrapping_sub(found.ack_sent?);
    (found.challenge.is_some() && ahead != 0 && (ahead as usize) < found.window).then_some(None)
}

/// A connection [`connection_with`] found.
struct Found {
    /// What [`connection_of`] gives.
    challenge: Option<u32>,
    /// The acknowledgment number of the last segment it sent.
    ack_sent: Option<u32>,
    /// Its rx ring's capacity: the furthest its window reaches.
    window: usize,
}

/// The connection with the four-tuple `local`, `remote`, as [`connection_of`] looks.
fn connection_with(
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    local: IpEndpoint,
    remote: IpEndpoint,
) -> Option<Found> {
    use tcp::State;
    slots.iter().flatten().find_map(|slot| {
        let SlotKind::Tcp(t) = &slot.kind else {
            return None;
        };
        let socket = sockets.get::<tcp::Socket>(t.inner());
        let synchronized = match socket.state() {
            State::SynReceived => false,
            State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck => true,
            _ => return None,
        };
        if socket.local_endpoint() != Some(local) || socket.remote_endpoint() != Some(remote) {
            return None;
        }
        Some(Found {
            challenge: t
                .sent_end()
                .filter(|_| synchronized)
                .map(|end| end.wrapping_add(1 << 30)),
            ack_sent: t.ack_sent(),
            window: socket.recv_capacity(),
        })
    })
}

/// Whether a connection of this stack with the four-tuple of `fin` took its peer's FIN:
/// it is CLOSE-WAIT, CLOSING, LAST-ACK or TIME-WAIT.
#[inline(never)]
fn past_peer_fin(
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    local: Option<smoltcp::wire::Ipv4Address>,
    fin: &PeerFin,
) -> bool {
    use tcp::State;
    let Some(local) = local else {
        return false;
    };
    let local = IpEndpoint::new(local.into(), fin.port);
    tcp_slots(slots).any(|t| {
        let socket = sockets.get::<tcp::Socket>(t.inner());
        matches!(
            socket.state(),
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        ) && socket.local_endpoint() == Some(local)
            && socket.remote_endpoint() == Some(fin.peer)
    })
}

/// Keeps the inspector's list of connections past their peer's FIN: after a frame
/// carrying a FIN of a connection not listed, the connection is listed if it took the
/// FIN (the inspector then withholds any later bytes of its peer from smoltcp, which
/// would queue them behind the FIN's); with `prune`, connections gone or reused since
/// leave the list.
#[inline(never)]
pub(super) fn track_peer_fins(
    frames: &RefCell<FrameLog>,
    slots: &[Option<Slot>],
    sockets: &SocketSet<'_>,
    prune: bool,
) {
    let mut frames = frames.borrow_mut();
    let local = frames.local_ip;
    if let Some(fin) = frames.fin_in.take() {
        if past_peer_fin(slots, sockets, local, &fin) {
            frames.peer_closed(fin);
        }
    }
    if prune && frames.has_peer_fins() {
        frames.retain_peer_fins(|fin| past_peer_fin(slots, sockets, local, fin));
    }
}

/// Where the interface's packets go: its subnet and its gateway.
#[derive(Clone, Copy)]
pub(super) struct Route {
    pub cidr: Ipv4Cidr,
    pub gateway: Option<Ipv4Address>,
}

impl Route {
    /// Whether `peer`'s next hop has been heard from at `now`: a SYN-ACK to it leaves at
    /// once, where one to a next hop that never answers ARP waits for ever.
    fn heard(self, neighbours: &HeardNeighbours, peer: IpEndpoint, now: Instant) -> bool {
        let IpAddress::Ipv4(addr) = peer.addr;
        neighbour_for(self.cidr, self.gateway, addr).is_some_and(|hop| neighbours.heard(hop, now))
    }
}

/// Makes room in the backlog of the listener on `port` for a SYN from `from` that found
/// no socket listening: the oldest orphan in TIME-WAIT or with all its data acknowledged
/// gives way, or else the oldest half-open connection whose peer's next hop `answered`
/// says was never heard from (its SYN-ACK still waits on ARP: a spoofed source), or else
/// the oldest half-open one, which for a SYN from a next hop never heard from must be older
/// than its listener's grace
/// ([`ListenerSlot::grace`](super::table::ListenerSlot::grace): a few of its handshakes);
/// live connections never do. A spoofed SYN flood so takes the
/// place of its own half-opens and not of a real client's handshake, which Linux keeps
/// with SYN cookies. Counted on the listener, logged once. A SYN `from` a peer whose
/// handshake is under way already is a retransmission: it goes to that connection, and
/// nothing gives way. Returns whether the SYN has somewhere to go now.
fn make_room(
    rec: &Recorder<'_>,
    slots: &mut [Option<Slot>],
    sockets: &mut SocketSet<'_>,
    port: u16,
    from: IpEndpoint,
    answered: &dyn Fn(IpEndpoint) -> bool,
) -> bool {
    let retransmitted = tcp_slots(slots).any(|t| {
        let socket = sockets.get::<tcp::Socket>(t.inner());
        socket.remote_endpoint() == Some(from)
            && socket.local_endpoint().is_some_and(|l| l.port == port)
    });
    if retransmitted {
        return true;
    }
    // A spoofed SYN may not take a real client's young handshake's place.
    let spoofed = !answered(from);
    let Some((listener, grace)) = slots
        .iter()
        .enumerate()
        .find_map(|(index, slot)| match slot {
            Some(Slot {
                kind: SlotKind::Listener(l),
                ..
            }) if l.port == port => Some((SocketHandle(index as u16), l.grace())),
            _ => None,
        })
    else {
        return true;
    };
    if listening(slots, sockets, listener) {
        return true;
    }
    // The first of the least (reason, answered, since), as `min_by_key` finds it: a
    // plain loop (the adapters' fold over the key tuples built 0.3 KB more). Of the
    // half-open ones, those whose SYN-ACK cannot have left (a next hop never heard from:
    // a spoofed source) give way before those whose peer can finish its handshake.
    let mut chosen: Option<(usize, (GaveWay, bool, Instant))> = None;
    for (index, slot) in slots.iter().enumerate() {
        let Some(Slot {
            kind: SlotKind::Tcp(t),
            ..
        }) = slot
        else {
            continue;
        };
        let socket = sockets.get::<tcp::Socket>(t.inner());
        if let Some((why, since)) = t.may_give_way(listener, socket, rec.now) {
            let heard = why == GaveWay::HalfOpen && socket.remote_endpoint().is_some_and(answered);
            if heard && spoofed && rec.now < since + grace {
                continue;
            }
            let key = (why, heard, since);
            if chosen.is_none_or(|(_, k)| key < k) {
                chosen = Some((index, key));
            }
        }
    }
    let Some((index, (why, _, _))) = chosen else {
        return false;
    };
    if let Some(Some(Slot {
        kind: SlotKind::Tcp(t),
        ..
    })) = slots.get_mut(index)
    {
        let socket = sockets.get_mut::<tcp::Socket>(t.inner());
        let timer = Timer::GaveWay {
            socket: SocketHandle(index as u16),
            half_open: why == GaveWay::HalfOpen,
            state: socket.state(),
            peer: socket.remote_endpoint(),
            port,
        };
        t.give_way(socket);
        t.renew(sockets);
        if let Some(Some(slot)) = slots.get_mut(listener.fileno()) {
            let source = Source::Socket {
                handle: listener,
                kind: SocketType::Listener,
            };
            let mut account = Account::new(&mut slot.stats, &mut slot.log_throttle);
            rec.record(source, Some(&mut account), EventKind::Timer(timer));
        }
    }
    true
}
