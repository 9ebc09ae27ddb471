use core::fmt::Write as _;

use heapless::String;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{ServiceError, ServicePlan};
use crate::handle::SocketHandle;
use crate::socket::udp::SendError;
use crate::socket::SocketOption;
use crate::stack::Stack;
use smoltcp::time::{Duration, Instant};

/// UDP receive-and-report: takes each datagram with a buffer of `BUF` bytes (so larger
/// ones are visibly truncated), logs it, and answers the sender with one line:
/// `"<n> bytes from <addr>[, truncated: <lost> lost]\n"`.
pub struct UdpReport<const BUF: usize> {
    socket: SocketHandle,
}

impl<const BUF: usize> UdpReport<BUF> {
    /// Binds `socket` to `port`.
    pub fn new(
        stack: &mut Stack<'_>,
        socket: SocketHandle,
        port: u16,
    ) -> Result<Self, ServiceError> {
        stack.udp_bind(socket, port)?;
        Ok(UdpReport { socket })
    }

    /// The service's socket.
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// Receives and answers everything queued; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let mut buf = [0u8; BUF];
        let name = stack.name();
        while let Ok(d) = stack.recv_from(self.socket, &mut buf) {
            let mut line: String<96> = String::new();
            let _ = write!(line, "{} bytes from {}", d.len + d.lost, d.from);
            if d.truncated() {
                let _ = write!(line, ", truncated: {} lost", d.lost);
            }
            log::info!("{name}: udp-report {}", line);
            let _ = line.push('\n');
            if let Err(e) = stack.send_to(self.socket, line.as_bytes(), d.from) {
                log::warn!("{name}: udp-report reply to {} failed: {e}", d.from);
            }
        }
    }
}

/// UDP stats query: answers any datagram with this stack's stats table (cut to fit one
/// datagram).
pub struct StatsQuery {
    socket: SocketHandle,
}

/// Largest stats reply: fits one Ethernet frame.
const STATS_REPLY: usize = 1400;

impl StatsQuery {
    /// Binds `socket` to `port`.
    pub fn new(
        stack: &mut Stack<'_>,
        socket: SocketHandle,
        port: u16,
    ) -> Result<Self, ServiceError> {
        stack.udp_bind(socket, port)?;
        Ok(StatsQuery { socket })
    }

    /// Answers every queued query; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let mut buf = [0u8; 16];
        while let Ok(d) = stack.recv_from(self.socket, &mut buf) {
            let mut table: String<STATS_REPLY> = String::new();
            // A table longer than one datagram is cut; `write!` stops at capacity.
            let _ = write!(table, "{}", stack.stats_table());
            let _ = stack.send_to(self.socket, table.as_bytes(), d.from);
        }
    }
}

/// Broadcast beacon: every `interval`, one datagram to the subnet's broadcast address and
/// one to `255.255.255.255`, naming the host, its address and the services of its plan.
/// Sets `SO_BROADCAST` on its socket, as a Linux program must.
pub struct Beacon {
    socket: SocketHandle,
    port: u16,
    interval: Duration,
    next: Instant,
    sent: u32,
    services: ServicePlan,
}

impl Beacon {
    /// Beacons to `port` every `interval` from `socket`, announcing the ports of
    /// `services`.
    pub fn new(
        stack: &mut Stack<'_>,
        socket: SocketHandle,
        port: u16,
        interval: Duration,
        services: ServicePlan,
    ) -> Result<Self, ServiceError> {
        stack.set_option(socket, SocketOption::Broadcast(true))?;
        Ok(Beacon {
            socket,
            port,
            interval,
            next: stack.now(),
            sent: 0,
            services,
        })
    }

    /// Beacons sent so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// When the next beacon is due (for sleeping until then).
    pub fn poll_at(&self) -> Instant {
        self.next
    }

    /// Sends a beacon if one is due; call after every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        let now = stack.now();
        if now < self.next {
            return;
        }
        self.next = now + self.interval;
        let ip = stack.ipv4_addr();
        let mut line: String<160> = String::new();
        // Fits: a name, an address, nine ports and a count take well under 160 bytes.
        let _ = writeln!(
            line,
            "ringnet {} {} {} beacon #{}",
            stack.name(),
            ip,
            self.services.announcement(),
            self.sent + 1
        );
        let subnet = subnet_broadcast(stack, ip);
        for to in [Ipv4Address::BROADCAST, subnet] {
            let endpoint = IpEndpoint::new(IpAddress::Ipv4(to), self.port);
            match stack.send_to(self.socket, line.as_bytes(), endpoint) {
                Ok(_) => {}
                Err(SendError::WouldBlock) => {
                    log::warn!("{}: beacon to {to} skipped: tx ring full", stack.name())
                }
                Err(e) => log::warn!("{}: beacon to {to} failed: {e}", stack.name()),
            }
        }
        self.sent += 1;
    }
}

fn subnet_broadcast(stack: &Stack<'_>, ip: Ipv4Address) -> Ipv4Address {
    stack.ipv4_broadcast().unwrap_or(ip)
}
