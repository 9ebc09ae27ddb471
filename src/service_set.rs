//! The [`ServiceSet`]: the services of a ringnet host on their ports, started from one
//! [`ServicePlan`] and polled together. It sits above [`services`](crate::services),
//! [`transfer`](crate::transfer) and [`http`](crate::http), which it builds; the tap
//! host, the firmware and the scenario tests all run one.

use heapless::Vec;
use smoltcp::time::{Duration, Instant};

use crate::handle::SocketHandle;
use crate::http::HttpServer;
use crate::run::Service;
use crate::services::{
    Beacon, Discard, Echo, FileIn, FileOut, FileSource, Member, MinRate, ServiceError, ServicePlan,
    StatsQuery, UdpReport, BEACON_INTERVAL,
};
use crate::stack::{OpenError, Stack};
use crate::transfer::{Store, TransferServer};

/// The largest backlog a set gives one service: HTTP may track more connections than
/// the small services' [`MAX_CONNECTIONS`](crate::services::MAX_CONNECTIONS).
pub const MAX_BACKLOG: usize = 8;

/// A service's backlog, as the set hands it to the service.
pub type Backlog = Vec<SocketHandle, MAX_BACKLOG>;

/// The services of a host, each started if its [`ServicePlan`] runs it. `T` and `H` are
/// the transfer and HTTP servers (or `()` where a host is built without them); `REPORT`
/// is the report service's read buffer; `D` is the discard service, or `()` where a host
/// never runs it (the firmware: no code for it in the image).
pub struct ServiceSet<'f, T = (), H = (), const REPORT: usize = 512, D = Discard> {
    plan: ServicePlan,
    /// TCP echo.
    pub echo: Option<Echo>,
    /// TCP discard.
    pub discard: Option<D>,
    /// TCP file out.
    pub file_out: Option<FileOut<'f>>,
    /// TCP file in.
    pub file_in: Option<FileIn>,
    /// The transfer protocol.
    pub transfer: Option<T>,
    /// HTTP.
    pub http: Option<H>,
    /// UDP report.
    pub report: Option<UdpReport<REPORT>>,
    /// UDP stats query.
    pub stats: Option<StatsQuery>,
    /// UDP beacon, announcing the plan's ports.
    pub beacon: Option<Beacon>,
}

/// Error from [`ServiceSet::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// A socket for `Member` could not be created.
    Socket(Member, OpenError),
    /// `Member` could not start.
    Service(Member, ServiceError),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Socket(member, e) => write!(f, "{}: socket: {e}", member.name()),
            StartError::Service(member, e) => write!(f, "{}: {e}", member.name()),
        }
    }
}

impl core::error::Error for StartError {}

#[cfg(feature = "defmt")]
impl defmt::Format for StartError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            StartError::Socket(member, e) => {
                defmt::write!(f, "{=istr}: socket: {}", member.log_name(), e)
            }
            StartError::Service(member, e) => {
                defmt::write!(f, "{=istr}: {}", member.log_name(), e)
            }
        }
    }
}

/// How a host starts its transfer and HTTP servers: each is given the stack and the
/// backlog the set made for it, and is called only when the plan runs it.
pub struct Servers<FT, FH> {
    /// Starts the transfer server on [`TRANSFER_PORT`](crate::services::TRANSFER_PORT).
    pub transfer: FT,
    /// Starts the HTTP server on [`HTTP_PORT`](crate::services::HTTP_PORT).
    pub http: FH,
}

/// A server start for [`Servers`] where a host has none.
pub fn no_server(_: &mut Stack<'_>, _: &[SocketHandle]) -> Result<(), ServiceError> {
    Ok(())
}

/// A set's discard member: [`Discard`], or `()` for a host that leaves it out, as
/// [`no_server`] leaves out a server (a plan that runs it then starts nothing there).
pub trait DiscardMember: Sized {
    /// Starts the service on `port` with `backlog`.
    fn start(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<Self, ServiceError>;

    /// [`Discard::set_idle_timeout`].
    fn set_idle_timeout(&mut self, timeout: Duration);
}

impl DiscardMember for Discard {
    fn start(
        stack: &mut Stack<'_>,
        port: u16,
        backlog: &[SocketHandle],
    ) -> Result<Self, ServiceError> {
        Discard::new(stack, port, backlog)
    }

    fn set_idle_timeout(&mut self, timeout: Duration) {
        Discard::set_idle_timeout(self, timeout)
    }
}

impl DiscardMember for () {
    fn start(_: &mut Stack<'_>, _: u16, _: &[SocketHandle]) -> Result<Self, ServiceError> {
        Ok(())
    }

