//! Reading trace files (the ringnet trace format, v1: Chrome / Perfetto trace-event JSON,
//! docs/trace.md) into what a timeline draws: per socket, the occupancy of its rings over
//! time, its advertised window, the intervals it was blocked or advertised a zero window,
//! its drops and truncations; per Linux-side connection, the kernel's queues and TCP_INFO.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;

/// Why a trace could not be read.
#[derive(Debug)]
pub enum TraceError {
    /// The file could not be read.
    Io(String, std::io::Error),
    /// It is not JSON.
    Json(String, serde_json::Error),
    /// It is JSON, but not a ringnet trace (or an event breaks the format's rules).
    Format(String, String),
    /// Traces on different clocks (simulated and monotonic) cannot share one time axis.
    Clocks(String, String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io(file, e) => write!(f, "{file}: {e}"),
            TraceError::Json(file, e) => write!(f, "{file}: not JSON: {e}"),
            TraceError::Format(file, why) => write!(f, "{file}: not a ringnet trace: {why}"),
            TraceError::Clocks(a, b) => write!(
                f,
                "{a} and {b} are on different clocks (of simulated, monotonic, device): they cannot share one time axis"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

/// A counter's value from a time on: `(ts µs, value)`, in time order.
pub type Steps = Vec<(f64, f64)>;

/// A ring (or a kernel queue): its occupancy over time and its capacity.
#[derive(Debug, Default, Clone)]
pub struct Ring {
    /// Bytes in use after each change.
    pub used: Steps,
    /// The largest capacity the trace gave.
    pub capacity: f64,
}

/// What a timeline shows of one socket (device side) or one connection (Linux side).
#[derive(Debug, Default, Clone)]
pub struct Track {
    /// The process's name (`dev`, `A`, `linux get 1234`).
    pub process: String,
    /// The socket's label (`tcp#3`), or the connection's on the Linux side.
    pub socket: String,
    /// Whether it is a Linux-side (kernel) connection.
    pub kernel: bool,
    /// The receive ring (device) or the kernel's receive queue (SIOCINQ against SO_RCVBUF).
    pub rx: Ring,
    /// The transmit ring (device) or the kernel's send queue (SIOCOUTQ against SO_SNDBUF).
    pub tx: Ring,
    /// The advertised window after each change (TCP, device side).
    pub window: Steps,
    /// Intervals `(start, end)` µs during which a zero window was advertised.
    pub zero_windows: Vec<(f64, f64)>,
    /// Blocked calls: `(start, end, call)`.
    pub blocks: Vec<(f64, f64, String)>,
    /// Drops: `(ts, reason)`.
    pub drops: Vec<(f64, String)>,
    /// Truncations: `(ts, bytes lost)`.
    pub truncations: Vec<(f64, f64)>,
    /// Linux side, TCP_INFO: unacknowledged segments after each sample.
    pub unacked: Steps,
    /// Linux side, TCP_INFO: the congestion window, in segments.
    pub cwnd: Steps,
    /// Linux side, TCP_INFO: the connection's total retransmissions.
    pub retrans: Steps,
    /// Time of the track's first and last event.
    pub span: Option<(f64, f64)>,
}

impl Track {
    /// The name a `--socket` option matches: `PROCESS SOCKET` (e.g. `B tcp#0`).
    pub fn name(&self) -> String {
        format!("{} {}", self.process, self.socket)
    }

    /// Whether `--socket NAME` selects this track: the full name, the socket's label
    /// alone (`tcp#0`, every process's), or the process alone (`linux get 1234`, or the
    /// start of its name up to a space: `linux get`).
    pub fn matches(&self, name: &str) -> bool {
        name == self.name()
            || name == self.socket
            || name == self.process
            || self.process.starts_with(&format!("{name} "))
    }

    fn touch(&mut self, ts: f64) {
        self.span = Some(match self.span {
            None => (ts, ts),
            Some((a, b)) => (a.min(ts), b.max(ts)),
        });
    }

    /// Whether any of its events falls in `[from, to]` (µs), a blocked call or a zero
    /// window overlapping it included.
    pub fn active_in(&self, from: f64, to: f64) -> bool {
        let inside = |ts: f64| ts >= from && ts <= to;
        let steps = |s: &Steps| s.iter().any(|&(ts, _)| inside(ts));
        steps(&self.rx.used)
            || steps(&self.tx.used)
            || steps(&self.window)
            || steps(&self.unacked)
            || self.drops.iter().any(|&(ts, _)| inside(ts))
            || self.truncations.iter().any(|&(ts, _)| inside(ts))
            || self.blocks.iter().any(|&(a, b, _)| a <= to && b >= from)
            || self.zero_windows.iter().any(|&(a, b)| a <= to && b >= from)
    }

    /// Whether it holds anything to draw.
    pub fn is_empty(&self) -> bool {
        self.rx.used.is_empty()
            && self.tx.used.is_empty()
            && self.window.is_empty()
            && self.blocks.is_empty()
            && self.drops.is_empty()
            && self.truncations.is_empty()
            && self.zero_windows.is_empty()
            && self.unacked.is_empty()
    }
}

/// A trace's clock (`otherData.clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Linux CLOCK_MONOTONIC, µs: every process on the machine shares it.
    Monotonic,
    /// The simulated wire's virtual time, µs from its start.
    Simulated,
    /// A device's own time since boot, µs (`trace-from-uart`): shared with no other trace.
    Device,
}

/// One or more trace files read onto one time axis.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The clock they share (`None` before any file).
    pub clock: Option<Clock>,
    /// Tracks in the order first seen (file by file).
    pub tracks: Vec<Track>,
    /// Labelled instants drawn across every panel (e.g. the demo's scenarios): `(ts, label)`.
    pub marks: Vec<(f64, String)>,
    /// Which file set the clock, for the error when another disagrees.
    clock_file: String,
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl Timeline {
    /// Reads `path` and adds its tracks.
    pub fn read(&mut self, path: &Path) -> Result<(), TraceError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::Io(name.clone(), e))?;
        self.add_json(&name, &text)
    }

