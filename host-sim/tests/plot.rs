//! `host-sim plot`: the SVG holds what the traces say, where they say it.
//!
//! The fixtures under `tests/fixtures/` are small traces in the ringnet trace format
//! (docs/trace.md); the SVG's elements are found by the colours `plot::render::colors`
//! gives each series.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host_sim::plot::render::colors;
use plotters::style::RGBColor;

const HOST_SIM: &str = env!("CARGO_BIN_EXE_host-sim");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn plot(args: &[&str]) -> Output {
    Command::new(HOST_SIM)
        .arg("plot")
        .args(args)
        .output()
        .expect("host-sim runs")
}

/// Plots `traces` with `extra` options; returns the SVG.
fn svg_of(traces: &[PathBuf], extra: &[&str], name: &str) -> String {
    let out = scratch(name);
    let mut args: Vec<&str> = traces.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(["-o", out.to_str().unwrap()]);
    args.extend(extra);
    let run = plot(&args);
    assert!(
        run.status.success(),
        "plot failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

fn hex(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

/// Every element `<tag …>` whose `key` attribute is `color`.
fn elements<'a>(svg: &'a str, tag: &str, key: &str, color: RGBColor) -> Vec<&'a str> {
    let color = hex(color);
    svg.split('<')
        .filter(|e| e.starts_with(&format!("{tag} ")))
        .filter(|e| attr(e, key) == Some(color.as_str()))
        .collect()
}

/// The points of every polyline drawn in `color`, but the legend's swatches (14 px).
fn lines(svg: &str, color: RGBColor) -> Vec<Vec<(f64, f64)>> {
    elements(svg, "polyline", "stroke", color)
        .into_iter()
        .map(|e| -> Vec<(f64, f64)> {
            attr(e, "points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .filter(|points| !(points.len() == 2 && (points[1].0 - points[0].0).abs() <= 14.0))
        .collect()
}

/// `(x, width)` of every rectangle filled with `color`.
fn rects(svg: &str, color: RGBColor) -> Vec<(f64, f64)> {
    elements(svg, "rect", "fill", color)
        .into_iter()
        .map(|e| {
            let num = |k| attr(e, k).unwrap().parse::<f64>().unwrap();
            (num("x"), num("width"))
        })
        .collect()
}

#[test]
fn each_socket_gets_a_panel_with_its_series_and_the_slow_readers_rx_ring_reaches_its_capacity() {
    let svg = svg_of(&[fixture("slow-reader.json")], &[], "slow.svg");
    for text in [
        "A tcp#0: rx ring 0 B, tx ring 512 B",
        "B tcp#0: rx ring 256 B, tx ring 0 B",
        "rx ring used",
        "tx ring used",
        "advertised window",
        "zero window advertised",
        "call blocked",
        "dropped",
        "truncated",
        "2. send() blocks",
    ] {
        assert!(svg.contains(text), "no '{text}' in the SVG");
    }
    // B's rx ring: one series, and its highest point (least y) is on the capacity line.
    let rx = lines(&svg, colors::RX);
    let capacity = lines(&svg, colors::RX_CAPACITY);
    assert_eq!((rx.len(), capacity.len()), (1, 1));
    let top = rx[0].iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let capacity_y = capacity[0][0].1;
    assert_eq!(top, capacity_y, "rx never reaches the capacity line");
    // ... and it starts below it (empty): the line is not the capacity line itself.
    assert!(rx[0][0].1 > capacity_y + 50.0);
    // One drop marker (two strokes of a cross) and one truncation marker.
    assert_eq!(
        elements(&svg, "polygon", "fill", colors::TRUNCATION).len(),
        2 // the marker and its legend entry
    );
}

#[test]
fn the_blocked_interval_is_drawn_where_the_trace_has_it() {
    let svg = svg_of(&[fixture("slow-reader.json")], &[], "blocked.svg");
    // A's tx ring: 0 until 100 ms, 512 until 140 ms: its corners give the time scale.
    let tx = &lines(&svg, colors::TX)[0];
    let rise = tx[1].0; // 100 ms
    let fall = tx[3].0; // 140 ms
    let px_per_ms = (fall - rise) / 40.0;
    let blocked = rects(&svg, colors::BLOCKED);
    // The interval itself and its legend swatch (14 px wide).
    let interval: Vec<_> = blocked.iter().filter(|r| r.1 > 20.0).collect();
    assert_eq!(interval.len(), 1, "{blocked:?}");
    let (x, width) = *interval[0];
    assert!(
        (x - rise).abs() <= 1.0,
        "block starts at {x}, 100 ms is at {rise}"
    );
    assert!(
        (width - 20.0 * px_per_ms).abs() <= 1.0,
        "block is {width} px wide, 20 ms is {} px",
        20.0 * px_per_ms
    );
    // The zero window: 95 ms to 120 ms on B.
    let zero = rects(&svg, colors::ZERO_WINDOW);
    let interval: Vec<_> = zero.iter().filter(|r| r.1 > 20.0).collect();
    assert_eq!(interval.len(), 1, "{zero:?}");
    assert!((interval[0].1 - 25.0 * px_per_ms).abs() <= 1.0);
}

#[test]
fn socket_and_time_options_choose_what_is_drawn() {
    let only_b = svg_of(
        &[fixture("slow-reader.json")],
        &["--socket", "B tcp#0"],
        "only-b.svg",
    );
    assert!(only_b.contains("B tcp#0") && !only_b.contains("A tcp#0"));
    assert!(lines(&only_b, colors::TX).is_empty());

    // Zoomed into the block: it fills the whole width; nothing after 120 ms is drawn.
    let zoomed = svg_of(
        &[fixture("slow-reader.json")],
        &["--socket", "A tcp#0", "--from", "100", "--to", "120"],
        "zoomed.svg",
    );
    let tx = &lines(&zoomed, colors::TX)[0];
    let (left, right) = (tx.first().unwrap().0, tx.last().unwrap().0);
    let block = rects(&zoomed, colors::BLOCKED)
        .into_iter()
        .find(|r| r.1 > 20.0)
        .unwrap();
    assert!((block.0 - left).abs() <= 1.0 && (block.0 + block.1 - right).abs() <= 1.0);

    let run = plot(&[
        fixture("slow-reader.json").to_str().unwrap(),
        "-o",
        scratch("none.svg").to_str().unwrap(),
        "--socket",
        "tcp#9",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("no socket named 'tcp#9'") && stderr.contains("B tcp#0"),
        "{stderr}"
    );

    let run = plot(&[
        fixture("slow-reader.json").to_str().unwrap(),
        "-o",
        scratch("none.svg").to_str().unwrap(),
        "--from",
        "120",
        "--to",
        "100",
    ]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("not before"));
}

#[test]
fn a_linux_side_trace_draws_the_kernels_queues_and_retransmissions() {
    let svg = svg_of(&[fixture("linux-get.json")], &[], "linux.svg");
    assert!(svg.contains("linux get 4242"));
    assert!(svg.contains("receive queue (SIOCINQ)") && svg.contains("unacked segments (TCP_INFO)"));
    assert!(svg.contains("retransmission"));
    let rx = &lines(&svg, colors::RX)[0];
    assert_eq!(rx.len(), 5, "0 → 60000 → 0 as steps: {rx:?}");
    assert!(
        rx[2].1 < rx[0].1 - 100.0,
        "60000 B queued is drawn high: {rx:?}"
    );
}

#[test]
fn traces_that_cannot_share_an_axis_or_are_not_traces_are_refused() {
    let out = scratch("mixed.svg");
    let run = plot(&[
        fixture("slow-reader.json").to_str().unwrap(),
        fixture("linux-get.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && stderr.contains("different clocks"),
        "{stderr}"
    );
    let run = plot(&["Cargo.toml", "-o", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && stderr.contains("Cargo.toml: not JSON"),
        "{stderr}"
    );
}

/// Runs `host-sim demo` with `args` (its output is not needed).
fn demo(args: &[&str]) {
    let run = Command::new(HOST_SIM)
        .arg("demo")
        .args(args)
        .output()
        .expect("host-sim runs");
    assert!(
        run.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn the_demos_own_trace_shows_the_slow_reader_full_and_each_block_where_the_trace_has_it() {
    let trace = scratch("demo-trace.json");
    demo(&["--trace", trace.to_str().unwrap()]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();

    // Scenario 2's reader, B tcp#0: its rx series reaches the ring's capacity line.
    let svg = svg_of(
        std::slice::from_ref(&trace),
        &["--socket", "B tcp#0"],
        "demo-b.svg",
    );
    let rx = lines(&svg, colors::RX);
    let capacity = lines(&svg, colors::RX_CAPACITY);
    assert_eq!((rx.len(), capacity.len()), (1, 1));
    let top = rx[0].iter().map(|p| p.1).fold(f64::MAX, f64::min);
    assert_eq!(top, capacity[0][0].1, "B's rx ring never drawn full");
    assert!(
        !rects(&svg, colors::ZERO_WINDOW).is_empty(),
        "no zero window drawn"
    );

    // The longest blocked call on A: zoomed to exactly its interval, its shading covers
    // the plotting area from edge to edge (the capacity line spans it).
    let pid_a = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "A")
        .map(|e| e["pid"].clone())
        .unwrap();
    let block = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "block" && e["pid"] == pid_a)
        .max_by(|a, b| {
            a["dur"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["dur"].as_f64().unwrap())
        })
        .expect("A blocked somewhere");
    let start = block["ts"].as_f64().unwrap() / 1000.0;
    let end = start + block["dur"].as_f64().unwrap() / 1000.0;
    let socket = events
        .iter()
        .find(|e| {
            e["ph"] == "M"
                && e["name"] == "thread_name"
                && e["pid"] == pid_a
                && e["tid"] == block["tid"]
        })
        .map(|e| format!("A {}", e["args"]["name"].as_str().unwrap()))
        .unwrap();
    // Half the block's length on either side: the shading is the middle half.
    let margin = (end - start) / 2.0;
    let (from, to) = (format!("{}", start - margin), format!("{}", end + margin));
    let svg = svg_of(
        std::slice::from_ref(&trace),
        &["--socket", &socket, "--from", &from, "--to", &to],
        "demo-block.svg",
    );
    let edge = lines(&svg, colors::TX_CAPACITY)
        .into_iter()
        .chain(lines(&svg, colors::RX_CAPACITY))
        .next()
        .expect("a capacity line");
    let (left, right) = (edge[0].0, edge[1].0);
    let shaded: Vec<(f64, f64)> = rects(&svg, colors::BLOCKED)
        .into_iter()
        .filter(|r| r.1 > 20.0)
        .collect();
    let quarter = (right - left) / 4.0;
    assert!(
        shaded
            .iter()
            .any(|&(x, w)| (x - (left + quarter)).abs() <= 2.0
                && (x + w - (right - quarter)).abs() <= 2.0),
        "no shading over {start}..{end} ms at {}..{} px: {shaded:?}",
        left + quarter,
        right - quarter
    );
}

#[test]
fn demo_plot_draws_every_scenario_labelled_with_the_broadcast_drops_on_each_listener() {
    let svg_path = scratch("demo.svg");
    demo(&["--plot", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for heading in [
        "1. recv() blocks on an empty rx ring",
        "2. send() blocks on a full tx ring while a slow reader drains",
        "11. three remedies for sticky packets",
        "12. a broadcast burst fills every host",
    ] {
        assert!(svg.contains(heading), "no section '{heading}'");
    }
    for panel in ["H2 udp#0", "H3 udp#0", "H4 interface"] {
        assert!(svg.contains(panel), "no panel {panel}");
    }
    // 36 drops on each listener, 40 discards on H4: one cross (two strokes) each, plus
    // the legend's.
    let drop_strokes = elements(&svg, "line", "stroke", colors::DROP).len();
    assert!(
        drop_strokes >= 2 * (36 + 36 + 40),
        "{drop_strokes} drop strokes"
    );
}
