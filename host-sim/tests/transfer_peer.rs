//! The host's transfer client over kernel sockets on loopback, against a scripted server,
//! and the directory store behind a ringnet server on the simulated wire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use host_sim::linux::transfer_client::{get_file, put_file, put_file_traced, PeerError};
use host_sim::store::{DirStore, HostStore};
use ringnet::blocking::{Blocking, Waiter};
use ringnet::services::{pattern_byte, Pattern, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, Message, Status, Store, StoreError, TransferError, TransferServer};
use ringnet::{Instant, SocketHandle, Stack};
use ringnet_testkit::{ep, names_in, pair, tcp_socket, World, A, B};
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
        if offset > file.len() as u64 {
            // As the ringnet server answers a resume past the end.
            write_message(
                &mut stream,
                Message::Status {
                    status: Status::OffsetBeyondEnd,
                    digest: [0; 32],
                    reason: "resume offset beyond the end",
                },
            );
            return;
        }
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
    let scratch = tempdir();
    let dir = scratch.path();
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
fn a_resume_longer_than_the_file_now_is_discarded_and_the_next_get_fetches_it_whole() {
    // The part file kept from an interrupted get is longer than the file the server
    // has now (it was replaced by a shorter one): it cannot be a prefix of it.
    let scratch = tempdir();
    let dir = scratch.path();
    let output = dir.join("out.bin");
    let cut = scripted_get_server(pattern(300_000), Script::CutAfter(120_000));
    assert!(get_file(cut, "f", &output, true, TIMEOUT, true).is_err());
    let shorter: Vec<u8> = pattern(100_000).iter().map(|b| b ^ 0x5a).collect();
    let server = scripted_get_server(shorter.clone(), Script::Honest);
    let error = get_file(server, "f", &output, true, TIMEOUT, true).unwrap_err();
    assert!(
        matches!(
            &error,
            PeerError::Transfer(TransferError::Refused {
                status: Status::OffsetBeyondEnd,
                ..
            })
        ),
        "{error}"
    );
    assert!(
        !dir.join("out.bin.part").exists(),
        "a part file that cannot be resumed is deleted, as after a digest mismatch"
    );
    let again = scripted_get_server(shorter.clone(), Script::Honest);
    let outcome = get_file(again, "f", &output, true, TIMEOUT, true).unwrap();
    assert_eq!((outcome.size, outcome.moved), (100_000, 100_000));
    assert_eq!(std::fs::read(&output).unwrap(), shorter);
}

