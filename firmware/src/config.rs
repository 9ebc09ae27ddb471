//! Every static buffer of the firmware, sized here and nowhere else. The boot log prints
//! them, and `scripts/bench-firmware.sh` checks what they add up to.
//!
//! The LM3S6965 has 64 KiB of RAM. The statics must leave room for the call stack, which
//! peaks at about 7 KiB (a transfer's or an HTTP request's work on top of the main loop);
//! the boot log measures the stack's high water, the loop logs each new one and warns when
//! less than 2 KiB is left.
//!
//! The bulk rings are the window each direction works with, and under QEMU the window sets
//! the pace: file out at 4/6/8 KiB of tx ring moved about 25/32/33 MB/s, file in at
//! 4/8/11/16 KiB of rx ring about 34/42/44/51 MB/s. So the two bulk rings get what the
//! other services and the stack leave.
//!
//! On the SmartFusion2 (feature `sf2`) every ring lives in its 64 MiB of DDR, so the two
//! bulk rings are as large as a window without scaling goes (64 KiB), and HTTP's tx rings
//! grow too; the eSRAM keeps the socket table, the servers and the stack.

use ringnet::services::ServicePlan;

/// TCP echo (port 7): backlog sockets and each one's rings.
pub const ECHO_BACKLOG: usize = 1;
pub const ECHO_RX: usize = 1024;
pub const ECHO_TX: usize = 1024;

/// TCP file out (7001) mostly sends: a large transmit ring, so that many segments are in
/// flight before an acknowledgement must come back.
pub const FILE_OUT_BACKLOG: usize = 1;
pub const FILE_OUT_RX: usize = 256;
#[cfg(feature = "sf2")]
pub const FILE_OUT_TX: usize = 64 * 1024;
#[cfg(all(not(feature = "sf2"), not(feature = "http")))]
pub const FILE_OUT_TX: usize = 16 * 1024;
#[cfg(all(not(feature = "sf2"), feature = "http"))]
pub const FILE_OUT_TX: usize = 6 * 1024;

/// TCP file in (7002) mostly receives: a large receive ring, which is the window it
/// advertises.
pub const FILE_IN_BACKLOG: usize = 1;
#[cfg(feature = "sf2")]
pub const FILE_IN_RX: usize = 64 * 1024;
#[cfg(all(not(feature = "sf2"), not(feature = "http")))]
pub const FILE_IN_RX: usize = 16 * 1024;
// 9 KiB, not 11: the socket table's lifecycle timers (half-open and orphan instants,
// 48 B a slot) took 720 B, the per-reason discard counters and the transfer token 816 B,
// the orphans' retransmission bound 240 B (16 B a slot), the last acknowledgment number
// sent, for the RST check, 120 B (8 B a slot), and the stack must keep 2 KiB clear of the
// statics (its high water 8 408 B in the firmware test with the RST check, 8 064 B before).
#[cfg(all(not(feature = "sf2"), feature = "http"))]
pub const FILE_IN_RX: usize = 9 * 1024;
pub const FILE_IN_TX: usize = 256;

/// UDP report (9000): its rings, and its read buffer, smaller than the largest datagram
/// so that truncation shows. The rx ring holds a 600-byte datagram and small ones
/// behind it, the tx ring four answers of under 64 bytes (1280 B of the rx ring and 256 B
/// of the tx ring went to the ARP queue and to the stack, which holds the neighbour table
/// and the queue's state in `main`'s frame).
pub const REPORT_SLOTS: usize = 4;
#[cfg(not(feature = "sf2"))]
pub const REPORT_RX: usize = 768;
#[cfg(not(feature = "sf2"))]
pub const REPORT_TX: usize = 256;
/// The SmartFusion2's rings lie in its DDR: its report keeps 2 KiB and 512 B.
#[cfg(feature = "sf2")]
pub const REPORT_RX: usize = 2048;
#[cfg(feature = "sf2")]
pub const REPORT_TX: usize = 512;
pub const REPORT_BUFFER: usize = 256;

/// UDP stats query (9001): the reply is up to 1400 bytes.
pub const STATS_SLOTS: usize = 2;
pub const STATS_RX: usize = 64;
pub const STATS_TX: usize = 1536;

/// UDP beacon (9999): two datagrams a second.
pub const BEACON_SLOTS: usize = 2;
pub const BEACON_RX: usize = 64;
pub const BEACON_TX: usize = 512;

