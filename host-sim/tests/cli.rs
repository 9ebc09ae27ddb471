//! The command line itself, where no network is needed.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn a_closed_output_pipe_ends_the_program_quietly_like_any_unix_tool() {
    // `host-sim demo | head -0`: the reader is gone before the first line is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host-sim runs");
    drop(child.stdout.take());
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
        let run = Command::new(env!("CARGO_BIN_EXE_host-sim"))
            .args(args)
            .output()
            .expect("host-sim runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(
            stderr.contains("--port 17003") && stderr.contains("127.0.0.1:9"),
            "{args:?}: {stderr}"
        );
    }
}