    /// Adds the tracks of one trace's JSON text; `name` names it in errors.
    pub fn add_json(&mut self, name: &str, text: &str) -> Result<(), TraceError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| TraceError::Json(name.to_string(), e))?;
        let bad = |why: &str| TraceError::Format(name.to_string(), why.to_string());
        let other = doc
            .get("otherData")
            .ok_or_else(|| bad("no \"otherData\""))?;
        if other.get("format").and_then(Value::as_str) != Some("ringnet-trace") {
            return Err(bad("otherData.format is not \"ringnet-trace\""));
        }
        if other.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(bad("only version 1 is known"));
        }
        let clock = match other.get("clock").and_then(Value::as_str) {
            Some("monotonic") => Clock::Monotonic,
            Some("simulated") => Clock::Simulated,
            Some("device") => Clock::Device,
            _ => {
                return Err(bad(
                    "otherData.clock is not \"monotonic\", \"simulated\" or \"device\"",
                ))
            }
        };
        match self.clock {
            Some(existing) if existing != clock => {
                return Err(TraceError::Clocks(
                    self.clock_file.clone(),
                    name.to_string(),
                ))
            }
            Some(_) => {}
            None => {
                self.clock = Some(clock);
                self.clock_file = name.to_string();
            }
        }
        let events = doc
            .get("traceEvents")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"traceEvents\" array"))?;

        // Names first (metadata may come anywhere), then events in time order.
        let mut processes: BTreeMap<i64, String> = BTreeMap::new();
        let mut threads: BTreeMap<(i64, i64), String> = BTreeMap::new();
        let mut timed: Vec<&Value> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let at = |why: &str| bad(&format!("event {i}: {why}"));
            let ph = event
                .get("ph")
                .and_then(Value::as_str)
                .ok_or_else(|| at("no \"ph\""))?;
            let pid = event
                .get("pid")
                .and_then(Value::as_i64)
                .ok_or_else(|| at("no integer \"pid\""))?;
            let label = || {
                event
                    .get("args")
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            match ph {
                "M" => match event.get("name").and_then(Value::as_str) {
                    Some("process_name") => {
                        processes.insert(pid, label().ok_or_else(|| at("no args.name"))?);
                    }
                    Some("thread_name") => {
                        let tid = event.get("tid").and_then(Value::as_i64).unwrap_or(0);
                        threads.insert((pid, tid), label().ok_or_else(|| at("no args.name"))?);
                    }
                    _ => {}
                },
                "C" | "X" | "i" | "I" | "B" | "E" => {
                    if event.get("ts").and_then(num).is_none() {
                        return Err(at("no numeric \"ts\""));
                    }
                    timed.push(event);
                }
                other => return Err(at(&format!("unknown ph \"{other}\""))),
            }
        }
        timed.sort_by(|a, b| {
            let ts = |e: &Value| e.get("ts").and_then(num).unwrap_or(0.0);
            ts(a).total_cmp(&ts(b))
        });

        let mut index: BTreeMap<(i64, i64), usize> = BTreeMap::new();
        let mut open_zero: BTreeMap<usize, f64> = BTreeMap::new();
        for event in timed {
            let pid = event.get("pid").and_then(Value::as_i64).unwrap_or(0);
            let tid = event.get("tid").and_then(Value::as_i64).unwrap_or(0);
            let ts = event.get("ts").and_then(num).unwrap_or(0.0);
            let ph = event.get("ph").and_then(Value::as_str).unwrap_or("");
            let cat = event.get("cat").and_then(Value::as_str).unwrap_or("");
            let ev_name = event.get("name").and_then(Value::as_str).unwrap_or("");
            let args = event.get("args").cloned().unwrap_or(Value::Null);
            let arg = |key: &str| args.get(key).and_then(num);

            if cat == "scenario" {
                self.marks.push((ts, ev_name.to_string()));
                continue;
            }
            let slot = *index.entry((pid, tid)).or_insert_with(|| {
                let process = processes
                    .get(&pid)
                    .cloned()
                    .unwrap_or_else(|| format!("pid {pid}"));
                let socket = threads.get(&(pid, tid)).cloned().unwrap_or_else(|| {
                    if tid == 0 {
                        "interface".to_string()
                    } else {
                        format!("tid {tid}")
                    }
                });
                self.tracks.push(Track {
                    process,
                    socket,
                    ..Track::default()
                });
                self.tracks.len() - 1
            });
            let track = &mut self.tracks[slot];
            track.touch(ts);
            match (ph, cat) {
                ("C", "ring") | ("C", "kernel") => {
                    let ring = if ev_name.ends_with(" rx") {
                        Some(&mut track.rx)
                    } else if ev_name.ends_with(" tx") {
                        Some(&mut track.tx)
                    } else {
                        None
                    };
                    if cat == "kernel" {
                        track.kernel = true;
                    }
                    if let Some(ring) = ring {
                        if let Some(used) = arg("used") {
                            ring.used.push((ts, used));
                        }
                        if let Some(capacity) = arg("capacity") {
                            ring.capacity = ring.capacity.max(capacity);
                        }
                    } else if ev_name.ends_with("tcp_info") {
                        if let Some(v) = arg("unacked") {
                            track.unacked.push((ts, v));
                        }
                        if let Some(v) = arg("snd_cwnd") {
                            track.cwnd.push((ts, v));
                        }
                        if let Some(v) = arg("total_retrans").or_else(|| arg("retrans")) {
                            track.retrans.push((ts, v));
                        }
                    }
                }
                ("C", "window") => {
                    if let Some(w) = arg("advertised") {
                        track.window.push((ts, w));
                    }
                }
                ("X", "block") => {
                    let dur = event.get("dur").and_then(num).unwrap_or(0.0).max(0.0);
                    let call = args
                        .get("call")
                        .and_then(Value::as_str)
                        .unwrap_or(ev_name)
                        .to_string();
                    track.blocks.push((ts, ts + dur, call));
                    track.touch(ts + dur);
                }
                (_, "window") if ev_name == "zero window" => {
                    open_zero.entry(slot).or_insert(ts);
                }
                (_, "window") if ev_name == "window reopened" => {
                    if let Some(start) = open_zero.remove(&slot) {
                        track.zero_windows.push((start, ts));
                    }
                }
                (_, "drop") => {
                    let reason = args
                        .get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| ev_name.trim_start_matches("drop: ").to_string());
                    track.drops.push((ts, reason));
                }
                (_, "truncation") => {
                    track.truncations.push((ts, arg("lost").unwrap_or(0.0)));
                }
                _ => {}
            }
        }
        // A zero window never reopened lasts to the track's end.
        for (slot, start) in open_zero {
            let track = &mut self.tracks[slot];
            let end = track.span.map_or(start, |(_, b)| b);
            track.zero_windows.push((start, end));
        }
        Ok(())
    }

    /// The time range every track covers together (µs), if any event was read.
    pub fn span(&self) -> Option<(f64, f64)> {
        let spans = self.tracks.iter().filter_map(|t| t.span);
        let marks = self.marks.iter().map(|(ts, _)| (*ts, *ts));
        spans
            .chain(marks)
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = r#"{"otherData":{"format":"ringnet-trace","version":1,"clock":"simulated"},
      "displayTimeUnit":"ms","traceEvents":[
      {"ph":"M","name":"process_name","pid":2,"args":{"name":"B"}},
      {"ph":"M","name":"thread_name","pid":2,"tid":1,"args":{"name":"tcp#0"}},
      {"ph":"C","cat":"ring","name":"tcp#0 rx","pid":2,"tid":1,"ts":1000,"args":{"used":128,"capacity":256}},
      {"ph":"C","cat":"ring","name":"tcp#0 rx","pid":2,"tid":1,"ts":2000,"args":{"used":256,"capacity":256}},
      {"ph":"i","s":"t","cat":"window","name":"zero window","pid":2,"tid":1,"ts":2000,"args":{"advertised":0}},
      {"ph":"i","s":"t","cat":"window","name":"window reopened","pid":2,"tid":1,"ts":2500,"args":{"advertised":128}},
      {"ph":"X","cat":"block","name":"recv blocked","pid":2,"tid":1,"ts":500,"dur":300,"args":{"call":"recv"}},
      {"ph":"i","s":"t","cat":"drop","name":"drop: no socket","pid":2,"tid":0,"ts":700,"args":{"reason":"no socket","bytes":60}}
    ]}"#;

    #[test]
    fn a_trace_becomes_one_track_per_socket_with_its_intervals() {
        let mut timeline = Timeline::default();
        timeline.add_json("device.json", DEVICE).unwrap();
        assert_eq!(timeline.clock, Some(Clock::Simulated));
        assert_eq!(timeline.tracks.len(), 2);
        let socket = &timeline.tracks[0];
        assert_eq!(socket.name(), "B tcp#0");
        assert_eq!(socket.rx.used, vec![(1000.0, 128.0), (2000.0, 256.0)]);
        assert_eq!(socket.rx.capacity, 256.0);
        assert_eq!(socket.zero_windows, vec![(2000.0, 2500.0)]);
        assert_eq!(socket.blocks, vec![(500.0, 800.0, "recv".to_string())]);
        assert!(socket.drops.is_empty() && socket.truncations.is_empty());
        let interface = &timeline.tracks[1];
        assert_eq!(interface.socket, "interface");
        assert_eq!(interface.drops, vec![(700.0, "no socket".to_string())]);
        assert_eq!(timeline.span(), Some((500.0, 2500.0)));
    }

    #[test]
    fn traces_on_different_clocks_are_refused_and_bad_files_say_why() {
        let mut timeline = Timeline::default();
        timeline.add_json("device.json", DEVICE).unwrap();
        let monotonic = DEVICE.replace("simulated", "monotonic");
        let err = timeline.add_json("linux.json", &monotonic).unwrap_err();
        assert!(matches!(err, TraceError::Clocks(..)), "{err}");
        for (text, says) in [
            ("{", "not JSON"),
            ("{}", "otherData"),
            (
                r#"{"otherData":{"format":"ringnet-trace","version":2,"clock":"simulated"},"traceEvents":[]}"#,
                "version 1",
            ),
            (
                r#"{"otherData":{"format":"ringnet-trace","version":1,"clock":"simulated"},"traceEvents":[{"ph":"C","pid":1}]}"#,
                "ts",
            ),
        ] {
            let err = Timeline::default().add_json("t.json", text).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
