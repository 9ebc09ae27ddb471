//! `host-sim trace-from-uart LOG -o trace.json`: a ringnet trace built from what a device
//! logged (the firmware's UART, as its `log` backend writes it or as `defmt-print`
//! decodes it), so that firmware runs can be plotted like the host's.
//!
//! The transition lines carry everything a plot needs: the socket, the ring and its
//! `used/capacity` at each fill-level change, zero windows and their reopening, every
//! block with its duration, drops and truncations. Lines are read as
//! `[SECONDS] LEVEL STACK: SOCKET TEXT` (the brackets optional, as `defmt-print`'s
//! `{t} {L} {s}` writes them); a line without a time takes the time of the line before.
//! Only fill-level changes are logged, so a ring's occupancy between them is not known:
//! the plot's steps join the logged levels. A log cut by the device's per-socket line
//! limit misses the transitions it left out (the firmware says how many).
//!
//! The trace's clock is `"device"`: the device's own time since boot, which no other
//! trace shares.

use std::collections::HashMap;

use serde_json::{json, Value};

/// What a log gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Converted {
    /// Lines read.
    pub lines: usize,
    /// Lines that became events.
    pub used: usize,
    /// Events written.
    pub events: usize,
}

/// Parses `[ 12.345]`, `12.345678` or `[12.345678]` at the start of `line`: seconds and
/// the rest.
fn timestamp(line: &str) -> Option<(f64, &str)> {
    let trimmed = line.trim_start();
    let (inside, rest) = match trimmed.strip_prefix('[') {
        Some(open) => {
            let close = open.find(']')?;
            (open[..close].trim(), &open[close + 1..])
        }
        None => {
            let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
            (&trimmed[..end], &trimmed[end..])
        }
    };
    let seconds: f64 = inside.parse().ok()?;
    seconds.is_finite().then_some((seconds, rest))
}

const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// `U/C` at the start of `text`.
fn used_capacity(text: &str) -> Option<(u64, u64)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '/'))
        .unwrap_or(text.len());
    let (used, capacity) = text[..end].split_once('/')?;
    Some((used.parse().ok()?, capacity.parse().ok()?))
}

/// The first `"{rx|tx} ring U/C"` in `text`.
fn ring_in(text: &str) -> Option<(&'static str, u64, u64)> {
    for ring in ["rx", "tx"] {
        let key = format!("{ring} ring ");
        if let Some(at) = text.find(&key) {
            let (u, c) = used_capacity(&text[at + key.len()..])?;
            return Some((if ring == "rx" { "rx" } else { "tx" }, u, c));
        }
    }
    None
}

/// The number just before `suffix` in `text` (`"after 0.020s"` → 0.020 for "s").
fn number_before(text: &str, suffix: &str) -> Option<f64> {
    let end = text.find(suffix)?;
    let start = text[..end]
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    text[start..end].parse().ok()
}

/// Builds traces from log lines.
struct Builder {
    events: Vec<Value>,
    pids: HashMap<String, u64>,
    tids: HashMap<(u64, String), u64>,
    /// Blocks begun and not yet ended: (pid, tid) → start µs.
    blocking: HashMap<(u64, u64), f64>,
}

impl Builder {
    fn pid(&mut self, stack: &str) -> u64 {
        if let Some(&pid) = self.pids.get(stack) {
            return pid;
        }
        let pid = self.pids.len() as u64 + 1;
        self.pids.insert(stack.to_string(), pid);
        self.events.push(json!({"ph":"M","cat":"__metadata","name":"process_name","pid":pid,"args":{"name":stack}}));
        pid
    }

    fn tid(&mut self, pid: u64, label: &str) -> u64 {
        if let Some(&tid) = self.tids.get(&(pid, label.to_string())) {
            return tid;
        }
        // Socket N is tid N + 1, as the device-side writer numbers them.
        let tid = label
            .split_once('#')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .map_or(1000 + self.tids.len() as u64, |n| n + 1);
        self.tids.insert((pid, label.to_string()), tid);
        self.events.push(json!({"ph":"M","cat":"__metadata","name":"thread_name","pid":pid,"tid":tid,"args":{"name":label}}));
        tid
    }

    fn ring(
        &mut self,
        ts: f64,
        pid: u64,
        tid: u64,
        label: &str,
        (ring, used, capacity): (&str, u64, u64),
    ) {
        self.events.push(json!({"ph":"C","cat":"ring","name":format!("{label} {ring}"),"pid":pid,"tid":tid,"ts":ts,
            "args":{"used":used,"capacity":capacity}}));
    }

    fn instant(&mut self, ts: f64, pid: u64, tid: u64, cat: &str, name: String, args: Value) {
        self.events.push(
            json!({"ph":"i","s":"t","cat":cat,"name":name,"pid":pid,"tid":tid,"ts":ts,"args":args}),
        );
    }

