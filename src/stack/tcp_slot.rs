//! [`TcpSlot`], ringnet's state of one TCP socket beside smoltcp's: the life of a TCP
//! socket in the table, from creation to reuse: connect or a place in a listener's
//! backlog, accept, `shutdown`, `close` (the orphan the kernel keeps until the connection
//! is over), abort, and the return of a finished backlog socket to listening after a
//! short TIME-WAIT.
//!
//! Its fields are private to this module: every change of a TCP socket's lifecycle goes
//! through a method here, and so do its timers ([`TcpTimers`]): a half-open connection
//! expires as Linux's SYN-RECEIVED does after its SYN-ACK retries, and an orphan (a
//! connection `close()` left behind) has a bounded life: in FIN-WAIT-2 as Linux's
//! `tcp_fin_timeout` bounds it, and while it still delivers data or its FIN by a count of
//! retransmissions without progress, as Linux's `tcp_orphan_retries` does.

use crate::convert::elapsed;
use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, Socket};

use smoltcp::time::{Duration, Instant};

use crate::handle::SocketHandle;
use crate::observe::{Account, Recorder, Source, Timer, WindowWatch};
use crate::phy::TcpSeqEnd;

/// How a TCP connection ended other than by an orderly close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpEnd {
    /// The peer sent RST while connected.
    Reset,
    /// The peer answered our SYN with RST.
    Refused,
    /// This side aborted.
    Aborted,
    /// This side gave up on an orphan whose peer never finished closing.
    Expired,
}

/// The timers of the TCP lifecycle ([`Stack::set_tcp_timers`](crate::Stack::set_tcp_timers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimers {
    /// How long a backlog socket may stay half-open (SYN-RECEIVED, its SYN-ACK
    /// unanswered) before it goes back to listening. smoltcp retransmits the SYN-ACK
    /// meanwhile (after 1 s, then doubling). Linux gives up after 5 retries
    /// (`tcp_synack_retries`), 63 s after the SYN; so does the default. A fixed backlog
    /// can wait that long because a half-open socket gives way to any new SYN that
    /// finds no socket listening; a shorter wait only reset clients on a lossy path whose
    /// ACK was slow to get through. Default 63 s.
    pub syn_received: Duration,
    /// How long an orphan in FIN-WAIT-2 (a connection after `close()` whose data and
    /// FIN are acknowledged) may wait for the peer's FIN before it is reset and its slot
    /// reused: Linux's `tcp_fin_timeout`, which bounds that state only. Default 60 s.
    pub fin_timeout: Duration,
    /// How many retransmissions an orphan still delivering (FIN-WAIT-1, CLOSING,
    /// LAST-ACK: data or FIN unacknowledged) may send without progress before it is
    /// reset: Linux's `tcp_orphan_retries`, whose 0 means 8. Zero-window probes count,
    /// as in Linux, so a reader that never opens its window is cut off too. Time is no
    /// bound here: smoltcp's backoff grows to a minute, and a slow, lossy peer is no
    /// dead one. Default 8.
    pub orphan_retries: u8,
    /// The cap on how long such an orphan may go without progress whatever its count:
    /// one whose peer vanished sends no segments to count (their next hop no longer
    /// resolves, so ARP requests leave instead). Default 300 s, about what 8 of smoltcp's
    /// backed-off retransmissions take.
    pub orphan_timeout: Duration,
}

impl TcpTimers {
    /// Linux's defaults.
    pub const DEFAULT: TcpTimers = TcpTimers {
        syn_received: Duration::from_secs(63),
        fin_timeout: Duration::from_secs(60),
        orphan_retries: 8,
        orphan_timeout: Duration::from_secs(300),
    };
}

