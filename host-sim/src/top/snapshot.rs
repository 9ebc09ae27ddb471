//! One look at a host's sockets: its stats, fetched with the UDP stats query (port 9001:
//! the table as text, in as many datagrams as it takes, the last ending `end of table: N
//! rows`) or with `GET /stats` (JSON), and read into [`Snapshot`]s.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One socket's row of the stats table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketRow {
    /// Its label, `tcp#3` / `udp#5`.
    pub socket: String,
    /// Its local port.
    pub port: u64,
    /// rx ring: bytes used, capacity.
    pub rx: (u64, u64),
    /// tx ring: bytes used, capacity.
    pub tx: (u64, u64),
    /// Bytes received over its life.
    pub bytes_in: u64,
    /// Bytes sent over its life.
    pub bytes_out: u64,
    /// Calls that blocked on rx and on tx.
    pub blocks: (u64, u64),
    /// Time spent blocked, ms.
    pub blocked_ms: u64,
    /// Zero windows advertised.
    pub zero_windows: u64,
    /// Datagrams dropped at a full ring.
    pub drops: u64,
    /// Datagrams truncated.
    pub truncations: u64,
}

/// A host's stats at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The host's name (`ringnet`, `A`) and, from the UDP answer, its address line.
    pub host: String,
    /// One row per socket, in the host's order.
    pub rows: Vec<SocketRow>,
}

/// Why a snapshot could not be had.
#[derive(Debug)]
pub enum SnapshotError {
    /// The socket failed.
    Io(io::Error),
    /// Nothing (or not all of it) came back in time.
    NoAnswer(Duration),
    /// Something came back that is not a stats table.
    Garbled(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "{e}"),
            SnapshotError::NoAnswer(t) => {
                write!(f, "no complete answer within {} ms", t.as_millis())
            }
            SnapshotError::Garbled(why) => write!(f, "not a stats answer: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl From<io::Error> for SnapshotError {
    fn from(e: io::Error) -> Self {
        SnapshotError::Io(e)
    }
}

fn garbled(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Garbled(why.into())
}

/// Reads the text of a UDP stats answer (every datagram's text, joined).
pub fn parse_table(text: &str) -> Result<Snapshot, SnapshotError> {
    let mut lines = text.lines();
    let host = lines
        .next()
        .ok_or_else(|| garbled("empty"))?
        .trim()
        .to_string();
    let header = lines.next().ok_or_else(|| garbled("no column header"))?;
    if !header.starts_with("socket") {
        return Err(garbled(format!("no column header: {header:?}")));
    }
    let mut rows = Vec::new();
    let mut ended = None;
    for line in lines {
        if let Some(n) = line.strip_prefix("end of table: ") {
            ended = n.trim_end_matches(" rows").parse::<usize>().ok();
            break;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || line.starts_with("discarded before any socket") {
            continue;
        }
        if fields.len() < 16 {
            return Err(garbled(format!(
                "a row of {} fields: {line:?}",
                fields.len()
            )));
        }
        let count = |i: usize| -> Result<u64, SnapshotError> {
            fields[i]
                .parse()
                .map_err(|_| garbled(format!("field {i} of {line:?} is not a number")))
        };
        let ring = |i: usize| -> Result<(u64, u64), SnapshotError> {
            let (used, capacity) = fields[i]
                .split_once('/')
                .ok_or_else(|| garbled(format!("field {i} of {line:?} is not used/capacity")))?;
            match (used.parse(), capacity.parse()) {
                (Ok(u), Ok(c)) => Ok((u, c)),
                _ => Err(garbled(format!(
                    "field {i} of {line:?} is not used/capacity"
                ))),
            }
        };
        // The columns of StatsRow::HEADER.
        rows.push(SocketRow {
            socket: fields[0].to_string(),
            port: count(1)?,
            rx: ring(2)?,
            tx: ring(3)?,
            bytes_in: count(4)?,
            bytes_out: count(5)?,
            blocks: (count(8)?, count(9)?),
            blocked_ms: count(10)?,
            zero_windows: count(13)?,
            drops: count(14)?,
            truncations: count(15)?,
        });
    }
    match ended {
        Some(n) if n == rows.len() => Ok(Snapshot { host, rows }),
        Some(n) => Err(garbled(format!(
            "{} rows of the {n} the answer announced",
            rows.len()
        ))),
        None => Err(garbled("no \"end of table\" line")),
    }
}

/// Reads the JSON of `GET /stats`.
pub fn parse_json(text: &str) -> Result<Snapshot, SnapshotError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| garbled(e.to_string()))?;
    let host = doc
        .get("host")
        .and_then(Value::as_str)
        .ok_or_else(|| garbled("no \"host\""))?
        .to_string();
    let sockets = doc
        .get("sockets")
        .and_then(Value::as_array)
        .ok_or_else(|| garbled("no \"sockets\""))?;
    let mut rows = Vec::new();
    for s in sockets {
        let count = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
        let ring = |k: &str| -> (u64, u64) {
            let pair = s.get(k).and_then(Value::as_array);
            let at = |i: usize| {
                pair.and_then(|p| p.get(i))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            (at(0), at(1))
        };
        rows.push(SocketRow {
            socket: s
                .get("socket")
                .and_then(Value::as_str)
                .ok_or_else(|| garbled("a socket without a name"))?
                .to_string(),
            port: count("port"),
            rx: ring("rx"),
            tx: ring("tx"),
            bytes_in: count("bytes_in"),
            bytes_out: count("bytes_out"),
            blocks: (count("rx_blocks"), count("tx_blocks")),
            blocked_ms: count("blocked_ms"),
            zero_windows: count("zero_windows"),
            drops: count("drops"),
            truncations: count("truncations"),
        });
    }
    Ok(Snapshot { host, rows })
}

/// Where the stats come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The UDP stats query at this address (port 9001 on a ringnet host).
    Udp(SocketAddr),
    /// `GET /stats` at this address (port 80 on a ringnet host).
    Http(SocketAddr),
}

