//! The HTTP/1.1 server over the simulated wire, with a client stack speaking raw HTTP.

use ringnet::blocking::Blocking;
use ringnet::http::HttpServer;
use ringnet::services::pattern_byte;
use ringnet::sim::{Faults, PeerWaiter};
use ringnet::socket::tcp::{RecvError, SendError};
use ringnet::stack::TcpTimers;
use ringnet::transfer::{Store, StoreError};
use ringnet::{Duration, Instant, SocketHandle, SocketOption, Stack};
use ringnet_testkit::*;
use sha2::{Digest, Sha256};

const PORT: u16 = 80;

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A world with an HTTP server of `CONNS` connections on B, holding `files`.
fn setup<const CONNS: usize>(files: &[(&str, Vec<u8>)]) -> (World<2>, HttpServer<MemStore, CONNS>) {
    let mut w = pair(Faults::NONE, 70);
    let backlog: Vec<_> = (0..CONNS)
        .map(|_| tcp_socket(&mut w.stacks[B], 2048, 2048))
        .collect();
    let mut server =
        HttpServer::new(&mut w.stacks[B], PORT, &backlog, MemStore::default()).unwrap();
    for (name, data) in files {
        server.store().files.insert(name.to_string(), data.clone());
    }
    (w, server)
}

/// Reads one response (head, then Content-Length bytes unless `head_only`).
fn read_response<D: ringnet::blocking::Waiter>(
    sock: &mut Blocking<'_, 'static, D>,
    conn: SocketHandle,
    head_only: bool,
) -> Response {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            sock.recv(conn, &mut byte),
            Ok(1),
            "the head ended early: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    if status == 100 {
        return read_response(sock, conn, head_only);
    }
    let len: usize = response
        .header("Content-Length")
        .map_or(0, |v| v.parse().unwrap());
    if !head_only {
        response.body = vec![0u8; len];
        assert_eq!(sock.recv_exact(conn, &mut response.body), Ok(true));
    }
    response
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size as u64).map(pattern_byte).collect()
}

