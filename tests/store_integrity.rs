//! Hostile and unlucky clients against the HTTP and transfer servers over the simulated
//! wire, with a store that fails on demand: every failure aborts the upload, every refusal
//! is a status the client reads (never a reset), and no reader gets a mix of versions.

use ringnet::blocking::{Blocking, Waiter};
use ringnet::http::HttpServer;
use ringnet::services::{Pattern, TRANSFER_PORT};
use ringnet::sim::Faults;
use ringnet::transfer::{self, RamStore, Status, Store, StoreError, TransferError, TransferServer};
use ringnet::{Duration, Instant, SocketHandle, Stack};
use ringnet_testkit::*;

const PORT: u16 = 80;

/// A [`MemStore`] that fails on demand and counts what the servers did with it.
#[derive(Default)]
struct FlakyStore {
    inner: MemStore,
    /// Uploads larger than this are refused at begin (`NoSpace`).
    limit: Option<u64>,
    /// Writes fail with this once an upload holds `fail_after` bytes.
    fail_write: Option<(usize, StoreError)>,
    /// Commits fail with this.
    fail_commit: Option<StoreError>,
    /// The store hashes each upload itself ([`Store::hashes`]): the SHA-256 of this salt,
    /// then the data, so that a test tells the store's digest from the server's.
    hashes_with_salt: Option<&'static [u8]>,
    /// [`Store::upload_digest`] fails with this.
    fail_digest: Option<StoreError>,
    /// Times [`Store::upload_digest`] was asked.
    digests_asked: usize,
    /// Once an upload holds this many bytes, [`Store::upload_room`] answers 0 for the
    /// next `.1` asks (a writer thread that fell behind).
    full_at: Option<(usize, usize)>,
    /// Asks answered 0.
    full_asks: usize,
    /// Whether the last ask was answered 0.
    full_now: bool,
    /// Writes that came while the store had said it had no room.
    writes_while_full: usize,
    begun: usize,
    aborted: usize,
    committed: usize,
}

struct FlakyUpload {
    inner: <MemStore as Store>::Upload,
    written: usize,
    sha: Option<sha2::Sha256>,
}

impl Store for FlakyStore {
    type Upload = FlakyUpload;
    type Reader = <MemStore as Store>::Reader;
    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.inner.size(name)
    }
    fn open(&mut self, name: &str) -> Result<(Self::Reader, u64), StoreError> {
        self.inner.open(name)
    }
    fn read_at(
        &mut self,
        r: &mut Self::Reader,
        at: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        self.inner.read_at(r, at, buf)
    }
    fn begin(&mut self, name: &str, size: u64) -> Result<FlakyUpload, StoreError> {
        if self.limit.is_some_and(|limit| size > limit) {
            return Err(StoreError::NoSpace);
        }
        self.begun += 1;
        Ok(FlakyUpload {
            inner: self.inner.begin(name, size)?,
            written: 0,
            sha: self.hashes_with_salt.map(|salt| {
                use sha2::Digest as _;
                sha2::Sha256::new_with_prefix(salt)
            }),
        })
    }
    fn hashes(&self, up: &FlakyUpload) -> bool {
        up.sha.is_some()
    }
    fn upload_digest(&mut self, up: &mut FlakyUpload) -> Result<transfer::Digest, StoreError> {
        use sha2::Digest as _;
        self.digests_asked += 1;
        if let Some(e) = self.fail_digest {
            return Err(e);
        }
        let sha = up.sha.take().ok_or(StoreError::Io)?;
        Ok(sha.finalize().into())
    }
    fn write(&mut self, up: &mut FlakyUpload, data: &[u8]) -> Result<(), StoreError> {
        use sha2::Digest as _;
        if let Some(sha) = &mut up.sha {
            sha.update(data);
        }
        if self.full_now {
            self.writes_while_full += 1;
        }
        up.written += data.len();
        match self.fail_write {
            Some((after, e)) if up.written > after => Err(e),
            _ => self.inner.write(&mut up.inner, data),
        }
    }
    fn upload_room(&mut self, up: &FlakyUpload) -> usize {
        self.full_now = match self.full_at {
            Some((at, asks)) => up.written >= at && self.full_asks < asks,
            None => false,
        };
        if self.full_now {
            self.full_asks += 1;
            return 0;
        }
        usize::MAX
    }
    fn commit(&mut self, up: FlakyUpload) -> Result<(), StoreError> {
        if let Some(e) = self.fail_commit {
            self.inner.abort(up.inner);
            return Err(e);
        }
        self.committed += 1;
        self.inner.commit(up.inner)
    }
    fn abort(&mut self, up: FlakyUpload) {
        self.aborted += 1;
        self.inner.abort(up.inner)
    }
    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.inner.remove(name)
    }
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        self.inner.for_each(f)
    }
}

