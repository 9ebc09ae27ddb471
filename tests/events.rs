//! The event stream: the counters, the log lines and the events a sink receives are three
//! views of the same changes. Each test records every event of both stacks, then counts
//! the events again and compares them with the stats table and with the log.
//! Its own test binary, since it installs the process's logger to read the lines back.
//! A sink is feature `events` (a default): without it there is no stream to compare.

#![cfg(feature = "events")]

use std::collections::HashMap;
use std::sync::Mutex;

use ringnet::observe::{
    Call, DropReason, Event, EventKind, EventSink, Fill, Ring, SocketStats, Source, Unblocked,
};
use ringnet::sim::Faults;
use ringnet::{SocketHandle, SocketOption, Stack};
use ringnet_testkit::*;

/// Every event of every stack it is given to, in order.
#[derive(Default)]
struct Recording(Mutex<Vec<(&'static str, Event)>>);

impl EventSink for Recording {
    fn record(&self, stack: &'static str, event: &Event) {
        self.0.lock().unwrap().push((stack, *event));
    }
}

impl Recording {
    fn of(&self, stack: &str) -> Vec<Event> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(s, _)| *s == stack)
            .map(|(_, e)| *e)
            .collect()
    }
}

fn recording(w: &mut World<2>) -> &'static Recording {
    let sink: &'static Recording = Box::leak(Box::default());
    for stack in &mut w.stacks {
        stack.set_event_sink(Some(sink));
    }
    sink
}

fn lines_with(stack: &str, text: &str) -> usize {
    let prefix = format!("{stack}: ");
    log_capture::lines_with(text)
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .count()
}

/// The counters each socket's events add up to.
fn counted(events: &[Event]) -> HashMap<SocketHandle, SocketStats> {
    let mut stats: HashMap<SocketHandle, SocketStats> = HashMap::new();
    for event in events {
        if let Source::Socket { handle, .. } = event.source {
            stats.entry(handle).or_default().count(&event.kind);
        }
    }
    stats
}

/// The figures of a row that events stand for (the rest count calls, not events).
fn event_figures(s: &SocketStats) -> [u64; 15] {
    [
        s.rx_blocks.into(),
        s.tx_blocks.into(),
        s.time_blocked.total_micros(),
        s.rx_full_events.into(),
        s.tx_full_events.into(),
        s.rx_high_water as u64,
        s.tx_high_water as u64,
        s.zero_windows.into(),
        s.rx_drops.into(),
        s.truncations.into(),
        s.truncated_bytes,
        s.half_open_expired.into(),
        s.half_open_evicted.into(),
        s.orphans_expired.into(),
        s.idle_timeouts.into(),
    ]
}

fn assert_table_is_the_events(stack: &Stack<'_>, events: &[Event]) {
    let counted = counted(events);
    for row in stack.stats_rows() {
        let from_events = counted.get(&row.handle).copied().unwrap_or_default();
        assert_eq!(
            event_figures(&row.stats),
            event_figures(&from_events),
            "{}: {}{}: table {:?}, events {:?}",
            stack.name(),
            row.kind,
            row.handle,
            row.stats,
            from_events
        );
    }
}

#[test]
fn a_slow_reader_s_blocks_zero_windows_and_full_rings_are_one_story_in_three_views() {
    let _guard = log_capture::capture();
    let mut w = pair(Faults::NONE, 3);
    let sink = recording(&mut w);
    let (client, server, _) = w.connect(7, (512, 512), (256, 256));
    w.stacks[B]
        .set_option(server, SocketOption::AckDelay(None))
        .unwrap();
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    send_to_slow_reader(&mut w, client, server, &data);

    let (a_events, b_events) = (sink.of("A"), sink.of("B"));
    assert_table_is_the_events(&w.stacks[A], &a_events);
    assert_table_is_the_events(&w.stacks[B], &b_events);

    // The sender's blocks: each start has its end, on the same call, in order.
    let blocks: Vec<_> = a_events
        .iter()
        .filter(|e| e.source_is(client))
        .filter_map(|e| match e.kind {
            EventKind::BlockStart { call, .. } => Some((true, call, None)),
            EventKind::BlockEnd { call, outcome, .. } => Some((false, call, Some(outcome))),
            _ => None,
        })
        .collect();
    assert!(blocks.len() >= 2, "{blocks:?}");
    for pair in blocks.chunks(2) {
        assert!(pair[0].0 && !pair[1].0, "start then end: {pair:?}");
        assert_eq!(pair[0].1, pair[1].1);
        assert!(matches!(pair[1].2, Some(Unblocked::Completed(_))));
    }
    assert!(blocks.iter().any(|b| b.1 == Call::Send));
    assert!(blocks.iter().any(|b| b.1 == Call::Flush));

    // Every level change follows the occupancy it names, and full means capacity.
    let mut last_used = HashMap::new();
    for e in b_events.iter().filter(|e| e.source_is(server)) {
        match e.kind {
            EventKind::Ring { ring, used, .. } => {
                last_used.insert(ring, used);
            }
            EventKind::Level {
                ring,
                to,
                used,
                capacity,
                ..
            } => {
                assert_eq!(last_used.get(&ring), Some(&used));
                assert_eq!(to == Fill::Full, used == capacity);
            }
            _ => {}
        }
    }

    // The log has a line for each of them (no log limit is set).
    let zero_windows = w.stacks[B].stats(server).unwrap().zero_windows;
    assert!(zero_windows >= 1);
    assert_eq!(
        lines_with("B", "zero window advertised") as u32,
        zero_windows
    );
    let sender = w.stacks[A].stats(client).unwrap();
    assert_eq!(
        lines_with("A", "BLOCKS") as u32,
        sender.tx_blocks + sender.rx_blocks
    );
    assert_eq!(
        lines_with("A", "tx ring 512/512: FULL") as u32,
        sender.tx_full_events
    );
    // The state changes of the handshake are there too.
    assert!(a_events.iter().any(|e| matches!(
        e.kind,
        EventKind::State { to, .. } if to == ringnet::smoltcp::socket::tcp::State::Established
    )));
}

