//! The bodies the server generates rather than reads from the store: the file list and
//! the stats as JSON, written whole into the snapshot buffer when the request arrives.

use heapless::Vec;

use crate::observe::{StatField, StatValue, StatsRow};
use crate::phy::Discard;
use crate::stack::Stack;
use crate::text::{Sink, Text};
use crate::transfer::Store;

/// One socket's stats as a JSON object, from the fields the stats table is written from.
fn json_row(out: &mut Text<'_>, row: &StatsRow, first: bool) {
    let comma = if first { "" } else { "," };
    out.str(comma)
        .str("{\"socket\":\"")
        .str(row.kind.as_str())
        .str("#")
        .num(row.handle.0.into())
        .str("\"");
    for StatField { name, value, .. } in row.fields() {
        out.str(",\"").str(name).str("\":");
        match value {
            StatValue::Count(n) => out.num(n),
            StatValue::Ring(used, capacity) => out
                .str("[")
                .num(used as u64)
                .str(",")
                .num(capacity as u64)
                .str("]"),
        };
    }
    out.str("}");
}

/// Writes `name` as it goes in a request path: a space, `%` and anything else outside
/// RFC 3986's unreserved and sub-delims set percent-encoded, so that a listing line has
/// exactly one space and its name works in a URL as it is.
fn write_path_name(out: &mut Text<'_>, name: &str) {
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || crate::text::contains_byte(b"-._~!$&'()*+,;=:@", byte) {
            // An ASCII byte of `name` is a whole character.
            out.str(name.get(i..=i).unwrap_or(""));
        } else {
            out.str("%").hex_byte(byte, true);
        }
    }
}

/// Writes the file list into `out`, a line per file (`NAME SIZE`, the name
/// percent-encoded), as many as fit.
pub(super) fn write_listing<S: Store>(store: &mut S, out: &mut dyn Sink) {
    store.for_each(&mut |name, size| {
        let mut line: heapless::String<420> = heapless::String::new();
        let mut text = Text::new(&mut line);
        write_path_name(&mut text, name);
        text.str(" ").num(size).str("\n");
        let _ = out.append(&line);
    });
}

/// Writes the stats as JSON into `out`: every row that fits, and always a valid document.
pub(super) fn write_stats<const N: usize>(stack: &Stack<'_>, out: &mut Vec<u8, N>) {
    let mut head = Text::new(out);
    head.str("{\"host\":\"")
        .str(stack.name())
        .str("\",\"discards\":{");
    let discards = stack.discards();
    for (i, reason) in Discard::ALL.into_iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        head.str(comma)
            .str("\"")
            .str(reason.name())
            .str("\":")
            .num(discards.get(reason).into());
    }
    head.str("},\"sockets\":[");
    let mut complete = true;
    for (i, row) in stack.stats_rows().enumerate() {
        let mut item: Vec<u8, 512> = Vec::new();
        json_row(&mut Text::new(&mut item), &row, i == 0);
        // Keep room for the closing bytes.
        if out.len() + item.len() + 32 > N {
            complete = false;
            break;
        }
        let _ = out.extend_from_slice(&item);
    }
    let complete = if complete { "true" } else { "false" };
    Text::new(out)
        .str("],\"complete\":")
        .str(complete)
        .str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;

    #[test]
    fn a_stats_row_is_one_json_object() {
        let row = StatsRow {
            handle: crate::SocketHandle(3),
            kind: crate::SocketType::Stream,
            local_port: 7003,
            rx: (10, 4096),
            tx: (0, 2048),
            stats: crate::observe::SocketStats {
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
                idle_timeouts: 3,
                ..Default::default()
            },
        };
        let mut json = std::string::String::new();
        json_row(
            &mut Text::new(&mut crate::text::FmtSink(&mut json)),
            &row,
            false,
        );
        assert_eq!(
            json,
            concat!(
                r#",{"socket":"tcp#3","port":7003,"rx":[10,4096],"tx":[0,2048],"#,
                r#""bytes_in":123456,"bytes_out":7,"rx_high_water":4096,"tx_high_water":512,"#,
                r#""rx_blocks":2,"tx_blocks":1,"blocked_ms":1500,"rx_full":4,"tx_full":5,"#,
                r#""zero_windows":6,"drops":8,"truncations":9,"half_open_expired":0,"#,
                r#""half_open_evicted":0,"orphans_expired":0,"orphans_evicted":0,"idle_timeouts":3,"#,
                r#""slow_requests":0,"rate_limited":0}"#
            )
        );
    }

    #[test]
    fn a_listed_name_is_one_url_path_word() {
        let mut out = std::string::String::new();
        write_path_name(
            &mut Text::new(&mut crate::text::FmtSink(&mut out)),
            "a b%c.txt",
        );
        assert_eq!(out, "a%20b%25c.txt");
    }
}
