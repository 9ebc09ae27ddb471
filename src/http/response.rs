//! Writing a response: status lines and heads into a connection's queue, short text
//! answers, and the generated bodies (the file list, the stats as JSON).

use core::fmt::{self, Write as _};

use heapless::{String, Vec};

use crate::observe::{StatField, StatValue, StatsRow};
use crate::phy::Discard;
use crate::stack::Stack;
use crate::transfer::Store;

/// The methods the server allows, for `Allow`.
pub(super) const ALLOW: &str = "GET, HEAD, PUT, POST, DELETE, OPTIONS";

/// A writer into a fixed buffer that counts what did not fit.
pub(super) struct Out<'b, const N: usize> {
    buf: &'b mut Vec<u8, N>,
}

impl<const N: usize> fmt::Write for Out<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

/// The reason phrase of `status`.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// Writes a complete response with a short text body into `out`.
pub(super) fn text_response<const N: usize>(
    out: &mut Vec<u8, N>,
    status: u16,
    keep_alive: bool,
    body: &str,
) {
    let mut head = head_start(out, status, keep_alive);
    let _ = write!(
        head,
        "Content-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status == 405 || status == 501 {
        let _ = write!(head, "Allow: {ALLOW}\r\n");
    }
    let _ = write!(head, "\r\n{body}");
}

/// Starts a response head in `out` (a connection's queue).
pub(super) fn head_start<const N: usize>(
    out: &mut Vec<u8, N>,
    status: u16,
    keep_alive: bool,
) -> Out<'_, N> {
    let mut out = Out { buf: out };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nServer: ringnet\r\nConnection: {connection}\r\n",
        reason(status)
    );
    out
}

/// One socket's stats as a JSON object, from the fields the stats table is written from.
fn json_row(out: &mut dyn fmt::Write, row: &StatsRow, first: bool) -> fmt::Result {
    let comma = if first { "" } else { "," };
    write!(out, "{comma}{{\"socket\":\"{}{}\"", row.kind, row.handle)?;
    for StatField { name, value, .. } in row.fields() {
        match value {
            StatValue::Count(n) => write!(out, ",\"{name}\":{n}")?,
            StatValue::Ring(used, capacity) => write!(out, ",\"{name}\":[{used},{capacity}]")?,
        }
    }
    out.write_str("}")
}

/// Writes `name` as it goes in a request path: a space, `%` and anything else outside
/// RFC 3986's unreserved and sub-delims set percent-encoded, so that a listing line has
/// exactly one space and its name works in a URL as it is.
fn write_path_name(out: &mut dyn fmt::Write, name: &str) -> fmt::Result {
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            out.write_char(char::from(byte))?;
        } else {
            write!(out, "%{byte:02X}")?;
        }
    }
    Ok(())
}

/// Writes the file list into `out`, a line per file (`NAME SIZE`, the name
/// percent-encoded), as many as fit.
pub(super) fn write_listing<S: Store, const N: usize>(store: &mut S, out: &mut Vec<u8, N>) {
    store.for_each(&mut |name, size| {
        let mut line: String<420> = String::new();
        let _ = write_path_name(&mut line, name);
        let _ = writeln!(line, " {size}");
        let _ = out.extend_from_slice(line.as_bytes());
    });
}

/// Writes the stats as JSON into `out`: every row that fits, and always a valid document.
pub(super) fn write_stats<const N: usize>(stack: &Stack<'_>, out: &mut Vec<u8, N>) {
    let mut head = Out { buf: out };
    let _ = write!(head, "{{\"host\":\"{}\",\"discards\":{{", stack.name());
    let discards = stack.discards();
    for (i, reason) in Discard::ALL.into_iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            head,
            "{comma}\"{}\":{}",
            reason.name(),
            discards.get(reason)
        );
    }
    let _ = write!(head, "}},\"sockets\":[");
    let mut complete = true;
    for (i, row) in stack.stats_rows().enumerate() {
        let mut item: Vec<u8, 512> = Vec::new();
        let _ = json_row(&mut Out { buf: &mut item }, &row, i == 0);
        // Keep room for the closing bytes.
        if out.len() + item.len() + 32 > N {
            complete = false;
            break;
        }
        let _ = out.extend_from_slice(&item);
    }
    let _ = writeln!(Out { buf: out }, "],\"complete\":{complete}}}");
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
        json_row(&mut json, &row, false).unwrap();
        assert_eq!(
            json,
            concat!(
                r#",{"socket":"tcp#3","port":7003,"rx":[10,4096],"tx":[0,2048],"#,
                r#""bytes_in":123456,"bytes_out":7,"rx_high_water":4096,"tx_high_water":512,"#,
                r#""rx_blocks":2,"tx_blocks":1,"blocked_ms":1500,"rx_full":4,"tx_full":5,"#,
                r#""zero_windows":6,"drops":8,"truncations":9,"half_open_expired":0,"#,
                r#""half_open_evicted":0,"orphans_expired":0,"orphans_evicted":0,"idle_timeouts":3}"#
            )
        );
    }

    #[test]
    fn a_listed_name_is_one_url_path_word() {
        let mut out = std::string::String::new();
        write_path_name(&mut out, "a b%c.txt").unwrap();
        assert_eq!(out, "a%20b%25c.txt");
    }
}