    /// One log message (after the time and level); whether it became events.
    fn message(&mut self, ts: f64, text: &str) -> bool {
        let Some((stack, rest)) = text.split_once(": ") else {
            return false;
        };
        if stack.contains(char::is_whitespace) || stack.is_empty() {
            return false;
        }
        let (label, what) = rest.split_once(' ').unwrap_or((rest, ""));
        let socket = ["tcp#", "udp#", "listen#"]
            .iter()
            .any(|p| label.starts_with(p) && label[p.len()..].parse::<u64>().is_ok());
        let pid = self.pid(stack);
        if !socket {
            // Interface-level discards: "discarded N UDP datagram(s), …: REASON (…)".
            if rest.starts_with("discarded ") {
                let reason = rest
                    .rsplit_once(": ")
                    .map(|(_, r)| r.split(" (").next().unwrap_or(r).trim().to_string())
                    .unwrap_or_else(|| "discarded".into());
                let tid = self.tid(pid, "interface");
                self.instant(
                    ts,
                    pid,
                    tid,
                    "drop",
                    format!("drop: {reason}"),
                    json!({"reason": reason}),
                );
                return true;
            }
            return false;
        }
        let tid = self.tid(pid, label);
        if let Some(after) = what.strip_prefix("zero window advertised (rx ") {
            let (u, c) = used_capacity(after).unwrap_or((0, 0));
            self.ring(ts, pid, tid, label, ("rx", u, c));
            self.events.push(json!({"ph":"C","cat":"window","name":format!("{label} window"),"pid":pid,"tid":tid,"ts":ts,"args":{"advertised":0}}));
            self.instant(
                ts,
                pid,
                tid,
                "window",
                "zero window".into(),
                json!({"advertised":0,"rx_used":u,"rx_capacity":c}),
            );
            return true;
        }
        if let Some(after) = what.strip_prefix("window reopened to ") {
            let advertised: u64 = after
                .split(' ')
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or(0);
            if let Some(rx) = ring_in(&after.replace("(rx ", "rx ring ")) {
                self.ring(ts, pid, tid, label, rx);
            }
            self.events.push(json!({"ph":"C","cat":"window","name":format!("{label} window"),"pid":pid,"tid":tid,"ts":ts,"args":{"advertised":advertised}}));
            self.instant(
                ts,
                pid,
                tid,
                "window",
                "window reopened".into(),
                json!({"advertised":advertised}),
            );
            return true;
        }
        if let Some((call, after)) = what.split_once(" BLOCKS: ") {
            self.blocking.insert((pid, tid), ts);
            if let Some(r) = ring_in(after) {
                self.ring(ts, pid, tid, label, r);
            }
            let _ = call;
            return true;
        }
        for (verb, outcome) in [
            (" unblocked after ", None),
            (" timed out after ", Some("timed out")),
            (" gives up after ", Some("stalled")),
        ] {
            if let Some((call, after)) = what.split_once(verb) {
                let waited = number_before(after, "s").unwrap_or(0.0) * 1e6;
                let polls = number_before(after, " polls").unwrap_or(0.0);
                let start = self
                    .blocking
                    .remove(&(pid, tid))
                    .unwrap_or(ts - waited)
                    .min(ts);
                let ring = ring_in(after);
                let outcome = outcome.map(str::to_string).unwrap_or_else(|| {
                    after
                        .split_once("): ")
                        .map(|(_, why)| why.split(';').next().unwrap_or(why).to_string())
                        .unwrap_or_default()
                });
                self.events.push(json!({"ph":"X","cat":"block","name":format!("{call} blocked"),"pid":pid,"tid":tid,
                    "ts":start,"dur":ts - start,
                    "args":{"call":call,"ring":ring.map_or("rx", |r| r.0),"polls":polls,"outcome":outcome}}));
                if let Some(r) = ring {
                    self.ring(ts, pid, tid, label, r);
                }
                return true;
            }
        }
        if let Some(after) = what.strip_prefix("dropped a ") {
            let bytes = number_before(after, "-byte").unwrap_or(0.0);
            self.instant(
                ts,
                pid,
                tid,
                "drop",
                "drop: rx ring full".into(),
                json!({"reason":"rx ring full","bytes":bytes}),
            );
            if let Some(r) = ring_in(after) {
                self.ring(ts, pid, tid, label, r);
            }
            return true;
        }
        if what.contains(" truncated: ") {
            let after = what.split_once(" truncated: ").map_or("", |(_, a)| a);
            let kept = after
                .split(' ')
                .next()
                .and_then(|k| k.parse::<u64>().ok())
                .unwrap_or(0);
            let lost = number_before(after, " lost").unwrap_or(0.0);
            self.instant(
                ts,
                pid,
                tid,
                "truncation",
                "truncated".into(),
                json!({"kept":kept,"lost":lost}),
            );
            return true;
        }
        if let Some(r) = ring_in(what) {
            self.ring(ts, pid, tid, label, r);
            return true;
        }
        false
    }
}

