//! ringnet firmware for the LM3S6965 (Cortex-M3) under QEMU: the core's sockets and
//! services on the Stellaris Ethernet, logging every buffer transition on UART0.
#![no_std]
#![no_main]

mod clock;
mod config;
mod enet;
mod store;
mod uart;

use core::sync::atomic::Ordering;

use cortex_m_rt::{entry, exception};
use ringnet::http::HttpServer;
use ringnet::services::{
    Beacon, Echo, FileIn, FileOut, StaticFile, StatsQuery, UdpReport, BEACON_PORT, ECHO_PORT,
    FILE_IN_PORT, FILE_OUT_PORT, REPORT_PORT, STATS_PORT, TRANSFER_PORT,
};
use ringnet::smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use ringnet::socket::udp::UdpStorage;
use ringnet::transfer::{DigestSink, TransferServer};
use ringnet::{Duration, SocketHandle, Stack, StackConfig, StackResources};
use static_cell::{ConstStaticCell, StaticCell};

use config::*;

/// The file TCP 7001 sends, built into the image.
static WELCOME: &[u8] = include_bytes!("../assets/welcome.txt");

/// The address under QEMU's user-mode networking (and on the test tap, whose Linux side
/// is 10.0.2.2 too).
const ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// A stream socket's two rings.
struct TcpRings<const RX: usize, const TX: usize> {
    rx: [u8; RX],
    tx: [u8; TX],
}

impl<const RX: usize, const TX: usize> TcpRings<RX, TX> {
    const fn new() -> Self {
        TcpRings {
            rx: [0; RX],
            tx: [0; TX],
        }
    }
}

/// The socket table and the datagram rings' slot tables.
struct Tables {
    resources: StackResources<'static, SOCKETS>,
    report_rx: UdpStorage<REPORT_SLOTS, REPORT_RX>,
    report_tx: UdpStorage<REPORT_SLOTS, REPORT_TX>,
    stats_rx: UdpStorage<STATS_SLOTS, STATS_RX>,
    stats_tx: UdpStorage<STATS_SLOTS, STATS_TX>,
    beacon_rx: UdpStorage<BEACON_SLOTS, BEACON_RX>,
    beacon_tx: UdpStorage<BEACON_SLOTS, BEACON_TX>,
}

// Its empty state is not all zeros, so it is stored as an image in flash (`.data`):
// building it at boot would need its 11 KiB on the stack too, and RAM is the scarcer.
static TABLES: ConstStaticCell<Tables> = ConstStaticCell::new(Tables {
    resources: StackResources::new(),
    report_rx: UdpStorage::new(),
    report_tx: UdpStorage::new(),
    stats_rx: UdpStorage::new(),
    stats_tx: UdpStorage::new(),
    beacon_rx: UdpStorage::new(),
    beacon_tx: UdpStorage::new(),
});

type Http = HttpServer<store::FirmwareStore, HTTP_BACKLOG, HTTP_SNAPSHOT>;
static HTTP: StaticCell<Http> = StaticCell::new();

/// The stream rings and the driver's frames: all zeros, so they cost no flash.
struct Memory {
    echo: [TcpRings<ECHO_RX, ECHO_TX>; ECHO_BACKLOG],
    file_out: [TcpRings<FILE_OUT_RX, FILE_OUT_TX>; FILE_OUT_BACKLOG],
    file_in: [TcpRings<FILE_IN_RX, FILE_IN_TX>; FILE_IN_BACKLOG],
    transfer: [TcpRings<TRANSFER_RX, TRANSFER_TX>; TRANSFER_BACKLOG],
    http: [TcpRings<HTTP_RX, HTTP_TX>; HTTP_BACKLOG],
    frame_rx: [u8; FRAME],
    frame_tx: [u8; FRAME],
}

static MEMORY: ConstStaticCell<Memory> = ConstStaticCell::new(Memory {
    echo: [const { TcpRings::new() }; ECHO_BACKLOG],
    file_out: [const { TcpRings::new() }; FILE_OUT_BACKLOG],
    file_in: [const { TcpRings::new() }; FILE_IN_BACKLOG],
    transfer: [const { TcpRings::new() }; TRANSFER_BACKLOG],
    http: [const { TcpRings::new() }; HTTP_BACKLOG],
    frame_rx: [0; FRAME],
    frame_tx: [0; FRAME],
});

static LOGGER: uart::UartLogger = uart::UartLogger {
    level: log::LevelFilter::Debug,
};

/// Creates stream sockets on `rings` for a backlog.
fn backlog<const RX: usize, const TX: usize, const N: usize>(
    stack: &mut Stack<'static>,
    rings: &'static mut [TcpRings<RX, TX>; N],
) -> heapless::Vec<SocketHandle, N> {
    let mut handles = heapless::Vec::new();
    for ring in rings.iter_mut() {
        match stack.tcp_socket(&mut ring.rx, &mut ring.tx) {
            Ok(handle) => {
                let _ = handles.push(handle);
            }
            Err(e) => log::error!("tcp socket: {e}"),
        }
    }
    handles
}

fn halt(what: &str, error: impl core::fmt::Display) -> ! {
    panic!("{what}: {error}")
}

