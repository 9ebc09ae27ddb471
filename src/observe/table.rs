//! The stats table: one [`StatsRow`] per socket, printed as `netstat`-like columns.

use core::fmt;

use super::SocketStats;
use crate::handle::{SocketHandle, SocketType};
use crate::phy::Discards;
use crate::text::{self, Text};
use smoltcp::wire::Ipv4Address;

/// Each field's JSON name, in the table's order.
const NAMES: [&str; 22] = [
    "port",
    "rx",
    "tx",
    "bytes_in",
    "bytes_out",
    "rx_high_water",
    "tx_high_water",
    "rx_blocks",
    "tx_blocks",
    "blocked_ms",
    "rx_full",
    "tx_full",
    "zero_windows",
    "drops",
    "truncations",
    "half_open_expired",
    "half_open_evicted",
    "orphans_expired",
    "orphans_evicted",
    "idle_timeouts",
    "slow_requests",
    "rate_limited",
];

/// Each field's column width in the table (each half's, for a ring).
const WIDTHS: [u8; 22] = [
    6, 6, 6, 12, 13, 6, 6, 7, 6, 11, 8, 7, 5, 6, 6, 7, 6, 6, 6, 5, 5, 5,
];

/// One row of the stats table: a socket's identity, ring occupancy and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRow {
    /// The socket.
    pub handle: SocketHandle,
    /// Its type.
    pub kind: SocketType,
    /// Its local port (0 when unbound).
    pub local_port: u16,
    /// Bytes in the rx ring now, and its capacity.
    pub rx: (usize, usize),
    /// Bytes in the tx ring now, and its capacity.
    pub tx: (usize, usize),
    /// The counters.
    pub stats: SocketStats,
}

impl StatsRow {
    /// The table's header line, matching [`StatsRow`]'s `Display`.
    pub const HEADER: &'static str = "socket       port  rx used/cap   tx used/cap      bytes in     bytes out  rx-hw  tx-hw  blk-rx blk-tx  blocked-ms  full-rx full-tx  zwin  drops  trunc  ho-exp ho-evi or-exp or-evi  idle  slow limit";

    /// The row's figures after the socket's name, in the table's column order: the one
    /// list both the table and the JSON of `GET /stats` are written from.
    pub fn fields(&self) -> [StatField; 22] {
        let s = &self.stats;
        // The counts in column order, the two rings left out (columns 1 and 2).
        let counts: [u64; 20] = [
            self.local_port.into(),
            s.bytes_in,
            s.bytes_out,
            s.rx_high_water as u64,
            s.tx_high_water as u64,
            s.rx_blocks.into(),
            s.tx_blocks.into(),
            s.time_blocked.total_millis(),
            s.rx_full_events.into(),
            s.tx_full_events.into(),
            s.zero_windows.into(),
            s.rx_drops.into(),
            s.truncations.into(),
            s.half_open_expired.into(),
            s.half_open_evicted.into(),
            s.orphans_expired.into(),
            s.orphans_evicted.into(),
            s.idle_timeouts.into(),
            s.slow_requests.into(),
            s.rate_limited.into(),
        ];
        let mut counts = counts.into_iter();
        // One loop over a table of names and widths: built field by field, the list was
        // 20 sets of stores (about 0.7 KB of flash).
        core::array::from_fn(|column| {
            let value = match column {
                1 => StatValue::Ring(self.rx.0, self.rx.1),
                2 => StatValue::Ring(self.tx.0, self.tx.1),
                // Never short: 20 counts for the 20 other columns.
                _ => StatValue::Count(counts.next().unwrap_or(0)),
            };
            StatField {
                name: NAMES[column],
                width: WIDTHS[column].into(),
                value,
            }
        })
    }
}

/// One figure of a [`StatsRow`], as [`StatsRow::fields`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatField {
    /// Its name in JSON.
    pub name: &'static str,
    /// Its column's width in the table (each half's, for a ring).
    pub width: usize,
    /// The figure.
    pub value: StatValue,
}

/// The value of a [`StatField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatValue {
    /// A count or an amount.
    Count(u64),
    /// A ring's bytes in use and its capacity.
    Ring(usize, usize),
}

impl StatsRow {
    /// Writes the row as its `Display` does, without `core::fmt`.
    pub fn write_text(&self, out: &mut Text<'_>) {
        let mut socket = heapless::String::<16>::new();
        // Cannot overflow: a type name and a 16-bit number fit in 16 bytes.
        Text::new(&mut socket)
            .str(self.kind.as_str())
            .str("#")
            .num(self.handle.0.into());
        out.str_padded(&socket, 10);
        for StatField { width, value, .. } in self.fields() {
            out.str(" ");
            match value {
                StatValue::Count(n) => out.num_padded(n, width, false),
                StatValue::Ring(used, capacity) => out
                    .num_padded(used as u64, width, false)
                    .str("/")
                    .num_padded(capacity as u64, width, true),
            };
        }
    }
}

impl fmt::Display for StatsRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
    }
}

/// The stats table of a stack; `Display` prints a header line naming the stack, a column
/// header, one row per socket and a last line of the interface's [`Discards`]. Built by [`Stack::stats_table`](crate::Stack::stats_table).
pub struct StatsTable<I> {
    /// The stack's name.
    pub name: &'static str,
    /// The stack's address.
    pub addr: Ipv4Address,
    /// Frames received and sent since the stack was created.
    pub frames: (u64, u64),
    /// What the interface discarded before any socket, printed under the rows.
    pub discards: Discards,
    /// The rows; cloned for each printing.
    pub rows: I,
}

impl<I: Iterator<Item = StatsRow> + Clone> fmt::Display for StatsTable<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (frames_in, frames_out) = self.frames;
        writeln!(
            f,
            "{}: {} ({} frames in, {} out)",
            self.name, self.addr, frames_in, frames_out
        )?;
        writeln!(f, "{}", StatsRow::HEADER)?;
        for row in self.rows.clone() {
            writeln!(f, "{row}")?;
        }
        writeln!(f, "{}", self.discards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Duration;

    #[test]
    fn a_table_row_keeps_its_columns() {
        let row = StatsRow {
            handle: SocketHandle(3),
            kind: SocketType::Stream,
            local_port: 7003,
            rx: (10, 4096),
            tx: (0, 2048),
            stats: SocketStats {
                bytes_in: 123_456,
                bytes_out: 7,
                rx_high_water: 4096,
                tx_high_water: 512,
                rx_blocks: 2,
                tx_blocks: 1,
                time_blocked: Duration::from_millis(1500),
                rx_full_events: 4,
                tx_full_events: 5,
                zero_windows: 6,
                rx_drops: 8,
                truncations: 9,
                half_open_expired: 1,
                half_open_evicted: 2,
                orphans_expired: 3,
                orphans_evicted: 4,
                idle_timeouts: 5,
                slow_requests: 6,
                rate_limited: 7,
                ..SocketStats::default()
            },
        };
        let expected = "tcp#3        7003     10/4096        0/2048         123456             7   4096    512       2      1        1500        4       5     6      8      9       1      2      3      4     5     6     7";
        assert_eq!(std::format!("{row}"), expected);
    }
}
