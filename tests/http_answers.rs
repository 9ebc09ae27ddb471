//! Every kind of answer the HTTP server gives, byte for byte: a script of requests over
//! the simulated wire, each on a fresh connection, whose replies are compared with the
//! recorded ones in `tests/fixtures/http-answers.txt` (`RECORD=1 cargo test --test
//! http_answers` writes that file anew, for a change of answer meant to happen).

use ringnet::blocking::{Blocking, Waiter};
use ringnet::http::HttpServer;
use ringnet::sim::Faults;
use ringnet::SocketHandle;
use ringnet_testkit::*;

const PORT: u16 = 80;
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/http-answers.txt"
);

/// What a script line sends, and whether writes need the token `s3cret` meanwhile.
const SCRIPT: &[(&str, bool, &[u8])] = &[
    ("the listing", false, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("HEAD of the listing", false, b"HEAD /?x HTTP/1.1\r\nConnection: close\r\n\r\n"),
    (
        "two pipelined gets, the second closing",
        false,
        b"GET /f HTTP/1.1\r\n\r\nGET http://h/f HTTP/1.1\r\nConnection: close\r\n\r\n",
    ),
    ("HEAD", false, b"HEAD /f HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("HTTP/1.0 closes", false, b"GET /f HTTP/1.0\r\n\r\n"),
    (
        "a range",
        false,
        b"GET /f HTTP/1.1\r\nRange: bytes=1-2\r\nConnection: close\r\n\r\n",
    ),
    (
        "a suffix range",
        false,
        b"GET /f HTTP/1.1\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n",
    ),
    (
        "an unsatisfiable range",
        false,
        b"GET /f HTTP/1.1\r\nRange: bytes=10-\r\nConnection: close\r\n\r\n",
    ),
    ("OPTIONS", false, b"OPTIONS / HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("PATCH", false, b"PATCH /f HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("an unknown method", false, b"BREW /f HTTP/1.1\r\n\r\n"),
    ("not HTTP", false, b"hello there\r\n\r\n"),
    ("absent", false, b"GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n"),
    (
        "traversal",
        false,
        b"GET /%2e%2e%2fetc%2fpasswd HTTP/1.1\r\nConnection: close\r\n\r\n",
    ),
    (
        "a PUT that waits for 100 Continue",
        false,
        b"PUT /new HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nabc",
    ),
    ("and GET of it", false, b"GET /new HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("a PUT without a length", false, b"PUT /x HTTP/1.1\r\n\r\n"),
    ("a chunked PUT", false, b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    (
        "a PUT of a generated page",
        false,
        b"PUT /stats HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
    ),
    ("a PUT of a bad name", false, b"PUT /a/b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
    (
        "POST of a name that exists",
        false,
        b"POST /f HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
    ),
    (
        "POST of a new name",
        false,
        b"POST /p HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    ),
    ("DELETE", false, b"DELETE /p HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("DELETE again", false, b"DELETE /p HTTP/1.1\r\nConnection: close\r\n\r\n"),
    (
        "two different lengths",
        false,
        b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ),
    ("a signed length", false, b"PUT /x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc"),
    (
        "a length and chunked",
        false,
        b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
    ),
    (
        "a GET with a body keeps nothing alive",
        false,
        b"GET /f HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    ),
    ("a write without the token", true, b"PUT /t HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
    (
        "a write with a wrong token",
        true,
        b"DELETE /f HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n",
    ),
    (
        "a write with the token",
        true,
        b"PUT /t HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    ),
    (
        "two Range fields: the first counts",
        false,
        b"GET /f HTTP/1.1\r\nRange: bytes=0-0\r\nrange: bytes=1-1\r\nConnection: close\r\n\r\n",
    ),
    (
        "a Transfer-Encoding that is not UTF-8 is a coding all the same",
        false,
        b"PUT /u HTTP/1.1\r\nTransfer-Encoding: \xff\r\nContent-Length: 2, 2\r\nConnection: close\r\n\r\nhi",
    ),
    (
        "blank lines and bare LFs",
        false,
        b"\r\n\nGET /f HTTP/1.1\nConnection: close\n\n",
    ),
];

fn read_to_end<D: Waiter>(sock: &mut Blocking<'_, 'static, D>, conn: SocketHandle) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = sock.recv(conn, &mut buf) {
        raw.extend_from_slice(&buf[..n]);
    }
    raw
}

/// Every reply of the script, each after a line naming its request.
fn answers() -> String {
    let mut w = pair(Faults::NONE, 72);
    let backlog: Vec<_> = (0..4)
        .map(|_| tcp_socket(&mut w.stacks[B], 2048, 2048))
        .collect();
    let mut server =
        HttpServer::<MemStore, 4>::new(&mut w.stacks[B], PORT, &backlog, MemStore::default())
            .unwrap();
    server.store().files.insert("f".into(), b"hello".to_vec());
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1100));
    let long_head = format!("GET /f HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(1100));
    let many: String = (0..17).map(|i| format!("X-{i}: y\r\n")).collect();
    let many = format!("GET /f HTTP/1.1\r\n{many}\r\n");
    let oversize: [(&str, bool, &[u8]); 3] = [
        ("a request line too long", false, long_line.as_bytes()),
        ("a head too large", false, long_head.as_bytes()),
        ("too many header fields", false, many.as_bytes()),
    ];
    let mut all = String::new();
    for &(what, token, request) in SCRIPT.iter().chain(&oversize) {
        server
            .set_token(if token { Some("s3cret") } else { None })
            .unwrap();
        let raw = {
            client_of!(w, poll server, sock, conn, PORT, (8192, 8192));
            sock.send_all(conn, request).unwrap();
            let raw = read_to_end(&mut sock, conn);
            let _ = sock.stack().close(conn);
            raw
        };
        all.push_str(&format!("== {what}\n{}\n", String::from_utf8_lossy(&raw)));
    }
    all
}

#[test]
fn every_answer_is_the_recorded_one_byte_for_byte() {
    let all = answers();
    if std::env::var_os("RECORD").is_some() {
        std::fs::write(FIXTURE, &all).unwrap();
    }
    let recorded = std::fs::read_to_string(FIXTURE).unwrap();
    for (got, want) in all.split("\n== ").zip(recorded.split("\n== ")) {
        assert_eq!(got, want);
    }
    assert_eq!(all, recorded);
}
