//! `host-sim top ADDR`: every socket of a ringnet host, live: its rings as bars, its
//! counters and its rates, refreshed a few times a second from the UDP stats query or
//! `GET /stats` ([`snapshot`]). On a terminal it draws with ratatui ([`view`]) until `q`;
//! without one (a pipe, a log) it prints plain snapshots.

pub mod snapshot;
pub mod view;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub use snapshot::{Snapshot, SnapshotError, SocketRow, Source};

/// How `top` runs.
#[derive(Debug, Clone)]
pub struct TopConfig {
    /// Where the stats come from.
    pub source: Source,
    /// Time between snapshots.
    pub interval: Duration,
    /// Stop after this many snapshots (`None`: until `q`, or forever without a terminal).
    pub count: Option<u64>,
    /// Plain snapshots even on a terminal.
    pub plain: bool,
}

/// A snapshot with the rates since the one before.
#[derive(Debug, Clone)]
pub struct Frame {
    /// What the host said (or why it said nothing).
    pub snapshot: Result<Snapshot, String>,
    /// Per socket (same order as the rows): bytes in and out per second since the last
    /// answer with that socket.
    pub rates: Vec<(f64, f64)>,
    /// Snapshots taken so far, answered or not.
    pub taken: u64,
}

/// Keeps the last answer, to turn counters into rates.
#[derive(Default)]
struct Rates {
    last: Option<(Instant, Snapshot)>,
}

impl Rates {
    fn update(&mut self, now: Instant, snapshot: &Snapshot) -> Vec<(f64, f64)> {
        let rates = snapshot
            .rows
            .iter()
            .map(|row| {
                let Some((then, before)) = &self.last else {
                    return (0.0, 0.0);
                };
                let secs = now.duration_since(*then).as_secs_f64().max(1e-3);
                match before.rows.iter().find(|b| b.socket == row.socket) {
                    // A socket reused for another connection starts its counters anew.
                    Some(b) if b.bytes_in <= row.bytes_in && b.bytes_out <= row.bytes_out => (
                        (row.bytes_in - b.bytes_in) as f64 / secs,
                        (row.bytes_out - b.bytes_out) as f64 / secs,
                    ),
                    _ => (0.0, 0.0),
                }
            })
            .collect();
        self.last = Some((now, snapshot.clone()));
        rates
    }
}

/// Runs `top`; returns an error if no snapshot was ever answered.
pub fn run(config: &TopConfig) -> Result<(), String> {
    let timeout = Duration::from_secs(1).max(config.interval);
    let mut rates = Rates::default();
    let mut taken = 0u64;
    let mut answered = 0u64;
    let mut next = move || {
        let now = Instant::now();
        let snapshot = config.source.fetch(timeout).map_err(|e| e.to_string());
        taken += 1;
        let rates = match &snapshot {
            Ok(s) => {
                answered += 1;
                rates.update(now, s)
            }
            Err(_) => Vec::new(),
        };
        (
            Frame {
                snapshot,
                rates,
                taken,
            },
            answered,
        )
    };
    let interactive =
        !config.plain && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let answered = if interactive {
        view::interactive(config, &mut next).map_err(|e| format!("terminal: {e}"))?
    } else {
        plain(config, &mut next)
    };
    if answered == 0 {
        return Err(format!(
            "{}: no snapshot was answered",
            describe(&config.source)
        ));
    }
    Ok(())
}

/// Names the source in messages: `UDP stats query at 1.2.3.4:9001`.
pub fn describe(source: &Source) -> String {
    match source {
        Source::Udp(addr) => format!("UDP stats query at {addr}"),
        Source::Http(addr) => format!("GET /stats at {addr}"),
    }
}

fn plain(config: &TopConfig, next: &mut impl FnMut() -> (Frame, u64)) -> u64 {
    loop {
        let started = Instant::now();
        let (frame, answered) = next();
        println!("{}", view::plain_text(&config.source, &frame));
        if config.count.is_some_and(|n| frame.taken >= n) {
            return answered;
        }
        std::thread::sleep(config.interval.saturating_sub(started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_counters_difference_and_a_reused_socket_starts_anew() {
        let row = |bytes_in, bytes_out| SocketRow {
            socket: "tcp#0".into(),
            bytes_in,
            bytes_out,
            ..SocketRow::default()
        };
        let snapshot = |rows| Snapshot {
            host: "A".into(),
            rows,
        };
        let mut rates = Rates::default();
        let t0 = Instant::now();
        assert_eq!(
            rates.update(t0, &snapshot(vec![row(1000, 0)])),
            vec![(0.0, 0.0)]
        );
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            rates.update(t1, &snapshot(vec![row(3000, 50)])),
            vec![(4000.0, 100.0)]
        );
        let t2 = t1 + Duration::from_millis(500);
        assert_eq!(
            rates.update(t2, &snapshot(vec![row(10, 0)])),
            vec![(0.0, 0.0)]
        );
    }
}
