//! ringnet firmware for a Cortex-M3 under QEMU (the LM3S6965 with the Stellaris Ethernet,
//! or with feature `sf2` the SmartFusion2 with the MSS Ethernet MAC; see `board`): the
//! core's sockets and services, every buffer static, every buffer transition logged on
//! the UART (defmt frames by default, decoded on the host by `defmt-print`).
#![no_std]
#![no_main]

#[macro_use]
mod logging;
mod board;
mod clock;
mod config;
mod div;
#[cfg(feature = "sf2")]
mod emac;
#[cfg(not(feature = "sf2"))]
mod enet;
mod mem;
mod mem_check;
mod nic_limit;
mod stack_usage;
#[cfg(feature = "http")]
mod store;
#[cfg(feature = "text-log")]
mod uart;

use core::sync::atomic::Ordering;

use cortex_m_rt::{entry, exception};
use ringnet::observe::LogLimit;
use ringnet::service_set::{Servers, ServiceSet};
use ringnet::services::{Member, StaticFile};
use ringnet::smoltcp::socket::udp::PacketMetadata;
use ringnet::smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use ringnet::socket::udp::UdpBuffer;
use ringnet::stack::OpenError;
use ringnet::{run, ArpQueueResources, Duration, SocketHandle, Stack, StackConfig, StackResources};
use static_cell::{ConstStaticCell, StaticCell};

use config::*;

/// The file TCP 7001 sends, built into the image.
static WELCOME: &[u8] = include_bytes!("../assets/welcome.txt");

/// The address under QEMU's user-mode networking (and on the test tap, whose Linux side
/// is 10.0.2.2 too).
const ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// The log level chosen at build time (`DEFMT_LOG`, or `RINGNET_LOG` for the text log;
/// see build.rs).
const LOG_LEVEL: &str = env!("RINGNET_LOG_LEVEL");

/// A socket's two rings (a datagram socket's payload rings too), each starting on a word
/// boundary: a bulk transfer moves whole segments (1460 bytes, a multiple of four) between
/// ring and frame, and the frame's payload is word-aligned (the drivers place it so), so
/// those copies go a word at a time.
#[repr(C, align(4))]
struct RingPair<const RX: usize, const TX: usize> {
    rx: [u8; RX],
    tx: [u8; TX],
}

impl<const RX: usize, const TX: usize> RingPair<RX, TX> {
    const fn new() -> Self {
        RingPair {
            rx: [0; RX],
            tx: [0; TX],
        }
    }
}

/// Every ring, and the memory the NIC works in. All zeros when empty, so they cost no
/// flash (`.bss`). The NIC's memory comes first, so that it lies at the start of the
/// statics, where on the Stellaris it keeps clear of the one SRAM kilobyte that shares
/// QEMU's TLB entry with the controller's registers (see `enet`).
#[repr(C)]
struct Rings {
    nic: board::NicMemory,
    services: ServiceRings,
}

/// The services' rings, one pair per socket.
struct ServiceRings {
    echo: [RingPair<ECHO_RX, ECHO_TX>; ECHO_BACKLOG],
    file_out: [RingPair<FILE_OUT_RX, FILE_OUT_TX>; FILE_OUT_BACKLOG],
    file_in: [RingPair<FILE_IN_RX, FILE_IN_TX>; FILE_IN_BACKLOG],
    #[cfg(feature = "transfer")]
    transfer: [RingPair<TRANSFER_RX, TRANSFER_TX>; TRANSFER_BACKLOG],
    #[cfg(feature = "http")]
    http: [RingPair<HTTP_RX, HTTP_TX>; HTTP_BACKLOG],
    report: RingPair<REPORT_RX, REPORT_TX>,
    stats: RingPair<STATS_RX, STATS_TX>,
    beacon: RingPair<BEACON_RX, BEACON_TX>,
}

