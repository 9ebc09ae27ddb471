//! A real file system filling up under `serve --files DIR`: each test runs in a child
//! process (this test binary run again) in a mount namespace of its own (`unshare
//! --mount`), with a 2 MiB tmpfs as the store's directory, and fills it with a file of
//! its own while an upload is under way, or before it begins. Neither protocol may then
//! answer "stored" or "verified", leave a temporary taking space, or touch the version
//! already stored; once there is room again, an upload succeeds. The tmpfs and the
//! namespace go when the child ends. They need root (a mount); without it a test says
//! why and returns, unless `CI` is set, where it fails.

mod both_servers;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use both_servers::{digest, http_put, put_head, transfer_put, with_both_servers};
use ringnet::transfer::{self, Status, TransferError};
use ringnet_testkit::child_test::{self, ChildTestError};
use ringnet_testkit::{http_response, names_in};

/// Set in the child: the directory to mount the tmpfs on.
const CHILD: &str = "RINGNET_FULL_DISK_CHILD_DIR";
/// The tmpfs's size.
const DISK: &str = "2m";
/// The version stored before each test.
const OLD: usize = 200_000;

/// Runs `check` on a directory that is a 2 MiB tmpfs holding `f` (`OLD` bytes of `o`),
/// in a child process in a mount namespace of its own; `test` is the calling test's name.
fn on_a_small_tmpfs(test: &str, check: fn(&Path)) {
    if let Some(dir) = std::env::var_os(CHILD) {
        let dir = Path::new(&dir);
        mount_tmpfs(dir);
        fs::write(dir.join("f"), vec![b'o'; OLD]).unwrap();
        check(dir);
        return;
    }
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("full-disk-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let outcome = child_test::rerun(
        test,
        (CHILD, dir.as_os_str()),
        Some(("unshare", &["--mount", "--propagation", "private"])),
    );
    let _ = fs::remove_dir_all(&dir);
    match outcome {
        Ok(_) => {}
        Err(ChildTestError::NotStarted(e)) => cannot_run(test, &format!("unshare: {e}")),
        Err(ChildTestError::Failed(out)) if out.to_string().contains("unshare failed") => {
            cannot_run(test, out.to_string().trim())
        }
        Err(ChildTestError::Failed(out)) => panic!(
            "the child on a {DISK} tmpfs failed ({}):\n{out}",
            out.status
        ),
        Err(ChildTestError::NotRun(out)) => panic!("the child ran the check:\n{out}"),
    }
}

/// Says why a test could not run: a failure under CI, a note otherwise.
fn cannot_run(test: &str, why: &str) {
    let message =
        format!("{test}: cannot make a mount namespace with a tmpfs ({why}); these tests need root and util-linux");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipped: {message}");
}

fn mount_tmpfs(dir: &Path) {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={DISK}"), "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs on {}", dir.display());
}

/// Writes `filler` until the file system is full (the write that fails with no space).
fn fill(dir: &Path) {
    let mut filler = File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // What is left is less than a page, which no upload fits in.
    let _ = filler.write_all(&[0]);
}

/// The directory as a filled disk leaves it: the old version whole, the filler, nothing
/// else; then the filler removed.
fn old_version_alone(dir: &Path) {
    assert!(
        fs::read(dir.join("f")).unwrap() == vec![b'o'; OLD],
        "the stored version untouched"
    );
    assert_eq!(names_in(dir), ["f", "filler"], "no temporary left");
    fs::remove_file(dir.join("filler")).unwrap();
}

/// An HTTP `PUT` of `size` bytes of `n` as `f` that meets a full disk after its first
/// 100 000: its status, after every byte of the body was offered (a reset that cuts the
/// body short ends the sending; the answer is still read).
fn http_put_meeting_a_full_disk(dir: &Path, size: usize) -> u16 {
    let body = vec![b'n'; size];
    let mut status = 0;
    with_both_servers(dir, |sock, web, _| {
        sock.send_all(web, put_head("f", size).as_bytes()).unwrap();
        sock.send_all(web, &body[..100_000]).unwrap();
        fill(dir);
        let _ = sock.send_all(web, &body[100_000..]);
        status = http_response(sock, web).0;
    });
    status
}