#[entry]
fn main() -> ! {
    let core = cortex_m::Peripherals::take().unwrap_or_else(|| halt("peripherals", "taken twice"));
    clock::start(core.SYST);
    // Fails only if a logger was set already, and this is the only one.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LOGGER.level);

    let memory = MEMORY.take();
    let tables = TABLES.take();
    let mut device = enet::Stellaris::new(&mut memory.frame_rx, &mut memory.frame_tx);
    let config = StackConfig {
        name: "mcu",
        mac: device.mac(),
        ip: ADDRESS,
        gateway: Some(GATEWAY),
        seed: 0x005E_ED0F_4E47,
    };
    log::info!(
        "ringnet firmware {} on LM3S6965 (Cortex-M3), Stellaris Ethernet {}",
        env!("CARGO_PKG_VERSION"),
        config.mac
    );
    log::info!(
        "memory: {} bytes of stream rings and frames, {} bytes of socket table and datagram rings; {} sockets",
        core::mem::size_of::<Memory>(),
        core::mem::size_of::<Tables>(),
        SOCKETS
    );
    log::info!("rings: echo {ECHO_RX}/{ECHO_TX} x{ECHO_BACKLOG}, file out {FILE_OUT_RX}/{FILE_OUT_TX}, file in {FILE_IN_RX}/{FILE_IN_TX}, transfer {TRANSFER_RX}/{TRANSFER_TX}, http {HTTP_RX}/{HTTP_TX} x{HTTP_BACKLOG}");
    log::info!("udp: report {REPORT_RX}/{REPORT_TX} (reads {REPORT_BUFFER} B), stats {STATS_RX}/{STATS_TX}, beacon {BEACON_RX}/{BEACON_TX}; frames {FRAME} x2");

    let mut stack = Stack::new(config, &mut device, &mut tables.resources, clock::now());
    let service = |what: &str, e: ringnet::services::ServiceError| -> ! { halt(what, e) };
    let sockets = backlog(&mut stack, &mut memory.echo);
    let mut echo =
        Echo::new(&mut stack, ECHO_PORT, &sockets).unwrap_or_else(|e| service("echo", e));
    let sockets = backlog(&mut stack, &mut memory.file_out);
    static SOURCE: StaticFile<'static> = StaticFile(WELCOME);
    let mut file_out = FileOut::new(&mut stack, FILE_OUT_PORT, &sockets, &SOURCE)
        .unwrap_or_else(|e| service("file out", e));
    let sockets = backlog(&mut stack, &mut memory.file_in);
    let mut file_in =
        FileIn::new(&mut stack, FILE_IN_PORT, &sockets).unwrap_or_else(|e| service("file in", e));
    let sockets = backlog(&mut stack, &mut memory.transfer);
    let mut transfer =
        TransferServer::new(&mut stack, TRANSFER_PORT, &sockets, DigestSink::<4>::new())
            .unwrap_or_else(|e| service("transfer", e));
    let sockets = backlog(&mut stack, &mut memory.http);
    let http = HTTP.init(
        Http::new(&mut stack, 80, &sockets, store::FirmwareStore::new(WELCOME))
            .unwrap_or_else(|e| service("http", e)),
    );
    let udp = |stack: &mut Stack<'static>, rx, tx| {
        stack
            .udp_socket(rx, tx)
            .unwrap_or_else(|e| halt("udp socket", e))
    };
    let socket = udp(
        &mut stack,
        tables.report_rx.buffer(),
        tables.report_tx.buffer(),
    );
    let mut report = UdpReport::<REPORT_BUFFER>::new(&mut stack, socket, REPORT_PORT)
        .unwrap_or_else(|e| service("report", e));
    let socket = udp(
        &mut stack,
        tables.stats_rx.buffer(),
        tables.stats_tx.buffer(),
    );
    let mut stats =
        StatsQuery::new(&mut stack, socket, STATS_PORT).unwrap_or_else(|e| service("stats", e));
    let socket = udp(
        &mut stack,
        tables.beacon_rx.buffer(),
        tables.beacon_tx.buffer(),
    );
    let mut beacon = Beacon::new(&mut stack, socket, BEACON_PORT, Duration::from_secs(1))
        .unwrap_or_else(|e| service("beacon", e));

    // SAFETY: the Ethernet interrupt's handler only masks the controller and sets a flag;
    // no data is shared with it that a critical section would have to protect.
    unsafe { cortex_m::peripheral::NVIC::unmask(enet::EthernetIrq) };
    log::info!("ready: echo 7, http 80, file out 7001 ({} bytes built in), file in 7002, transfer 7003, udp 9000/9001, beacon 9999", WELCOME.len());

    loop {
        let now = clock::now();
        stack.poll(now, &mut device);
        echo.poll(&mut stack);
        file_out.poll(&mut stack);
        file_in.poll(&mut stack);
        transfer.poll(&mut stack);
        http.poll(&mut stack);
        report.poll(&mut stack);
        stats.poll(&mut stack);
        beacon.poll(&mut stack);
        stack.poll(clock::now(), &mut device);
        enet::RX_PENDING.store(false, Ordering::Release);
        device.listen();
        if device.frames_waiting() > 0 || stack.poll_delay() == Some(Duration::ZERO) {
            continue;
        }
        // Sleep until a frame arrives or the 10 ms tick; with interrupts masked around the
        // check, a frame arriving in between still ends the sleep at once.
        cortex_m::interrupt::free(|_| {
            if !enet::RX_PENDING.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}

/// Every device interrupt lands here; the Ethernet's is 42.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 42 {
        enet::on_interrupt();
    }
}

/// A fault (a stack overflow into the statics, a bad access) ends QEMU with a failure
/// status too, rather than spinning in the default handler.
#[exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    use core::fmt::Write;
    let _ = writeln!(uart::Uart, "HARD FAULT at pc {:#010x}", frame.pc());
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    cortex_m::interrupt::disable();
    let _ = writeln!(uart::Uart, "PANIC: {info}");
    // Ends QEMU with a failure status (semihosting), never a hang.
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
