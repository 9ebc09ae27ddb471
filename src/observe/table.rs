//! The stats table: one [`StatsRow`] per socket, printed as `netstat`-like columns.

use core::fmt;

use super::SocketStats;
use crate::handle::{SocketHandle, SocketType};
use crate::phy::Discards;
use crate::text::{self, Text};
use smoltcp::wire::Ipv4Address;

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
    pub const HEADER: &'static str = "socket       port  rx used/cap   tx used/cap      bytes in     bytes out  rx-hw  tx-hw  blk-rx blk-tx  blocked-ms  full-rx full-tx  zwin  drops  trunc  ho-exp ho-evi or-exp or-evi  idle";

    /// The row's figures after the socket's name, in the table's column order: the one
    /// list both the table and the JSON of `GET /stats` are written from.
    pub fn fields(&self) -> [StatField; 20] {
        let s = &self.stats;
        let field = |name, width, value| StatField { name, width, value };
        let count = |n: u64| StatValue::Count(n);
        [
            field("port", 6, count(self.local_port.into())),
            field("rx", 6, StatValue::Ring(self.rx.0, self.rx.1)),
            field("tx", 6, StatValue::Ring(self.tx.0, self.tx.1)),
            field("bytes_in", 12, count(s.bytes_in)),
            field("bytes_out", 13, count(s.bytes_out)),
            field("rx_high_water", 6, count(s.rx_high_water as u64)),
            field("tx_high_water", 6, count(s.tx_high_water as u64)),
            field("rx_blocks", 7, count(s.rx_blocks.into())),
            field("tx_blocks", 6, count(s.tx_blocks.into())),
            field("blocked_ms", 11, count(s.time_blocked.total_millis())),
            field("rx_full", 8, count(s.rx_full_events.into())),
            field("tx_full", 7, count(s.tx_full_events.into())),
            field("zero_windows", 5, count(s.zero_windows.into())),
            field("drops", 6, count(s.rx_drops.into())),
            field("truncations", 6, count(s.truncations.into())),
            field("half_open_expired", 7, count(s.half_open_expired.into())),
            field("half_open_evicted", 6, count(s.half_open_evicted.into())),
            field("orphans_expired", 6, count(s.orphans_expired.into())),
            field("orphans_evicted", 6, count(s.orphans_evicted.into())),
            field("idle_timeouts", 5, count(s.idle_timeouts.into())),
        ]
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
                ..SocketStats::default()
            },
        };
        let expected = "tcp#3        7003     10/4096        0/2048         123456             7   4096    512       2      1        1500        4       5     6      8      9       1      2      3      4     5";
        assert_eq!(std::format!("{row}"), expected);
    }
}
