//! The trace: every event of the core's event stream written as Chrome / Perfetto
//! trace-event JSON, openable as it is in ui.perfetto.dev and chrome://tracing
//! (docs/trace.md).
//!
//! One process per stack, one track (thread) per socket, the interface on track 0;
//! counters for the rings and the advertised window, a complete slice for each blocked
//! call, instants for level changes, zero windows, drops, truncations, state changes and
//! timers. [`check`] applies the rules Perfetto's JSON importer applies.

pub mod check;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ringnet::observe::{DropReason, Event, EventKind, EventSink, Fill, Source, Timer};
use ringnet::{Instant, SocketType};

/// The format's name and version, in every trace's `otherData`.
pub const FORMAT: &str = "ringnet-trace";
/// The version of the format this writer writes.
pub const VERSION: u32 = 1;

/// The clock of a trace's timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceClock {
    /// Linux's `CLOCK_MONOTONIC` in µs, shared by every process of the machine: a
    /// device's trace and the Linux side's line up. `stack_zero_us` is that clock's
    /// reading when the stack's clock read zero.
    Monotonic {
        /// `CLOCK_MONOTONIC` (µs) at the stack's time zero.
        stack_zero_us: f64,
    },
    /// The simulated wire's virtual time, in µs from its start.
    Simulated,
}

impl TraceClock {
    fn name(self) -> &'static str {
        match self {
            TraceClock::Monotonic { .. } => "monotonic",
            TraceClock::Simulated => "simulated",
        }
    }

    fn offset_us(self) -> f64 {
        match self {
            TraceClock::Monotonic { stack_zero_us } => stack_zero_us,
            TraceClock::Simulated => 0.0,
        }
    }
}

/// `CLOCK_MONOTONIC` now, in µs: the clock of every monotonic trace.
pub fn monotonic_us() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 * 1e6 + now.tv_nsec as f64 / 1e3
}

/// A trace file being written: the [`EventSink`] a program gives its stacks.
///
/// Events are buffered and written as they come; [`TraceFile::finish`] closes the JSON.
/// A write error is kept and reported by `finish`, never panicked on.
pub struct TraceFile {
    path: PathBuf,
    inner: Mutex<Writer>,
}

struct Writer {
    out: Option<BufWriter<File>>,
    offset_us: f64,
    /// Stack names in order of first event: pid = index + 1.
    stacks: Vec<&'static str>,
    /// (pid, label) of each track named so far: tid = index + 1. A socket number reused
    /// by another kind of socket gets a track of its own.
    tracks: Vec<(usize, &'static str)>,
    /// Each socket's label, as its log lines write it (`tcp#3`), made once: labels are
    /// few (kinds × table slots) and live as long as the program, like the stack names.
    labels: Vec<(SocketType, usize, &'static str)>,
    line: String,
    error: Option<io::Error>,
    events: u64,
}

impl TraceFile {
    /// Creates `path` and starts the JSON; the file is leaked for `'static`, as the
    /// stacks it is given to are.
    pub fn create(path: &Path, clock: TraceClock) -> io::Result<&'static TraceFile> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        write!(
            out,
            "{{\"otherData\":{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"clock\":\"{}\"}},\n\"displayTimeUnit\":\"ms\",\n\"traceEvents\":[\n",
            clock.name()
        )?;
        Ok(Box::leak(Box::new(TraceFile {
            path: path.to_owned(),
            inner: Mutex::new(Writer {
                out: Some(out),
                offset_us: clock.offset_us(),
                stacks: Vec::new(),
                tracks: Vec::new(),
                labels: Vec::new(),
                line: String::with_capacity(256),
                error: None,
                events: 0,
            }),
        })))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the JSON and flushes the file; returns how many trace events it holds. Later
    /// events are ignored; a second call returns the same count.
    pub fn finish(&self) -> io::Result<u64> {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut out) = w.out.take() {
            let closed = out.write_all(b"\n]}\n").and_then(|()| out.flush());
            if let (Err(e), None) = (closed, &w.error) {
                w.error = Some(e);
            }
        }
        match w.error.take() {
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            )),
            None => Ok(w.events),
        }
    }
}