#[test]
fn an_http_put_whose_disk_fills_before_its_commit_is_507_and_the_old_version_stays() {
    on_a_small_tmpfs(
        "an_http_put_whose_disk_fills_before_its_commit_is_507_and_the_old_version_stays",
        |dir| {
            // 400 000 bytes: the writer's first block fails, found at the commit.
            assert_eq!(http_put_meeting_a_full_disk(dir, 400_000), 507);
            old_version_alone(dir);
        },
    );
}

#[test]
fn an_http_put_whose_disk_fills_mid_body_is_507_and_the_old_version_stays() {
    on_a_small_tmpfs(
        "an_http_put_whose_disk_fills_mid_body_is_507_and_the_old_version_stays",
        |dir| {
            // 1.5 MB: the writer's failed first block is found as the body still comes.
            assert_eq!(http_put_meeting_a_full_disk(dir, 1_500_000), 507);
            old_version_alone(dir);
        },
    );
}

#[test]
fn a_transfer_put_whose_disk_fills_mid_data_is_no_space_and_the_old_version_stays() {
    on_a_small_tmpfs(
        "a_transfer_put_whose_disk_fills_mid_data_is_no_space_and_the_old_version_stays",
        |dir| {
            let data = vec![b'n'; 1_500_000];
            with_both_servers(dir, |sock, _, framed| {
                transfer::put_request(&mut sock.stream(framed), "f", None, data.len() as u64)
                    .unwrap();
                sock.send_all(framed, &data[..100_000]).unwrap();
                fill(dir);
                // The server may refuse before the data ends: its status is read either way.
                let sent = sock.send_all(framed, &data[100_000..]);
                let status = match sent {
                    Ok(()) => transfer::put_trailer(&mut sock.stream(framed), digest(&data)),
                    Err(_) => transfer::get_status(&mut sock.stream(framed), digest(&data))
                        .map(|()| digest(&data)),
                };
                match status {
                    Err(TransferError::Refused { status, .. }) => {
                        assert_eq!(status, Status::NoSpace)
                    }
                    other => panic!("expected the no-space status, got {other:?}"),
                }
            });
            old_version_alone(dir);
        },
    );
}

#[test]
fn a_full_disk_refuses_both_protocols_before_a_byte_and_room_again_stores() {
    on_a_small_tmpfs(
        "a_full_disk_refuses_both_protocols_before_a_byte_and_room_again_stores",
        |dir| {
            fill(dir);
            let new = vec![b'n'; 400_000];
            with_both_servers(dir, |sock, web, framed| {
                // HTTP: refused on its head, the body never read.
                sock.send_all(web, put_head("f", new.len()).as_bytes())
                    .unwrap();
                assert_eq!(http_response(sock, web).0, 413, "a PUT onto a full disk");
                // The transfer protocol: refused at its request, before a byte of data.
                let refused = transfer::put_request(&mut sock.stream(framed), "f", None, 400_000);
                match refused {
                    Err(TransferError::Refused { status, .. }) => {
                        assert_eq!(status, Status::NoSpace)
                    }
                    other => panic!("expected the no-space status, got {other:?}"),
                }
            });
            old_version_alone(dir);
            // Room again: both the space and the names are free, and an upload stores.
            with_both_servers(dir, |sock, web, framed| {
                assert_eq!(http_put(sock, web, &new), 201);
                assert_eq!(transfer_put(sock, framed, &new), Ok(digest(&new)));
            });
            assert!(fs::read(dir.join("f")).unwrap() == new, "the new version");
            assert_eq!(names_in(dir), ["f"]);
        },
    );
}