#[test]
fn the_command_line_reaches_a_transfer_host_on_a_forwarded_port() {
    // `peer get NAME IP --port P`: as for the firmware's 7003, forwarded by QEMU.
    let scratch = tempdir();
    let dir = scratch.path();
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
    let scratch = tempdir();
    let dir = scratch.path();
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
fn put_sends_the_file_then_its_digest_in_the_trailer() {
    let scratch = tempdir();
    let dir = scratch.path();
    let local = dir.join("in.bin");
    // Three whole blocks of the client's reader thread and a part: in order, each once.
    let len = 3 * (1 << 20) + 12_345;
    let file = pattern(len);
    std::fs::write(&local, &file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let expected = file.clone();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request = read_frame(&mut stream);
        let Message::Put { name, size } = Message::parse(&request).unwrap() else {
            panic!("expected a put");
        };
        assert_eq!((name, size), ("copy.bin", expected.len() as u64));
        write_message(&mut stream, Message::Accept { size, offset: 0 });
        let mut data = vec![0u8; size as usize];
        stream.read_exact(&mut data).unwrap();
        let trailer = read_frame(&mut stream);
        let Message::Trailer { sha256 } = Message::parse(&trailer).unwrap() else {
            panic!("expected the trailer after the data");
        };
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
    assert_eq!(outcome.size, len as u64);
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

/// A transfer server on B, two sockets of 4 KiB rings in its backlog, storing into `dir`.
fn dir_store_server(w: &mut World<2>, dir: &Path) -> TransferServer<DirStore> {
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
        .collect();
    TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &backlog,
        DirStore::new(dir).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_directory_store_commits_verified_uploads_only() {
    let scratch = tempdir();
    let dir = scratch.path();
    let mut w = pair(Faults::NONE, 60);
    let mut server = dir_store_server(&mut w, dir);
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

    // A put whose data does not match its trailer's digest leaves nothing behind.
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    let mut frame = [0u8; 300];
    let n = Message::Put {
        name: "bad.bin",
        size: 4,
    }
    .emit(&mut frame)
    .unwrap();
    sock.send_all(conn, &frame[..n]).unwrap();
    sock.send_all(conn, b"data").unwrap();
    let n = Message::Trailer { sha256: [0; 32] }
        .emit(&mut frame)
        .unwrap();
    sock.send_all(conn, &frame[..n]).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(conn, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(
        reply.windows(4).any(|w| w == b"RNT2"),
        "a status frame came back"
    );
    assert!(!dir.join("bad.bin").exists() && !dir.join("bad.bin.part").exists());
    assert_eq!(names_in(dir), ["good.bin"]);
}

#[test]
fn a_put_into_a_directory_store_over_a_wire_with_20_percent_faults_is_stored_whole() {
    // The store's writer thread hashes and writes what the server copies out of the
    // ring: segments lost, corrupted, duplicated and reordered must not change a byte.
    let scratch = tempdir();
    let dir = scratch.path();
    let faults = Faults {
        loss: 0.2,
        corrupt: 0.2,
        duplicate: 0.2,
        reorder: 0.2,
        latency: ringnet::Duration::from_millis(1),
        rate: None,
    };
    let mut w = pair(faults, 62);
    let mut server = dir_store_server(&mut w, dir);
    // At 20% loss smoltcp's retransmission backoff reaches a minute; silence is no death,
    // and an average below the minimum rate is the wire's, not a hostile client's.
    server.set_idle_timeout(ringnet::Duration::from_secs(600));
    server.set_min_rate(ringnet::services::MinRate::OFF);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    })
    .with_app_tick(ringnet::Duration::from_millis(100));
    let mut sock = Blocking::new(a, &mut driver);
    let size = 600_000;
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    let digest = transfer::put(
        &mut sock.stream(conn),
        "faulty.bin",
        &Pattern(size),
        &mut |_, _| {},
    )
    .unwrap();
    let want: [u8; 32] = Sha256::digest(pattern(size as usize)).into();
    assert_eq!(digest, want);
    assert_eq!(
        std::fs::read(dir.join("faulty.bin")).unwrap(),
        pattern(size as usize)
    );
    sock.stack().close(conn).unwrap();
    // Read back over the same faulty wire: the whole file, verified.
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    let mut got = Vec::new();
    let (len, digest) = transfer::get(
        &mut sock.stream(conn),
        "faulty.bin",
        (0, Sha256::new()),
        &mut |data| {
            got.extend_from_slice(data);
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((len, digest), (size, want));
    assert_eq!(got, pattern(size as usize));
    assert_eq!(names_in(dir), ["faulty.bin"], "no temporaries");
}

#[test]
fn a_get_from_a_directory_store_whole_or_resumed_verifies_the_whole_file() {
    // A whole get is read ahead and hashed by the store; a resume is hashed by the
    // server, its kept prefix first: either way the digest covers the whole file, a kept
    // prefix that matches verifies, and one that differs is a mismatch.
    let scratch = tempdir();
    let dir = scratch.path();
    let size = 700_001;
    std::fs::write(dir.join("f.bin"), pattern(size)).unwrap();
    let mut w = pair(Faults::NONE, 63);
    let mut server = dir_store_server(&mut w, dir);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let want: [u8; 32] = Sha256::digest(pattern(size)).into();
    for (kept, right) in [(0, true), (300_000, true), (size, true), (300_000, false)] {
        let mut prefix = pattern(size)[..kept].to_vec();
        if !right {
            prefix[1234] ^= 1;
        }
        let conn = tcp_socket(sock.stack(), 4096, 4096);
        sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
        let mut got = Vec::new();
        let result = transfer::get(
            &mut sock.stream(conn),
            "f.bin",
            (kept as u64, Sha256::new_with_prefix(&prefix)),
            &mut |data| {
                got.extend_from_slice(data);
                Ok(())
            },
            &mut |_, _| {},
        );
        if right {
            assert_eq!(result, Ok((size as u64, want)), "kept {kept}");
            assert!(
                got == pattern(size)[kept..],
                "kept {kept}: the rest, in order"
            );
        } else {
            assert_eq!(result, Err(TransferError::DigestMismatch));
        }
        sock.stack().close(conn).unwrap();
    }
}

/// A fresh directory under the target dir, removed with the value.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("transfer-peer-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Frames of a put: the request, or the trailer.
fn frame_of(message: Message<'_>) -> Vec<u8> {
    let mut frame = [0u8; 300];
    let n = message.emit(&mut frame).unwrap();
    frame[..n].to_vec()
}

#[test]
fn overlapping_puts_of_one_name_into_a_directory_store_the_newer_whole_the_older_conflict() {
    let scratch = tempdir();
    let dir = scratch.path();
    let mut w = pair(Faults::NONE, 61);
    let mut server = dir_store_server(&mut w, dir);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    // The older put: its request and half its data, then it waits.
    let older = vec![b'o'; 60_000];
    let first = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(first, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(
        first,
        &frame_of(Message::Put {
            name: "f",
            size: 60_000,
        }),
    )
    .unwrap();
    sock.send_all(first, &older[..30_000]).unwrap();
    sock.flush(first).unwrap();
    // The newer put of the same name runs whole, verified.
    let second = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(second, ep(B, TRANSFER_PORT)).unwrap();
    let newer = Pattern(50_000);
    let digest = transfer::put(&mut sock.stream(second), "f", &newer, &mut |_, _| {}).unwrap();
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(pattern(50_000))));
    // The older one finishes, with a right trailer: refused, never verified.
    sock.send_all(first, &older[30_000..]).unwrap();
    let trailer: [u8; 32] = Sha256::digest(&older).into();
    sock.send_all(first, &frame_of(Message::Trailer { sha256: trailer }))
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(first, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    let status = reply[4 + 21 + 4..].to_vec();
    assert_eq!(&status[..5], b"RNT2\x04");
    assert_eq!(status[5], Status::Conflict as u8, "{reply:?}");
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), pattern(50_000));
    assert_eq!(names_in(dir), ["f"], "no temporaries left");
}

#[test]
fn a_put_larger_than_the_disk_allows_is_no_space_before_any_data() {
    let scratch = tempdir();
    let dir = scratch.path();
    let mut w = pair(Faults::NONE, 62);
    let backlog = tcp_socket(&mut w.stacks[B], 4096, 4096);
    let store = DirStore::new(dir).unwrap().with_max_upload(Some(10_000));
    let mut server: TransferServer<_> =
        TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &[backlog], store).unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, TRANSFER_PORT)).unwrap();
    let mut sent = 0;
    let result = transfer::put(
        &mut sock.stream(conn),
        "big",
        &Pattern(10_001),
        &mut |n, _| sent = n,
    );
    assert!(
        matches!(
            result,
            Err(TransferError::Refused {
                status: Status::NoSpace,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(sent, 0, "refused before a byte of data");
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "nothing on disk"
    );
}

#[test]
fn a_version_2_client_facing_a_version_1_server_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = read_frame(&mut stream);
        // What a version 1 server answers a frame it cannot read: its status, "bad magic".
        let mut reply = frame_of(Message::Status {
            status: Status::BadRequest,
            digest: [0; 32],
            reason: "bad magic",
        });
        reply[4..8].copy_from_slice(b"RNT1");
        stream.write_all(&reply).unwrap();
    });
    let scratch = tempdir();
    let dir = scratch.path();
    let local = dir.join("in.bin");
    std::fs::write(&local, b"hello").unwrap();
    let error = put_file(addr, &local, "in.bin", TIMEOUT, true).unwrap_err();
    assert!(
        matches!(error, PeerError::Transfer(TransferError::Version1Peer)),
        "{error}"
    );
    assert!(error.to_string().contains("version 1"), "{error}");
}

