//! One name written and read by both of `serve`'s protocols at once: the HTTP server and
//! the transfer server share one [`DirStore`] (as `serve --files DIR` runs them), and a
//! peer that overlaps an HTTP `PUT` with a transfer put of the same name, or reads with
//! one protocol while the other overwrites, must never be told "stored" or "verified" for
//! bytes that are not the file's, nor leave a file mixed of two uploads or a temporary
//! behind. The newer upload wins, as [`DirStore`] promises; the older is refused
//! (`409 Conflict`, the transfer's conflict status); a reader reads the version it opened.

mod both_servers;

use both_servers::{digest, http_put, put_head, transfer_put, with_both_servers};
use ringnet::transfer::{self, Status, TransferError};
use ringnet_testkit::{http_response, names_in};

const SIZE: usize = 200_000;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cross-protocol-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Two versions of a file, each byte telling which: `old` and `new`, `SIZE` bytes each.
fn versions() -> (Vec<u8>, Vec<u8>) {
    (vec![b'o'; SIZE], vec![b'n'; SIZE])
}

#[test]
fn an_http_put_overtaken_by_a_transfer_put_is_409_and_the_file_is_the_transfers() {
    let dir = scratch();
    let (http_body, transfer_body) = versions();
    with_both_servers(dir.path(), |sock, web, framed| {
        // The HTTP upload begins and sends half its body...
        sock.send_all(web, put_head("f", SIZE).as_bytes()).unwrap();
        sock.send_all(web, &http_body[..SIZE / 2]).unwrap();
        // ...a transfer put of the name, begun after it, is stored and verified...
        assert_eq!(
            transfer_put(sock, framed, &transfer_body),
            Ok(digest(&transfer_body))
        );
        // ...and the older HTTP upload, finished after, is refused, never 201.
        sock.send_all(web, &http_body[SIZE / 2..]).unwrap();
        let (status, _) = http_response(sock, web);
        assert_eq!(status, 409, "the older upload's commit");
    });
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), transfer_body);
    assert_eq!(names_in(dir.path()), ["f"], "no temporary left");
}

#[test]
fn a_transfer_put_overtaken_by_an_http_put_is_the_conflict_status_and_the_file_is_https() {
    let dir = scratch();
    let (http_body, transfer_body) = versions();
    with_both_servers(dir.path(), |sock, web, framed| {
        transfer::put_request(&mut sock.stream(framed), "f", None, SIZE as u64).unwrap();
        sock.send_all(framed, &transfer_body[..SIZE / 2]).unwrap();
        // The newer HTTP upload is stored whole.
        assert_eq!(http_put(sock, web, &http_body), 201);
        // The older transfer put, its data and its true digest sent after, is refused.
        sock.send_all(framed, &transfer_body[SIZE / 2..]).unwrap();
        let trailer = transfer::put_trailer(&mut sock.stream(framed), digest(&transfer_body));
        match trailer {
            Err(TransferError::Refused { status, .. }) => assert_eq!(status, Status::Conflict),
            other => panic!("expected the conflict status, got {other:?}"),
        }
    });
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), http_body);
    assert_eq!(names_in(dir.path()), ["f"], "no temporary left");
}

#[test]
fn an_http_get_overwritten_midway_by_a_transfer_put_reads_the_version_it_opened() {
    let dir = scratch();
    let (old, new) = versions();
    std::fs::write(dir.path().join("f"), &old).unwrap();
    with_both_servers(dir.path(), |sock, web, framed| {
        sock.send_all(web, b"GET /f HTTP/1.1\r\n\r\n").unwrap();
        // The response's first bytes: the rest waits in the server's ring and the
        // window while the file is replaced.
        let mut first = [0u8; 1000];
        sock.recv_exact(web, &mut first).unwrap();
        assert_eq!(transfer_put(sock, framed, &new), Ok(digest(&new)));
        let head_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut body = first[head_end..].to_vec();
        let mut rest = vec![0u8; SIZE - body.len()];
        assert_eq!(
            sock.recv_exact(web, &mut rest),
            Ok(true),
            "the body ended early"
        );
        body.extend_from_slice(&rest);
        assert!(body == old, "the body is the old version, whole");
        // A get begun after the commit is the new version.
        sock.send_all(web, b"GET /f HTTP/1.1\r\n\r\n").unwrap();
        let (status, body) = http_response(sock, web);
        assert_eq!(status, 200);
        assert!(body == new, "the new version");
    });
    assert_eq!(names_in(dir.path()), ["f"]);
}

#[test]
fn a_transfer_get_overwritten_midway_by_an_http_put_verifies_the_version_it_opened() {
    let dir = scratch();
    let (old, new) = versions();
    std::fs::write(dir.path().join("f"), &old).unwrap();
    with_both_servers(dir.path(), |sock, web, framed| {
        let size = transfer::get_request(&mut sock.stream(framed), "f", 0).unwrap();
        assert_eq!(size, SIZE as u64);
        let mut got = vec![0u8; 1000];
        sock.recv_exact(framed, &mut got).unwrap();
        assert_eq!(http_put(sock, web, &new), 201);
        let mut rest = vec![0u8; SIZE - got.len()];
        sock.recv_exact(framed, &mut rest).unwrap();
        got.extend_from_slice(&rest);
        assert!(got == old, "the old version, whole");
        // The status's digest is the old version's: verified, as what was read.
        assert_eq!(
            transfer::get_status(&mut sock.stream(framed), digest(&old)),
            Ok(())
        );
    });
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), new);
    assert_eq!(names_in(dir.path()), ["f"]);
}