#[test]
fn gets_of_every_size_reuse_one_connection() {
    let files = [
        ("empty", vec![]),
        ("one", vec![7]),
        ("big", pattern(300_000)),
    ];
    let (mut w, mut server) = setup::<4>(&files);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    for (name, data) in &files {
        sock.send_all(
            conn,
            format!("GET /{name} HTTP/1.1\r\nHost: dev\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(Sha256::digest(&r.body), Sha256::digest(data), "{name}");
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }
    assert_eq!(server.served(), 3, "three responses on one connection");
}

#[test]
fn head_has_the_headers_and_no_body_and_options_lists_methods() {
    let (mut w, mut server) = setup::<4>(&[("f", pattern(1000))]);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    sock.send_all(conn, b"HEAD /f HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n")
        .unwrap();
    let head = read_response(&mut sock, conn, true);
    assert_eq!(
        (head.status, head.header("Content-Length")),
        (200, Some("1000"))
    );
    let options = read_response(&mut sock, conn, false);
    assert_eq!(
        options.status, 204,
        "the HEAD sent no body: the next response follows at once"
    );
    assert_eq!(
        options.header("Allow"),
        Some("GET, HEAD, PUT, POST, DELETE, OPTIONS")
    );
}

#[test]
fn a_range_resumes_a_download_and_an_unsatisfiable_one_is_416() {
    let file = pattern(50_000);
    let (mut w, mut server) = setup::<4>(&[("f", file.clone())]);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    sock.send_all(conn, b"GET /f HTTP/1.1\r\nRange: bytes=20000-\r\n\r\n")
        .unwrap();
    let r = read_response(&mut sock, conn, false);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 20000-49999/50000"));
    assert_eq!(r.body, &file[20000..]);
    sock.send_all(conn, b"GET /f HTTP/1.1\r\nRange: bytes=60000-\r\n\r\n")
        .unwrap();
    let r = read_response(&mut sock, conn, false);
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (416, Some("bytes */50000"))
    );
}

#[test]
fn blank_lines_before_a_request_and_bare_lf_line_ends_are_accepted_once_each() {
    let file = pattern(3000);
    let (mut w, mut server) = setup::<4>(&[("f", file.clone())]);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    // RFC 9112 (2.2): empty lines before a request line are ignored, and a bare LF may end
    // a line. Each request below must be answered exactly once, in order.
    sock.send_all(
        conn,
        b"\r\n\r\nGET /f HTTP/1.1\r\n\r\nGET /f HTTP/1.1\nRange: bytes=0-9\n\nHEAD /f HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut sock, conn, false);
    assert_eq!((r.status, r.body.len()), (200, 3000));
    let r = read_response(&mut sock, conn, false);
    assert_eq!((r.status, &r.body[..]), (206, &file[..10]));
    let r = read_response(&mut sock, conn, true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("3000"));
    // Nothing more is answered: the next request gets the next response.
    sock.send_all(conn, b"GET /missing HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut sock, conn, false).status, 404);
}

#[test]
fn put_stores_a_file_and_an_interrupted_put_leaves_none() {
    let (mut w, mut server) = setup::<4>(&[]);
    {
        client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
        let body = pattern(20_000);
        let head = format!(
            "PUT /up.bin HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        sock.send_all(conn, head.as_bytes()).unwrap();
        sock.send_all(conn, &body).unwrap();
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, 201, "{}", r.head);
        sock.send_all(conn, b"GET /up.bin HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut sock, conn, false).body, body);
        sock.send_all(
            conn,
            b"PUT /half.bin HTTP/1.1\r\nContent-Length: 1000\r\n\r\n",
        )
        .unwrap();
        sock.send_all(conn, &[1; 500]).unwrap();
        sock.flush(conn).unwrap();
        sock.stack().abort(conn).unwrap();
        // The server carries on: a new client lists the files.
        let next = tcp_socket(sock.stack(), 4096, 4096);
        sock.connect(next, ep(B, PORT)).unwrap();
        sock.send_all(next, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let listing = read_response(&mut sock, next, false);
        assert_eq!(String::from_utf8(listing.body).unwrap(), "up.bin 20000\n");
        // Closing our side lets the server's lingering close finish.
        sock.stack().shutdown_write(next).unwrap();
        assert_eq!(sock.recv(next, &mut [0u8; 8]), Ok(0));
        sock.sleep(Duration::from_millis(100));
    }
    assert!(server.store().files.contains_key("up.bin"));
    assert!(
        !server.store().files.contains_key("half.bin"),
        "no partial file under the final name"
    );
    assert_eq!(server.active(), 0);
}

#[test]
fn bad_requests_get_the_status_codes_users_expect() {
    let (mut w, mut server) = setup::<4>(&[("f", vec![1, 2, 3])]);
    let cases: [(&[u8], u16); 9] = [
        (b"this is not http\r\n\r\n", 400),
        (b"BREW /pot HTTP/1.1\r\n\r\n", 501),
        (b"PATCH /f HTTP/1.1\r\n\r\n", 405),
        (b"TRACE /f HTTP/1.1\r\n\r\n", 405),
        (b"GET /../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"GET /%2e%2e%2fetc%2fpasswd HTTP/1.1\r\n\r\n", 404),
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
        (b"PUT /x HTTP/1.1\r\n\r\n", 411),
        (b"PUT /a%2fb HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 400),
    ];
    for (request, status) in cases {
        client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
        sock.send_all(conn, request).unwrap();
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(request));
        if status == 405 || status == 501 {
            assert_eq!(
                r.header("Allow"),
                Some("GET, HEAD, PUT, POST, DELETE, OPTIONS")
            );
        }
        sock.stack().close(conn).unwrap();
    }
}

#[test]
fn oversize_heads_get_431_and_414() {
    let (mut w, mut server) = setup::<4>(&[]);
    for (request, status) in [
        (
            format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(2000)),
            431,
        ),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000)), 414),
        (
            format!("GET / HTTP/1.1\nX-Long: {}\n\n", "a".repeat(2000)),
            431,
        ),
    ] {
        client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
        let _ = sock.send_all(conn, request.as_bytes());
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, status);
        sock.stack().abort(conn).unwrap();
    }
}

#[test]
fn a_client_that_stops_half_way_gets_408_and_its_socket_is_freed() {
    let (mut w, mut server) = setup::<4>(&[]);
    server.set_idle_timeout(Duration::from_secs(2));
    {
        client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
        sock.stack()
            .set_option(
                conn,
                SocketOption::RecvTimeout(Some(Duration::from_secs(10))),
            )
            .unwrap();
        sock.send_all(conn, b"GET / HTTP/1.1\r\nHost: d").unwrap();
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, 408);
        assert_eq!(r.header("Connection"), Some("close"));
    }
    assert_eq!(server.active(), 0);
    // A silent client is an idle timeout, not a slow request: each 408 in its own column.
    let rows: Vec<_> = w.stacks[B]
        .stats_rows()
        .filter(|r| r.local_port == PORT)
        .collect();
    let idle: u32 = rows.iter().map(|r| r.stats.idle_timeouts).sum();
    let slow: u32 = rows.iter().map(|r| r.stats.slow_requests).sum();
    assert_eq!((idle, slow), (1, 0));
}

