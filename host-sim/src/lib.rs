//! ringnet on a host: stacks on the simulated wire, and the guided demo.

pub mod demo;
pub mod device_client;
pub mod hex;
pub mod linux;
pub mod local_file;
pub mod serve;
pub mod store;
pub mod tap;

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