#[cfg_attr(feature = "sf2", link_section = ".ddr.rings")]
static RINGS: ConstStaticCell<Rings> = ConstStaticCell::new(Rings {
    nic: board::NicMemory::new(),
    services: ServiceRings {
        echo: [const { RingPair::new() }; ECHO_BACKLOG],
        file_out: [const { RingPair::new() }; FILE_OUT_BACKLOG],
        file_in: [const { RingPair::new() }; FILE_IN_BACKLOG],
        #[cfg(feature = "transfer")]
        transfer: [const { RingPair::new() }; TRANSFER_BACKLOG],
        #[cfg(feature = "http")]
        http: [const { RingPair::new() }; HTTP_BACKLOG],
        report: RingPair::new(),
        stats: RingPair::new(),
        beacon: RingPair::new(),
    },
});

/// The socket table. Its empty state is not all zeros, so as a constant image it would
/// take its size in flash (`.data`); it is built at boot where it lies instead.
static RESOURCES: StaticCell<StackResources<'static, SOCKETS>> = StaticCell::new();

/// The ARP queue, built at boot where it lies, as the socket table.
static ARP_QUEUE: StaticCell<ArpQueueResources<'static, ARP_QUEUE_SLOTS, ARP_QUEUE_BYTES>> =
    StaticCell::new();

/// The datagram sockets' slot tables (one entry per queued datagram), the rx and the tx
/// table of each datagram service in a row: report, stats, beacon.
type SlotTables = [PacketMetadata; 2 * (REPORT_SLOTS + STATS_SLOTS + BEACON_SLOTS)];

/// Built at boot where they lie: an empty slot is not all zeros, so as a constant image
/// the tables would take their size in flash (`.data`, 260 B), where the loop that
/// fills them takes a few instructions.
static SLOT_TABLES: StaticCell<SlotTables> = StaticCell::new();

#[cfg(feature = "http")]
type Http = ringnet::http::HttpServer<store::FirmwareStore, HTTP_BACKLOG, HTTP_SNAPSHOT>;
#[cfg(feature = "http")]
static HTTP: StaticCell<Http> = StaticCell::new();

#[cfg(feature = "transfer")]
type Transfer = ringnet::transfer::TransferServer<
    ringnet::transfer::DigestSink<TRANSFER_DIGESTS, TRANSFER_BACKLOG>,
    TRANSFER_BACKLOG,
>;
#[cfg(feature = "transfer")]
static TRANSFER: StaticCell<Transfer> = StaticCell::new();

static SOURCE: StaticFile<'static> = StaticFile(WELCOME);

/// A set-up step failed: only a mistake in config.rs can cause this, so say what and
/// stop, ending QEMU with a failure status.
fn setup_failed<E: logging::Reason + ?Sized>(what: logging::Text, error: &E) -> ! {
    fw_error!("setting up {}: {}", what, error);
    exit_failure()
}

/// A stream socket on the next of a service's rings; a service with more sockets than
/// rings is a mistake in config.rs.
fn stream<const RX: usize, const TX: usize>(
    stack: &mut Stack<'static>,
    ring: Option<&'static mut RingPair<RX, TX>>,
) -> Result<SocketHandle, OpenError> {
    let ring = ring.unwrap_or_else(|| {
        setup_failed(
            fw_text!("a stream socket"),
            &fw_text!("no ring left for it"),
        )
    });
    stack.tcp_socket(&mut ring.rx, &mut ring.tx)
}

/// A datagram socket on `rings`, with `slots` for the rx ring (the first half) and the tx
/// ring (once per service).
fn datagram<const RX: usize, const TX: usize>(
    stack: &mut Stack<'static>,
    rings: Option<(&'static mut RingPair<RX, TX>, &'static mut [PacketMetadata])>,
) -> Result<SocketHandle, OpenError> {
    let (rings, slots) = rings.unwrap_or_else(|| {
        setup_failed(
            fw_text!("a datagram socket"),
            &fw_text!("its rings are taken"),
        )
    });
    let (rx_slots, tx_slots) = slots.split_at_mut(slots.len() / 2);
    let rx = UdpBuffer {
        slots: rx_slots,
        payload: &mut rings.rx,
    };
    let tx = UdpBuffer {
        slots: tx_slots,
        payload: &mut rings.tx,
    };
    stack.udp_socket(rx, tx)
}