/// The stack's ARP queue (`Stack::set_arp_queue`): datagrams whose next hop has not been
/// heard from wait here, not in their socket's ring. The Stellaris's holds the report's
/// answers (under 100 bytes); a stats datagram (up to 1400 bytes) to such a host is
/// dropped and counted, and the host answered once it has been heard from.
#[cfg(not(feature = "sf2"))]
pub const ARP_QUEUE_SLOTS: usize = 2;
#[cfg(not(feature = "sf2"))]
pub const ARP_QUEUE_BYTES: usize = 512;
/// The SmartFusion2 has SRAM to spare (its rings lie in the DDR): a queue that holds a
/// whole stats answer, so that its stats query too answers through spoofing.
#[cfg(feature = "sf2")]
pub const ARP_QUEUE_SLOTS: usize = 4;
#[cfg(feature = "sf2")]
pub const ARP_QUEUE_BYTES: usize = 4096;

/// The largest frame: the MTU, Ethernet header included.
pub const FRAME: usize = 1514;
/// The SmartFusion2 MAC's receive ring: descriptors of a frame each. More than a 64 KiB
/// window's worth of full frames (45), so that a TCP transfer alone never runs it out;
/// fewer than 256, the MAC's frame count.
#[cfg(feature = "sf2")]
pub const EMAC_RX_DESCRIPTORS: usize = 64;
/// The SmartFusion2 MAC's transmit ring.
#[cfg(feature = "sf2")]
pub const EMAC_TX_DESCRIPTORS: usize = 32;
/// Each of the Stellaris driver's two frame buffers: a frame, plus the CRC word and the partial
/// word the FIFO delivers past its end.
#[cfg(not(feature = "sf2"))]
pub const FRAME_BUFFER: usize = (FRAME + 7).next_multiple_of(4);

/// TCP transfer protocol (7003, feature `transfer`): uploads keep only their digests.
pub const TRANSFER_BACKLOG: usize = 1;
#[cfg(feature = "transfer")]
pub const TRANSFER_RX: usize = 2048;
#[cfg(feature = "transfer")]
pub const TRANSFER_TX: usize = 1024;
#[cfg(feature = "transfer")]
pub const TRANSFER_DIGESTS: usize = 4;

/// HTTP (80, feature `http`): connections (one answers 503 when the others are busy).
pub const HTTP_BACKLOG: usize = 3;
#[cfg(feature = "http")]
pub const HTTP_RX: usize = 512;
#[cfg(all(not(feature = "sf2"), feature = "http"))]
pub const HTTP_TX: usize = 1024;
#[cfg(all(feature = "sf2", feature = "http"))]
pub const HTTP_TX: usize = 16 * 1024;
/// Room for the generated `/` and `/stats` bodies.
#[cfg(feature = "http")]
pub const HTTP_SNAPSHOT: usize = 2048;
/// Uploads kept in RAM: how many files, and the largest.
#[cfg(feature = "http")]
pub const UPLOAD_FILES: usize = 1;
#[cfg(feature = "http")]
pub const UPLOAD_MAX: usize = 2048;

/// The services this image runs: the tap host's, less discard, with one connection
/// each for the small ones; transfer and HTTP only when their features are on.
pub const PLAN: ServicePlan = ServicePlan {
    echo: ECHO_BACKLOG,
    discard: 0,
    file_out: FILE_OUT_BACKLOG,
    file_in: FILE_IN_BACKLOG,
    transfer: if cfg!(feature = "transfer") {
        TRANSFER_BACKLOG
    } else {
        0
    },
    http: if cfg!(feature = "http") {
        HTTP_BACKLOG
    } else {
        0
    },
    report: true,
    stats: true,
    beacon: true,
};

/// Slots in the socket table: what [`PLAN`] needs, each backlog, listener and datagram
/// socket. Each slot costs about 530 bytes of RAM and as much flash (its empty state is
/// not all zeros, so it is an image in `.data`).
pub const SOCKETS: usize = PLAN.sockets();

/// Transition lines each socket may log per second before the rest are only counted
/// (Linux's `net_ratelimit()` allows 10 per 5 s). Every line costs the UART about 80
/// register writes, and a bulk transfer through a ring of a few KiB changes level every few
/// kilobytes: logged in full, the UART, not the network, would set the transfer's pace.
pub const LOG_BURST: u16 = 10;