#[test]
fn drops_and_truncations_are_events_counted_once_with_their_reason() {
    let _guard = log_capture::capture();
    let mut w = pair(Faults::NONE, 22);
    let sink = recording(&mut w);
    let rx = udp_socket(&mut w.stacks[A], 8, 256);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 1024);
    for i in 0..5u8 {
        w.stacks[B].send_to(tx, &[i; 100], ep(A, 9000)).unwrap();
    }
    // And one to a port nobody listens on: the interface's discard, not a socket's drop.
    w.stacks[B].send_to(tx, b"nobody", ep(A, 9999)).unwrap();
    w.settle();
    let mut small = [0u8; 40];
    let d = w.stacks[A].recv_from(rx, &mut small).unwrap();
    assert_eq!(d.lost, 60);

    let events = sink.of("A");
    assert_table_is_the_events(&w.stacks[A], &events);
    let drops: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Drop { reason, bytes, .. } => Some((e.source, reason, bytes)),
            _ => None,
        })
        .collect();
    let on_socket = Source::Socket {
        handle: rx,
        kind: ringnet::SocketType::Datagram,
    };
    assert_eq!(
        drops,
        vec![
            (on_socket, DropReason::RxRingFull, 100),
            (on_socket, DropReason::RxRingFull, 100),
            (on_socket, DropReason::RxRingFull, 100),
            (
                Source::Interface,
                DropReason::Discarded(ringnet::phy::Discard::NoSocket),
                6
            ),
        ]
    );
    assert_eq!(w.stacks[A].discards().no_socket, 1);
    assert_eq!(lines_with("A", "has no room") as u32, 3);
    let truncations: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Truncated { kept, lost, .. } => Some((kept, lost)),
            _ => None,
        })
        .collect();
    assert_eq!(truncations, vec![(40, 60)]);
    assert_eq!(lines_with("A", "truncated") as u32, 1);
}

#[test]
fn a_polite_exchange_records_no_loss_no_block_and_no_timer() {
    let _guard = log_capture::capture();
    let mut w = pair(Faults::NONE, 5);
    let sink = recording(&mut w);
    let rx = udp_socket(&mut w.stacks[A], 8, 4096);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 4096);
    w.stacks[B].send_to(tx, b"hello", ep(A, 9000)).unwrap();
    w.settle();
    let mut buf = [0u8; 64];
    assert_eq!(w.stacks[A].recv_from(rx, &mut buf).unwrap().len, 5);
    for stack in ["A", "B"] {
        let events = sink.of(stack);
        assert!(!events.is_empty(), "{stack} recorded its rings");
        for e in &events {
            assert!(
                matches!(e.kind, EventKind::Ring { .. } | EventKind::Level { .. }),
                "{stack}: {e:?}"
            );
        }
    }
    // The rx ring went 0 -> 5 -> 0 and said so twice on each view.
    let rings: Vec<_> = sink
        .of("A")
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Ring {
                ring: Ring::Rx,
                used,
                ..
            } => Some(used),
            _ => None,
        })
        .collect();
    assert_eq!(rings, vec![5, 0]);
}

#[test]
fn without_a_sink_the_counters_and_the_log_still_see_everything() {
    let _guard = log_capture::capture();
    let mut w = pair(Faults::NONE, 22);
    let rx = udp_socket(&mut w.stacks[A], 8, 256);
    w.stacks[A].udp_bind(rx, 9000).unwrap();
    let tx = udp_socket(&mut w.stacks[B], 8, 1024);
    for i in 0..5u8 {
        w.stacks[B].send_to(tx, &[i; 100], ep(A, 9000)).unwrap();
    }
    w.settle();
    assert_eq!(w.stacks[A].stats(rx).unwrap().rx_drops, 3);
    assert_eq!(lines_with("A", "has no room"), 3);
}

trait SourceIs {
    fn source_is(&self, handle: SocketHandle) -> bool;
}

impl SourceIs for Event {
    fn source_is(&self, handle: SocketHandle) -> bool {
        matches!(self.source, Source::Socket { handle: h, .. } if h == handle)
    }
}
