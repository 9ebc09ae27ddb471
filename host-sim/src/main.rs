//! `host-sim`: ringnet on a Linux host.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "ringnet on a host: kernel-like sockets on ring buffers, made visible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Guided tour over the simulated wire: blocking, full rings, EOF, broken pipes,
    /// sticky packets, truncated datagrams, broadcast, options, and the stats table.
    Demo,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => match host_sim::demo::run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("demo failed: {error}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
