use core::fmt::Write as _;

use heapless::String;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{ServiceError, ServicePlan};
use crate::handle::SocketHandle;
use crate::observe::StatsRow;
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
            net_info!("{}: udp-report {}", name, line);
            let _ = line.push('\n');
            if let Err(e) = stack.send_to(self.socket, line.as_bytes(), d.from) {
                net_warn!("{}: udp-report reply to {} failed: {}", name, d.from, e);
            }
        }
    }
}

/// UDP stats query: answers any datagram with this stack's stats table, in as many
/// datagrams as it takes, each of whole lines: the first starts with the stack's line and
/// the column header, and the last ends with `end of table: N rows`. A client that reads
/// one datagram still gets whole rows. The datagrams go out as the tx ring has room; a
/// query that arrives meanwhile waits in the rx ring for the answer before it.
pub struct StatsQuery {
    socket: SocketHandle,
    answering: Option<Answer>,
}

/// A stats answer under way.
struct Answer {
    to: IpEndpoint,
    /// Rows sent so far; the next datagram starts at this row.
    rows_sent: usize,
}

/// Largest stats datagram: fits one Ethernet frame.
const STATS_REPLY: usize = 1400;

impl StatsQuery {
    /// Binds `socket` to `port`.
    pub fn new(
        stack: &mut Stack<'_>,
        socket: SocketHandle,
        port: u16,
    ) -> Result<Self, ServiceError> {
        stack.udp_bind(socket, port)?;
        Ok(StatsQuery {
            socket,
            answering: None,
        })
    }

    /// Answers queued queries, a datagram at a time as the tx ring takes them; call after
    /// every poll of the stack.
    pub fn poll(&mut self, stack: &mut Stack<'_>) {
        loop {
            if self.answering.is_none() {
                let mut buf = [0u8; 16];
                let Ok(query) = stack.recv_from(self.socket, &mut buf) else {
                    return;
                };
                self.answering = Some(Answer {
                    to: query.from,
                    rows_sent: 0,
                });
            }
            let Some(answer) = &mut self.answering else {
                return;
            };
            let mut datagram: String<STATS_REPLY> = String::new();
            let (rows, done) = fill_datagram(stack, answer.rows_sent, &mut datagram);
            match stack.send_to(self.socket, datagram.as_bytes(), answer.to) {
                Ok(_) => {}
                // Room comes as earlier datagrams leave: the rest goes in a later poll.
                Err(SendError::WouldBlock) => return,
                Err(e) => {
                    net_warn!("{}: stats answer to {}: {}", stack.name(), answer.to, e);
                    self.answering = None;
                    continue;
                }
            }
            answer.rows_sent += rows;
            if done {
                self.answering = None;
            }
        }
    }
}

/// Writes the next datagram of a stats answer: whole lines from row `first` on, with the
/// stack's line and the header first and the end line last. Returns how many rows it
/// holds and whether it ends the answer.
fn fill_datagram(stack: &Stack<'_>, first: usize, out: &mut String<STATS_REPLY>) -> (usize, bool) {
    // Each piece is written whole or not at all: a line is never cut.
    fn put(out: &mut String<STATS_REPLY>, line: &dyn core::fmt::Display) -> bool {
        let mut piece: String<256> = String::new();
        if writeln!(piece, "{line}").is_err() || out.push_str(&piece).is_err() {
            return false;
        }
        true
    }
    if first == 0 {
        let (frames_in, frames_out) = stack.frame_counts();
        let _ = writeln!(
            out,
            "{}: {} ({frames_in} frames in, {frames_out} out)",
            stack.name(),
            stack.ipv4_addr()
        );
        let _ = put(out, &StatsRow::HEADER);
    }
    let mut rows = 0;
    let mut total = first;
    for row in stack.stats_rows().skip(first) {
        if !put(out, &row) {
            return (rows, false);
        }
        rows += 1;
        total += 1;
    }
    let end = EndOfTable(total);
    (rows, put(out, &end))
}

/// The last line of a stats answer.
struct EndOfTable(usize);

impl core::fmt::Display for EndOfTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "end of table: {} rows", self.0)
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
                    net_warn!("{}: beacon to {} skipped: tx ring full", stack.name(), to)
                }
                Err(e) => net_warn!("{}: beacon to {} failed: {}", stack.name(), to, e),
            }
        }
        self.sent += 1;
    }
}

fn subnet_broadcast(stack: &Stack<'_>, ip: Ipv4Address) -> Ipv4Address {
    stack.ipv4_broadcast().unwrap_or(ip)
}