#[test]
fn more_clients_than_connections_are_served_or_told_503() {
    let (mut w, mut server) = setup::<3>(&[("f", pattern(100))]);
    let wire = w.wire;
    let clients: Vec<_> = (0..3)
        .map(|_| tcp_socket(&mut w.stacks[A], 1024, 1024))
        .collect();
    for &c in &clients {
        w.stacks[A].connect(c, ep(B, PORT)).unwrap();
    }
    let (a, b) = w.two(A, B);
    let mut driver = PeerWaiter::new(wire, A, b, B, |b: &mut Stack<'static>, _: Instant| {
        server.poll(b)
    });
    let mut sock = Blocking::new(a, &mut driver);
    let mut statuses = Vec::new();
    for &c in &clients {
        sock.send_all(c, b"GET /f HTTP/1.1\r\n\r\n").unwrap();
        statuses.push(read_response(&mut sock, c, false).status);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 200, 503],
        "two served, the third told to come back"
    );
}

#[test]
fn stats_are_json_the_root_lists_files_and_http_1_0_closes() {
    let (mut w, mut server) = setup::<4>(&[("a.txt", vec![0; 12]), ("b.bin", vec![0; 3])]);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    sock.send_all(
        conn,
        b"GET /stats HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let stats = read_response(&mut sock, conn, false);
    assert_eq!(stats.header("Content-Type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&stats.body).expect("valid JSON");
    assert!(
        json["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["port"] == 80),
        "{json}"
    );
    let listing = read_response(&mut sock, conn, false);
    let mut lines: Vec<_> = std::str::from_utf8(&listing.body)
        .unwrap()
        .lines()
        .collect();
    lines.sort();
    assert_eq!(lines, vec!["a.txt 12", "b.bin 3"]);
    assert_eq!(listing.header("Connection"), Some("close"));
    let mut buf = [0u8; 8];
    assert_eq!(
        sock.recv(conn, &mut buf),
        Ok(0),
        "closed after Connection: close"
    );
    let again = tcp_socket(sock.stack(), 2048, 2048);
    sock.connect(again, ep(B, PORT)).unwrap();
    sock.send_all(again, b"GET /b.bin HTTP/1.0\r\n\r\n")
        .unwrap();
    let r = read_response(&mut sock, again, false);
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    assert_eq!(sock.recv(again, &mut buf), Ok(0), "HTTP/1.0 closes");
}

#[test]
fn a_reset_while_the_response_fills_the_tx_ring_frees_the_connection_at_once() {
    // The client asks for a large file and never reads: the server's tx ring runs full.
    // Its reset then must end the response (a blocked write() meets EPIPE), not leave
    // the connection waiting for room until the idle timeout.
    let (mut w, mut server) = setup::<2>(&[("big.bin", pattern(200_000))]);
    server.set_idle_timeout(Duration::from_secs(60));
    {
        client_of!(w, poll server, sock, conn, PORT, (1024, 1024));
        sock.send_all(conn, b"GET /big.bin HTTP/1.1\r\n\r\n")
            .unwrap();
        sock.sleep(Duration::from_millis(500));
        assert_eq!(
            sock.stack().ring_usage(conn).map(|(rx, _)| rx),
            Some((1024, 1024)),
            "the client's rx ring is full, so the server's tx ring is too"
        );
        sock.stack().abort(conn).unwrap();
        sock.sleep(Duration::from_millis(500));
    }
    assert_eq!(
        server.active(),
        0,
        "the reset freed the connection well before the 60 s idle timeout"
    );
}

#[test]
fn a_transfer_encoding_of_any_bytes_is_a_body_the_server_cannot_frame() {
    // A coding whose bytes are not UTF-8 is still a coding: a proxy in front that reads
    // it as chunked sends the chunks as this request's body, and a server that ignored
    // it would answer them as a second request (request smuggling).
    let (mut w, mut server) = setup::<4>(&[("f", vec![1, 2, 3])]);
    client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
    let smuggled = b"GET /f HTTP/1.1\r\nTransfer-Encoding: \xffchunked\r\n\r\n\
        1c\r\nGET /f HTTP/1.1\r\nX-Hidden: 1\r\n\r\n0\r\n\r\n";
    sock.send_all(conn, smuggled).unwrap();
    let first = read_response(&mut sock, conn, false);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("Connection"), Some("close"), "{}", first.head);
    assert_eq!(
        String::from_utf8_lossy(&read_until_gone(&mut sock, conn)),
        "",
        "the body was never answered as a request"
    );
    sock.stack().close(conn).unwrap();
    // With a length beside it: neither can be trusted, 400 (RFC 9112 6.3).
    let conn = tcp_socket(sock.stack(), 4096, 4096);
    sock.connect(conn, ep(B, PORT)).unwrap();
    sock.send_all(
        conn,
        b"PUT /u HTTP/1.1\r\nTransfer-Encoding: \x80\r\nContent-Length: 2\r\n\r\nhi",
    )
    .unwrap();
    assert_eq!(read_response(&mut sock, conn, false).status, 400);
}

/// A [`MemStore`] whose names in `read_only` cannot be written, as the firmware's built-in
/// files cannot: `begin` refuses them with [`StoreError::ReadOnly`].
struct ReadOnlyNames {
    files: MemStore,
    read_only: &'static [&'static str],
}

impl Store for ReadOnlyNames {
    type Upload = <MemStore as Store>::Upload;
    type Reader = <MemStore as Store>::Reader;
    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.files.size(name)
    }
    fn open(&mut self, name: &str) -> Result<(Self::Reader, u64), StoreError> {
        self.files.open(name)
    }
    fn read_at(
        &mut self,
        reader: &mut Self::Reader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        self.files.read_at(reader, offset, buf)
    }
    fn begin(&mut self, name: &str, size: u64) -> Result<Self::Upload, StoreError> {
        if self.read_only.contains(&name) {
            return Err(StoreError::ReadOnly);
        }
        self.files.begin(name, size)
    }
    fn write(&mut self, upload: &mut Self::Upload, data: &[u8]) -> Result<(), StoreError> {
        self.files.write(upload, data)
    }
    fn commit(&mut self, upload: Self::Upload) -> Result<(), StoreError> {
        self.files.commit(upload)
    }
    fn abort(&mut self, upload: Self::Upload) {
        self.files.abort(upload)
    }
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        self.files.for_each(f)
    }
}

