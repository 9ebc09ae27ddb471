//! `host-sim demo --trace`: the trace opens by Perfetto's rules and holds what the demo
//! shows: ring counters that never pass their capacity, a slice for each blocked call,
//! the zero windows, the truncated datagram and the drops, on the stacks' tracks.

use std::collections::HashMap;
use std::process::Command;

use host_sim::trace::check::check;
use serde_json::Value;

const HOST_SIM: &str = env!("CARGO_BIN_EXE_host-sim");

fn demo_trace(name: &str) -> (Value, String) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let out = Command::new(HOST_SIM)
        .args(["demo", "--trace"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    (serde_json::from_str(&text).unwrap(), stdout)
}

#[test]
fn the_demo_s_trace_obeys_the_importer_s_rules_and_tells_the_demo_s_story() {
    let (trace, stdout) = demo_trace("demo-trace.json");
    let summary = check(&trace.to_string()).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(summary.clock.as_deref(), Some("simulated"));
    for cat in ["ring", "level", "block", "window", "truncation", "state"] {
        assert!(summary.count(cat) > 0, "no {cat} events: {summary:?}");
    }
    assert!(
        stdout.contains(&format!(
            "trace: {} events in",
            summary.phases.values().sum::<usize>()
        )),
        "the demo says how many events it wrote: {stdout}"
    );
    let events = trace["traceEvents"].as_array().unwrap();
    // Two stacks, and the four of scenario 12's broadcast wire, named; every socket's
    // track named with its log label.
    let processes: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(processes, ["A", "B", "H1", "H2", "H3", "H4"]);
    let mut tracks = HashMap::new();
    for e in events.iter().filter(|e| e["name"] == "thread_name") {
        let label = e["args"]["name"].as_str().unwrap().to_owned();
        tracks.insert((e["pid"].as_u64(), e["tid"].as_u64()), label);
    }
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let track = tracks.get(&(e["pid"].as_u64(), e["tid"].as_u64()));
        assert!(track.is_some(), "an event on an unnamed track: {e}");
        if e["ph"] == "C" && e["cat"] == "ring" {
            let (used, capacity) = (&e["args"]["used"], &e["args"]["capacity"]);
            assert!(used.as_u64() <= capacity.as_u64(), "{e}");
            let name = e["name"].as_str().unwrap();
            assert!(
                name.starts_with(track.unwrap().as_str()),
                "{name} on {track:?}"
            );
        }
    }
    // Scenario 2's slow reader: A's send blocked on a full tx ring while B's rx ring sat
    // at its capacity; a blocked slice has a duration and says how it ended.
    let send_blocks: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["call"] == "send")
        .collect();
    assert!(!send_blocks.is_empty());
    for b in &send_blocks {
        assert!(b["args"]["outcome"].is_string(), "{b}");
    }
    assert!(
        send_blocks.iter().any(|b| b["dur"].as_f64().unwrap() > 0.0),
        "the slow reader kept a send waiting: {send_blocks:?}"
    );
    let full_rx = events.iter().any(|e| {
        e["ph"] == "C"
            && e["pid"] == 2
            && e["args"]["used"].as_u64().is_some()
            && e["args"]["used"] == e["args"]["capacity"]
            && e["name"].as_str().unwrap().ends_with(" rx")
    });
    assert!(full_rx, "B's rx ring reached its capacity in the trace");
}

#[test]
fn a_trace_that_cannot_be_created_is_a_clear_error() {
    let out = Command::new(HOST_SIM)
        .args(["demo", "--trace", "/nonexistent-dir/trace.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--trace /nonexistent-dir/trace.json"),
        "{stderr}"
    );
}

#[test]
fn a_trace_on_a_full_disk_fails_the_run_with_the_reason_instead_of_a_cut_file_and_success() {
    // /dev/full takes the open and refuses every write with ENOSPC, as a full disk does.
    let out = Command::new(HOST_SIM)
        .args(["demo", "--trace", "/dev/full"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the demo cannot claim a trace it lost"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/dev/full") && stderr.contains("No space left on device"),
        "{stderr}"
    );
}
