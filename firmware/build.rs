//! Puts the board's memory layout where the linker finds it as memory.x (memory-lm3s6965.x,
//! or memory-sf2.x with feature `sf2`), links defmt's table of strings for the defmt log,
//! writes an empty device.x for cortex-m-rt (the board module gives the interrupt vectors),
//! and passes the log level to the firmware's banner: `DEFMT_LOG` for the defmt log (set
//! to debug in .cargo/config.toml), `RINGNET_LOG` (error, warn, info or debug; debug when
//! unset) for the text log.
use std::env;
use std::fs;
use std::path::PathBuf;

const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let layout = if env::var_os("CARGO_FEATURE_SF2").is_some() {
        "memory-sf2.x"
    } else {
        "memory-lm3s6965.x"
    };
    // Not named memory.x in the crate: the linker looks in the working directory first.
    fs::copy(layout, out.join("memory.x")).expect("copy the memory layout");
    // cortex-m-rt's `device` feature includes device.x for a PAC's handler names; the
    // board module gives the whole table (src/board/mod.rs), so it names none.
    fs::write(
        out.join("device.x"),
        "/* no device handlers: src/board/mod.rs */\n",
    )
    .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-lm3s6965.x");
    println!("cargo:rerun-if-changed=memory-sf2.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RINGNET_LOG");
    println!("cargo:rerun-if-env-changed=DEFMT_LOG");

    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
        // defmt's own filter, which its macros read as they compile; its syntax allows
        // per-module levels, so it is shown as it is.
        let level = env::var("DEFMT_LOG").unwrap_or_else(|_| "error".into());
        println!("cargo:rustc-env=RINGNET_LOG_LEVEL={level}");
        return;
    }
    let level = env::var("RINGNET_LOG").unwrap_or_else(|_| "debug".into());
    let level = level.trim().to_ascii_lowercase();
    if !LEVELS.contains(&level.as_str()) {
        eprintln!(
            "RINGNET_LOG={level:?} is not a log level the firmware knows: use one of {}",
            LEVELS.join(", ")
        );
        std::process::exit(1);
    }
    println!("cargo:rustc-env=RINGNET_LOG_LEVEL={level}");
}
