//! The simulated wire: stacks joined in-process, with seeded faults and a virtual clock.
//!
//! A [`Wire`] is an Ethernet hub whose ports are smoltcp devices. It keeps the virtual
//! clock, so a scenario that waits seconds for a retransmission runs in microseconds and
//! every run with the same seed is the same run. [`PeerWaiter`] is the
//! [`Waiter`] for a blocking call on one stack while a peer stack
//! (and the application code on it) runs on the other end; [`settle`] runs any number of
//! stacks until the wire is quiet.

mod wire;

pub use wire::{
    Faults, InFlightHeader, InjectError, Port, PortQueue, PortStorage, Wire, WireStats,
};

use crate::blocking::{Progress, Waiter};
use crate::run::{self, FnService};
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// How long the world may stay quiet (no frame, no socket change, no timer) before a
/// blocked call is declared stalled: nothing would ever wake it.
pub const STALL_AFTER: Duration = Duration::from_secs(120);

/// How often the peer's application runs while nothing else happens, by default.
pub const APP_TICK: Duration = Duration::from_millis(1);

/// Runs a blocked stack, a peer stack and the peer's application code on a wire.
///
/// `app` is called with the peer stack and the virtual time on every step: it plays the
/// other program (a slow reader, a server that closes, a sender that waits 50 ms).
pub struct PeerWaiter<'r, 's, 'a, F, const PORTS: usize> {
    wire: &'r Wire<'s, PORTS>,
    own_port: usize,
    peer: &'r mut Stack<'a>,
    peer_port: usize,
    app: F,
    app_tick: Duration,
    quiet_since: Instant,
    /// The app runs between the peer's ingress and egress ([`run::act_between`]).
    between: bool,
}

impl<'r, 's, 'a, F, const PORTS: usize> PeerWaiter<'r, 's, 'a, F, PORTS>
where
    F: FnMut(&mut Stack<'a>, Instant),
{
    /// A waiter for the stack on `own_port`, with `peer` on `peer_port` running `app`.
    pub fn new(
        wire: &'r Wire<'s, PORTS>,
        own_port: usize,
        peer: &'r mut Stack<'a>,
        peer_port: usize,
        app: F,
    ) -> Self {
        PeerWaiter {
            quiet_since: wire.now(),
            wire,
            own_port,
            peer,
            peer_port,
            app,
            app_tick: APP_TICK,
            between: false,
        }
    }

    /// Runs the app between the peer stack's ingress and egress, as the firmware does
    /// ([`run::act_between`]), instead of after its whole poll ([`run::step`]).
    pub fn with_app_between(mut self) -> Self {
        self.between = true;
        self
    }

    /// Runs the app at least every `tick` while nothing else happens (default
    /// [`APP_TICK`]). An app that only reacts to its sockets can take a long tick, so
    /// that long retransmission waits pass in few steps.
    pub fn with_app_tick(mut self, tick: Duration) -> Self {
        self.app_tick = tick;
        self
    }

    /// The peer stack.
    pub fn peer(&mut self) -> &mut Stack<'a> {
        self.peer
    }

    /// One step: poll both stacks and run the app; if nothing happened, move the clock to
    /// the next event. Returns whether anything happened.
    pub fn step(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> bool {
        let now = self.wire.now();
        let sent_before = self.wire.stats().sent;
        let mut active = stack.poll(now, &mut self.wire.port(self.own_port));
        let peer = if self.between {
            let changed = run::act_between(
                now,
                self.peer,
                &mut self.wire.port(self.peer_port),
                &mut FnService(&mut self.app),
            );
            run::Turn {
                changed,
                next: run::next_due(self.peer, &FnService(&mut self.app)),
            }
        } else {
            run::step(
                now,
                self.peer,
                &mut self.wire.port(self.peer_port),
                &mut FnService(&mut self.app),
            )
        };
        active |= peer.changed;
        active |= self.wire.stats().sent != sent_before;
        if active {
            self.quiet_since = now;
            return true;
        }
        // Due at once: the next step is a microsecond on (what the minimum below would
        // give), and asking this way checks `due_by` against `poll_at` in debug builds.
        if stack.due_by(now) {
            self.wire.advance_to(now + Duration::from_micros(1));
            return false;
        }
        let next = [
            stack.poll_at(),
            peer.next,
            self.wire.next_delivery(),
            deadline,
            Some(now + self.app_tick),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + self.app_tick);
        self.wire
            .advance_to(next.max(now + Duration::from_micros(1)));
        false
    }

    /// Runs the world for `duration` of virtual time.
    pub fn run_for(&mut self, stack: &mut Stack<'_>, duration: Duration) {
        let until = self.wire.now() + duration;
        while self.wire.now() < until {
            self.step(stack, Some(until));
        }
    }
}

impl<'a, F, const PORTS: usize> Waiter for PeerWaiter<'_, '_, 'a, F, PORTS>
where
    F: FnMut(&mut Stack<'a>, Instant),
{
    fn now(&self) -> Instant {
        self.wire.now()
    }

    fn wait(&mut self, stack: &mut Stack<'_>, deadline: Option<Instant>) -> Progress {
        self.step(stack, deadline);
        if self.wire.now() - self.quiet_since > STALL_AFTER {
            Progress::Stalled
        } else {
            Progress::Continue
        }
    }
}

/// Polls every `(stack, port)` on `wire`, advancing the clock, until nothing has happened
/// for `quiet` of virtual time or `limit` has passed. For scenarios with more than two
/// stacks, or none blocked.
pub fn settle<const PORTS: usize>(
    wire: &Wire<'_, PORTS>,
    hosts: &mut [(&mut Stack<'_>, usize)],
    quiet: Duration,
    limit: Duration,
) {
    let start = wire.now();
    let mut quiet_since = start;
    while wire.now() - quiet_since < quiet && wire.now() - start < limit {
        let now = wire.now();
        let sent_before = wire.stats().sent;
        let mut active = false;
        for (stack, port) in hosts.iter_mut() {
            active |= stack.poll(now, &mut wire.port(*port));
        }
        if active || wire.stats().sent != sent_before {
            quiet_since = now;
            continue;
        }
        let next = hosts
            .iter_mut()
            .filter_map(|(stack, _)| stack.poll_at())
            .chain(wire.next_delivery())
            .min()
            .unwrap_or(now + APP_TICK)
            .min(now + APP_TICK);
        wire.advance_to(next.max(now + Duration::from_micros(1)));
    }
}