#[test]
fn a_refused_put_never_has_its_body_answered_as_a_request() {
    // A PUT the store refuses before its body (a read-only name, as the firmware's
    // built-in files are) leaves the body unread: kept alive, the server would read it as
    // the next request and answer it (request smuggling: the body's GET is answered as
    // if the client, or a proxy in front, had sent it). It must close instead, as for
    // every other refusal of a request with a body.
    let mut w = pair(Faults::NONE, 73);
    let backlog: Vec<_> = (0..2)
        .map(|_| tcp_socket(&mut w.stacks[B], 2048, 2048))
        .collect();
    let mut files = MemStore::default();
    files
        .files
        .insert("secret".into(), b"the hidden file".to_vec());
    let store = ReadOnlyNames {
        files,
        read_only: &["ro"],
    };
    let mut server = HttpServer::<_, 2>::new(&mut w.stacks[B], PORT, &backlog, store).unwrap();
    {
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| server.poll(b),
            sock,
            conn,
            PORT,
            (4096, 4096)
        );
        let body = b"GET /secret HTTP/1.1\r\n\r\n";
        let put = format!("PUT /ro HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
        sock.send_all(conn, put.as_bytes()).unwrap();
        sock.send_all(conn, body).unwrap();
        let refused = read_response(&mut sock, conn, false);
        assert_eq!(refused.status, 403, "{}", refused.head);
        assert_eq!(
            refused.header("Connection"),
            Some("close"),
            "{}",
            refused.head
        );
        assert_eq!(
            String::from_utf8_lossy(&read_until_gone(&mut sock, conn)),
            "",
            "the body was never answered as a request"
        );
    }
    assert_eq!(server.served(), 1, "one response: the refusal");
}

