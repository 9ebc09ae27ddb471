//! What the directory store keeps in memory for the names a peer chooses: a peer that
//! puts a file under a fresh name and deletes it again, over and over (`PUT` then
//! `DELETE` on one keep-alive connection, as `serve`'s HTTP server takes them without a
//! token), must not make `serve` hold memory for every name it ever saw. The heap is
//! measured by a counting allocator around the system one, in this test binary only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use host_sim::store::{DirStore, HostStore, SharedStore};
use ringnet::blocking::Blocking;
use ringnet::http::HttpServer;
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::{Instant, Stack};
use ringnet_testkit::{ep, http_response, pair, tcp_socket, A, B};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator as it came; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PORT: u16 = 80;

#[test]
fn a_peer_putting_and_deleting_fresh_names_does_not_grow_the_stores_memory() {
    let scratch = tempfile::Builder::new()
        .prefix("store-names-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dir = scratch.path();
    let mut w = pair(Faults::NONE, 62);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
        .collect();
    let store = SharedStore::new(HostStore::Dir(DirStore::new(dir).unwrap()));
    let mut server: HttpServer<SharedStore, 2> =
        HttpServer::new(&mut w.stacks[B], PORT, &backlog, store).unwrap();
    let wire = w.wire;
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, PORT)).unwrap();
    // Names of 100 bytes, each used once.
    let name = |i: usize| format!("{i:0>100}");
    let cycle = |sock: &mut Blocking<'_, 'static, _>, i: usize| {
        let put = format!("PUT /{} HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", name(i));
        sock.send_all(conn, put.as_bytes()).unwrap();
        assert_eq!(http_response(sock, conn).0, 201);
        let delete = format!("DELETE /{} HTTP/1.1\r\n\r\n", name(i));
        sock.send_all(conn, delete.as_bytes()).unwrap();
        assert_eq!(http_response(sock, conn).0, 204);
    };
    // Warm up: every buffer of the wire, the stacks and the store at its working size.
    for i in 0..100 {
        cycle(&mut sock, i);
    }
    let before = LIVE.load(Ordering::Relaxed);
    const CYCLES: usize = 500;
    for i in 100..100 + CYCLES {
        cycle(&mut sock, i);
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    println!("{CYCLES} names put and deleted: the heap grew by {grown} bytes");
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "nothing left on disk"
    );
    assert!(
        grown < 16 * 1024,
        "{CYCLES} names put and deleted left {grown} bytes on the heap"
    );
}
