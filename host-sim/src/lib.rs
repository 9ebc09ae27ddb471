//! ringnet on a Linux host: the guided demo on the simulated wire, ringnet as a device on
//! a tap interface, and the Linux side's tools that talk to it.
//!
//! The modules are laid out by side of the wire, and imports point down:
//!
//! - [`programs`]: ringnet's own programs behind the subcommands `demo`, `serve`, `send`
//!   and `udp-send` ([`programs::demo`], [`programs::serve`], [`programs::send`]); thin
//!   shells that choose parts from below. `main.rs` is only the command line over them
//!   and over the Linux side's tools (`peer …`).
//! - Device side: [`tap`] (the tap link, the pcap capture, the real-time driver, and
//!   [`tap::bring_up`], which every program on the tap starts with), [`store`] (the
//!   files the device serves), [`part_writer`] (an upload's temporary file, written
//!   and hashed by a thread of its own) and [`read_ahead`] (a get's file, read ahead and
//!   hashed by a thread of its own).
//! - Linux side: [`linux`] (the peer tools, their kernel-socket sampler for `--trace`,
//!   and the transfer client on kernel sockets) and [`top`] (the live view of a host's
//!   stats, asked over UDP or HTTP). They import nothing of the device side, nor the
//!   device side of them.
//! - Below both: [`trace`] (the event stream as Perfetto JSON, and its checker),
//!   [`plot`] (traces read and drawn as SVG, and traces built from a device's log),
//!   [`local_file`] and the log filter here.

pub mod linux;
pub mod local_file;
pub mod part_writer;
pub mod plot;
pub mod programs;
pub mod read_ahead;
pub mod store;
pub mod tap;
pub mod top;
pub mod trace;

/// The log filter: `RUST_LOG` when set (it replaces the default, as everywhere else
/// `env_logger` is used), otherwise every ring transition (`ringnet=debug`) and smoltcp's
/// warnings.
pub fn log_filter() -> env_logger::Env<'static> {
    log_filter_from("RUST_LOG")
}

fn log_filter_from(variable: &'static str) -> env_logger::Env<'static> {
    env_logger::Env::new()
        .filter_or(variable, DEFAULT_LOG_FILTER)
        .write_style("RUST_LOG_STYLE")
}

/// What is logged when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info,ringnet=debug,smoltcp=warn";

#[cfg(test)]
mod tests {
    #[test]
    fn rust_log_replaces_the_default_filter() {
        // The default names ringnet=debug; a user's RUST_LOG=warn must not keep it.
        // (A variable of the test's own, so the test's environment cannot interfere.)
        std::env::set_var("RINGNET_TEST_LOG_SET", "warn");
        let logger =
            env_logger::Builder::from_env(super::log_filter_from("RINGNET_TEST_LOG_SET")).build();
        let debug = log::Metadata::builder()
            .level(log::Level::Debug)
            .target("ringnet::observe")
            .build();
        assert!(!log::Log::enabled(&logger, &debug));
        let default =
            env_logger::Builder::from_env(super::log_filter_from("RINGNET_TEST_LOG_UNSET")).build();
        assert!(log::Log::enabled(&default, &debug));
    }
}