/// The slow and idle counts on the HTTP port of `b`.
fn slow_and_idle(b: &Stack<'_>) -> (u32, u32) {
    (
        port_total(b, PORT, |s| s.slow_requests),
        port_total(b, PORT, |s| s.idle_timeouts),
    )
}

#[test]
fn a_put_body_trickled_a_byte_inside_each_idle_timeout_gets_408_at_the_minimum_rate() {
    // The head and 100 bytes of body at once, then a byte every 9 s: the 10 s idle
    // timeout never comes, and the 10 000 bytes would take a day.
    let (mut w, mut server) = setup::<4>(&[]);
    {
        client_of!(w, poll server, sock, conn, PORT, (4096, 4096));
        let mut start = b"PUT /slow HTTP/1.1\r\nContent-Length: 10000\r\n\r\n".to_vec();
        start.extend_from_slice(&[b'x'; 100]);
        sock.send_all(conn, &start).unwrap();
        let cut = trickle_until_slow(
            &mut sock,
            PORT,
            Duration::from_secs(9),
            Duration::from_secs(600),
            |a| {
                let _ = a.send(conn, b"x");
            },
        )
        .expect("the trickler is cut off");
        // 20 s of grace and the first trickled byte's 2 ms (the body that came with the
        // head is the phase's start).
        assert!(
            Duration::from_secs(20) <= cut && cut <= Duration::from_millis(20_300),
            "cut off after {cut}"
        );
        let r = read_response(&mut sock, conn, false);
        assert_eq!(r.status, 408);
        assert_eq!(r.header("Connection"), Some("close"));
        assert_eq!(slow_and_idle(sock.waiter().peer()), (1, 0));
    }
    assert_eq!(server.store().files.get("slow"), None, "nothing stored");
    assert_eq!(server.active(), 0);
}

#[test]
fn a_get_whose_reader_opens_its_window_a_byte_at_a_time_is_reset_at_the_minimum_rate() {
    let (mut w, mut server) = setup::<4>(&[("big", pattern(100_000))]);
    {
        client_of!(w, poll server, sock, conn, PORT, (1024, 1024));
        sock.send_all(conn, b"GET /big HTTP/1.1\r\n\r\n").unwrap();
        let cut = trickle_until_slow(
            &mut sock,
            PORT,
            Duration::from_secs(9),
            Duration::from_secs(600),
            |a| {
                let _ = a.recv(conn, &mut [0u8; 1]);
            },
        )
        .expect("the reader is cut off");
        // 20 s of grace, then what it acknowledged, its 1024-byte ring, at 500 B/s.
        assert!(
            Duration::from_millis(22_000) <= cut && cut <= Duration::from_millis(22_300),
            "cut off after {cut}"
        );
        // The ring's bytes (the head and the start of the body), then a reset: a response
        // begun cannot turn into a 408.
        let mut buf = [0u8; 2048];
        assert_eq!(sock.recv(conn, &mut buf), Ok(1024));
        assert_eq!(
            sock.recv(conn, &mut buf),
            Err(ringnet::socket::tcp::RecvError::ConnectionReset)
        );
        assert_eq!(slow_and_idle(sock.waiter().peer()), (1, 0));
    }
    assert_eq!(server.active(), 0);
}