/// The transfer server, built into its static cell. Not inlined: the server is a few
/// kilobytes, and built inside `main` it would stay on the stack under the main loop.
#[cfg(feature = "transfer")]
#[inline(never)]
fn start_transfer(
    stack: &mut Stack<'static>,
    backlog: &[SocketHandle],
) -> Result<&'static mut Transfer, ringnet::services::ServiceError> {
    // Built where it lies: a `?` here would keep the whole server on the stack in a
    // `Result` before the copy into the cell.
    let server = Transfer::new(
        stack,
        Member::Transfer.port(),
        backlog,
        ringnet::transfer::DigestSink::new(),
    )
    .unwrap_or_else(|e| setup_failed(fw_text!("transfer"), &e));
    let server = TRANSFER.init(server);
    // Puts need the token too when the image was built with RINGNET_TOKEN.
    if server.set_token(option_env!("RINGNET_TOKEN")).is_err() {
        setup_failed(
            fw_text!("transfer"),
            &fw_text!("RINGNET_TOKEN is not 1 to 64 bytes of visible ASCII"),
        );
    }
    Ok(server)
}

/// The HTTP server, built into its static cell (not inlined, as [`start_transfer`]).
#[cfg(feature = "http")]
#[inline(never)]
fn start_http(
    stack: &mut Stack<'static>,
    backlog: &[SocketHandle],
) -> Result<&'static mut Http, ringnet::services::ServiceError> {
    // Built where it lies, as the transfer server.
    let server = Http::new(
        stack,
        Member::Http.port(),
        backlog,
        store::FirmwareStore::new(WELCOME),
    )
    .unwrap_or_else(|e| setup_failed(fw_text!("http"), &e));
    let server = HTTP.init(server);
    // Writes need `Authorization: Bearer …` when the image was built with RINGNET_TOKEN.
    if server.set_token(option_env!("RINGNET_TOKEN")).is_err() {
        setup_failed(
            fw_text!("http"),
            &fw_text!("RINGNET_TOKEN is longer than 64 bytes"),
        );
    }
    Ok(server)
}

#[cfg(feature = "transfer")]
type TransferMember = &'static mut Transfer;
#[cfg(not(feature = "transfer"))]
type TransferMember = ();
#[cfg(feature = "http")]
type HttpMember = &'static mut Http;
#[cfg(not(feature = "http"))]
type HttpMember = ();

/// Every service of [`PLAN`], on the static rings. Discard, which it never runs, is `()`:
/// no code for it in the image.
type Services = ServiceSet<'static, TransferMember, HttpMember, REPORT_BUFFER, ()>;

/// Starts every service of [`PLAN`] in `services`, on the rings and slot tables, and
/// returns the stats query's socket (whose queries the loop counts). Not inlined: what
/// starting takes on the stack is given back before the main loop.
#[inline(never)]
fn start_services(
    services: &mut Services,
    stack: &mut Stack<'static>,
    rings: &'static mut ServiceRings,
    tables: &'static mut SlotTables,
) -> SocketHandle {
    let mut echo = rings.echo.iter_mut();
    let mut file_out = rings.file_out.iter_mut();
    let mut file_in = rings.file_in.iter_mut();
    #[cfg(feature = "transfer")]
    let mut transfer = rings.transfer.iter_mut();
    #[cfg(feature = "http")]
    let mut http = rings.http.iter_mut();
    let (report_slots, tables) = tables.split_at_mut(2 * REPORT_SLOTS);
    let (stats_slots, beacon_slots) = tables.split_at_mut(2 * STATS_SLOTS);
    let mut report = Some((&mut rings.report, report_slots));
    let mut stats = Some((&mut rings.stats, stats_slots));
    let mut beacon = Some((&mut rings.beacon, beacon_slots));
    let mut stats_socket = None;
    let mut socket = |stack: &mut Stack<'static>, member: Member| match member {
        Member::Echo => stream(stack, echo.next()),
        Member::FileOut => stream(stack, file_out.next()),
        Member::FileIn => stream(stack, file_in.next()),
        #[cfg(feature = "transfer")]
        Member::Transfer => stream(stack, transfer.next()),
        #[cfg(feature = "http")]
        Member::Http => stream(stack, http.next()),
        Member::Report => datagram(stack, report.take()),
        Member::Stats => {
            let handle = datagram(stack, stats.take())?;
            stats_socket = Some(handle);
            Ok(handle)
        }
        Member::Beacon => datagram(stack, beacon.take()),
        _ => setup_failed(member.log_name(), &fw_text!("no rings in this image")),
    };
    let servers = Servers {
        #[cfg(feature = "transfer")]
        transfer: start_transfer,
        #[cfg(not(feature = "transfer"))]
        transfer: ringnet::service_set::no_server,
        #[cfg(feature = "http")]
        http: start_http,
        #[cfg(not(feature = "http"))]
        http: ringnet::service_set::no_server,
    };
    services
        .start_in_place(stack, &mut socket, &SOURCE, servers)
        .unwrap_or_else(|e| setup_failed(fw_text!("the services"), &e));
    stats_socket
        .unwrap_or_else(|| setup_failed(fw_text!("the stats query"), &fw_text!("no socket")))
}

