//! The command line itself, where no network is needed.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The tests of this file start their programs one at a time: a child forked for one test
/// while another holds a pipe's reader would keep that reader open until it execs.
static SPAWN: Mutex<()> = Mutex::new(());

fn spawning() -> MutexGuard<'static, ()> {
    SPAWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs host-sim with `args` to the end.
fn host_sim(args: &[&str]) -> Output {
    let _one_at_a_time = spawning();
    Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(args)
        .output()
        .expect("host-sim runs")
}

#[test]
fn a_closed_output_pipe_ends_the_program_quietly_like_any_unix_tool() {
    // `host-sim demo | head -0`: the reader is gone before the first line is written. The
    // demo takes milliseconds, so the reader must be gone before it starts.
    let mut child = {
        let _one_at_a_time = spawning();
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        Command::new(env!("CARGO_BIN_EXE_host-sim"))
            .arg("demo")
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .expect("host-sim runs")
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
}

#[test]
fn a_port_option_next_to_an_address_that_names_one_is_an_error_not_ignored() {
    for args in [
        &[
            "peer",
            "put",
            "Cargo.toml",
            "127.0.0.1:9",
            "--port",
            "17003",
        ][..],
        &[
            "peer",
            "get",
            "127.0.0.1:9",
            "-o",
            "/dev/null",
            "--port",
            "17003",
        ][..],
    ] {
        let run = host_sim(args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(
            stderr.contains("--port 17003") && stderr.contains("127.0.0.1:9"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_to_put_is_named_in_the_error_before_anything_is_sent() {
    let missing = concat!(env!("CARGO_TARGET_TMPDIR"), "/no-such-file-to-put");
    for target in ["127.0.0.1:9", "127.0.0.1"] {
        let run = host_sim(&["peer", "put", missing, target, "--timeout", "1"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{target}");
        assert!(
            stderr.contains(&format!("{missing}: ")) && !stderr.contains("127.0.0.1"),
            "{target}: {stderr}"
        );
    }
}