/// Converts log text into a ringnet trace (JSON text).
pub fn trace_from_log(log: &str) -> (String, Converted) {
    let mut builder = Builder {
        events: Vec::new(),
        pids: HashMap::new(),
        tids: HashMap::new(),
        blocking: HashMap::new(),
    };
    let mut converted = Converted::default();
    let mut now = 0.0f64;
    for line in log.lines() {
        converted.lines += 1;
        let rest = match timestamp(line) {
            Some((seconds, rest)) => {
                now = seconds * 1e6;
                rest
            }
            None => line,
        };
        let rest = rest.trim_start();
        let message = LEVELS
            .iter()
            .find_map(|level| rest.strip_prefix(level))
            .map(str::trim_start);
        if let Some(message) = message {
            if builder.message(now, message) {
                converted.used += 1;
            }
        }
    }
    converted.events = builder.events.len();
    let doc = json!({
        "otherData": {"format":"ringnet-trace","version":1,"clock":"device"},
        "displayTimeUnit": "ms",
        "traceEvents": builder.events,
    });
    (doc.to_string(), converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::model::{Clock, Timeline};

    const LOG: &str = "\
[    0.010] INFO  mcu: up, 10.0.2.15/24 (52-54-00-12-34-56), 15 sockets, MTU 1514
[    1.200] DEBUG mcu: tcp#1 tx ring 100/6144: data queued
[    1.250] DEBUG mcu: tcp#1 tx ring 6144/6144: FULL: send would block
[    1.250] DEBUG mcu: tcp#1 send BLOCKS: tx ring 6144/6144, waiting for the peer to acknowledge
[    1.300] DEBUG mcu: tcp#1 send unblocked after 0.050s (12 polls): room in the tx ring; tx ring 4000/6144
[    2.000] DEBUG mcu: tcp#3 rx ring 9728/9728: FULL: the peer is told to stop sending
[    2.000] DEBUG mcu: tcp#3 zero window advertised (rx 9728/9728): peer must wait
[    2.040] DEBUG mcu: tcp#3 window reopened to 4096 (rx 5632/9728): peer may send
[    3.000] WARN  mcu: udp#9 dropped a 300-byte datagram from 10.0.2.2:5000: rx ring 2048/2048 has no room (drops: 1)
[    3.100] WARN  mcu: udp#9 datagram from 10.0.2.2:5000 truncated: 256 of 600 bytes fit, 344 lost (MSG_TRUNC)
[    3.200] INFO  mcu: discarded 2 UDP datagram(s), the latest 10.0.2.2 -> 10.0.2.15:4444: no socket bound to the port (2 in all; at most one line per 1000 ms)
garbage line
";

    #[test]
    fn transition_lines_become_the_events_a_plot_draws() {
        let (json, converted) = trace_from_log(LOG);
        crate::trace::check::check(&json).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(converted.lines, 12);
        assert_eq!(
            converted.used, 10,
            "every line but the boot line and the garbage"
        );
        let mut timeline = Timeline::default();
        timeline.add_json("uart", &json).unwrap();
        assert_eq!(timeline.clock, Some(Clock::Device));
        let track = |name: &str| timeline.tracks.iter().find(|t| t.name() == name).unwrap();
        let file_out = track("mcu tcp#1");
        assert_eq!(
            file_out.tx.used,
            vec![
                (1.2e6, 100.0),
                (1.25e6, 6144.0),
                (1.25e6, 6144.0),
                (1.3e6, 4000.0)
            ]
        );
        assert_eq!(file_out.tx.capacity, 6144.0);
        assert_eq!(file_out.blocks, vec![(1.25e6, 1.3e6, "send".to_string())]);
        let file_in = track("mcu tcp#3");
        assert_eq!(file_in.zero_windows, vec![(2e6, 2.04e6)]);
        assert_eq!(file_in.window, vec![(2e6, 0.0), (2.04e6, 4096.0)]);
        assert_eq!(file_in.rx.used.last(), Some(&(2.04e6, 5632.0)));
        let udp = track("mcu udp#9");
        assert_eq!(udp.drops, vec![(3e6, "rx ring full".to_string())]);
        assert_eq!(udp.truncations, vec![(3.1e6, 344.0)]);
        assert_eq!(
            track("mcu interface").drops[0].1,
            "no socket bound to the port"
        );
    }

    #[test]
    fn defmt_print_style_times_and_lines_without_a_time_are_read() {
        let log = "0.500000 DEBUG mcu: tcp#1 tx ring 10/100: data queued\nDEBUG mcu: tcp#1 tx ring 0/100: empty: everything sent and acknowledged\n";
        let (json, converted) = trace_from_log(log);
        assert_eq!(converted.used, 2);
        let mut timeline = Timeline::default();
        timeline.add_json("uart", &json).unwrap();
        assert_eq!(timeline.tracks[0].tx.used, vec![(5e5, 10.0), (5e5, 0.0)]);
    }

    #[test]
    fn a_log_without_transitions_gives_an_empty_trace_not_an_error() {
        let (json, converted) = trace_from_log("hello\n\n[ 1.0] INFO  mcu: ready\n");
        assert_eq!(
            (converted.lines, converted.used, converted.events),
            (3, 0, 1)
        );
        assert!(json.contains("\"clock\":\"device\""));
    }
}
