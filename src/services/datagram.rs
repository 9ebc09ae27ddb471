use heapless::String;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{ServiceError, ServicePlan, REPORT_PORT, STATS_PORT};
use crate::handle::SocketHandle;
use crate::observe::{EventKind, IntervalLog, StatsRow, Timer};
use crate::rate::TokenBucket;
use crate::socket::udp::{Datagram, SendError};
use crate::socket::SocketOption;
use crate::stack::Stack;
use crate::text::Text;
use smoltcp::time::{Duration, Instant};

/// Whether a datagram from source `port` may be answered: not when the port is one that
/// answers datagrams itself, a well-known port (below 1024: echo, chargen, DNS, NTP; 0 asks
/// for no reply) or a ringnet UDP service's. Two such services answering each other
/// never stop: one spoofed datagram from one host's stats port to another's report
/// port kept both busy for ever (CERT CA-1996-01, the echo and chargen loop).
#[inline(never)]
fn answerable(port: u16) -> bool {
    port >= 1024 && port != REPORT_PORT && port != STATS_PORT
}

/// Whether a stats query `d` to `stack` may be answered: from a port `answerable`, and
/// sent to this host's own address. A query to a broadcast or multicast address is not
/// answered, as Linux ignores an ICMP echo to one (`icmp_echo_ignore_broadcasts`): one
/// spoofed 1-byte query to the subnet's broadcast made every host send its whole table,
/// several 1400-byte datagrams, to the victim.
fn query_answerable(stack: &Stack<'_>, d: &Datagram) -> bool {
    let to_us =
        d.to.is_none_or(|to| to == IpAddress::Ipv4(stack.ipv4_addr()));
    to_us && answerable(d.from.port)
}

/// UDP receive-and-report: takes each datagram with a buffer of `BUF` bytes (so larger
/// ones are visibly truncated), logs it, and answers the sender with one line:
/// `"<n> bytes from <addr>[, truncated: <lost> lost]\n"`; a sender on a port that answers
/// datagrams itself is not answered. A datagram to a broadcast address is answered (the
/// service shows what reached the host): one line, under 64 bytes.
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
            let mut text = Text::new(&mut line);
            text.num((d.len + d.lost) as u64)
                .str(" bytes from ")
                .endpoint(d.from);
            if d.truncated() {
                text.str(", truncated: ").num(d.lost as u64).str(" lost");
            }
            net_info!("{}: udp-report {}", name, line);
            // Logged, counted, not answered.
            if !answerable(d.from.port) {
                continue;
            }
            let _ = line.push('\n');
            if let Err(e) = stack.send_to(self.socket, line.as_bytes(), d.from) {
                net_warn!("{}: udp-report reply to {} failed: {}", name, d.from, e);
            }
        }
    }
}

/// UDP stats query: answers any datagram (from a port that does not answer datagrams
/// itself, to this host's own address: a query to a broadcast or multicast address is
/// counted in [`StatsQuery::unanswered`], not answered) with this stack's stats table,
/// in as many datagrams as it takes, each of whole lines: the first starts with the stack's line and
/// the column header, and the last ends with `end of table: N rows`. A client that reads
/// one datagram still gets whole rows. The datagrams go out as the tx ring has room; a
/// query that arrives meanwhile waits in the rx ring for the answer before it.
///
/// A 1-byte query gets the whole table, several 1400-byte datagrams: an amplifier for a
/// flood of queries whose source is a victim's address, as DNS, NTP's `monlist` and
/// memcached's UDP were. So the answers of the whole host go through one token bucket of
/// bytes, as Linux bounds its ICMP errors with `icmp_msgs_per_sec` ([`TokenBucket`]):
/// a query is answered, whole, while the bucket has credit left, and every datagram sent
/// is charged to it ([`STATS_BURST`] at once, [`STATS_PER_SECOND`] after that, by
/// default; [`StatsQuery::set_rate_limit`]). A query that finds no credit is not answered,
/// counted in the socket's `limit` column ([`Timer::RateLimited`]) and in
/// [`StatsQuery::rate_limited`], and logged at most once a second.
pub struct StatsQuery {
    socket: SocketHandle,
    answering: Option<Answer>,
    unanswered: u32,
    bucket: TokenBucket,
    /// Queries not answered for want of credit, and how many of them were logged when.
    limited: u32,
    limited_log: IntervalLog,
}

