//! The [`ServiceSet`]: every service of a ringnet host on its port, started and polled
//! together. It sits above [`services`](crate::services), [`transfer`](crate::transfer)
//! and [`http`](crate::http), which it builds.

use crate::services::*;

/// The sockets a [`ServiceSet`] runs on; the caller creates them, and so supplies every ring.
pub struct ServiceSockets<'h> {
    /// Fresh stream sockets for echo's backlog.
    pub echo: &'h [crate::SocketHandle],
    /// Fresh stream sockets for discard's backlog.
    pub discard: &'h [crate::SocketHandle],
    /// Fresh stream sockets for file out's backlog.
    pub file_out: &'h [crate::SocketHandle],
    /// Fresh stream sockets for file in's backlog.
    pub file_in: &'h [crate::SocketHandle],
    /// Fresh stream sockets for the transfer protocol's backlog.
    pub transfer: &'h [crate::SocketHandle],
    /// Fresh stream sockets for HTTP's backlog.
    pub http: &'h [crate::SocketHandle],
    /// An unbound datagram socket for the report service.
    pub report: crate::SocketHandle,
    /// An unbound datagram socket for the stats query.
    pub stats: crate::SocketHandle,
    /// A datagram socket for the beacon.
    pub beacon: crate::SocketHandle,
}

/// Every service of a ringnet host on its port, started and polled together: what the
/// tap host and the firmware both run. `REPORT` is the report service's read buffer.
pub struct ServiceSet<
    'f,
    T: crate::transfer::Store,
    H: crate::transfer::Store,
    const HTTP_CONNS: usize,
    const SNAPSHOT: usize,
    const REPORT: usize,
> {
    /// TCP echo.
    pub echo: Echo,
    /// TCP discard.
    pub discard: Discard,
    /// TCP file out.
    pub file_out: FileOut<'f>,
    /// TCP file in.
    pub file_in: FileIn,
    /// The transfer protocol.
    pub transfer: crate::transfer::TransferServer<T>,
    /// HTTP.
    pub http: crate::http::HttpServer<H, HTTP_CONNS, SNAPSHOT>,
    /// UDP report.
    pub report: UdpReport<REPORT>,
    /// UDP stats query.
    pub stats: StatsQuery,
    /// UDP beacon.
    pub beacon: Beacon,
}

impl<'f, T, H, const HTTP_CONNS: usize, const SNAPSHOT: usize, const REPORT: usize>
    ServiceSet<'f, T, H, HTTP_CONNS, SNAPSHOT, REPORT>
where
    T: crate::transfer::Store,
    H: crate::transfer::Store,
{
    /// Starts every service on its port: file out sends `file`, the transfer protocol
    /// keeps its files in `transfer_store`, HTTP serves `http_store`.
    pub fn start(
        stack: &mut crate::Stack<'_>,
        sockets: ServiceSockets<'_>,
        file: &'f dyn FileSource,
        transfer_store: T,
        http_store: H,
    ) -> Result<Self, ServiceError> {
        Ok(ServiceSet {
            echo: Echo::new(stack, ECHO_PORT, sockets.echo)?,
            discard: Discard::new(stack, DISCARD_PORT, sockets.discard)?,
            file_out: FileOut::new(stack, FILE_OUT_PORT, sockets.file_out, file)?,
            file_in: FileIn::new(stack, FILE_IN_PORT, sockets.file_in)?,
            transfer: crate::transfer::TransferServer::new(
                stack,
                TRANSFER_PORT,
                sockets.transfer,
                transfer_store,
            )?,
            http: crate::http::HttpServer::new(stack, HTTP_PORT, sockets.http, http_store)?,
            report: UdpReport::new(stack, sockets.report, REPORT_PORT)?,
            stats: StatsQuery::new(stack, sockets.stats, STATS_PORT)?,
            beacon: Beacon::new(stack, sockets.beacon, BEACON_PORT, BEACON_INTERVAL)?,
        })
    }

    /// Lets every service act on what the last poll of the stack brought.
    pub fn poll(&mut self, stack: &mut crate::Stack<'_>) {
        self.echo.poll(stack);
        self.discard.poll(stack);
        self.file_out.poll(stack);
        self.file_in.poll(stack);
        self.transfer.poll(stack);
        self.http.poll(stack);
        self.report.poll(stack);
        self.stats.poll(stack);
        self.beacon.poll(stack);
    }

    /// When a service next needs a poll though nothing arrives (the beacon's timer).
    pub fn poll_at(&self) -> crate::Instant {
        self.beacon.poll_at()
    }
}