/// Finishes a program's trace when the program's run ends, on every path out of it,
/// and logs how many events it holds (or why it could not be written). A program that
/// ends normally calls [`FinishOnDrop::finish`] to turn a failed write (a full disk)
/// into its own error.
pub struct FinishOnDrop(pub Option<&'static TraceFile>);

impl FinishOnDrop {
    /// Finishes the trace now, if there is one, and logs its event count; the error if
    /// any of it could not be written.
    pub fn finish(&mut self) -> io::Result<u64> {
        let Some(trace) = self.0.take() else {
            return Ok(0);
        };
        let events = trace.finish()?;
        log::info!("trace: {events} events in {}", trace.path().display());
        Ok(events)
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            log::error!("trace: {e}");
        }
    }
}

impl EventSink for TraceFile {
    fn record(&self, stack: &'static str, event: &Event) {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        w.record(stack, event);
    }
}

impl Writer {
    fn label(&mut self, kind: SocketType, handle: ringnet::SocketHandle) -> &'static str {
        let index = handle.fileno();
        if let Some((_, _, l)) = self
            .labels
            .iter()
            .find(|(k, i, _)| *k == kind && *i == index)
        {
            return l;
        }
        let l: &'static str = format!("{kind}{handle}").leak();
        self.labels.push((kind, index, l));
        l
    }

    fn ts(&self, at: Instant) -> f64 {
        self.offset_us + at.total_micros() as f64
    }

    fn pid(&mut self, stack: &'static str) -> usize {
        if let Some(i) = self.stacks.iter().position(|s| *s == stack) {
            return i + 1;
        }
        self.stacks.push(stack);
        let pid = self.stacks.len();
        let name = json_string(stack);
        self.emit(format_args!(
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"args\":{{\"name\":{name}}}}}"
        ));
        self.emit(format_args!(
            "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"interface\"}}}}"
        ));
        pid
    }

    fn track(&mut self, pid: usize, source: Source) -> (u32, &'static str) {
        let Source::Socket { handle, kind } = source else {
            return (0, "interface");
        };
        let label = self.label(kind, handle);
        if let Some(i) = self.tracks.iter().position(|t| *t == (pid, label)) {
            return (i as u32 + 1, label);
        }
        self.tracks.push((pid, label));
        let tid = self.tracks.len() as u32;
        self.emit(format_args!(
            "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\"{label}\"}}}}"
        ));
        (tid, label)
    }

    fn emit(&mut self, event: std::fmt::Arguments<'_>) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        if self.events > 0 {
            self.line.push_str(",\n");
        }
        // Writing to a String cannot fail.
        let _ = self.line.write_fmt(event);
        if let Err(e) = out.write_all(self.line.as_bytes()) {
            self.error = Some(e);
            return;
        }
        self.events += 1;
    }

    fn record(&mut self, stack: &'static str, event: &Event) {
        if self.out.is_none() {
            return;
        }
        let pid = self.pid(stack);
        let (tid, l) = self.track(pid, event.source);
        let ts = self.ts(event.at);
        let instant = |cat: &str, name: &str, args: &str| {
            format!(
                "{{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"{cat}\",\"name\":\"{name}\",\"pid\":{pid},\"tid\":{tid},\"ts\":{ts:.3},\"args\":{{{args}}}}}"
            )
        };
        let line = match event.kind {
            EventKind::Ring {
                ring,
                used,
                capacity,
            } => format!(
                "{{\"ph\":\"C\",\"cat\":\"ring\",\"name\":\"{l} {ring}\",\"pid\":{pid},\"tid\":{tid},\"ts\":{ts:.3},\"args\":{{\"used\":{used},\"capacity\":{capacity}}}}}"
            ),
            EventKind::Window { advertised } => format!(
                "{{\"ph\":\"C\",\"cat\":\"window\",\"name\":\"{l} window\",\"pid\":{pid},\"tid\":{tid},\"ts\":{ts:.3},\"args\":{{\"advertised\":{advertised}}}}}"
            ),
            EventKind::Level {
                ring,
                from,
                to,
                used,
                capacity,
            } => {
                let name = match (from, to) {
                    (_, Fill::Full) => "full",
                    (_, Fill::Empty) => "empty",
                    (Fill::Full, Fill::Partial) => "room again",
                    _ => "data",
                };
                instant(
                    "level",
                    &format!("{ring} {name}"),
                    &format!(
                        "\"ring\":\"{ring}\",\"from\":\"{}\",\"to\":\"{}\",\"used\":{used},\"capacity\":{capacity}",
                        fill_name(from),
                        fill_name(to)
                    ),
                )
            }
            EventKind::ZeroWindow {
                closed,
                advertised,
                rx_used,
                rx_capacity,
            } => instant(
                "window",
                if closed { "zero window" } else { "window reopened" },
                &format!(
                    "\"advertised\":{advertised},\"rx_used\":{rx_used},\"rx_capacity\":{rx_capacity}"
                ),
            ),
            // The slice is written whole when the block ends.
            EventKind::BlockStart { .. } => return,
            EventKind::BlockEnd {
                call,
                ring,
                started,
                waited,
                polls,
                outcome,
                ..
            } => format!(
                "{{\"ph\":\"X\",\"cat\":\"block\",\"name\":\"{} blocked\",\"pid\":{pid},\"tid\":{tid},\"ts\":{:.3},\"dur\":{},\"args\":{{\"call\":\"{}\",\"ring\":\"{ring}\",\"polls\":{polls},\"outcome\":{}}}}}",
                call.name(),
                self.ts(started),
                waited.total_micros(),
                call.name(),
                json_string(outcome.describe())
            ),
            EventKind::Drop { reason, bytes, .. } => instant(
                "drop",
                &format!("drop: {}", drop_name(reason)),
                &format!("\"reason\":\"{}\",\"bytes\":{bytes}", reason.name()),
            ),
            EventKind::Truncated { kept, lost, .. } => instant(
                "truncation",
                "truncated",
                &format!("\"kept\":{kept},\"lost\":{lost}"),
            ),
            EventKind::State { from, to } => instant(
                "state",
                &format!("state: {from} → {to}"),
                &format!("\"from\":\"{from}\",\"to\":\"{to}\""),
            ),
            EventKind::Timer(timer) => {
                let socket = match timer {
                    Timer::HalfOpenExpired { socket, .. }
                    | Timer::OrphanExpired { socket, .. }
                    | Timer::GaveWay { socket, .. } => socket.fileno() as i64,
                    Timer::IdleTimeout { .. }
                    | Timer::SlowRequest { .. }
                    | Timer::RateLimited => -1,
                };
                instant(
                    "timer",
                    &format!("timer: {}", timer.name()),
                    &format!("\"timer\":\"{}\",\"socket\":{socket}", timer.name()),
                )
            }
        };
        self.emit(format_args!("{line}"));
    }
}

fn fill_name(fill: Fill) -> &'static str {
    match fill {
        Fill::Empty => "empty",
        Fill::Partial => "partial",
        Fill::Full => "full",
    }
}

/// A drop's reason in words, for the instant's name.
fn drop_name(reason: DropReason) -> &'static str {
    match reason {
        DropReason::RxRingFull => "rx ring full",
        DropReason::Discarded(d) => match d {
            ringnet::phy::Discard::NotForUs => "not for us",
            ringnet::phy::Discard::BadChecksum => "bad checksum",
            ringnet::phy::Discard::Fragment => "fragment",
            ringnet::phy::Discard::NoSocket => "no socket",
            ringnet::phy::Discard::Malformed => "malformed",
            ringnet::phy::Discard::DuplicateSyn => "duplicate SYN",
            ringnet::phy::Discard::IcmpLimited => "ICMP error rate-limited",
            ringnet::phy::Discard::InexactRst => "RST not at the next number",
            ringnet::phy::Discard::AfterFin => "data after the peer's FIN",
        },
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}