/// The status frame that ends `conn`'s exchange: its status byte and reason, read once
/// the server closed.
fn final_status<W: Waiter>(sock: &mut Blocking<'_, '_, W>, conn: SocketHandle) -> (Status, String) {
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = sock.recv(conn, &mut buf) {
        reply.extend_from_slice(&buf[..n]);
    }
    // The status is the last frame: its 4-byte length, then its message.
    let at = reply
        .windows(5)
        .rposition(|w| w == b"RNT2\x04")
        .unwrap_or_else(|| panic!("no status frame in {reply:?}"));
    let message = &reply[at..];
    let (status, reason) = match Message::parse(message).unwrap() {
        Message::Status { status, reason, .. } => (status, reason.to_string()),
        other => panic!("expected a status, got {other:?}"),
    };
    (status, reason)
}

#[test]
fn puts_into_the_digest_store_cut_wrong_or_overlapping_leave_no_record_and_the_next_is_kept() {
    // serve without --files: the digest store hashes a put on a thread of its own. A put
    // cut midway by a reset, one whose trailer is wrong, and the older of two overlapping
    // puts of one name must each leave no record, and the next put of the name be kept.
    let mut w = pair(Faults::NONE, 63);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
        .collect();
    let mut server: TransferServer<HostStore> = TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &backlog,
        HostStore::Digests(Box::default()),
    )
    .unwrap();
    let server_cell = std::cell::RefCell::new(&mut server);
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server_cell.borrow_mut().poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let data = pattern(700_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    let put_request = frame_of(Message::Put {
        name: "f",
        size: data.len() as u64,
    });

    // Cut by a reset after 300 000 bytes, more than one of the thread's blocks.
    let cut = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(cut, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(cut, &put_request).unwrap();
    sock.send_all(cut, &data[..300_000]).unwrap();
    sock.flush(cut).unwrap();
    sock.stack().abort(cut).unwrap();
    // The wrong trailer: all the data, a digest of other data.
    let wrong = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(wrong, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(wrong, &put_request).unwrap();
    sock.send_all(wrong, &data).unwrap();
    sock.send_all(wrong, &frame_of(Message::Trailer { sha256: [7; 32] }))
        .unwrap();
    let (status, reason) = final_status(&mut sock, wrong);
    assert_eq!(status, Status::DigestMismatch, "{reason}");
    sock.stack().close(wrong).unwrap();
    assert_eq!(
        server_cell.borrow_mut().store().size("f"),
        Err(StoreError::NotFound),
        "neither the cut put nor the wrong one is recorded"
    );

    // Overlapping: the older put's request and part of its data, then a newer put of the
    // name runs whole; the older, finished with a right trailer, is a conflict.
    let older = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(older, ep(B, TRANSFER_PORT)).unwrap();
    let old_data = vec![b'o'; 400_000];
    sock.send_all(
        older,
        &frame_of(Message::Put {
            name: "f",
            size: old_data.len() as u64,
        }),
    )
    .unwrap();
    sock.send_all(older, &old_data[..300_000]).unwrap();
    sock.flush(older).unwrap();
    let newer = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(newer, ep(B, TRANSFER_PORT)).unwrap();
    let kept = transfer::put(
        &mut sock.stream(newer),
        "f",
        &Pattern(data.len() as u64),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(kept, digest);
    sock.send_all(older, &old_data[300_000..]).unwrap();
    let old_digest: [u8; 32] = Sha256::digest(&old_data).into();
    sock.send_all(older, &frame_of(Message::Trailer { sha256: old_digest }))
        .unwrap();
    let (status, reason) = final_status(&mut sock, older);
    assert_eq!(status, Status::Conflict, "{reason}");
    {
        let mut server = server_cell.borrow_mut();
        let HostStore::Digests(sink) = server.store() else {
            unreachable!("built as a digest store")
        };
        assert_eq!(sink.record("f"), Some((data.len() as u64, digest)));
    }

    // A get: refused, and says why.
    let get = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(get, ep(B, TRANSFER_PORT)).unwrap();
    sock.send_all(
        get,
        &frame_of(Message::Get {
            name: "f",
            offset: 0,
        }),
    )
    .unwrap();
    let (status, reason) = final_status(&mut sock, get);
    assert_eq!(status, Status::Storage);
    assert_eq!(reason, "this store keeps digests only");
}