fn http_world<S: Store>(store: S) -> (World<2>, HttpServer<S, 4>) {
    let mut w = pair(Faults::NONE, 71);
    let backlog: Vec<_> = (0..4)
        .map(|_| tcp_socket(&mut w.stacks[B], 2048, 2048))
        .collect();
    let server = HttpServer::new(&mut w.stacks[B], PORT, &backlog, store).unwrap();
    (w, server)
}

/// What the server sends until it closes (or resets), as text.
fn read_text<D: Waiter>(sock: &mut Blocking<'_, 'static, D>, conn: SocketHandle) -> String {
    String::from_utf8_lossy(&read_until_gone(sock, conn)).into_owned()
}

fn status_of(raw: &str) -> u16 {
    raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends `request` on a fresh connection and reads everything the server answers.
macro_rules! exchange {
    ($w:ident, $server:ident, $request:expr) => {{
        client_of!(
            $w,
            |b: &mut Stack<'static>, _: Instant| $server.poll(b),
            sock,
            conn,
            PORT,
            (8192, 8192)
        );
        sock.send_all(conn, $request).unwrap();
        let raw = read_text(&mut sock, conn);
        let _ = sock.stack().close(conn);
        raw
    }};
}

#[test]
fn a_store_that_fails_mid_body_gets_507_and_the_upload_aborted() {
    let (mut w, mut server) = http_world(FlakyStore {
        fail_write: Some((1000, StoreError::NoSpace)),
        ..Default::default()
    });
    let mut request = b"PUT /f HTTP/1.1\r\nContent-Length: 4000\r\n\r\n".to_vec();
    request.extend_from_slice(&[7; 4000]);
    let raw = exchange!(w, server, &request);
    assert_eq!(status_of(&raw), 507, "{raw}");
    let store = server.store();
    assert_eq!((store.begun, store.aborted, store.committed), (1, 1, 0));
    assert_eq!(store.size("f"), Err(StoreError::NotFound));
    // Any other failure: 500, aborted too.
    store.fail_write = Some((0, StoreError::Io));
    let raw = exchange!(w, server, &request);
    assert_eq!(status_of(&raw), 500, "{raw}");
    assert_eq!(server.store().aborted, 2);
}

#[test]
fn a_body_larger_than_the_store_is_413_before_100_continue() {
    let (mut w, mut server) = http_world(FlakyStore {
        limit: Some(1 << 20),
        ..Default::default()
    });
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nContent-Length: 1000000000000000\r\nExpect: 100-continue\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 413, "{raw}");
    assert!(!raw.contains("100 Continue"), "{raw}");
    assert_eq!(server.store().begun, 0, "nothing was begun");
}

#[test]
fn a_refused_commit_is_409_and_never_201() {
    let (mut w, mut server) = http_world(FlakyStore {
        fail_commit: Some(StoreError::Conflict),
        ..Default::default()
    });
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    );
    assert_eq!(status_of(&raw), 409, "{raw}");
    assert_eq!(server.store().size("f"), Err(StoreError::NotFound));
}

#[test]
fn an_untrustworthy_content_length_is_400_and_the_connection_closes() {
    let (mut w, mut server) = http_world(FlakyStore::default());
    for head in [
        "Content-Length: 3\r\nContent-Length: 5",
        "Content-Length: +3",
        "Content-Length: 3, 5",
        "Content-Length: 3\r\nTransfer-Encoding: chunked",
    ] {
        let request = format!("PUT /f HTTP/1.1\r\n{head}\r\n\r\nabcde GET / HTTP/1.1\r\n\r\n");
        let raw = exchange!(w, server, request.as_bytes());
        assert_eq!(status_of(&raw), 400, "{head}: {raw}");
        assert_eq!(
            raw.matches("HTTP/1.1 ").count(),
            1,
            "no second response: {raw}"
        );
        assert!(raw.contains("Connection: close"));
    }
    assert_eq!(server.store().begun, 0);
}