#[test]
fn a_put_and_a_get_slow_but_above_the_minimum_rate_are_served_whole() {
    // 60 bytes every 100 ms (600 B/s) each way, 40 s each: twice the grace.
    let (mut w, mut server) = setup::<4>(&[]);
    let data = pattern(24_000);
    {
        client_of!(w, poll server, sock, conn, PORT, (1024, 1024));
        sock.send_all(
            conn,
            b"PUT /steady HTTP/1.1\r\nContent-Length: 24000\r\n\r\n",
        )
        .unwrap();
        for piece in data.chunks(60) {
            sock.sleep(Duration::from_millis(100));
            sock.send_all(conn, piece).unwrap();
        }
        assert_eq!(read_response(&mut sock, conn, false).status, 201);
        // Kept alive: the response ends where its length says.
        sock.send_all(conn, b"GET /steady HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 60];
        while !(got.ends_with(&data) && got.starts_with(b"HTTP/1.1 200")) {
            match sock.recv(conn, &mut buf) {
                Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
                other => panic!("{other:?} after {} bytes", got.len()),
            }
            sock.sleep(Duration::from_millis(100));
        }
        sock.stack().close(conn).unwrap();
        assert_eq!(slow_and_idle(sock.waiter().peer()), (0, 0));
    }
}

/// A client reading a `Connection: close` GET of a 24 000-byte file as a slow client
/// does: 60 bytes every 100 ms (600 B/s, fewer than its 1024-byte ring holds), sending
/// `stray` once when it has read `at` bytes, if given. Returns what it read and how the
/// stream ended: `Ok(0)` for a FIN, the error of a reset (or `WouldBlock` if neither
/// came within 120 s); and the server's connections left after.
fn read_closing_response_slowly(
    stray: Option<(usize, &[u8])>,
) -> (Vec<u8>, Result<usize, RecvError>, usize) {
    let (mut w, mut server) = setup::<2>(&[("big.bin", pattern(24_000))]);
    let (got, end) = {
        client_of!(w, poll server, sock, conn, PORT, (1024, 1024));
        sock.send_all(conn, b"GET /big.bin HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut stray = stray;
        let mut got = Vec::new();
        let mut buf = [0u8; 60];
        let end = sock.stack().now() + Duration::from_secs(120);
        let mut ended = Err(RecvError::WouldBlock);
        while sock.stack().now() < end {
            if let Some((_, bytes)) = stray.filter(|&(at, _)| got.len() >= at) {
                sock.send_all(conn, bytes).unwrap();
                stray = None;
            }
            match sock.stack().recv(conn, &mut buf) {
                Ok(0) => {
                    ended = Ok(0);
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(RecvError::WouldBlock) => {}
                Err(e) => {
                    ended = Err(e);
                    break;
                }
            }
            sock.sleep(Duration::from_millis(100));
        }
        sock.stack().close(conn).unwrap();
        sock.sleep(Duration::from_secs(1));
        (got, ended)
    };
    (got, end, server.active())
}

/// The body of a response read whole (`None` without a whole head).
fn body_of(response: &[u8]) -> Option<&[u8]> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(&response[end + 4..])
}

#[test]
fn a_slow_reader_of_a_closing_response_gets_all_of_it_and_a_fin() {
    // The last of the body is queued while the client has thousands of bytes still to
    // read: the lingering close's pause ran from there and reset the connection 2 s
    // later, throwing away the tail still in the tx ring (23 204 of 24 000 bytes read).
    let (got, end, active) = read_closing_response_slowly(None);
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let body = body_of(&got).expect("a head");
    assert_eq!(
        (body.len(), end),
        (24_000, Ok(0)),
        "every byte, then a FIN (not a reset)"
    );
    assert_eq!(body, &pattern(24_000)[..]);
    assert_eq!(active, 0);
}

#[test]
fn a_slow_reader_that_sends_a_stray_line_end_late_still_gets_all_of_the_response() {
    // A client that sends a stray CRLF after its request (as some do), while the tail of
    // the response is still in the server's tx ring past the 2 s pause: a server that had
    // closed at the pause met the bytes as an orphan and reset, losing the tail. The
    // response's tail leaving the ring keeps the lingering close (and its draining) on.
    let (got, end, active) = read_closing_response_slowly(Some((23_000, b"\r\n")));
    let body = body_of(&got).expect("a head");
    assert_eq!(
        (body.len(), end),
        (24_000, Ok(0)),
        "every byte, then a FIN (not a reset)"
    );
    assert_eq!(active, 0);
}

#[test]
fn a_client_that_never_reads_a_closing_response_is_still_cut_off() {
    // The response fits in the server's tx ring, so it is queued whole and the server
    // lingers; the client's window stays shut. The lingering close ends at its pause
    // (no byte read, none acknowledged) and the orphan's retries cut the client off.
    let (mut w, mut server) = setup::<2>(&[("f.bin", pattern(1500))]);
    w.stacks[B].set_tcp_timers(TcpTimers {
        orphan_retries: 2,
        orphan_timeout: Duration::from_secs(3600),
        ..TcpTimers::DEFAULT
    });
    {
        let active = std::cell::Cell::new(0);
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| {
                server.poll(b);
                active.set(server.active());
            },
            sock,
            conn,
            PORT,
            (256, 256)
        );
        sock.send_all(conn, b"GET /f.bin HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        sock.sleep(Duration::from_millis(1500));
        assert_eq!(active.get(), 1, "lingering");
        sock.sleep(Duration::from_secs(1));
        assert_eq!(active.get(), 0, "the pause passed with nothing read");
        sock.sleep(Duration::from_secs(30));
    }
    let expired: u32 = w.stacks[B]
        .stats_rows()
        .filter(|r| r.local_port == PORT)
        .map(|r| r.stats.orphans_expired)
        .sum();
    assert_eq!(expired, 1, "the orphan was reset after its retries");
}

#[test]
fn a_client_that_keeps_sending_after_a_closing_response_is_reset_at_the_cap() {
    let (mut w, mut server) = setup::<2>(&[("f.bin", pattern(100))]);
    {
        let active = std::cell::Cell::new(0);
        client_of!(
            w,
            |b: &mut Stack<'static>, _: Instant| {
                server.poll(b);
                active.set(server.active());
            },
            sock,
            conn,
            PORT,
            (4096, 4096)
        );
        sock.send_all(conn, b"GET /f.bin HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut sock, conn, false);
        assert_eq!((r.status, r.body.len()), (200, 100));
        // A byte a second: each keeps the 2 s pause away.
        let mut sent_for = Duration::ZERO;
        let mut reset = None;
        while sent_for < Duration::from_secs(40) && reset.is_none() {
            // The response's FIN came long ago (writing was shut down), so reading says
            // only end of stream: a send tells the reset.
            if let Err(e) = sock.stack().send(conn, b"x") {
                assert_eq!(e, SendError::BrokenPipe, "after {sent_for}");
                reset = Some(sent_for);
                break;
            }
            sock.sleep(Duration::from_secs(1));
            sent_for += Duration::from_secs(1);
            if sent_for == Duration::from_secs(29) {
                assert_eq!(active.get(), 1, "still draining before the cap");
            }
        }
        let reset = reset.expect("reset");
        assert!(
            reset >= Duration::from_secs(30) && reset <= Duration::from_secs(31),
            "reset at the 30 s cap, after {reset}"
        );
    }
    assert_eq!(server.active(), 0);
}
