use core::cell::{Cell, RefCell};

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::storage::{PacketBuffer, PacketMetadata};

use smoltcp::time::{Duration, Instant};

/// Faults the wire applies to every frame it carries, each drawn from the seeded RNG.
///
/// Chances are fractions from 0.0 (never) to 1.0 (always); values outside are clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Chance that a frame is lost.
    pub loss: f32,
    /// Chance that one byte of a frame is flipped (checksums then reject it).
    pub corrupt: f32,
    /// Chance that a frame is delivered twice.
    pub duplicate: f32,
    /// Chance that a frame is held back and delivered after the next one.
    pub reorder: f32,
    /// One-way delay added to every frame.
    pub latency: Duration,
    /// Link rate in bytes per second; `None` for unlimited. Frames queue behind each
    /// other at the sender, as on a real link.
    pub rate: Option<u64>,
}

impl Faults {
    /// A perfect wire: no loss, no delay, unlimited rate.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        corrupt: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        latency: Duration::ZERO,
        rate: None,
    };
}

impl Default for Faults {
    fn default() -> Self {
        Faults::NONE
    }
}

/// What happened to the frames the wire carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames handed to the wire by the ports.
    pub sent: u64,
    /// Frames handed from the wire to the ports.
    pub delivered: u64,
    /// Frames lost on purpose.
    pub lost: u64,
    /// Frames corrupted on purpose.
    pub corrupted: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Frames delivered out of order.
    pub reordered: u64,
    /// Frames dropped because the receiving port's queue was full (tail drop).
    pub overflowed: u64,
}

/// How long a held-back frame waits for a later one to overtake it.
const REORDER_HOLD: Duration = Duration::from_millis(5);

/// Frame metadata inside the wire: when it may be delivered.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    deliver_at: Instant,
}

/// Storage for one port's receive queue: `FRAMES` frames, `BYTES` bytes.
pub struct PortStorage<const FRAMES: usize, const BYTES: usize> {
    meta: [PacketMetadata<InFlightHeader>; FRAMES],
    bytes: [u8; BYTES],
    held_meta: [PacketMetadata<InFlightHeader>; 1],
}

/// Opaque frame header stored in a [`PortStorage`].
#[derive(Debug, Clone, Copy)]
pub struct InFlightHeader(InFlight);

impl<const FRAMES: usize, const BYTES: usize> PortStorage<FRAMES, BYTES> {
    /// Empty storage.
    pub const fn new() -> Self {
        PortStorage {
            meta: [PacketMetadata::EMPTY; FRAMES],
            bytes: [0; BYTES],
            held_meta: [PacketMetadata::EMPTY; 1],
        }
    }

    /// The storage, split for [`Wire::new`], with `held` bytes for a held-back frame.
    pub fn queue<'s>(&'s mut self, held: &'s mut [u8]) -> PortQueue<'s> {
        PortQueue {
            meta: &mut self.meta,
            bytes: &mut self.bytes,
            held_meta: &mut self.held_meta,
            held_bytes: held,
        }
    }
}

impl<const FRAMES: usize, const BYTES: usize> Default for PortStorage<FRAMES, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

/// Memory for one port's queue: frame slots and bytes, plus room for one held-back frame
/// (at least one MTU, for reordering).
pub struct PortQueue<'s> {
    /// Frame slots.
    pub meta: &'s mut [PacketMetadata<InFlightHeader>],
    /// Frame bytes.
    pub bytes: &'s mut [u8],
    /// The held-back frame's slot.
    pub held_meta: &'s mut [PacketMetadata<InFlightHeader>],
    /// The held-back frame's bytes.
    pub held_bytes: &'s mut [u8],
}

struct PortState<'s> {
    queue: RefCell<PacketBuffer<'s, InFlightHeader>>,
    held: RefCell<PacketBuffer<'s, InFlightHeader>>,
    /// When the link out of this port is free again (rate limiting).
    tx_free_at: Cell<Instant>,
}