impl Source {
    /// Takes one snapshot, waiting at most `timeout`.
    pub fn fetch(&self, timeout: Duration) -> Result<Snapshot, SnapshotError> {
        match *self {
            Source::Udp(addr) => parse_table(&udp_query(addr, timeout)?),
            Source::Http(addr) => parse_json(&http_stats(addr, timeout)?),
        }
    }
}

/// Sends one query datagram and collects the answer's datagrams until the one that ends
/// it; a fresh socket each time, so a late datagram of an earlier answer cannot mix in.
fn udp_query(addr: SocketAddr, timeout: Duration) -> Result<String, SnapshotError> {
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(addr)?;
    socket.send(b"?")?;
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SnapshotError::NoAnswer(timeout));
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if text.contains("end of table: ") {
                    return Ok(text);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(SnapshotError::NoAnswer(timeout))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `GET /stats` on a fresh connection; returns the body.
fn http_stats(addr: SocketAddr, timeout: Duration) -> Result<String, SnapshotError> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SnapshotError::NoAnswer(timeout),
            _ => e.into(),
        })?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| garbled("an HTTP answer without a blank line"))?;
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200 ") {
        return Err(garbled(format!("HTTP answered {status:?}")));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "A: 10.0.0.1 (12 frames in, 14 out)
socket       port  rx used/cap   tx used/cap      bytes in     bytes out  rx-hw  tx-hw  blk-rx blk-tx  blocked-ms  full-rx full-tx  zwin  drops  trunc  ho-exp ho-evi or-exp or-evi  idle  slow
tcp#0           7    256/256        12/512            2048            17    256    512       1      2          30        4       5     6      0      0       0      0      0      0     0     0
udp#1        9000      0/1024        0/1024            600             0      0      0       0      0           0        0       0     0      3      1       0      0      0      0     0     0
end of table: 2 rows
";

    #[test]
    fn the_udp_answer_reads_into_rows() {
        let snapshot = parse_table(TABLE).unwrap();
        assert_eq!(snapshot.host, "A: 10.0.0.1 (12 frames in, 14 out)");
        assert_eq!(snapshot.rows.len(), 2);
        let tcp = &snapshot.rows[0];
        assert_eq!(
            (tcp.socket.as_str(), tcp.port, tcp.rx, tcp.tx),
            ("tcp#0", 7, (256, 256), (12, 512))
        );
        assert_eq!(
            (tcp.bytes_in, tcp.bytes_out, tcp.blocks, tcp.blocked_ms),
            (2048, 17, (1, 2), 30)
        );
        assert_eq!((tcp.zero_windows, tcp.drops, tcp.truncations), (6, 0, 0));
        assert_eq!(
            (snapshot.rows[1].drops, snapshot.rows[1].truncations),
            (3, 1)
        );
    }

    #[test]
    fn a_cut_or_foreign_answer_is_an_error() {
        let cut = TABLE.replace("end of table: 2 rows", "end of table: 3 rows");
        assert!(parse_table(&cut)
            .unwrap_err()
            .to_string()
            .contains("2 rows of the 3"));
        let unended = TABLE.replace("end of table: 2 rows\n", "");
        assert!(parse_table(&unended).is_err());
        assert!(parse_table("3 bytes from 1.2.3.4:5\n").is_err());
        assert!(parse_json("<html>").is_err());
    }

    #[test]
    fn the_json_of_get_stats_reads_into_the_same_rows() {
        let json = r#"{"host":"ringnet","discards":{"not_for_us":0},"sockets":[{"socket":"tcp#0","port":7,"rx":[256,256],"tx":[12,512],"bytes_in":2048,"bytes_out":17,"rx_high_water":256,"tx_high_water":512,"rx_blocks":1,"tx_blocks":2,"blocked_ms":30,"rx_full":4,"tx_full":5,"zero_windows":6,"drops":0,"truncations":0}],"complete":true}"#;
        let from_json = parse_json(json).unwrap();
        let from_table = parse_table(TABLE).unwrap();
        assert_eq!(from_json.rows[0], from_table.rows[0]);
    }
}
