//! The turn every ringnet host takes, wherever it runs: poll the stack, let the
//! programs on it act on what the poll brought, and sleep until something is due.
//!
//! [`step`] is that turn. The tap host, the firmware and the simulated wire's drivers all
//! loop over it; what differs between them is only how they wait (a `poll(2)` on the tap,
//! `WFI` on the microcontroller, a jump of the virtual clock).

use smoltcp::phy::Device;
use smoltcp::time::{Duration, Instant};

use crate::stack::Stack;

/// A program that runs on a [`Stack`]: a service, a set of them, or a test's peer.
///
/// The kernel runs a server as its own process, woken when a socket is ready; here it is
/// polled after every poll of the stack, and says when it needs a poll even if no frame
/// arrives (a timer of its own).
///
/// `'a` is the stack's: a program written for one stack's lifetime (a test's closure on a
/// `Stack<'static>`) is a service of that stack.
pub trait Service<'a> {
    /// Acts on what the last poll of the stack brought: accepts, reads, writes, closes.
    fn poll(&mut self, stack: &mut Stack<'a>);

    /// When it next needs a poll though nothing arrives; `None` if only traffic can
    /// change anything for it.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

/// No program: the member of a service set that is left out.
impl Service<'_> for () {
    fn poll(&mut self, _stack: &mut Stack<'_>) {}
}

impl<'a, S: Service<'a> + ?Sized> Service<'a> for &mut S {
    fn poll(&mut self, stack: &mut Stack<'a>) {
        (**self).poll(stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
}

impl<'a, S: Service<'a>> Service<'a> for Option<S> {
    fn poll(&mut self, stack: &mut Stack<'a>) {
        if let Some(service) = self {
            service.poll(stack)
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        self.as_ref().and_then(Service::poll_at)
    }
}

/// A closure as a [`Service`]: called with the stack and the time of its last poll, as
/// the scenario tests' peer programs are. It has no timer of its own.
pub struct FnService<F>(pub F);

impl<'a, F: FnMut(&mut Stack<'a>, Instant)> Service<'a> for FnService<F> {
    fn poll(&mut self, stack: &mut Stack<'a>) {
        let now = stack.now();
        (self.0)(stack, now)
    }
}

/// What one [`step`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The stack's poll may have changed a socket's state.
    pub changed: bool,
    /// When the next step is due though no frame arrives: the earliest of the stack's
    /// timers and the services'. `None`: only a frame can change anything.
    pub next: Option<Instant>,
}

impl Turn {
    /// How long the host may wait for a frame before the next step, at most `cap`: zero
    /// when something is due already (what the services just queued makes the stack due
    /// at once, so the next step sends it without a wait in between).
    pub fn wait(&self, now: Instant, cap: Duration) -> Duration {
        match self.next {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => (at - now).min(cap),
            None => cap,
        }
    }
}

/// One turn of a host: polls `stack` on `device` at `now`, lets `services` act on what
/// the poll brought, and says when to come back ([`Turn::next`]). It is [`act`], then
/// [`next_due`].
pub fn step<'a, D, S>(now: Instant, stack: &mut Stack<'a>, device: &mut D, services: &mut S) -> Turn
where
    D: Device + ?Sized,
    S: Service<'a> + ?Sized,
{
    let changed = act(now, stack, device, services);
    Turn {
        changed,
        next: next_due(stack, services),
    }
}

/// The first half of a [`step`]: polls `stack` on `device` at `now` and lets `services`
/// act on what the poll brought; returns whether the poll may have changed a socket's
/// state ([`Turn::changed`]). For a host that knows more frames wait (a NIC's receive
/// queue not empty) and so steps again at once: the deadline a step would compute next
/// does not matter then, and asking every socket and service for it costs a look at
/// each of them.
pub fn act<'a, D, S>(now: Instant, stack: &mut Stack<'a>, device: &mut D, services: &mut S) -> bool
where
    D: Device + ?Sized,
    S: Service<'a> + ?Sized,
{
    let changed = stack.poll(now, device);
    services.poll(stack);
    changed
}

/// [`act`] with `services` between the stack's ingress and its egress
/// ([`Stack::poll_ingress`], [`Stack::poll_egress`]): what they read from a ring and
/// write to one goes out in this turn's egress (the ACK that follows the data they read
/// advertises the room they made; the data they queue leaves at once) instead of making
/// the stack due for another turn. Every socket is observed after each half, so no
/// transition the services' calls leave behind goes unseen. Returns whether either half
/// may have changed a socket's state.
pub fn act_between<'a, D, S>(
    now: Instant,
    stack: &mut Stack<'a>,
    device: &mut D,
    services: &mut S,
) -> bool
where
    D: Device + ?Sized,
    S: Service<'a> + ?Sized,
{
    let changed = stack.poll_ingress(now, device);
    services.poll(stack);
    stack.poll_egress(now, device) || changed
}

/// The second half of a [`step`]: when the next one is due though no frame arrives
/// ([`Turn::next`]).
pub fn next_due<'a, S>(stack: &mut Stack<'a>, services: &S) -> Option<Instant>
where
    S: Service<'a> + ?Sized,
{
    match (stack.poll_at(), services.poll_at()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether a step is due at `now` already though no frame arrives: exactly
/// `next_due(stack, services).is_some_and(|at| at <= now)`, asking the stack first
/// ([`Stack::due_by`]: smoltcp, then its own timers) and the services only when it is not
/// due. For a host that sleeps unless something is due at once (the firmware, whose
/// sleep ends with the next frame or tick): what a service just queued makes the stack
/// due, and the rest of the deadline is not computed for it.
pub fn due_by<'a, S>(stack: &mut Stack<'a>, services: &S, now: Instant) -> bool
where
    S: Service<'a> + ?Sized,
{
    stack.due_by(now) || services.poll_at().is_some_and(|at| at <= now)
}
