//! Every buffer of the firmware, sized in one place. The totals are logged at boot.

// RAM: the statics take about 46 KiB of the 64; the rest is the stack, which must also
// hold the socket table (about 11 KiB) while it is built at boot.

/// Sockets in the table: one per backlog socket, one per listener, one per UDP service.
pub const SOCKETS: usize = 16;

/// TCP echo (port 7): backlog sockets and their rings.
pub const ECHO_BACKLOG: usize = 1;
pub const ECHO_RX: usize = 1024;
pub const ECHO_TX: usize = 1024;

/// TCP file out (7001): sends data, so a large transmit ring.
pub const FILE_OUT_BACKLOG: usize = 1;
pub const FILE_OUT_RX: usize = 256;
pub const FILE_OUT_TX: usize = 4096;

/// TCP file in (7002): receives data, so a large receive ring.
pub const FILE_IN_BACKLOG: usize = 1;
pub const FILE_IN_RX: usize = 4096;
pub const FILE_IN_TX: usize = 256;

/// TCP transfer protocol (7003); uploads keep only their digests on the device.
pub const TRANSFER_BACKLOG: usize = 1;
pub const TRANSFER_RX: usize = 4096;
pub const TRANSFER_TX: usize = 1024;

/// UDP report (9000): its rings, and the receive buffer, smaller than a full datagram so
/// that truncation shows.
pub const REPORT_SLOTS: usize = 4;
pub const REPORT_RX: usize = 2048;
pub const REPORT_TX: usize = 512;
pub const REPORT_BUFFER: usize = 256;

/// UDP stats query (9001).
pub const STATS_SLOTS: usize = 2;
pub const STATS_RX: usize = 64;
pub const STATS_TX: usize = 1536;

/// UDP beacon (9999).
pub const BEACON_SLOTS: usize = 2;
pub const BEACON_RX: usize = 64;
pub const BEACON_TX: usize = 512;

/// Frames of the Ethernet driver: one being received, one being sent.
pub const FRAME: usize = 1536;

/// HTTP (80): connections (one answers 503 when the others are busy) and their rings.
pub const HTTP_BACKLOG: usize = 3;
pub const HTTP_RX: usize = 512;
pub const HTTP_TX: usize = 2048;
/// Room for the generated `/` and `/stats` bodies.
pub const HTTP_SNAPSHOT: usize = 2048;
/// Uploads kept in RAM: how many files, and the largest.
pub const UPLOAD_FILES: usize = 1;
pub const UPLOAD_MAX: usize = 2048;
