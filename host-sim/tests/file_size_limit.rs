//! The directory store under a file-size limit (`ulimit -f`, `RLIMIT_FSIZE`): a put larger
//! than the limit must be refused as no space, before any byte, and a write that meets the
//! limit later must fail the upload with no space, leaving nothing under any name. The
//! kernel signals a write past the limit with `SIGXFSZ`, whose default action ends the
//! whole process: the limit is set in a child process (this test binary run again), so
//! that a store that let the signal through kills the child and fails the test, not the
//! test runner.

use std::path::{Path, PathBuf};

use host_sim::store::DirStore;
use ringnet::blocking::Blocking;
use ringnet::services::{Pattern, TRANSFER_PORT};
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::transfer::{self, Status, Store, StoreError, TransferError, TransferServer};
use ringnet::{Instant, Stack};
use ringnet_testkit::child_test::{self, ChildTestError};
use ringnet_testkit::{ep, names_in, pair, tcp_socket, A, B};

/// Set in the child: the directory it stores into.
const CHILD: &str = "RINGNET_FSIZE_CHILD_DIR";
/// The child's file-size limit.
const LIMIT: u64 = 64 * 1024;

/// Sets this process's file-size limit (the soft one, which the kernel enforces) to `bytes`.
#[allow(unsafe_code)]
fn limit_file_size(bytes: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit that outlives both calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// What the child checks, under the limit.
fn child(dir: &Path) {
    limit_file_size(LIMIT);
    // A put over the wire larger than the limit: no space, before a byte of data.
    let mut w = pair(Faults::NONE, 64);
    let backlog = tcp_socket(&mut w.stacks[B], 4096, 4096);
    let mut server: TransferServer<_> = TransferServer::new(
        &mut w.stacks[B],
        TRANSFER_PORT,
        &[backlog],
        DirStore::new(dir).unwrap(),
    )
    .unwrap();
    {
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
            &Pattern(3 * LIMIT),
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
    }
    assert_eq!(names_in(dir), Vec::<String>::new(), "nothing on disk");
    // An upload begun within the limit that meets a lower one as it writes (the limit
    // changed, or the store's check was passed some other way): no space, nothing left.
    let mut store = DirStore::new(dir).unwrap();
    limit_file_size(4 * LIMIT);
    let mut up = store.begin_verified("later", 3 * LIMIT).unwrap();
    limit_file_size(LIMIT);
    let data = vec![7u8; 3 * LIMIT as usize];
    let written = store.write(&mut up, &data);
    let committed = written.and_then(|()| store.commit(up));
    assert_eq!(committed, Err(StoreError::NoSpace));
    assert_eq!(names_in(dir), Vec::<String>::new(), "no file, no temporary");
}

#[test]
fn a_put_past_the_file_size_limit_is_no_space_and_the_process_lives() {
    if let Some(dir) = std::env::var_os(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let dir: PathBuf =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fsize-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let outcome = child_test::rerun(
        "a_put_past_the_file_size_limit_is_no_space_and_the_process_lives",
        (CHILD, dir.as_os_str()),
        None,
    );
    match outcome {
        Ok(_) => {}
        Err(ChildTestError::NotStarted(e)) => panic!("starting the child: {e}"),
        Err(ChildTestError::Failed(out)) => panic!(
            "the child under a {LIMIT}-byte file-size limit failed ({}):\n{out}",
            out.status
        ),
        Err(ChildTestError::NotRun(out)) => panic!("the child ran the check:\n{out}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