    fn set_idle_timeout(&mut self, _: Duration) {}
}

impl<'f, T, H, const REPORT: usize, D: DiscardMember> ServiceSet<'f, T, H, REPORT, D> {
    /// A set for `plan` with no member started yet ([`ServiceSet::start_in_place`]).
    pub const fn new(plan: ServicePlan) -> Self {
        ServiceSet {
            plan,
            echo: None,
            discard: None,
            file_out: None,
            file_in: None,
            transfer: None,
            http: None,
            report: None,
            stats: None,
            beacon: None,
        }
    }

    /// Starts every service `plan` runs. `socket` creates each socket the set needs (and so
    /// supplies every ring), told which member it is for; file out sends `file`.
    pub fn start<'a, FT, FH>(
        stack: &mut Stack<'a>,
        plan: ServicePlan,
        socket: &mut dyn FnMut(&mut Stack<'a>, Member) -> Result<SocketHandle, OpenError>,
        file: &'f dyn FileSource,
        servers: Servers<FT, FH>,
    ) -> Result<Self, StartError>
    where
        FT: FnOnce(&mut Stack<'a>, &[SocketHandle]) -> Result<T, ServiceError>,
        FH: FnOnce(&mut Stack<'a>, &[SocketHandle]) -> Result<H, ServiceError>,
    {
        let mut set = ServiceSet::new(plan);
        set.start_in_place(stack, socket, file, servers)?;
        Ok(set)
    }

    /// [`ServiceSet::start`] where the set lies: each member is built into its field, so a
    /// microcontroller's stack never holds a second copy of the set.
    pub fn start_in_place<'a, FT, FH>(
        &mut self,
        stack: &mut Stack<'a>,
        socket: &mut dyn FnMut(&mut Stack<'a>, Member) -> Result<SocketHandle, OpenError>,
        file: &'f dyn FileSource,
        servers: Servers<FT, FH>,
    ) -> Result<(), StartError>
    where
        FT: FnOnce(&mut Stack<'a>, &[SocketHandle]) -> Result<T, ServiceError>,
        FH: FnOnce(&mut Stack<'a>, &[SocketHandle]) -> Result<H, ServiceError>,
    {
        let plan = self.plan;
        // Every socket first, in the members' order, then every service: a host's
        // socket numbers are its backlogs in a row, its listeners after them.
        let mut backlogs = [const { Backlog::new() }; Member::ALL.len()];
        for (member, backlog) in Member::ALL.into_iter().zip(backlogs.iter_mut()) {
            for _ in 0..plan.backlog(member) {
                let handle = socket(stack, member).map_err(|e| StartError::Socket(member, e))?;
                backlog
                    .push(handle)
                    .map_err(|_| StartError::Service(member, ServiceError::TooManySockets))?;
            }
        }
        // Each member starts only if the plan runs it; the error names which failed.
        macro_rules! member {
            ($field:ident, $member:expr, |$sockets:ident| $start:expr) => {
                if plan.runs($member) {
                    let $sockets = &backlogs[$member as usize];
                    self.$field = Some($start.map_err(|e| StartError::Service($member, e))?);
                }
            };
        }
        let port = Member::port;
        member!(echo, Member::Echo, |s| Echo::new(
            stack,
            port(Member::Echo),
            s
        ));
        member!(discard, Member::Discard, |s| D::start(
            stack,
            port(Member::Discard),
            s
        ));
        member!(file_out, Member::FileOut, |s| FileOut::new(
            stack,
            port(Member::FileOut),
            s,
            file
        ));
        member!(file_in, Member::FileIn, |s| FileIn::new(
            stack,
            port(Member::FileIn),
            s
        ));
        member!(transfer, Member::Transfer, |s| (servers.transfer)(stack, s));
        member!(http, Member::Http, |s| (servers.http)(stack, s));
        member!(report, Member::Report, |s| UdpReport::new(
            stack,
            s[0],
            port(Member::Report)
        ));
        member!(stats, Member::Stats, |s| StatsQuery::new(
            stack,
            s[0],
            port(Member::Stats)
        ));
        member!(beacon, Member::Beacon, |s| Beacon::new(
            stack,
            s[0],
            port(Member::Beacon),
            BEACON_INTERVAL,
            plan
        ));
        Ok(())
    }

    /// Sets the idle timeout of echo, discard, file out and file in: a connection that
    /// moves no byte for `timeout` is reset (default
    /// [`DEFAULT_IDLE_TIMEOUT`](crate::services::DEFAULT_IDLE_TIMEOUT)). The transfer and
    /// HTTP servers keep their own (`set_idle_timeout` on each).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        if let Some(echo) = &mut self.echo {
            echo.set_idle_timeout(timeout);
        }
        if let Some(discard) = &mut self.discard {
            discard.set_idle_timeout(timeout);
        }
        if let Some(file_out) = &mut self.file_out {
            file_out.set_idle_timeout(timeout);
        }
        if let Some(file_in) = &mut self.file_in {
            file_in.set_idle_timeout(timeout);
        }
    }

    /// Sets the minimum rate of file out's and file in's data (default
    /// [`DEFAULT_MIN_RATE`](crate::services::DEFAULT_MIN_RATE)): a connection below it after
    /// the grace is reset and counted as slow. The transfer and HTTP servers keep their own
    /// (`set_min_rate` on each).
    pub fn set_min_rate(&mut self, rule: MinRate) {
        if let Some(file_out) = &mut self.file_out {
            file_out.set_min_rate(rule);
        }
        if let Some(file_in) = &mut self.file_in {
            file_in.set_min_rate(rule);
        }
    }

    /// The plan the set was started from.
    pub fn plan(&self) -> &ServicePlan {
        &self.plan
    }
}

/// Polls each member in a call of its own: every member's poll keeps buffers on the call
/// stack, and inlined into one function they would all be there at once (on a
/// microcontroller, under the main loop for good).
#[inline(never)]
fn poll_apart<'a, S: Service<'a>>(service: &mut S, stack: &mut Stack<'a>) {
    service.poll(stack)
}

/// The earliest of two deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<'a, T: Service<'a>, H: Service<'a>, const REPORT: usize, D: Service<'a>> Service<'a>
    for ServiceSet<'_, T, H, REPORT, D>
{
    /// Lets every member act on what the last poll of the stack brought, in the plan's
    /// order.
    fn poll(&mut self, stack: &mut Stack<'a>) {
        poll_apart(&mut self.echo, stack);
        poll_apart(&mut self.discard, stack);
        poll_apart(&mut self.file_out, stack);
        poll_apart(&mut self.file_in, stack);
        poll_apart(&mut self.transfer, stack);
        poll_apart(&mut self.http, stack);
        poll_apart(&mut self.report, stack);
        poll_apart(&mut self.stats, stack);
        poll_apart(&mut self.beacon, stack);
    }

    /// The earliest timer of any member: the beacon's interval, file out's wait for a
    /// size line, every service's idle timeout.
    fn poll_at(&self) -> Option<Instant> {
        [
            self.echo.poll_at(),
            self.discard.poll_at(),
            self.file_out.poll_at(),
            self.file_in.poll_at(),
            self.transfer.poll_at(),
            self.http.poll_at(),
            self.report.poll_at(),
            self.stats.poll_at(),
            self.beacon.poll_at(),
        ]
        .into_iter()
        .fold(None, earliest)
    }
}

// Each member as a [`Service`]: its own `poll`, and its timer where it has one.

impl Service<'_> for Echo {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        Echo::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        Echo::poll_at(self)
    }
}

impl Service<'_> for Discard {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        Discard::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        Discard::poll_at(self)
    }
}

impl Service<'_> for FileOut<'_> {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        FileOut::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        FileOut::poll_at(self)
    }
}

impl Service<'_> for FileIn {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        FileIn::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        FileIn::poll_at(self)
    }
}

impl<const REPORT: usize> Service<'_> for UdpReport<REPORT> {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        UdpReport::poll(self, stack)
    }
}

impl Service<'_> for StatsQuery {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        StatsQuery::poll(self, stack)
    }
}

impl Service<'_> for Beacon {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        Beacon::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        Some(Beacon::poll_at(self))
    }
}

impl<S: Store, const CONNS: usize> Service<'_> for TransferServer<S, CONNS> {
    fn poll(&mut self, stack: &mut Stack<'_>) {
        TransferServer::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        TransferServer::poll_at(self)
    }
}

impl<S: Store, const CONNS: usize, const SNAPSHOT: usize> Service<'_>
    for HttpServer<S, CONNS, SNAPSHOT>
{
    fn poll(&mut self, stack: &mut Stack<'_>) {
        HttpServer::poll(self, stack)
    }

    fn poll_at(&self) -> Option<Instant> {
        HttpServer::poll_at(self)
    }
}