/// Bytes of stats answers the host sends at once ([`StatsQuery`]): 23 tables of 14 rows
/// (2 827 B, as in `tests/hostile.rs`).
pub const STATS_BURST: u32 = 64 * 1024;

/// Bytes of stats answers the host sends a second after its burst ([`StatsQuery`]), one
/// every 16 µs: `top` asking every 100 ms is answered in full while a table is at most
/// 6 250 B (14 rows take 2 827 B); a flood of queries,
/// whatever its rate and source, gets no more than this out of the host (about a tenth
/// of what Linux's ICMP bucket lets out: 1000 errors a second of up to 576 bytes).
pub const STATS_PER_SECOND: u32 = 62_500;

/// At most one line a second says how many queries the rate limit left unanswered.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(1);

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
            unanswered: 0,
            bucket: TokenBucket::new(STATS_BURST, STATS_PER_SECOND),
            limited: 0,
            limited_log: IntervalLog::NEW,
        })
    }

    /// Queries taken and not answered: from a port that answers datagrams, to a
    /// broadcast or multicast address, or over the rate limit.
    pub fn unanswered(&self) -> u32 {
        self.unanswered
    }

    /// Queries not answered because the rate limit had no credit left (among
    /// [`StatsQuery::unanswered`]).
    pub fn rate_limited(&self) -> u32 {
        self.limited
    }

    /// Bounds the bytes of answers: `burst` at once, refilled at `per_second` (the
    /// bucket starts full).
    pub fn set_rate_limit(&mut self, burst: u32, per_second: u32) {
        self.bucket = TokenBucket::new(burst, per_second);
    }

    /// Counts a query the bucket had no credit for, and logs the count at most once per
    /// [`LIMIT_LOG_INTERVAL`].
    #[inline(never)]
    fn limit(&mut self, stack: &mut Stack<'_>, from: IpEndpoint) {
        self.unanswered += 1;
        self.limited += 1;
        stack.record(self.socket, EventKind::Timer(Timer::RateLimited));
        let Some(new) = self
            .limited_log
            .due(self.limited, stack.now(), LIMIT_LOG_INTERVAL)
        else {
            return;
        };
        net_warn!(
            "{}: stats query: {} not answered, the latest from {}: answers over the rate limit ({} in all; at most one line a second)",
            stack.name(),
            new,
            from,
            self.limited
        );
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
                // Taken and counted, not answered (nor logged: the stats query logs
                // none of its queries).
                if !query_answerable(stack, &query) {
                    self.unanswered += 1;
                    continue;
                }
                if !self.bucket.allows(stack.now()) {
                    self.limit(stack, query.from);
                    continue;
                }
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
                Ok(_) => self.bucket.spend(datagram.len() as u32),
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
    // Each piece is written whole or not at all: a line is never cut. Not inlined into its
    // three callers.
    #[inline(never)]
    fn put(out: &mut String<STATS_REPLY>, line: &dyn Fn(&mut Text<'_>)) -> bool {
        let mut piece: String<256> = String::new();
        let mut text = Text::new(&mut piece);
        line(&mut text);
        if text.str("\n").result().is_err() || out.push_str(&piece).is_err() {
            return false;
        }
        true
    }
    if first == 0 {
        let (frames_in, frames_out) = stack.frame_counts();
        Text::new(out)
            .str(stack.name())
            .str(": ")
            .ipv4(stack.ipv4_addr())
            .str(" (")
            .num(frames_in)
            .str(" frames in, ")
            .num(frames_out)
            .str(" out)\n");
        let _ = put(out, &|text| {
            text.str(StatsRow::HEADER);
        });
    }
    let mut rows = 0;
    let mut total = first;
    for row in stack.stats_rows().skip(first) {
        if !put(out, &|text| row.write_text(text)) {
            return (rows, false);
        }
        rows += 1;
        total += 1;
    }
    // The last line.
    let end = |text: &mut Text<'_>| {
        text.str("end of table: ").num(total as u64).str(" rows");
    };
    (rows, put(out, &end))
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
        let mut text = Text::new(&mut line);
        text.str("ringnet ")
            .str(stack.name())
            .str(" ")
            .ipv4(ip)
            .str(" ");
        self.services.announcement().write_text(&mut text);
        text.str(" beacon #").num((self.sent + 1).into()).str("\n");
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