/// Logs what every static buffer is for, and their total.
fn log_memory_map() {
    fw_info!(
        "memory: {} sockets, table {} B; tcp rings rx/tx: echo {}/{} x{}, file out {}/{} x{}, file in {}/{} x{}",
        SOCKETS,
        core::mem::size_of::<StackResources<'static, SOCKETS>>(),
        ECHO_RX,
        ECHO_TX,
        ECHO_BACKLOG,
        FILE_OUT_RX,
        FILE_OUT_TX,
        FILE_OUT_BACKLOG,
        FILE_IN_RX,
        FILE_IN_TX,
        FILE_IN_BACKLOG
    );
    #[cfg(feature = "transfer")]
    fw_info!(
        "memory: transfer {}/{} x{}",
        TRANSFER_RX,
        TRANSFER_TX,
        TRANSFER_BACKLOG
    );
    #[cfg(feature = "http")]
    fw_info!(
        "memory: http {}/{} x{}, server {} B",
        HTTP_RX,
        HTTP_TX,
        HTTP_BACKLOG,
        core::mem::size_of::<Http>()
    );
    fw_info!(
        "memory: udp rings rx/tx: report {}/{} ({} datagrams, reads {} B), stats {}/{}, beacon {}/{}, ARP queue {} ({} datagrams); {}",
        REPORT_RX,
        REPORT_TX,
        REPORT_SLOTS,
        REPORT_BUFFER,
        STATS_RX,
        STATS_TX,
        BEACON_RX,
        BEACON_TX,
        ARP_QUEUE_BYTES,
        ARP_QUEUE_SLOTS,
        board::NicLayout
    );
    fw_info!(
        "memory: rings and frames {} B{}, statics {} B of 65536, stack {} B",
        core::mem::size_of::<Rings>(),
        board::RINGS_IN,
        stack_usage::statics(),
        stack_usage::capacity()
    );
}

