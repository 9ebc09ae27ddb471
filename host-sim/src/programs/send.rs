//! `host-sim send` and `host-sim udp-send`: ringnet as the client on a tap, with every
//! block of the device's sockets in the log. A program on the device side of the wire: it
//! brings the device up as `serve` does, with [`bring_up`], and a smaller socket table.

use std::io::Read;
use std::path::Path;

use ringnet::blocking::Blocking;
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::wire::EthernetAddress;
use ringnet::socket::udp::UdpBuffer;
use ringnet::{Duration, IpEndpoint, SocketOption, Stack};

use crate::tap::{bring_up, print_stats_table, TapConfig, TapWaiter};

/// The sending device's Ethernet address (not serve's: both may be on one tap).
pub const MAC: EthernetAddress = EthernetAddress([0x02, 0x52, 0x4e, 0x00, 0x00, 0x02]);

/// Slots in the sending device's socket table.
const SOCKETS: usize = 4;

/// What `send` and `udp-send` run with.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Where the device sits on the tap.
    pub tap: TapConfig,
    /// Receive ring of the stream socket, in bytes.
    pub rx_buf: usize,
    /// Transmit ring of the stream socket, in bytes.
    pub tx_buf: usize,
}

fn up(config: &SendConfig) -> Result<(Stack<'static>, TapWaiter), String> {
    bring_up::<SOCKETS>(&config.tap, MAC).map_err(|e| e.to_string())
}

/// Sends the file at `path` to `to` over a ringnet TCP connection, shuts down writing, and
/// returns what the peer answered before closing (the seed's "client sends a file").
pub fn send_file(
    config: &SendConfig,
    path: &Path,
    to: IpEndpoint,
    timeout: Duration,
) -> Result<String, String> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut stack, mut driver) = up(config)?;
    let conn = stack
        .tcp_socket(
            vec![0u8; config.rx_buf].leak(),
            vec![0u8; config.tx_buf].leak(),
        )
        .map_err(|e| e.to_string())?;
    for option in [
        SocketOption::RecvTimeout(Some(timeout)),
        SocketOption::SendTimeout(Some(timeout)),
    ] {
        stack.set_option(conn, option).map_err(|e| e.to_string())?;
    }
    let mut sock = Blocking::new(&mut stack, &mut driver);
    sock.connect(conn, to)
        .map_err(|e| format!("connect {to}: {e}"))?;
    sock.send_all(conn, &data).map_err(|e| e.to_string())?;
    sock.stack()
        .shutdown_write(conn)
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match sock.recv(conn, &mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    let _ = sock.stack().close(conn);
    // Let the FIN and the last ACK leave before the process ends.
    let end = driver.clock.now() + Duration::from_millis(200);
    while driver.clock.now() < end {
        ringnet::blocking::Waiter::wait(&mut driver, &mut stack, Some(end));
    }
    print_stats_table(&stack, &driver.device);
    driver.trace.finish().map_err(|e| format!("trace: {e}"))?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Sends one datagram to `to` from the device (setting `SO_BROADCAST` first when
/// `broadcast`), and waits up to `timeout` for an answer.
pub fn udp_send(
    config: &SendConfig,
    payload: &[u8],
    to: IpEndpoint,
    broadcast: bool,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let (mut stack, mut driver) = up(config)?;
    let ring = || UdpBuffer {
        slots: vec![PacketMetadata::EMPTY; 4].leak(),
        payload: vec![0u8; 65536].leak(),
    };
    let socket = stack
        .udp_socket(ring(), ring())
        .map_err(|e| e.to_string())?;
    stack
        .set_option(socket, SocketOption::Broadcast(broadcast))
        .map_err(|e| e.to_string())?;
    stack
        .set_option(socket, SocketOption::RecvTimeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let mut sock = Blocking::new(&mut stack, &mut driver);
    sock.send_to(socket, payload, to)
        .map_err(|e| format!("send_to {to}: {e}"))?;
    let mut buf = [0u8; 2048];
    let answer = match sock.recv_from(socket, &mut buf) {
        Ok(d) => Some(format!(
            "{} bytes from {}: {}",
            d.len,
            d.from,
            String::from_utf8_lossy(&buf[..d.len]).trim_end()
        )),
        Err(ringnet::socket::udp::RecvError::TimedOut) => None,
        Err(e) => return Err(e.to_string()),
    };
    print_stats_table(&stack, &driver.device);
    driver.trace.finish().map_err(|e| format!("trace: {e}"))?;
    Ok(answer)
}