#[test]
fn the_smaller_cases_answer_as_the_rfcs_say() {
    let (mut w, mut server) = http_world(FlakyStore::default());
    server
        .store()
        .inner
        .files
        .insert("f".into(), b"hello".to_vec());
    let raw = exchange!(
        w,
        server,
        b"GET /f HTTP/1.1\r\nRange: bytes=99999999999999999999999-\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 416, "{raw}");
    let raw = exchange!(
        w,
        server,
        b"GET /f HTTP/1.1\r\nRange: bytes=+1-+2\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 200, "a malformed range is ignored: {raw}");
    let many: String = (0..17).map(|i| format!("X-{i}: y\r\n")).collect();
    let raw = exchange!(
        w,
        server,
        format!("GET /f HTTP/1.1\r\n{many}\r\n").as_bytes()
    );
    assert_eq!(status_of(&raw), 431, "{raw}");
    let raw = exchange!(
        w,
        server,
        b"GET http://dev/f HTTP/1.1\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 200, "absolute form: {raw}");
    assert!(raw.ends_with("hello"));
    let raw = exchange!(
        w,
        server,
        b"PUT /stats HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
    );
    assert_eq!(status_of(&raw), 405, "{raw}");
    server
        .store()
        .inner
        .files
        .insert("a b".into(), b"xy".to_vec());
    let raw = exchange!(w, server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(
        raw.contains("\na%20b 2\n") || raw.contains("\r\n\r\na%20b 2\n"),
        "{raw}"
    );
}

#[test]
fn writes_need_the_token_once_one_is_set_and_delete_and_post_work() {
    let (mut w, mut server) = http_world(FlakyStore::default());
    server.set_token(Some("s3cret")).unwrap();
    let raw = exchange!(w, server, b"PUT /f HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(status_of(&raw), 401, "{raw}");
    assert!(raw.contains("WWW-Authenticate: Bearer"));
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nAuthorization: Bearer wrong\r\nContent-Length: 2\r\n\r\nhi"
    );
    assert_eq!(status_of(&raw), 401, "{raw}");
    assert_eq!(server.store().begun, 0);
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert_eq!(status_of(&raw), 201, "{raw}");
    let raw = exchange!(
        w,
        server,
        b"POST /f HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\n\r\nho"
    );
    assert_eq!(status_of(&raw), 409, "POST never replaces: {raw}");
    let raw = exchange!(
        w,
        server,
        b"DELETE /f HTTP/1.1\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 401, "{raw}");
    let raw = exchange!(
        w,
        server,
        b"DELETE /f HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw), 204, "{raw}");
    assert_eq!(server.store().size("f"), Err(StoreError::NotFound));
    let raw = exchange!(
        w,
        server,
        b"POST /g HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    assert_eq!(status_of(&raw), 201, "{raw}");
    let raw = exchange!(w, server, b"GET /g HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(raw.ends_with("\r\n\r\nok"), "{raw}");
}

#[test]
fn connection_options_are_a_list_and_the_auth_scheme_is_case_insensitive() {
    let (mut w, mut server) = http_world(FlakyStore::default());
    server.set_token(Some("s3cret")).unwrap();
    // RFC 9110 11.1: `bearer` is the same scheme as `Bearer`.
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nAuthorization: bEaReR s3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert_eq!(status_of(&raw), 201, "{raw}");
    let raw = exchange!(
        w,
        server,
        b"PUT /f HTTP/1.1\r\nAuthorization: Bearers3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert_eq!(status_of(&raw), 401, "no space after the scheme: {raw}");
    // RFC 9110 7.6.1: a list, over one field or several; `close` anywhere in it closes,
    // so a request pipelined after it is not answered.
    for close in [
        "Connection: TE, close\r\nTE: trailers\r\n",
        "Connection: keep-alive\r\nConnection: CLOSE\r\n",
    ] {
        let request = format!("GET /f HTTP/1.1\r\n{close}\r\nGET /f HTTP/1.1\r\n\r\n");
        let raw = exchange!(w, server, request.as_bytes());
        assert_eq!(raw.matches("HTTP/1.1 200").count(), 1, "{close:?}: {raw}");
        assert!(raw.ends_with("\r\n\r\nhi"), "{raw}");
    }
}

#[test]
fn a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_head_deadline() {
    let (mut w, mut server) = http_world(FlakyStore::default());
    server.set_head_timeout(Duration::from_secs(3));
    client_of!(
        w,
        |b: &mut Stack<'static>, _: Instant| server.poll(b),
        sock,
        conn,
        PORT,
        (4096, 4096)
    );
    let start = sock.stack().now();
    // One byte a second keeps the 10 s idle timer from ever expiring.
    for byte in b"GET /f HTTP/1.1\r\nX: y" {
        if sock.send_all(conn, &[*byte]).is_err() {
            break;
        }
        sock.sleep(Duration::from_secs(1));
        if sock.stack().now() - start > Duration::from_secs(6) {
            break;
        }
    }
    let raw = read_text(&mut sock, conn);
    assert_eq!(status_of(&raw), 408, "{raw}");
    assert!(sock.stack().now() - start < Duration::from_secs(6));
    // Counted once, as a slow request: no byte-less idling happened.
    let b = sock.waiter().peer();
    let total = |f: fn(&ringnet::observe::SocketStats) -> u32| -> u32 {
        b.stats_rows()
            .filter(|r| r.local_port == PORT)
            .map(|r| f(&r.stats))
            .sum()
    };
    assert_eq!(total(|s| s.slow_requests), 1);
    assert_eq!(total(|s| s.idle_timeouts), 0);
}

#[test]
fn a_get_cut_short_by_a_reused_ram_slot_is_reset_never_switched() {
    // Three slots: the version read (0), its replacement (1), and a third upload that
    // reuses slot 0 while the get is still sending it.
    let (mut w, mut server) = http_world(RamStore::<3, 65536>::new());
    let put = |server: &mut HttpServer<RamStore<3, 65536>, 4>, name: &str, byte: u8| {
        let store = server.store();
        let mut up = store.begin(name, 60_000).unwrap();
        store.write(&mut up, &[byte; 60_000]).unwrap();
        store.commit(up).unwrap();
    };
    put(&mut server, "f", b'o');
    let server = std::cell::RefCell::new(server);
    client_of!(
        w,
        |b: &mut Stack<'static>, _: Instant| server.borrow_mut().poll(b),
        sock,
        conn,
        PORT,
        (1024, 1024)
    );
    sock.send_all(conn, b"GET /f HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 4096];
    sock.recv_exact(conn, &mut got).unwrap();
    put(&mut server.borrow_mut(), "f", b'n');
    put(&mut server.borrow_mut(), "g", b'g');
    let raw = read_text(&mut sock, conn);
    let body_start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body: Vec<u8> = got[body_start..]
        .iter()
        .copied()
        .chain(raw.bytes())
        .collect();
    assert!(body.len() < 60_000, "cut short, not completed");
    assert!(body.iter().all(|&b| b == b'o'), "only the version opened");
}

fn transfer_world(store: FlakyStore) -> (World<2>, TransferServer<FlakyStore>, SocketHandle) {
    let mut w = pair(Faults::NONE, 72);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 4096, 4096))
        .collect();
    let server = TransferServer::new(&mut w.stacks[B], TRANSFER_PORT, &backlog, store).unwrap();
    let client = tcp_socket(&mut w.stacks[A], 4096, 4096);
    (w, server, client)
}

fn put_status(
    store: FlakyStore,
    size: u64,
) -> (Result<transfer::Digest, TransferError>, FlakyStore) {
    let (result, store, _) = put_with_zero_windows(store, size);
    (result, store)
}

/// [`put_status`], and the zero windows the server's stack advertised.
fn put_with_zero_windows(
    store: FlakyStore,
    size: u64,
) -> (Result<transfer::Digest, TransferError>, FlakyStore, u32) {
    let (mut w, mut server, client) = transfer_world(store);
    let result = {
        let wire = w.wire;
        let (a, b) = w.two(A, B);
        let mut driver =
            ringnet::sim::PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
                server.poll(b)
            })
            .with_app_tick(Duration::from_millis(50));
        let mut sock = Blocking::new(a, &mut driver);
        sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
        transfer::put(
            &mut sock.stream(client),
            "f",
            &Pattern(size),
            &mut |_, _| {},
        )
    };
    let zero_windows = w.stacks[B]
        .stats_rows()
        .map(|row| row.stats.zero_windows)
        .sum();
    let store = std::mem::take(server.store());
    (result, store, zero_windows)
}

#[test]
fn a_store_without_room_closes_the_window_and_the_upload_goes_on_when_it_has_room() {
    use sha2::{Digest as _, Sha256};
    let size = 200_000;
    let data: Vec<u8> = (0..size).map(ringnet::services::pattern_byte).collect();
    let want: transfer::Digest = Sha256::digest(&data).into();
    // A store that always has room: the server reads as fast as data comes.
    let (result, store, zero_windows) = put_with_zero_windows(FlakyStore::default(), size);
    assert_eq!(result, Ok(want));
    assert_eq!((store.full_asks, store.writes_while_full), (0, 0));
    assert_eq!(zero_windows, 0, "a store with room never closes the window");
    // One whose writer falls behind at 50 000 bytes, for 40 polls: the server takes
    // nothing meanwhile, the data waits in the 4 KiB rx ring, which advertises a zero
    // window; then the upload goes on and is stored whole.
    let behind = FlakyStore {
        full_at: Some((50_000, 400)),
        ..Default::default()
    };
    let (result, mut store, zero_windows) = put_with_zero_windows(behind, size);
    assert_eq!(result, Ok(want));
    assert_eq!(store.full_asks, 400);
    assert_eq!(store.writes_while_full, 0, "nothing written while full");
    assert!(zero_windows >= 1, "the window closed ({zero_windows})");
    assert_eq!((store.aborted, store.committed), (0, 1));
    assert_eq!(store.size("f"), Ok(size));
}

#[test]
fn a_full_store_mid_upload_is_the_no_space_status_never_a_reset() {
    let (result, store) = put_status(
        FlakyStore {
            fail_write: Some((10_000, StoreError::NoSpace)),
            ..Default::default()
        },
        200_000,
    );
    match result {
        Err(TransferError::Refused { status, .. }) => assert_eq!(status, Status::NoSpace),
        other => panic!("expected the no-space status, got {other:?}"),
    }
    assert_eq!((store.aborted, store.committed), (1, 0));
}

#[test]
fn a_lost_race_is_the_conflict_status_never_verified() {
    let (result, store) = put_status(
        FlakyStore {
            fail_commit: Some(StoreError::Conflict),
            ..Default::default()
        },
        5000,
    );
    match result {
        Err(TransferError::Refused { status, .. }) => assert_eq!(status, Status::Conflict),
        other => panic!("expected the conflict status, got {other:?}"),
    }
    assert_eq!(store.committed, 0);
}

/// Sends `bytes` raw to the transfer server over `store`; the frames it answers, and the
/// store.
fn raw_put(store: FlakyStore, bytes: &[u8]) -> (Vec<u8>, FlakyStore) {
    let (mut w, mut server, client) = transfer_world(store);
    let reply = {
        let wire = w.wire;
        let (a, b) = w.two(A, B);
        let mut driver =
            ringnet::sim::PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
                server.poll(b)
            })
            .with_app_tick(Duration::from_millis(50));
        let mut sock = Blocking::new(a, &mut driver);
        sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
        sock.send_all(client, bytes).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = sock.recv(client, &mut buf) {
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    };
    assert_eq!(server.active(), 0);
    (reply, std::mem::take(server.store()))
}

fn v2_put(name: &str, data: &[u8], trailer: transfer::Digest) -> Vec<u8> {
    let mut frame = [0u8; 300];
    let mut bytes = Vec::new();
    let size = data.len() as u64;
    let n = transfer::Message::Put { name, size }
        .emit(&mut frame)
        .unwrap();
    bytes.extend_from_slice(&frame[..n]);
    bytes.extend_from_slice(data);
    let n = transfer::Message::Trailer { sha256: trailer }
        .emit(&mut frame)
        .unwrap();
    bytes.extend_from_slice(&frame[..n]);
    bytes
}

/// The status of the last frame of a reply.
fn last_status(reply: &[u8]) -> Option<Status> {
    let mut rest = reply;
    let mut last = None;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        if let Ok(transfer::Message::Status { status, .. }) =
            transfer::Message::parse(&rest[4..4 + len])
        {
            last = Some(status);
        }
        rest = &rest[4 + len..];
    }
    last
}

#[test]
fn a_wrong_trailer_aborts_the_staged_upload_and_never_commits() {
    use sha2::{Digest as _, Sha256};
    let data = vec![0x3c; 30_000];
    let (reply, mut store) = raw_put(FlakyStore::default(), &v2_put("f", &data, [0; 32]));
    assert_eq!(last_status(&reply), Some(Status::DigestMismatch));
    assert_eq!((store.begun, store.aborted, store.committed), (1, 1, 0));
    assert_eq!(store.size("f"), Err(StoreError::NotFound));
    // The same bytes with their true digest: committed once, nothing aborted.
    let right: transfer::Digest = Sha256::digest(&data).into();
    let (reply, mut store) = raw_put(FlakyStore::default(), &v2_put("f", &data, right));
    assert_eq!(last_status(&reply), Some(Status::Ok));
    assert_eq!((store.begun, store.aborted, store.committed), (1, 0, 1));
    assert_eq!(store.size("f"), Ok(30_000));
    assert_eq!(
        store.digests_asked, 0,
        "a store that does not hash is never asked"
    );
}

#[test]
fn a_store_that_hashes_its_uploads_gives_the_digest_the_trailer_is_checked_against() {
    use sha2::{Digest as _, Sha256};
    let data = vec![0x5a; 70_000];
    let salt: &'static [u8] = b"store";
    let hashing = || FlakyStore {
        hashes_with_salt: Some(salt),
        ..Default::default()
    };
    // The data's true digest is not what this store computes: the server took the
    // store's digest, not one of its own.
    let true_digest: transfer::Digest = Sha256::digest(&data).into();
    let (reply, mut store) = raw_put(hashing(), &v2_put("f", &data, true_digest));
    assert_eq!(last_status(&reply), Some(Status::DigestMismatch));
    assert_eq!(
        (store.digests_asked, store.aborted, store.committed),
        (1, 1, 0)
    );
    assert_eq!(store.size("f"), Err(StoreError::NotFound));
    let mut salted = Sha256::new_with_prefix(salt);
    salted.update(&data);
    let store_digest: transfer::Digest = salted.finalize().into();
    let (reply, mut store) = raw_put(hashing(), &v2_put("f", &data, store_digest));
    assert_eq!(last_status(&reply), Some(Status::Ok));
    assert_eq!(
        (store.digests_asked, store.aborted, store.committed),
        (1, 0, 1)
    );
    assert_eq!(store.size("f"), Ok(70_000));
    // A store that fails while it finishes the upload: its status, the upload aborted.
    let failing = FlakyStore {
        fail_digest: Some(StoreError::NoSpace),
        ..hashing()
    };
    let (reply, mut store) = raw_put(failing, &v2_put("f", &data, store_digest));
    assert_eq!(last_status(&reply), Some(Status::NoSpace));
    assert_eq!(
        (store.digests_asked, store.aborted, store.committed),
        (1, 1, 0)
    );
    assert_eq!(store.size("f"), Err(StoreError::NotFound));
}

#[test]
fn a_truncated_upload_is_aborted_with_a_status() {
    let data = vec![0x3c; 30_000];
    let whole = v2_put("f", &data, [0; 32]);
    // Cut in the data, and cut in the trailer; each followed by FIN.
    for cut in [whole.len() - 41 - 10_000, whole.len() - 20] {
        let (mut w, mut server, client) = transfer_world(FlakyStore::default());
        let reply = {
            let wire = w.wire;
            let (a, b) = w.two(A, B);
            let mut driver = ringnet::sim::PeerWaiter::new(
                wire,
                A,
                b,
                B,
                |b: &mut Stack<'static>, _: Instant| server.poll(b),
            )
            .with_app_tick(Duration::from_millis(50));
            let mut sock = Blocking::new(a, &mut driver);
            sock.connect(client, ep(B, TRANSFER_PORT)).unwrap();
            sock.send_all(client, &whole[..cut]).unwrap();
            sock.stack().shutdown_write(client).unwrap();
            let mut reply = Vec::new();
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = sock.recv(client, &mut buf) {
                reply.extend_from_slice(&buf[..n]);
            }
            reply
        };
        let expected = if cut < whole.len() - 41 {
            Status::SizeMismatch
        } else {
            Status::BadRequest
        };
        assert_eq!(last_status(&reply), Some(expected), "cut at {cut}");
        let store = server.store();
        assert_eq!((store.begun, store.aborted, store.committed), (1, 1, 0));
        assert_eq!(store.size("f"), Err(StoreError::NotFound));
    }
}