/// A simulated Ethernet hub with `PORTS` ports: a frame sent by one port reaches every
/// other port (each stack's interface filters by MAC address, as on a real segment),
/// after the configured faults. The wire keeps the virtual clock of the simulation.
///
/// Everything is deterministic: the same seed, faults and calls give the same run.
pub struct Wire<'s, const PORTS: usize> {
    ports: [PortState<'s>; PORTS],
    faults: Faults,
    mtu: usize,
    rng: RefCell<Xoshiro256PlusPlus>,
    stats: Cell<WireStats>,
    now: Cell<Instant>,
    /// Where a port builds the frame it sends; its length is the MTU.
    scratch: RefCell<&'s mut [u8]>,
}

impl<'s, const PORTS: usize> Wire<'s, PORTS> {
    /// A wire with the given `faults`, the RNG seeded with `seed`, and the clock at zero.
    /// Frames are built in `scratch`, whose length is the MTU (Ethernet header included).
    pub fn new(
        queues: [PortQueue<'s>; PORTS],
        scratch: &'s mut [u8],
        faults: Faults,
        seed: u64,
    ) -> Self {
        let mtu = scratch.len();
        Wire {
            ports: queues.map(|q| PortState {
                queue: RefCell::new(PacketBuffer::new(q.meta, q.bytes)),
                held: RefCell::new(PacketBuffer::new(q.held_meta, q.held_bytes)),
                tx_free_at: Cell::new(Instant::ZERO),
            }),
            faults,
            mtu,
            rng: RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed)),
            stats: Cell::new(WireStats::default()),
            now: Cell::new(Instant::ZERO),
            scratch: RefCell::new(scratch),
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves the virtual clock forward to `at` (never backwards), releasing held-back
    /// frames whose wait is over.
    pub fn advance_to(&self, at: Instant) {
        if at > self.now.get() {
            self.now.set(at);
        }
        for port in &self.ports {
            let release = matches!(port.held.borrow_mut().peek(), Ok((h, _)) if h.0.deliver_at + REORDER_HOLD <= at);
            if release {
                release_held(port);
            }
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Changes the faults from now on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// What happened to the frames so far.
    pub fn stats(&self) -> WireStats {
        self.stats.get()
    }

    /// When the next frame becomes deliverable, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.ports
            .iter()
            .flat_map(|port| {
                let queued = port
                    .queue
                    .borrow_mut()
                    .peek()
                    .ok()
                    .map(|(h, _)| h.0.deliver_at);
                let held = port
                    .held
                    .borrow_mut()
                    .peek()
                    .ok()
                    .map(|(h, _)| h.0.deliver_at + REORDER_HOLD);
                [queued, held]
            })
            .flatten()
            .min()
    }

    /// Port `index` as a smoltcp device. Panics if `index >= PORTS`: a programming error
    /// in the simulation's set-up, not a run-time condition.
    pub fn port(&self, index: usize) -> Port<'_, 's, PORTS> {
        assert!(
            index < PORTS,
            "the wire has {PORTS} ports, not {}",
            index + 1
        );
        Port { wire: self, index }
    }

    fn chance(&self, p: f32) -> bool {
        if p <= 0.0 {
            return false;
        }
        let draw = self.rng.borrow_mut().next_u32() as f32 / u32::MAX as f32;
        draw < p.min(1.0)
    }

    fn bump(&self, f: impl FnOnce(&mut WireStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    /// Puts a raw `frame` on the wire as if port `from` had sent it, with the wire's
    /// faults: a host that exists only as the frames it sends (a spoofed source, a
    /// flood, a malformed header), as a raw socket on Linux would send them. A frame
    /// longer than the MTU is refused, as a real NIC would.
    pub fn inject(&self, from: usize, frame: &[u8]) -> Result<(), InjectError> {
        if from >= PORTS {
            return Err(InjectError::NoSuchPort);
        }
        if frame.len() > self.mtu {
            return Err(InjectError::TooLong);
        }
        self.carry(from, frame);
        Ok(())
    }

    /// Carries a frame sent by port `from` to every other port.
    fn carry(&self, from: usize, frame: &[u8]) {
        self.bump(|s| s.sent += 1);
        let now = self.now.get();
        let sender = &self.ports[from];
        let start = sender.tx_free_at.get().max(now);
        let serialisation = match self.faults.rate {
            Some(rate) if rate > 0 => Duration::from_micros(frame.len() as u64 * 1_000_000 / rate),
            _ => Duration::ZERO,
        };
        sender.tx_free_at.set(start + serialisation);
        let deliver_at = start + serialisation + self.faults.latency;
        for (index, port) in self.ports.iter().enumerate() {
            if index == from {
                continue;
            }
            if self.chance(self.faults.loss) {
                self.bump(|s| s.lost += 1);
                continue;
            }
            let copies = if self.chance(self.faults.duplicate) {
                self.bump(|s| s.duplicated += 1);
                2
            } else {
                1
            };
            for _ in 0..copies {
                let corrupt_at = if self.chance(self.faults.corrupt) {
                    self.bump(|s| s.corrupted += 1);
                    Some(self.rng.borrow_mut().next_u32() as usize % frame.len().max(1))
                } else {
                    None
                };
                let hold = self.chance(self.faults.reorder) && port.held.borrow().is_empty();
                let target = if hold { &port.held } else { &port.queue };
                let header = InFlightHeader(InFlight { deliver_at });
                match target.borrow_mut().enqueue(frame.len(), header) {
                    Ok(buf) => {
                        buf.copy_from_slice(frame);
                        if let Some(at) = corrupt_at {
                            buf[at] ^= 0x5a;
                        }
                    }
                    Err(_) => self.bump(|s| s.overflowed += 1),
                }
                if !hold && !port.held.borrow().is_empty() {
                    // The frame just queued overtakes the held one.
                    release_held(port);
                    self.bump(|s| s.reordered += 1);
                }
            }
        }
    }
}

/// Moves a port's held-back frame into its queue.
fn release_held(port: &PortState<'_>) {
    let mut held = port.held.borrow_mut();
    if let Ok((header, frame)) = held.dequeue() {
        if let Ok(buf) = port.queue.borrow_mut().enqueue(frame.len(), header) {
            buf.copy_from_slice(frame);
        }
    }
}

error_enum! {
    /// Error from [`Wire::inject`].
    pub enum InjectError {
        /// The wire has no such port.
        NoSuchPort => "the wire has no such port",
        /// The frame is longer than the wire's MTU.
        TooLong => "the frame is longer than the MTU",
    }
}

/// One port of a [`Wire`], as a smoltcp [`Device`].
pub struct Port<'w, 's, const PORTS: usize> {
    wire: &'w Wire<'s, PORTS>,
    index: usize,
}

/// Receive token of a [`Port`].
pub struct PortRxToken<'w, 's, const PORTS: usize> {
    wire: &'w Wire<'s, PORTS>,
    index: usize,
}

/// Transmit token of a [`Port`].
pub struct PortTxToken<'w, 's, const PORTS: usize> {
    wire: &'w Wire<'s, PORTS>,
    index: usize,
}

impl<const PORTS: usize> phy::RxToken for PortRxToken<'_, '_, PORTS> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.wire.bump(|s| s.delivered += 1);
        let mut queue = self.wire.ports[self.index].queue.borrow_mut();
        match queue.dequeue() {
            Ok((_, frame)) => f(frame),
            // `receive` only hands out a token when a frame is ready.
            Err(_) => f(&[]),
        }
    }
}

impl<const PORTS: usize> phy::TxToken for PortTxToken<'_, '_, PORTS> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut scratch = self.wire.scratch.borrow_mut();
        let len = len.min(scratch.len());
        let result = f(&mut scratch[..len]);
        self.wire.carry(self.index, &scratch[..len]);
        result
    }
}

impl<'w, 's, const PORTS: usize> Device for Port<'w, 's, PORTS> {
    type RxToken<'a>
        = PortRxToken<'w, 's, PORTS>
    where
        Self: 'a;
    type TxToken<'a>
        = PortTxToken<'w, 's, PORTS>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let now = self.wire.now();
        let ready = matches!(
            self.wire.ports[self.index].queue.borrow_mut().peek(),
            Ok((h, _)) if h.0.deliver_at <= now
        );
        ready.then_some((
            PortRxToken {
                wire: self.wire,
                index: self.index,
            },
            PortTxToken {
                wire: self.wire,
                index: self.index,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(PortTxToken {
            wire: self.wire,
            index: self.index,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.wire.mtu;
        caps
    }
}
