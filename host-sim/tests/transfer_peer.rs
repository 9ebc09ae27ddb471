//! The host's transfer client over kernel sockets on loopback, against a scripted server,
//! and the directory store behind a ringnet server on the simulated wire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use host_sim::linux::transfer_client::{get_file, put_file_traced, PeerError};
use host_sim::store::DirStore;
use ringnet::blocking::Blocking;
use ringnet::services::{pattern_byte, Pattern, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, Message, Status, TransferError, TransferServer};
use ringnet::{Instant, Stack};
use ringnet_testkit::{ep, pair, tcp_socket, A, B};
use sha2::{Digest, Sha256};

fn pattern(size: usize) -> Vec<u8> {
    (0..size as u64).map(pattern_byte).collect()
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut payload = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut payload).unwrap();
    payload
}

fn write_message(stream: &mut TcpStream, message: Message<'_>) {
    let mut frame = [0u8; 300];
    let n = message.emit(&mut frame).unwrap();
    stream.write_all(&frame[..n]).unwrap();
}

enum Script {
    /// Serve the get honestly.
    Honest,
    /// Send this many bytes, then hang up.
    CutAfter(usize),
    /// Flip one byte of the data but announce the true digest.
    Corrupt,
}

/// A one-connection server that serves `file` for a get according to `script`.
fn scripted_get_server(file: Vec<u8>, script: Script) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request = read_frame(&mut stream);
        let Message::Get { offset, .. } = Message::parse(&request).unwrap() else {
            panic!("expected a get");
        };
        write_message(
            &mut stream,
            Message::Accept {
                size: file.len() as u64,
                offset,
            },
        );
        let mut data = file[offset as usize..].to_vec();
        match script {
            Script::CutAfter(n) => {
                stream.write_all(&data[..n]).unwrap();
                return;
            }
            Script::Corrupt => data[0] ^= 1,
            Script::Honest => {}
        }
        stream.write_all(&data).unwrap();
        let digest: [u8; 32] = Sha256::digest(&file).into();
        write_message(
            &mut stream,
            Message::Status {
                status: Status::Ok,
                digest,
                reason: "",
            },
        );
    });
    addr
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn an_interrupted_get_resumes_and_the_whole_file_is_verified() {
    let dir = tempdir();
    let output = dir.join("out.bin");
    let file = pattern(300_000);
    let cut = scripted_get_server(file.clone(), Script::CutAfter(120_000));
    let error = get_file(cut, "f", &output, true, TIMEOUT, true).unwrap_err();
    assert!(
        matches!(error, PeerError::Transfer(TransferError::UnexpectedEnd)),
        "{error}"
    );
    assert!(!output.exists(), "no file under the final name");
    assert_eq!(
        std::fs::metadata(dir.join("out.bin.part")).unwrap().len(),
        120_000
    );

    let rest = scripted_get_server(file.clone(), Script::Honest);
    let outcome = get_file(rest, "f", &output, true, TIMEOUT, true).unwrap();
    assert_eq!((outcome.size, outcome.moved), (300_000, 180_000));
    assert_eq!(std::fs::read(&output).unwrap(), file);
    assert!(!dir.join("out.bin.part").exists());
}

#[test]
fn the_command_line_reaches_a_transfer_host_on_a_forwarded_port() {
    // `peer get NAME IP --port P`: as for the firmware's 7003, forwarded by QEMU.
    let dir = tempdir();
    let output = dir.join("fetched.bin");
    let file = pattern(50_000);
    let server = scripted_get_server(file.clone(), Script::Honest);
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(["peer", "get", "f", "127.0.0.1", "--port"])
        .arg(server.port().to_string())
        .arg("-o")
        .arg(&output)
        .args(["-q", "--timeout", "10"])
        .output()
        .expect("host-sim runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("verified"));
    assert_eq!(std::fs::read(&output).unwrap(), file);
}

#[test]
fn a_corrupted_get_is_a_clear_error_and_leaves_no_file() {
    let dir = tempdir();
    let output = dir.join("out.bin");
    let server = scripted_get_server(pattern(50_000), Script::Corrupt);
    let error = get_file(server, "f", &output, false, TIMEOUT, true).unwrap_err();
    assert!(matches!(
        error,
        PeerError::Transfer(TransferError::DigestMismatch)
    ));
    assert!(error.to_string().contains("SHA-256 mismatch"), "{error}");
    assert!(!output.exists() && !dir.join("out.bin.part").exists());
}

#[test]
fn put_sends_the_file_and_its_digest() {
    let dir = tempdir();
    let local = dir.join("in.bin");
    let file = pattern(70_000);
    std::fs::write(&local, &file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let expected = file.clone();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request = read_frame(&mut stream);
        let Message::Put { name, size, sha256 } = Message::parse(&request).unwrap() else {
            panic!("expected a put");
        };
        assert_eq!((name, size), ("copy.bin", expected.len() as u64));
        write_message(&mut stream, Message::Accept { size, offset: 0 });
        let mut data = vec![0u8; size as usize];
        stream.read_exact(&mut data).unwrap();
        let digest: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(digest, sha256);
        write_message(
            &mut stream,
            Message::Status {
                status: Status::Ok,
                digest,
                reason: "",
            },
        );
        data
    });
    // With --trace: the kernel socket of the put, sampled (a first and a last sample).
    let trace = dir.join("put.json");
    let outcome =
        put_file_traced(addr, &local, "copy.bin", None, TIMEOUT, true, Some(&trace)).unwrap();
    assert_eq!(outcome.size, 70_000);
    assert_eq!(server.join().unwrap(), file);
    let text = std::fs::read_to_string(&trace).unwrap();
    host_sim::trace::check::check(&text).unwrap_or_else(|p| panic!("{p:#?}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        names.contains(&"linux tx") && names.contains(&"linux tcp_info"),
        "{names:?}"
    );
    assert!(text.contains("linux put "));
}

#[test]
fn a_directory_store_commits_verified_uploads_only() {
    let dir = tempdir();
    let mut w = pair(Faults::NONE, 60);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
        .collect();
    let mut server: TransferServer<_> = TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &backlog,
        DirStore::new(&dir).unwrap(),
    )
    .unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    transfer::put(
        &mut sock.stream(conn),
        "good.bin",
        &Pattern(100_000),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.join("good.bin")).unwrap(),
        pattern(100_000)
    );

    // A put whose data does not match its announced digest leaves nothing behind.
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    let mut frame = [0u8; 300];
    let n = Message::Put {
        name: "bad.bin",
        size: 4,
        sha256: [0; 32],
    }
    .emit(&mut frame)
    .unwrap();
    sock.send_all(conn, &frame[..n]).unwrap();
    sock.send_all(conn, b"data").unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(conn, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(
        reply.windows(4).any(|w| w == b"RNT1"),
        "a status frame came back"
    );
    assert!(!dir.join("bad.bin").exists() && !dir.join("bad.bin.part").exists());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("good.bin")]);
}

/// A fresh directory under the target dir (no temp-dir crate needed for four tests).
fn tempdir() -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("transfer-peer-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
