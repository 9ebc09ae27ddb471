//! The stats table: one [`StatsRow`] per socket, printed as `netstat`-like columns.

use core::fmt;

use super::SocketStats;
use crate::handle::{SocketHandle, SocketType};
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
    pub const HEADER: &'static str = "socket       port  rx used/cap   tx used/cap      bytes in     bytes out  rx-hw  tx-hw  blk-rx blk-tx  blocked-ms  full-rx full-tx  zwin  drops  trunc";
}

impl fmt::Display for StatsRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let mut socket = heapless::String::<16>::new();
        // Cannot overflow: a type name and a 16-bit number fit in 16 bytes.
        let _ = fmt::Write::write_fmt(&mut socket, format_args!("{}{}", self.kind, self.handle));
        write!(
            f,
            "{:<10} {:>6} {:>6}/{:<6} {:>6}/{:<6} {:>12} {:>13} {:>6} {:>6} {:>7} {:>6} {:>11} {:>8} {:>7} {:>5} {:>6} {:>6}",
            socket,
            self.local_port,
            self.rx.0,
            self.rx.1,
            self.tx.0,
            self.tx.1,
            s.bytes_in,
            s.bytes_out,
            s.rx_high_water,
            s.tx_high_water,
            s.rx_blocks,
            s.tx_blocks,
            s.time_blocked.total_millis(),
            s.rx_full_events,
            s.tx_full_events,
            s.zero_windows,
            s.rx_drops,
            s.truncations,
        )
    }
}

/// The stats table of a stack; `Display` prints a header line naming the stack, a column
/// header and one row per socket. Built by [`Stack::stats_table`](crate::Stack::stats_table).
pub struct StatsTable<I> {
    /// The stack's name.
    pub name: &'static str,
    /// The stack's address.
    pub addr: Ipv4Address,
    /// Frames received and sent since the stack was created.
    pub frames: (u64, u64),
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
        Ok(())
    }
}