impl Default for TcpTimers {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a [`TcpSlot::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Step {
    /// The connection is over and nobody holds it: the slot is to be freed.
    pub freed: bool,
    /// A timer fired ([`Timer::HalfOpenExpired`] or [`Timer::OrphanExpired`]); the stack
    /// records it on the socket's listener (or on the socket, outside a backlog).
    pub expired: Option<Timer>,
    /// It went back to listening (by ringnet's timers, or smoltcp's at a RST to a half-open
    /// connection): [`TcpSlot::renew`] is due.
    pub relistened: bool,
    /// Its handshake finished, after it had been half-open this long (the SYN-ACK's round
    /// trip and the peer's turn).
    pub handshake: Option<Duration>,
}

/// Why a backlog socket gave its place to a new connection ([`TcpSlot::give_way`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum GaveWay {
    /// An orphan in TIME-WAIT, or one with all its data acknowledged.
    Orphan,
    /// A half-open connection (SYN-RECEIVED).
    HalfOpen,
    /// An orphan still delivering that went back to resend [`STALLED_RETRANSMITS`] times
    /// without progress: its peer stopped reading or vanished. What it still holds is
    /// lost, as when Linux resets orphans past `tcp_max_orphans`; the backlog is the limit
    /// here.
    Stalled,
}

/// How many retransmissions without progress make an orphan still delivering give way
/// to a new connection ([`GaveWay::Stalled`]): a peer that never opens its window has
/// had its probes resent twice, about 7 s in.
const STALLED_RETRANSMITS: u8 = 2;

/// Why smoltcp has no connection for a `recv` to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoConnection {
    /// The handshake is still under way.
    Connecting,
    /// The peer reset the connection.
    Reset,
    /// The connection ended in order: end of stream, for ever.
    Ended,
    /// There never was one (or it was refused or aborted).
    NeverConnected,
}

/// A backlog socket's tie to its listener.
#[derive(Debug, Clone, Copy)]
struct Membership {
    listener: SocketHandle,
    /// `accept` handed it to the user.
    accepted: bool,
    /// The stack's ready counter when its handshake completed: `accept` takes the lowest.
    ready_seq: u32,
}

/// A connection `close()` left behind.
#[derive(Debug, Clone, Copy)]
struct Orphan {
    /// When the last progress was made: `close()` itself, a state change, or the
    /// peer acknowledging some of what is still queued.
    progress_at: Instant,
    /// What was queued, and the state, then.
    queued: usize,
    state: tcp::State,
    /// Retransmissions since then ([`TcpTimers::orphan_retries`]): each time smoltcp
    /// went back to resend, not each segment it resent.
    retransmits: u8,
    /// Where the last resent segment ended: one ending at or before it goes back again.
    resent_end: Option<u32>,
}

impl Orphan {
    fn new(now: Instant, socket: &tcp::Socket) -> Orphan {
        Orphan {
            progress_at: now,
            queued: socket.send_queue(),
            state: socket.state(),
            retransmits: 0,
            resent_end: None,
        }
    }

    /// Notes progress since the last look.
    fn watch(&mut self, now: Instant, socket: &tcp::Socket) {
        if socket.state() != self.state || socket.send_queue() < self.queued {
            *self = Orphan::new(now, socket);
        }
    }
}

/// A socket in TIME-WAIT.
#[derive(Debug, Clone, Copy)]
struct TimeWait {
    since: Instant,
    /// A segment left this socket in TIME-WAIT: the ACK of the peer's FIN is out.
    acked: bool,
}

/// ringnet's state of one TCP socket beside smoltcp's.
#[derive(Debug)]
pub(crate) struct TcpSlot {
    inner: smoltcp::iface::SocketHandle,
    window: WindowWatch,
    last_state: tcp::State,
    end: Option<TcpEnd>,
    write_shut: bool,
    /// `close()` was called: the handle is gone, the connection lingers as an orphan until
    /// it is over, or until its timers ([`TcpTimers`]) give up on it.
    orphan: Option<Orphan>,
    /// Where the furthest segment it sent ends in sequence space: a segment ending at or
    /// before it is a retransmission.
    sent_end: Option<u32>,
    /// The acknowledgment number of the last segment it sent: the next sequence number
    /// it expected then, at which alone a RST ends the connection (RFC 5961 3.2).
    ack_sent: Option<u32>,
    /// Since when it has been SYN-RECEIVED (half-open).
    half_open: Option<Instant>,
    backlog: Option<Membership>,
    /// The port of the listener this socket joined (kept for the stats table).
    backlog_port: u16,
    connected_once: bool,
    time_wait: Option<TimeWait>,
}

/// How long a closed connection's slot stays in TIME-WAIT before it is reused: long
/// enough for the final ACK to leave (the delayed-ACK timer is 10 ms by default), short
/// enough that a fixed backlog is ready for the next client at once.
const SHORT_TIME_WAIT: Duration = Duration::from_millis(50);

impl TcpSlot {
    /// A fresh socket around smoltcp's `inner`: never connected, in no backlog.
    pub(crate) fn new(inner: smoltcp::iface::SocketHandle) -> TcpSlot {
        TcpSlot {
            inner,
            window: WindowWatch::default(),
            last_state: tcp::State::Closed,
            end: None,
            write_shut: false,
            orphan: None,
            sent_end: None,
            ack_sent: None,
            half_open: None,
            backlog: None,
            backlog_port: 0,
            connected_once: false,
            time_wait: None,
        }
    }

    /// The state the last lifecycle step saw.
    pub(crate) fn last_state(&self) -> tcp::State {
        self.last_state
    }

    /// Where the furthest segment it sent ends in sequence space (its `SND.NXT`), once it
    /// has sent one that occupies sequence space.
    pub(crate) fn sent_end(&self) -> Option<u32> {
        self.sent_end
    }

    /// The acknowledgment number of the last segment it sent, if any.
    pub(crate) fn ack_sent(&self) -> Option<u32> {
        self.ack_sent
    }

    /// smoltcp's handle of the socket.
    pub(crate) fn inner(&self) -> smoltcp::iface::SocketHandle {
        self.inner
    }

    /// Whether the user may name it: not closed, and not an unaccepted backlog socket.
    pub(crate) fn is_visible(&self) -> bool {
        self.orphan.is_none() && self.backlog.is_none_or(|m| m.accepted)
    }

    /// The listener whose backlog it serves.
    pub(crate) fn listener(&self) -> Option<SocketHandle> {
        self.backlog.map(|m| m.listener)
    }

    /// The port of the listener it joined, 0 if none.
    pub(crate) fn backlog_port(&self) -> u16 {
        self.backlog_port
    }

    /// Whether the handshake ever completed.
    pub(crate) fn connected_once(&self) -> bool {
        self.connected_once
    }

    /// Whether `shutdown(SHUT_WR)` was called.
    pub(crate) fn write_shut(&self) -> bool {
        self.write_shut
    }

    /// In no backlog, never connected, no connection under way: what `listen` asks of a
    /// backlog socket.
    pub(crate) fn is_fresh(&self, socket: &tcp::Socket) -> bool {
        self.backlog.is_none() && !self.connected_once && socket.state() == tcp::State::Closed
    }

    /// Fresh, and no attempt of its own ended (refused or aborted): what `connect` asks.
    pub(crate) fn can_connect(&self, socket: &tcp::Socket) -> bool {
        self.is_fresh(socket) && self.end.is_none()
    }

    /// Joins `listener`'s backlog; `socket` is already listening on `port`.
    pub(crate) fn join_backlog(&mut self, listener: SocketHandle, port: u16) {
        self.backlog = Some(Membership {
            listener,
            accepted: false,
            ready_seq: 0,
        });
        self.backlog_port = port;
        self.last_state = tcp::State::Listen;
    }

    /// When it became ready, if it is a connection of `listener` waiting for `accept`.
    pub(crate) fn ready_in(&self, listener: SocketHandle) -> Option<u32> {
        match self.backlog {
            Some(m) if m.listener == listener && !m.accepted && self.connected_once => {
                self.orphan.is_none().then_some(m.ready_seq)
            }
            _ => None,
        }
    }

    /// `accept` hands it to the user.
    pub(crate) fn accept(&mut self) {
        if let Some(m) = &mut self.backlog {
            m.accepted = true;
        }
    }

    /// `shutdown(SHUT_WR)`: FIN after the queued data.
    pub(crate) fn shut_write(&mut self, socket: &mut tcp::Socket) {
        self.write_shut = true;
        socket.close();
    }

    /// What `recv` reports when smoltcp has no connection to read from.
    pub(crate) fn no_connection(&self, socket: &tcp::Socket) -> NoConnection {
        match (socket.state(), self.end) {
            (tcp::State::SynSent | tcp::State::SynReceived, _) => NoConnection::Connecting,
            (_, Some(TcpEnd::Reset)) => NoConnection::Reset,
            (_, None) if self.connected_once => NoConnection::Ended,
            _ => NoConnection::NeverConnected,
        }
    }

    /// Records the window of a segment this socket sent (the inspector saw it leave).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn segment_sent(
        &mut self,
        socket: &tcp::Socket,
        gate: &Recorder<'_>,
        source: Source,
        account: &mut Account<'_>,
        window_field: u16,
        (seq_end, ack): (Option<TcpSeqEnd>, u32),
    ) {
        if let Some(seq) = seq_end {
            self.count_retransmit(seq);
        }
        if ack != 0 {
            self.ack_sent = Some(ack);
        }
        if socket.state() == tcp::State::TimeWait {
            // This segment may leave in the very poll that entered TIME-WAIT, before the
            // lifecycle step has seen the state: start the TIME-WAIT here then.
            self.enter_time_wait(gate.now).acked = true;
        }
        self.window.segment_sent(
            gate,
            source,
            account,
            window_field,
            (socket.recv_queue(), socket.recv_capacity()),
        );
    }

    /// Notes where a sent segment ends; one ending at or before the furthest so far is a
    /// retransmission. For an orphan, a resend that goes back (to or before the last
    /// one's end) counts: a timeout resending a window of segments counts once, as
    /// Linux counts timeouts. A SYN starts the sequence space afresh.
    fn count_retransmit(&mut self, seq: TcpSeqEnd) {
        let again = !seq.syn
            && self
                .sent_end
                .is_some_and(|furthest| seq.end.wrapping_sub(furthest) as i32 <= 0);
        if !again {
            self.sent_end = Some(seq.end);
        } else if let Some(orphan) = &mut self.orphan {
            if orphan
                .resent_end
                .is_none_or(|last| seq.end.wrapping_sub(last) as i32 <= 0)
            {
                orphan.retransmits = orphan.retransmits.saturating_add(1);
            }
            orphan.resent_end = Some(seq.end);
        }
    }

    /// Its TIME-WAIT, begun at `now` if it had not begun yet.
    fn enter_time_wait(&mut self, now: Instant) -> &mut TimeWait {
        self.time_wait.get_or_insert(TimeWait {
            since: now,
            acked: false,
        })
    }

    /// A backlog socket the user no longer holds (never accepted, or closed): once its
    /// connection is over it goes back to listening.
    fn returns_to_backlog(&self) -> bool {
        self.backlog
            .is_some_and(|m| self.orphan.is_some() || !m.accepted)
    }

    /// When its TIME-WAIT is over. Normally after [`SHORT_TIME_WAIT`]; when its backlog
    /// has no listening socket left (`starved`), as soon as the ACK of the peer's FIN has
    /// been seen leaving, so the next SYN is not refused: Linux likewise cuts TIME-WAIT
    /// short rather than refuse connections when its time-wait buckets run out.
    fn time_wait_end(&self, socket: &tcp::Socket, starved: bool) -> Option<Instant> {
        if socket.state() != tcp::State::TimeWait {
            return None;
        }
        let time_wait = self.time_wait?;
        Some(if starved && time_wait.acked {
            time_wait.since
        } else {
            time_wait.since + SHORT_TIME_WAIT
        })
    }

    /// Whether a lifecycle [`step`](TcpSlot::step) now would do nothing: smoltcp's state
    /// is the one the last step saw, and none of the lifecycle's timers can be running
    /// (no orphan, not half-open, not in TIME-WAIT, not closed, where a step may free
    /// or recycle the slot).
    pub(crate) fn settled(&self, socket: &tcp::Socket) -> bool {
        let state = socket.state();
        state == self.last_state
            && !self.may_time_out()
            && !matches!(
                state,
                tcp::State::Closed | tcp::State::SynReceived | tcp::State::TimeWait
            )
    }

    /// Whether one of its lifecycle timers may be running: without an orphan, a
    /// half-open start or a TIME-WAIT, [`TcpSlot::timer_at`] and
    /// [`TcpSlot::backlog_return_at`] are `None` whatever smoltcp's state.
    pub(crate) fn may_time_out(&self) -> bool {
        self.orphan.is_some() || self.half_open.is_some() || self.time_wait.is_some()
    }

    /// Whether it is one of `listener`'s backlog sockets and listening.
    pub(crate) fn listening_for(&self, listener: SocketHandle) -> bool {
        self.listener() == Some(listener) && self.last_state == tcp::State::Listen
    }

    /// Aborts the connection with RST.
    fn abort(&mut self, socket: &mut tcp::Socket) {
        socket.abort();
        self.end = Some(TcpEnd::Aborted);
    }

    /// Logs a state change and records how the connection ended; returns whether the
    /// handshake has just completed.
    fn transition(
        &mut self,
        name: &str,
        handle: SocketHandle,
        state: tcp::State,
        socket: &tcp::Socket<'_>,
    ) -> bool {
        use tcp::State::*;
        let before = core::mem::replace(&mut self.last_state, state);
        // A handshake and a quick FIN can land in one poll: any synchronised state means
        // the connection was established, even if ESTABLISHED itself was never observed.
        let synchronised = matches!(
            state,
            Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck | TimeWait
        );
        let now_connected = synchronised && !self.connected_once;
        let who = crate::observe::Who {
            stack: name,
            kind: crate::handle::SocketType::Stream,
            handle,
        };
        if now_connected {
            self.connected_once = true;
            if let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint())
            {
                net_info!("{} connected {} <-> {}", who, local, remote);
            }
        }
        match state {
            Established => {}
            CloseWait => net_info!(
                "{} peer closed its side (FIN): recv returns 0 once {} buffered bytes are read",
                who,
                socket.recv_queue()
            ),
            Closed => match before {
                SynSent if self.end.is_none() => {
                    self.end = Some(TcpEnd::Refused);
                    net_warn!("{} connection refused (RST)", who);
                }
                SynReceived | Established | FinWait1 | FinWait2 | CloseWait | Closing
                    if self.end.is_none() =>
                {
                    self.end = Some(TcpEnd::Reset);
                    net_warn!("{} connection reset by peer (RST) in {}", who, before);
                }
                _ => net_info!("{} closed (was {})", who, before),
            },
            _ => net_debug!("{} {} -> {}", who, before, state),
        }
        now_connected
    }

    /// `close()`, or `abort()` with `abort`: FIN after the queued data, or RST when asked
    /// or when received data is left unread, as Linux does. The handle is gone; the
    /// connection lingers as an orphan until it is over.
    pub(crate) fn close(
        &mut self,
        socket: &mut tcp::Socket,
        abort: bool,
        name: &str,
        handle: SocketHandle,
        now: Instant,
    ) {
        if abort || socket.recv_queue() > 0 {
            if !abort {
                net_warn!(
                    "{}: tcp{} closed with {} unread bytes: sending RST, as Linux does",
                    name,
                    handle,
                    socket.recv_queue()
                );
            }
            self.abort(socket);
        } else {
            socket.close();
        }
        self.orphan = Some(Orphan::new(now, socket));
    }

    /// `listener` closed: the socket leaves its backlog. A connection nobody accepted is
    /// reset, as when a Linux listener closes with a full accept queue.
    pub(crate) fn leave_backlog_of(
        &mut self,
        listener: SocketHandle,
        socket: &mut tcp::Socket,
        now: Instant,
    ) {
        let Some(membership) = self.backlog.filter(|m| m.listener == listener) else {
            return;
        };
        self.backlog = None;
        if !membership.accepted {
            socket.abort();
            self.orphan = Some(Orphan::new(now, socket));
        }
    }

    /// When one of its timers fires next: the end of a half-open wait or of an orphan's
    /// life ([`TcpTimers`]); at once for an orphan past its retransmission count.
    pub(crate) fn timer_at(&self, socket: &tcp::Socket, timers: &TcpTimers) -> Option<Instant> {
        match socket.state() {
            tcp::State::SynReceived => self.half_open.map(|since| since + timers.syn_received),
            tcp::State::FinWait2 => self.orphan.map(|o| o.progress_at + timers.fin_timeout),
            tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck => {
                self.orphan.map(|o| {
                    if o.retransmits > timers.orphan_retries {
                        o.progress_at
                    } else {
                        o.progress_at + timers.orphan_timeout
                    }
                })
            }
            _ => None,
        }
    }

    /// Whether it can give its place in `listener`'s backlog to a new connection, and
    /// since when it has been in the state that allows it (the oldest gives way first):
    /// an orphan in TIME-WAIT, or one whose data is all acknowledged (only its FIN may be
    /// outstanding), before a half-open one, before an orphan still delivering that has
    /// stalled ([`GaveWay::Stalled`]). Live connections, and orphans still delivering
    /// data to a peer that acknowledges it, never give way.
    pub(crate) fn may_give_way(
        &self,
        listener: SocketHandle,
        socket: &tcp::Socket,
        now: Instant,
    ) -> Option<(GaveWay, Instant)> {
        if self.listener() != Some(listener) {
            return None;
        }
        match socket.state() {
            tcp::State::TimeWait if self.returns_to_backlog() => self
                .time_wait
                .map(|t| t.since)
                .or(self.orphan.map(|o| o.progress_at))
                .map(|since| (GaveWay::Orphan, since)),
            // Everything it sent is acknowledged but perhaps its FIN: nothing is lost.
            tcp::State::FinWait1
            | tcp::State::FinWait2
            | tcp::State::Closing
            | tcp::State::LastAck
                if socket.send_queue() == 0 =>
            {
                self.orphan.map(|o| (GaveWay::Orphan, o.progress_at))
            }
            // One that went half-open in this very poll has no instant yet: it is now.
            tcp::State::SynReceived if self.ready_in(listener).is_none() => {
                Some((GaveWay::HalfOpen, self.half_open.unwrap_or(now)))
            }
            tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck => self
                .orphan
                .filter(|o| o.retransmits >= STALLED_RETRANSMITS)
                .map(|o| (GaveWay::Stalled, o.progress_at)),
            _ => None,
        }
    }

    /// Whether it is an orphan of `listener`'s backlog still delivering data: it will
    /// give way (or be over) soon, so a SYN that finds no room can wait for it.
    pub(crate) fn delivering_for(&self, listener: SocketHandle, socket: &tcp::Socket) -> bool {
        self.listener() == Some(listener)
            && self.orphan.is_some()
            && matches!(
                socket.state(),
                tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
            )
    }

    /// Gives its place in the backlog to a new connection: back to listening at once, no
    /// RST (a half-open peer never finished its handshake; an orphan's peer learns it from
    /// the next segment it sends, as after Linux cuts a TIME-WAIT short).
    pub(crate) fn give_way(&mut self, socket: &mut tcp::Socket) {
        self.relisten(socket);
    }

    /// Back in its listener's backlog as a fresh listening socket.
    fn relisten(&mut self, socket: &mut tcp::Socket) {
        socket.abort();
        if socket.listen(self.backlog_port).is_ok() {
            let (listener, port) = (self.listener(), self.backlog_port);
            *self = TcpSlot::new(self.inner);
            if let Some(listener) = listener {
                self.join_backlog(listener, port);
            }
        }
    }

    /// After it went back to listening ([`Step::relistened`], or it gave way), takes it out
    /// of smoltcp's socket set and puts it back, as a fresh socket: the set keeps beside each socket the neighbour its last
    /// segment waited for, and keeps the socket silent for a second
    /// (`DISCOVERY_SILENT_TIME`) unless that neighbour answers ARP. A half-open
    /// connection of a spoofed source that gave way would so hold back the SYN-ACK to
    /// the real client that took its place until the client's SYN came again.
    pub(crate) fn renew(&mut self, sockets: &mut SocketSet<'_>) {
        if let Socket::Tcp(socket) = sockets.remove(self.inner) {
            self.inner = sockets.add(socket);
        }
    }

    /// When it goes back to listening, if it is a backlog socket in TIME-WAIT.
    pub(crate) fn backlog_return_at(&self, socket: &tcp::Socket, starved: bool) -> Option<Instant> {
        if self.time_wait.is_some() && self.returns_to_backlog() {
            self.time_wait_end(socket, starved)
        } else {
            None
        }
    }

    /// The listener whose backlog it serves, if it is in TIME-WAIT there: whether that
    /// backlog is starved decides when its TIME-WAIT ends.
    pub(crate) fn time_wait_listener(&self) -> Option<SocketHandle> {
        self.listener()
            .filter(|_| self.last_state == tcp::State::TimeWait)
    }

    /// One lifecycle step after a poll or a call: logs a state change (and stamps a
    /// completed handshake in a backlog with the next `ready_counter`), resets a closed
    /// socket that still receives data, starts TIME-WAIT, and fires the timers: a
    /// half-open connection past [`TcpTimers::syn_received`] goes back to listening, an
    /// orphan past [`TcpTimers::fin_timeout`] is reset. With `reap`, once the connection
    /// is over (an abort's RST has left, or TIME-WAIT ended) a backlog socket nobody holds
    /// goes back to listening, and an orphan in no backlog leaves its slot to be freed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        socket: &mut tcp::Socket,
        name: &str,
        handle: SocketHandle,
        now: Instant,
        timers: &TcpTimers,
        starved: bool,
        reap: bool,
        ready_counter: &mut u32,
    ) -> Step {
        let mut step = Step::default();
        let state = socket.state();
        // smoltcp itself takes a half-open socket back to listening at a RST in its window.
        step.relistened = self.last_state == tcp::State::SynReceived && state == tcp::State::Listen;
        if state != self.last_state && self.transition(name, handle, state, socket) {
            if let Some(m) = &mut self.backlog {
                *ready_counter = ready_counter.wrapping_add(1);
                m.ready_seq = *ready_counter;
            }
        }
        if self.orphan.is_some() && socket.recv_queue() > 0 && socket.state() != tcp::State::Closed
        {
            net_warn!(
                "{}: tcp{} data arrived after close: sending RST, as Linux does",
                name,
                handle
            );
            self.abort(socket);
        }
        if let Some(orphan) = &mut self.orphan {
            orphan.watch(now, socket);
        }
        if let Some(since) = self.half_open.filter(|_| {
            !matches!(
                state,
                tcp::State::SynReceived | tcp::State::Listen | tcp::State::Closed
            )
        }) {
            step.handshake = Some(elapsed(now, since));
        }
        match state {
            tcp::State::TimeWait => {
                self.enter_time_wait(now);
            }
            tcp::State::SynReceived => {
                self.half_open.get_or_insert(now);
            }
            _ => self.half_open = None,
        }
        if let Some(at) = self.timer_at(socket, timers).filter(|at| *at <= now) {
            if socket.state() == tcp::State::SynReceived && self.returns_to_backlog() {
                step.expired = Some(Timer::HalfOpenExpired {
                    socket: handle,
                    waited: elapsed(now, self.half_open.unwrap_or(at)),
                    port: self.backlog_port,
                });
                self.relisten(socket);
                step.relistened = true;
                return step;
            }
            if socket.state() != tcp::State::SynReceived {
                step.expired = Some(Timer::OrphanExpired {
                    socket: handle,
                    state: socket.state(),
                    idle: elapsed(now, self.orphan.map_or(at, |o| o.progress_at)),
                    retransmits: self.orphan.map_or(0, |o| o.retransmits),
                });
                socket.abort();
                self.end = Some(TcpEnd::Expired);
            }
        }
        // A connection is over once an abort's RST has left (smoltcp then forgets the
        // peer) or, for an orphan given up on, after the poll that could send it (a peer
        // that vanished may never take it); or after a short TIME-WAIT: memory is fixed,
        // so a slot cannot wait the full 2*MSL.
        let over = match socket.state() {
            tcp::State::Closed => {
                socket.remote_endpoint().is_none()
                    || (self.end == Some(TcpEnd::Expired) && step.expired.is_none())
            }
            tcp::State::TimeWait => self
                .time_wait_end(socket, starved)
                .is_some_and(|end| end <= now),
            _ => false,
        };
        if !(reap && over) {
            return step;
        }
        if self.returns_to_backlog() {
            let port = self.backlog_port;
            self.relisten(socket);
            step.relistened = true;
            net_debug!(
                "{}: tcp{} back in the backlog of port {}",
                name,
                handle,
                port
            );
        } else {
            step.freed = self.orphan.is_some();
        }
        step
    }
}
