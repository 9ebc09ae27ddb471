//! `host-sim`: ringnet on a Linux host: the simulated-wire demo, a tap host, and the Linux
//! side's peer tools.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host_sim::linux::{peer, transfer_client};
use host_sim::programs::demo;
use host_sim::programs::send::{self, SendConfig};
use host_sim::programs::serve::{self, ServeConfig};
use host_sim::tap::TapConfig;
use ringnet::services::{MinRate, TRANSFER_PORT};
use ringnet::smoltcp::wire::Ipv4Cidr;
use ringnet::stack::TcpTimers;
use ringnet::{Duration, IpEndpoint};

#[derive(Parser)]
#[command(
    version,
    about = "ringnet on a host: kernel-like sockets on ring buffers, made visible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the device sits on the tap (shared by serve, send, udp-send).
#[derive(clap::Args, Clone)]
struct TapArgs {
    /// The tap interface (it must exist; see scripts/netns.sh).
    #[arg(long, default_value = "tap0")]
    tap: String,
    /// ringnet's address and prefix on the tap.
    #[arg(long, default_value = "192.168.69.1/24", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// Default gateway.
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// Receive ring of each TCP socket, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    rx_buf: usize,
    /// Transmit ring of each TCP socket, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    tx_buf: usize,
    /// Write every frame to this pcap file (open it with Wireshark or `tshark -r`).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// At most this many transition and drop lines per socket per second (then one line
    /// saying how many were left out; the stats table counts them all); 0 logs every one.
    #[arg(long, default_value_t = host_sim::tap::DEFAULT_LOG_BURST)]
    log_limit: u16,
    /// Open the tap with the virtio-net header and let the kernel checksum and cut TCP
    /// segments of up to 64 KiB both ways (IFF_VNET_HDR, TUNSETOFFLOAD TUN_F_CSUM |
    /// TUN_F_TSO4), as a virtual machine's NIC does; without offload where the kernel
    /// refuses.
    #[arg(long)]
    offload: bool,
    /// Set the tap's MTU (its IP MTU, as `ip link set tap0 mtu N`) before attaching.
    #[arg(long, value_parser = clap::value_parser!(u16).range(68..))]
    mtu: Option<u16>,
    /// Write every event of the stack (ring levels, windows, blocks, drops, state
    /// changes) to FILE as Perfetto / Chrome trace JSON; open it in ui.perfetto.dev
    /// (docs/trace.md). The log limit does not apply to it.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Guided tour over the simulated wire: blocking, full rings, EOF, broken pipes,
    /// sticky packets, truncated datagrams, broadcast, options, a verified transfer, and
    /// the stats table.
    Demo {
        /// Write every event of both stacks to FILE as Perfetto / Chrome trace JSON
        /// (docs/trace.md).
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Draw the run as an SVG timeline (one panel per socket, each scenario marked);
        /// see `host-sim plot`.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    // The port list comes from the plan serve runs, like its log line and the beacon.
    #[command(about = format!(
        "Run ringnet as a host on a tap interface with every service: {}",
        host_sim::programs::serve::PLAN
    ))]
    Serve {
        #[command(flatten)]
        tap: TapArgs,
        /// Directory of the transfer service's files (and of --file).
        #[arg(long)]
        files: Option<PathBuf>,
        /// The file TCP 7001 sends (a name inside --files); default: a generated pattern.
        #[arg(long)]
        file: Option<String>,
        /// Size of the pattern TCP 7001 sends when no --file is given.
        #[arg(long, default_value_t = 1 << 20)]
        pattern_size: u64,
        /// Stop after this many seconds (default: until SIGINT or SIGTERM).
        #[arg(long)]
        duration: Option<u64>,
        /// Seconds a half-open connection (SYN-RECEIVED) may wait before its socket
        /// listens again (Linux's five SYN-ACK retries take 63 s).
        #[arg(long, default_value_t = 63, value_parser = clap::value_parser!(u64).range(1..=3600))]
        syn_timeout: u64,
        /// Seconds an orphan in FIN-WAIT-2 (a connection after close, all it sent
        /// acknowledged) may wait for the peer's FIN before it is reset (Linux's
        /// tcp_fin_timeout).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        fin_timeout: u64,
        /// Retransmissions an orphan still delivering data or its FIN may send without
        /// progress before it is reset (Linux's tcp_orphan_retries).
        #[arg(long, default_value_t = 8)]
        orphan_retries: u8,
        /// Seconds such an orphan may go without progress whatever its count (a vanished
        /// peer's orphan sends ARP requests, not segments).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
        orphan_timeout: u64,
        /// Seconds a connection to echo, discard, file out, file in or transfer may move
        /// no byte before it is reset (HTTP keeps its own 10 s).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
        idle_timeout: u64,
        /// Require `Authorization: Bearer TOKEN` on HTTP writes (PUT, POST, DELETE) and the
        /// token in every transfer put (TCP 7003); without it writes are open. 1 to 64
        /// bytes of visible ASCII.
        #[arg(long)]
        token: Option<String>,
        /// Refuse uploads larger than this many bytes (HTTP 413, transfer "no space"),
        /// besides those larger than the free space of --files.
        #[arg(long)]
        max_upload: Option<u64>,
        /// Seconds a whole HTTP request head may take from its first byte.
        #[arg(long, default_value_t = 5)]
        head_timeout: u64,
        /// Bytes a second a body must average (file out, file in, transfer data, HTTP
        /// bodies either way) once --min-rate-grace has passed, or it is cut off as slow
        /// (Apache's mod_reqtimeout MinRate); 0 turns the rule off.
        #[arg(long, default_value_t = 500)]
        min_rate: u32,
        /// Seconds a body may take before --min-rate counts.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=86400))]
        min_rate_grace: u64,
    },
    /// ringnet as the client: send FILE over TCP to a Linux listener, print its answer.
    Send {
        /// The file to send.
        file: PathBuf,
        /// Where to send it.
        #[arg(long)]
        to: SocketAddrV4,
        #[command(flatten)]
        tap: TapArgs,
        /// Give up after this many seconds without progress.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// ringnet as the client: send one UDP datagram, print the answer if one comes.
    UdpSend {
        /// The datagram's text.
        message: String,
        /// Where to send it (a broadcast address needs --broadcast).
        #[arg(long)]
        to: SocketAddrV4,
        /// Set SO_BROADCAST first.
        #[arg(long)]
        broadcast: bool,
        #[command(flatten)]
        tap: TapArgs,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 2)]
        timeout: u64,
    },
    /// Linux-side tools on the kernel's own sockets; they work against any host.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Watch a ringnet host's sockets live: rings as bars, counters and rates, from the
    /// UDP stats query (ADDR = IP:9001, or QEMU's forwarded 127.0.0.1:19001) or with
    /// --http from GET /stats (IP:80, or 127.0.0.1:17080). q quits; without a terminal it
    /// prints plain snapshots.
    Top {
        /// The host's stats port: UDP (default) or, with --http, its HTTP port.
        addr: SocketAddr,
        /// Take the stats from GET /stats at ADDR instead of the UDP query.
        #[arg(long)]
        http: bool,
        /// Milliseconds between snapshots.
        #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=60000))]
        interval: u64,
        /// Stop after this many snapshots.
        #[arg(long)]
        count: Option<u64>,
        /// Plain snapshots even on a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Build a trace from a device's log (the firmware's UART output, as its logger or
    /// defmt-print writes it): rings, windows, blocks, drops and truncations from its
    /// transition lines, on the device's own clock; then `plot` it.
    TraceFromUart {
        /// The log file ("-" for standard input).
        log: PathBuf,
        /// The trace to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Draw trace files (`--trace` of demo, serve, send and the peer tools) as an SVG
    /// timeline: one panel per socket, its rings, window, blocks, zero windows and drops.
    Plot {
        /// Trace files; a device's and a Linux side's written at the same time line up.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// The SVG to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Only this socket ("tcp#3", "B tcp#0", or a whole process such as "linux get
        /// 1234"); repeat for more.
        #[arg(long = "socket")]
        sockets: Vec<String>,
        /// Start of the time axis, ms.
        #[arg(long)]
        from: Option<f64>,
        /// End of the time axis, ms.
        #[arg(long)]
        to: Option<f64>,
        /// A title over the plot.
        #[arg(long)]
        title: Option<String>,
        /// Width in pixels.
        #[arg(long, default_value_t = 1400, value_parser = clap::value_parser!(u32).range(300..=20000))]
        width: u32,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// `get IP:PORT -o FILE`: save everything the port sends (like `nc IP PORT > FILE`).
    /// `get NAME IP -o FILE`: fetch NAME with the verified transfer protocol (TCP 7003).
    Get {
        /// IP:PORT for a raw stream, or the file NAME for the transfer protocol.
        first: String,
        /// The host's IP, for the transfer protocol.
        host: Option<Ipv4Addr>,
        /// Where to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Raw stream: first send "<N>\n" (ringnet's file out then sends an N-byte pattern).
        #[arg(long)]
        request: Option<u64>,
        /// Raw stream: do not compute the SHA-256 (benchmarks, where it would take CPU
        /// time from the transfer being measured).
        #[arg(long)]
        no_digest: bool,
        /// Sample the kernel's socket every 2 ms (SIOCINQ, SIOCOUTQ, TCP_INFO) into this
        /// trace file, on CLOCK_MONOTONIC like `serve --trace`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Transfer protocol: continue OUTPUT.part from where an interrupted get stopped.
        #[arg(long)]
        resume: bool,
        /// Transfer protocol: the host's port (default 7003; another when it is forwarded,
        /// as QEMU's user-mode networking forwards the firmware's to 127.0.0.1:17003).
        #[arg(long)]
        port: Option<u16>,
        /// Seconds without progress before giving up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// `put FILE IP:PORT`: send FILE, shut down writing, print the answer (like `nc -N`).
    /// `put FILE IP`: store FILE on the host with the verified transfer protocol (TCP 7003).
    Put {
        /// The file to send.
        file: PathBuf,
        /// IP:PORT for a raw stream, or IP for the transfer protocol.
        target: String,
        /// Sample the kernel's socket every 2 ms (SIOCINQ, SIOCOUTQ, TCP_INFO) into this
        /// trace file, on CLOCK_MONOTONIC like `serve --trace`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Transfer protocol: the name to store it under (default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// Transfer protocol: the host's port (default 7003; another when it is forwarded,
        /// as QEMU's user-mode networking forwards the firmware's to 127.0.0.1:17003).
        #[arg(long)]
        port: Option<u16>,
        /// Transfer protocol: the token the host requires for puts (`serve --token`).
        #[arg(long)]
        token: Option<String>,
        /// Raw stream: do not compute the SHA-256 (benchmarks, where it would take CPU
        /// time from the transfer being measured).
        #[arg(long)]
        no_digest: bool,
        /// Seconds without progress before giving up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// `blast IP:PORT --bytes N`: send N zero bytes from memory, shut down writing, print
    /// the answer and the throughput (a load generator, like smoltcp's benchmark client).
    Blast {
        /// Where to.
        target: SocketAddr,
        /// How many bytes.
        #[arg(long)]
        bytes: u64,
        /// Sample the kernel's socket every 2 ms (SIOCINQ, SIOCOUTQ, TCP_INFO) into this
        /// trace file, on CLOCK_MONOTONIC like `serve --trace`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Seconds without progress before giving up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Send one UDP datagram (MESSAGE, or --size bytes) and print the answer.
    Udp {
        /// Where to.
        to: SocketAddrV4,
        /// The text to send.
        message: Option<String>,
        /// Send this many bytes instead of a message.
        #[arg(long)]
        size: Option<usize>,
        /// Set SO_BROADCAST (needed for a broadcast address).
        #[arg(long)]
        broadcast: bool,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 2)]
        timeout: u64,
    },
    /// Print broadcasts arriving on PORT (bound to 0.0.0.0).
    ListenBroadcast {
        /// The port.
        port: u16,
        /// Stop after this many datagrams.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

fn parse_cidr(text: &str) -> Result<Ipv4Cidr, String> {
    let (addr, prefix) = text.split_once('/').ok_or_else(|| {
        format!("bad CIDR '{text}': expected ADDRESS/PREFIX, e.g. 192.168.69.1/24")
    })?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("bad CIDR '{text}': '{addr}' is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=30).contains(p))
        .ok_or_else(|| format!("bad CIDR '{text}': the prefix must be 1 to 30"))?;
    if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
        return Err(format!(
            "bad CIDR '{text}': {addr} cannot be a host's address"
        ));
    }
    Ok(Ipv4Cidr::new(addr, prefix))
}

fn endpoint(addr: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new((*addr.ip()).into(), addr.port())
}

fn tap_config(tap: &TapArgs) -> TapConfig {
    TapConfig {
        tap: tap.tap.clone(),
        ip: tap.ip,
        gateway: tap.gateway,
        pcap: tap.pcap.clone(),
        log_burst: tap.log_limit,
        offload: tap.offload,
        mtu: tap.mtu,
        trace: tap.trace.clone(),
    }
}

fn send_config(tap: &TapArgs) -> SendConfig {
    SendConfig {
        tap: tap_config(tap),
        rx_buf: tap.rx_buf,
        tx_buf: tap.tx_buf,
    }
}

fn init_logging() {
    let _ = env_logger::Builder::from_env(host_sim::log_filter()).try_init();
}

fn run(command: Command) -> Result<(), String> {
    let seconds = |s: u64| std::time::Duration::from_secs(s);
    match command {
        Command::Demo { trace, plot } => {
            demo::run(trace.as_deref(), plot.as_deref()).map_err(|e| e.to_string())
        }
        Command::Serve {
            tap,
            files,
            file,
            pattern_size,
            duration,
            syn_timeout,
            fin_timeout,
            orphan_retries,
            orphan_timeout,
            idle_timeout,
            token,
            max_upload,
            head_timeout,
            min_rate,
            min_rate_grace,
        } => {
            init_logging();
            if tap.rx_buf == 0 || tap.tx_buf == 0 {
                return Err("--rx-buf and --tx-buf must be at least 1".into());
            }
            serve::serve(ServeConfig {
                tap: tap_config(&tap),
                files,
                file,
                pattern_size,
                rx_buf: tap.rx_buf,
                tx_buf: tap.tx_buf,
                duration: duration.map(Duration::from_secs),
                timers: TcpTimers {
                    syn_received: Duration::from_secs(syn_timeout),
                    fin_timeout: Duration::from_secs(fin_timeout),
                    orphan_retries,
                    orphan_timeout: Duration::from_secs(orphan_timeout),
                },
                idle_timeout: Duration::from_secs(idle_timeout),
                token,
                max_upload,
                head_timeout: Duration::from_secs(head_timeout),
                min_rate: MinRate {
                    grace: Duration::from_secs(min_rate_grace),
                    bytes_per_sec: min_rate,
                },
            })
            .map_err(|e| e.to_string())
        }
        Command::Send {
            file,
            to,
            tap,
            timeout,
        } => {
            init_logging();
            let reply = send::send_file(
                &send_config(&tap),
                &file,
                endpoint(to),
                Duration::from_secs(timeout),
            )?;
            print!("{reply}");
            Ok(())
        }
        Command::UdpSend {
            message,
            to,
            broadcast,
            tap,
            timeout,
        } => {
            init_logging();
            let answer = send::udp_send(
                &send_config(&tap),
                message.as_bytes(),
                endpoint(to),
                broadcast,
                Duration::from_secs(timeout),
            )?;
            println!("{}", answer.as_deref().unwrap_or("no answer"));
            Ok(())
        }
        Command::Peer(peer) => run_peer(peer, seconds),
        Command::Top {
            addr,
            http,
            interval,
            count,
            plain,
        } => host_sim::top::run(&host_sim::top::TopConfig {
            source: if http {
                host_sim::top::Source::Http(addr)
            } else {
                host_sim::top::Source::Udp(addr)
            },
            interval: std::time::Duration::from_millis(interval),
            count,
            plain,
        }),
        Command::TraceFromUart { log, output } => {
            let text = if log.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
            } else {
                let bytes = std::fs::read(&log).map_err(|e| format!("{}: {e}", log.display()))?;
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let (json, converted) = host_sim::plot::uart::trace_from_log(&text);
            std::fs::write(&output, json).map_err(|e| format!("{}: {e}", output.display()))?;
            println!(
                "{}: {} of {} lines became {} events",
                output.display(),
                converted.used,
                converted.lines,
                converted.events
            );
            if converted.used == 0 {
                return Err(format!(
                    "{}: no transition line found (is the log level debug?)",
                    log.display()
                ));
            }
            Ok(())
        }
        Command::Plot {
            traces,
            output,
            sockets,
            from,
            to,
            title,
            width,
        } => {
            let options = host_sim::plot::PlotOptions {
                sockets,
                from_ms: from,
                to_ms: to,
                width,
                title,
                ..Default::default()
            };
            host_sim::plot::plot_files(&traces, &output, &options)?;
            println!("wrote {}", output.display());
            Ok(())
        }
    }
}

/// `--port` names the transfer protocol's port; with an IP:PORT it would be ignored.
fn refuse_port_with_address(port: Option<u16>, addr: SocketAddr) -> Result<(), String> {
    match port {
        Some(port) => Err(format!(
            "--port {port} is for the transfer protocol, given an IP without a port; {addr} already names one"
        )),
        None => Ok(()),
    }
}

fn run_peer(
    command: PeerCommand,
    seconds: impl Fn(u64) -> std::time::Duration,
) -> Result<(), String> {
    match command {
        PeerCommand::Get {
            first,
            host: Some(host),
            output,
            resume,
            port,
            timeout,
            quiet,
            trace,
            ..
        } => {
            let addr = SocketAddr::from((host, port.unwrap_or(TRANSFER_PORT)));
            let outcome = transfer_client::get_file_traced(
                addr,
                &first,
                &output,
                resume,
                seconds(timeout),
                quiet,
                trace.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            println!(
                "got {first}: {} bytes ({} over the network) in {:.3} s = {:.1} MB/s, sha256 {} verified",
                outcome.size,
                outcome.moved,
                outcome.elapsed.as_secs_f64(),
                outcome.megabytes_per_second(),
                outcome.sha256
            );
            Ok(())
        }
        PeerCommand::Get {
            first,
            host: None,
            output,
            request,
            port,
            timeout,
            quiet,
            no_digest,
            trace,
            ..
        } => {
            let addr: SocketAddr = first.parse().map_err(|_| {
                format!("'{first}' is not IP:PORT (for the transfer protocol: get NAME IP)")
            })?;
            refuse_port_with_address(port, addr)?;
            let moved = peer::get(
                addr,
                &output,
                request,
                seconds(timeout),
                quiet,
                !no_digest,
                trace.as_deref(),
            )
            .map_err(|e| format!("{addr}: {e}"))?;
            println!("got {moved}");
            Ok(())
        }
        PeerCommand::Put {
            file,
            target,
            name,
            port,
            token,
            timeout,
            quiet,
            no_digest,
            trace,
        } => {
            // Said about the file, not about the address the send would have gone to.
            std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            match target.parse::<SocketAddr>() {
                Ok(addr) => {
                    refuse_port_with_address(port, addr)?;
                    if token.is_some() {
                        return Err(
                            "--token is for the transfer protocol: give IP, not IP:PORT".into()
                        );
                    }
                    let (moved, reply) = peer::put(
                        &file,
                        addr,
                        seconds(timeout),
                        quiet,
                        !no_digest,
                        trace.as_deref(),
                    )
                    .map_err(|e| format!("{addr}: {e}"))?;
                    println!("sent {moved}");
                    print!("{reply}");
                    Ok(())
                }
                Err(_) => {
                    let host: Ipv4Addr = target
                        .parse()
                        .map_err(|_| format!("'{target}' is neither IP:PORT nor IP"))?;
                    let name = match name {
                        Some(name) => name,
                        None => file
                            .file_name()
                            .and_then(|n| n.to_str())
                            .ok_or("the file has no usable name: give --name")?
                            .to_string(),
                    };
                    let addr = SocketAddr::from((host, port.unwrap_or(TRANSFER_PORT)));
                    let outcome = transfer_client::put_file_traced(
                        addr,
                        &file,
                        &name,
                        token.as_deref(),
                        seconds(timeout),
                        quiet,
                        trace.as_deref(),
                    )
                    .map_err(|e| e.to_string())?;
                    println!(
                    "put {name}: {} bytes in {:.3} s = {:.1} MB/s, sha256 {} verified by the peer",
                    outcome.size,
                    outcome.elapsed.as_secs_f64(),
                    outcome.megabytes_per_second(),
                    outcome.sha256
                );
                    Ok(())
                }
            }
        }
        PeerCommand::Blast {
            target,
            bytes,
            timeout,
            quiet,
            trace,
        } => {
            let (moved, reply) =
                peer::blast(target, bytes, seconds(timeout), quiet, trace.as_deref())
                    .map_err(|e| format!("{target}: {e}"))?;
            println!("sent {moved}");
            print!("{reply}");
            Ok(())
        }
        PeerCommand::Udp {
            to,
            message,
            size,
            broadcast,
            timeout,
        } => {
            let payload = match (message, size) {
                (_, Some(size)) => vec![b'x'; size],
                (Some(message), None) => message.into_bytes(),
                (None, None) => return Err("give a MESSAGE or --size".into()),
            };
            let answers = peer::udp(SocketAddr::V4(to), &payload, broadcast, seconds(timeout))
                .map_err(|e| format!("{to}: {e}"))?;
            // An answer in several datagrams (the stats table) prints as one text.
            for (i, (answer, from)) in answers.iter().enumerate() {
                let text = String::from_utf8_lossy(answer);
                if i == 0 {
                    println!("answer from {from}: {}", text.trim_end());
                } else {
                    println!("{}", text.trim_end());
                }
            }
            if answers.is_empty() {
                println!("no answer within {timeout} s");
            }
            Ok(())
        }
        PeerCommand::ListenBroadcast {
            port,
            count,
            timeout,
        } => {
            let seen = peer::listen_broadcast(port, count, seconds(timeout))
                .map_err(|e| format!("port {port}: {e}"))?;
            for (text, from) in &seen {
                println!("{from}: {text}");
            }
            if seen.is_empty() {
                return Err(format!("no broadcast on port {port} within {timeout} s"));
            }
            Ok(())
        }
    }
}

/// Lets SIGPIPE end the program quietly when its output pipe closes (`host-sim demo |
/// head`), as it ends every Unix tool; Rust ignores the signal, and `println!` would then
/// panic. Sockets are unaffected: std sends on them with `MSG_NOSIGNAL`. Not for a
/// capture (`--pcap`), which may go to a pipe: when its reader quits, the capture stops
/// and the device carries on.
#[allow(unsafe_code)]
fn die_quietly_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition at start-up, before any thread
    // exists, touches no Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

impl Command {
    /// Whether the command writes a pcap capture.
    fn captures(&self) -> bool {
        match self {
            Command::Serve { tap, .. }
            | Command::Send { tap, .. }
            | Command::UdpSend { tap, .. } => tap.pcap.is_some(),
            _ => false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.command.captures() {
        die_quietly_on_closed_stdout();
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("host-sim: {error}");
            ExitCode::FAILURE
        }
    }
}