#[entry]
fn main() -> ! {
    board::init();
    stack_usage::paint();
    let core = cortex_m::Peripherals::take()
        .unwrap_or_else(|| setup_failed(fw_text!("the core"), &fw_text!("taken twice")));
    clock::start(core.SYST);
    logging::start();

    let rings = RINGS.take();
    let tables = SLOT_TABLES.init_with(|| [PacketMetadata::EMPTY; _]);
    let resources = StackResources::new_in(RESOURCES.uninit());
    let mut device = board::Nic::new(&mut rings.nic);
    let config = StackConfig {
        name: "mcu",
        mac: device.mac(),
        ip: ADDRESS,
        gateway: Some(GATEWAY),
        seed: 0x005e_ed0f_4e47,
    };
    fw_info!(
        "ringnet firmware {} on {} {}, log level {}",
        env!("CARGO_PKG_VERSION"),
        board::name(),
        config.mac,
        LOG_LEVEL
    );
    if cfg!(feature = "memcpy-check") {
        // SAFETY: the services' rings, which this image never hands to the stack.
        unsafe {
            mem_check::run(
                core::ptr::from_mut(&mut rings.services).cast(),
                core::mem::size_of::<ServiceRings>(),
            )
        };
    }
    if cfg!(feature = "nic-limit") {
        nic_limit::run(&mut device, config.mac, ADDRESS.address());
    }
    log_memory_map();

    // The Stellaris driver verifies received TCP checksums a word at a time, for smoltcp.
    #[cfg(not(feature = "sf2"))]
    device.verify_tcp();
    let mut stack = Stack::new(config, &mut device, resources, clock::now());
    if let Err(e) = stack.set_arp_queue(ArpQueueResources::new_in(ARP_QUEUE.uninit())) {
        setup_failed(fw_text!("the ARP queue"), &e);
    }
    stack.set_log_limit(Some(LogLimit {
        burst: LOG_BURST,
        interval: Duration::from_secs(1),
    }));
    fw_info!(
        "log: at most {} transition lines per socket per second; the stats table counts them all",
        LOG_BURST
    );
    let mut services = Services::new(PLAN);
    let stats_socket = start_services(&mut services, &mut stack, &mut rings.services, tables);

    // SAFETY: the Ethernet interrupt's handler only masks the controller and sets an
    // atomic flag; it shares nothing a critical section would have to protect.
    unsafe { cortex_m::peripheral::NVIC::unmask(board::NicIrq) };
    fw_info!(
        "ready: {}; file out sends {} bytes built in",
        services.plan(),
        WELCOME.len()
    );
    let mut stack_watch = stack_usage::StackWatch::new();
    let mut next_check = clock::now();
    let mut queries = 0;

    loop {
        run::act_between(clock::now(), &mut stack, &mut device, &mut services);
        let now = clock::now();

        let answered = stack.stats(stats_socket).map_or(0, |s| s.datagrams_in);
        if answered != queries {
            queries = answered;
            device.log_stats();
        }
        if now >= next_check {
            next_check = now + Duration::from_secs(1);
            stack_watch.check();
        }

        board::RX_PENDING.store(false, Ordering::Release);
        device.listen();
        // More frames waiting: the next step at once, without asking for the deadline.
        if device.rx_waiting() {
            continue;
        }
        // What the services queued makes the stack due at once: the next step sends it.
        if run::due_by(&mut stack, &services, now) {
            continue;
        }
        idle();
    }
}

/// Sleeps until a frame arrives or the next tick (10 ms). Interrupts stay masked
/// around the check, so a frame arriving just before `WFI` still ends the sleep at once.
fn idle() {
    cortex_m::interrupt::free(|_| {
        if !board::RX_PENDING.load(Ordering::Acquire) {
            cortex_m::asm::wfi();
        }
    });
}

/// Every device interrupt lands here; the Ethernet's is the only one unmasked.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == board::NIC_IRQ as i16 {
        board::on_nic_interrupt();
    }
}

/// A fault (a bad access, a stack grown into the statics) ends QEMU with a failure
/// status too, rather than spinning in the default handler.
#[exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    fw_error!("HARD FAULT at pc {:#010x}", frame.pc());
    exit_failure()
}

/// A panic ends the run with a failure. Under defmt it carries neither message nor place:
/// reading either keeps every panic site's source path and the `core::fmt` message
/// machinery in flash (9.5 KiB of the image); a debugger's backtrace gives the place
/// instead (the core's own calls never panic on bad input; see docs/firmware.md).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    #[cfg(feature = "defmt")]
    {
        let _ = info;
        fw_error!("PANIC");
    }
    #[cfg(not(feature = "defmt"))]
    {
        use core::fmt::Write;
        let _ = writeln!(uart::Uart, "PANIC: {info}");
    }
    exit_failure()
}

/// Ends QEMU with a failure status through semihosting; on a board without a debugger
/// attached, stops at a breakpoint instead of running on.
pub(crate) fn exit_failure() -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
