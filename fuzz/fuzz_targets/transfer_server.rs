//! The transfer server (TCP 7003, protocol version 2) fed arbitrary stream bytes by one or
//! two clients at once on the simulated wire: never a panic; every connection ends within
//! its timeouts; what the server sends starts with a well-formed frame (a version 1 request
//! sent whole gets the one version 1 status, one cut short that or a timeout); an upload is never left open in the store; a put told
//! verified sent all its data and then a trailer with that data's SHA-256, and the digest
//! the server answers is that one; a file some put was told verified for holds the data of
//! a put of that name the server accepted, whole; with a token set, no put without it is
//! accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringnet::transfer::wire::{
    Digest, Message, Status, WireError, MAX_FRAME, TRAILER_FRAME, VERSION1_REFUSAL,
};
use ringnet::transfer::{RamStore, Store, StoreError, TransferServer};
use ringnet::{Duration, SocketHandle, Stack};
use ringnet_fuzz::{clients, exchange, Script};
use sha2::{Digest as _, Sha256};

type Ram = RamStore<3, 8192>;

/// The frame at the start of `bytes` and the bytes after it.
fn frame(bytes: &[u8]) -> Option<(Message<'_>, &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    assert!(
        len <= MAX_FRAME,
        "the server announced a frame of {len} bytes"
    );
    let payload = bytes.get(4..4 + len)?;
    let message = match Message::parse(payload) {
        Err(WireError::Version1) => {
            // The answer to a version 1 request, and nothing else is sent in version 1.
            assert_eq!(payload[5], Status::BadRequest as u8);
            assert_eq!(&payload[39..], VERSION1_REFUSAL.as_bytes());
            Message::Status {
                status: Status::BadRequest,
                digest: [0; 32],
                reason: VERSION1_REFUSAL,
            }
        }
        other => other.expect("the server's frames parse"),
    };
    Some((message, &bytes[4 + len..]))
}

/// The client's request frame, if its input starts with a whole one, and what follows it.
fn request(input: &[u8]) -> Option<(Message<'_>, &[u8])> {
    let len = u32::from_be_bytes(input.get(..4)?.try_into().ok()?) as usize;
    let message = Message::parse(input.get(4..4 + len)?).ok()?;
    Some((message, &input[4 + len..]))
}

/// Whether `input` holds the whole frame its first four bytes announce.
fn request_sent_whole(input: &[u8]) -> bool {
    input
        .get(..4)
        .map(|len| u32::from_be_bytes(len.try_into().unwrap()) as usize)
        .is_some_and(|len| input.len() >= 4 + len)
}

/// A put's data as the client sent it (`size` bytes after the request) and the digest in
/// the trailer right after it, where the input holds both.
fn data_and_trailer(after: &[u8], size: u64) -> Option<(&[u8], Digest)> {
    let size = usize::try_from(size).ok()?;
    let data = after.get(..size)?;
    let frame = after.get(size..size + TRAILER_FRAME)?;
    if frame[..4] != (TRAILER_FRAME as u32 - 4).to_be_bytes() {
        return None;
    }
    match Message::parse(&frame[4..]) {
        Ok(Message::Trailer { sha256 }) => Some((data, sha256)),
        _ => None,
    }
}

/// The SHA-256 of what the store holds under `name`.
fn stored(store: &mut Ram, name: &str) -> Digest {
    let (mut reader, size) = store.open(name).expect("the verified file is there");
    let mut data = vec![0u8; size as usize];
    let n = store.read_at(&mut reader, 0, &mut data).unwrap();
    assert_eq!(n as u64, size, "the file reads whole");
    Sha256::digest(&data).into()
}

fuzz_target!(|data: &[u8]| {
    let Some((script, rest)) = Script::split(data) else {
        return;
    };
    // The second byte: bit 0, puts need the token "secret"; bit 1, two clients at once.
    let Some((&options, input)) = rest.split_first() else {
        return;
    };
    let token = (options & 1 == 1).then_some("secret");
    let inputs = clients(options, script, input);
    let start = |stack: &mut Stack<'_>, backlog: &[SocketHandle]| {
        let mut store = Ram::new();
        let mut upload = store.begin("seed.bin", 3000).unwrap();
        store.write(&mut upload, &[0x5a; 3000]).unwrap();
        store.commit(upload).unwrap();
        let mut server = TransferServer::<Ram, 2>::new(stack, 7003, backlog, store).unwrap();
        server.set_idle_timeout(Duration::from_secs(5));
        server.set_token(token).unwrap();
        server
    };
    let (outcomes, mut server, still_active) =
        exchange(7003, 2, start, &inputs, Duration::from_secs(120));
    assert_eq!(still_active, 0, "a connection outlived every timeout");
    let store = server.store();
    // No upload is left open: a new one can begin.
    match store.begin("probe.bin", 1) {
        Ok(upload) => store.abort(upload),
        Err(e) => assert_ne!(e, StoreError::Busy, "an upload was left open"),
    }
    // Puts accepted, by name and announced digest; names some put was told verified for.
    let mut accepted: Vec<(&str, Digest)> = Vec::new();
    let mut verified: Vec<&str> = Vec::new();
    for (outcome, (input, _)) in outcomes.iter().zip(&inputs) {
        assert!(outcome.ended, "the server never ended a connection");
        let Some((first, rest)) = frame(&outcome.received) else {
            continue;
        };
        let (request, after) = match request(input) {
            Some((message, after)) => (Some(message), after),
            None => (None, &[][..]),
        };
        let (put, given) = match request {
            Some(Message::Put { name, size }) => (Some((name, size)), None),
            Some(Message::PutWithToken { name, size, token }) => (Some((name, size)), Some(token)),
            _ => (None, None),
        };
        if put.is_some() && token.is_some() && given != token {
            assert!(
                matches!(
                    first,
                    Message::Status {
                        status: Status::Unauthorized,
                        ..
                    }
                ),
                "a put without the token got {first:?}"
            );
        }
        match (first, put, request) {
            (Message::Accept { size, offset: 0 }, Some((name, announced)), _) => {
                assert_eq!(size, announced);
                let sent = data_and_trailer(after, size);
                if let Some((data, _)) = sent {
                    accepted.push((name, Sha256::digest(data).into()));
                }
                if let Some((Message::Status { status, digest, .. }, _)) = frame(rest) {
                    if status == Status::Ok {
                        let (data, trailer) =
                            sent.expect("a put verified without its data and trailer");
                        let sent_digest: Digest = Sha256::digest(data).into();
                        assert_eq!(trailer, sent_digest, "verified against a wrong trailer");
                        assert_eq!(digest, sent_digest, "the answer's digest is the data's");
                        verified.push(name);
                    }
                }
            }
            (Message::Accept { .. }, _, Some(Message::Get { .. })) => {}
            (Message::Status { status, .. }, _, _) if input.get(4..8) == Some(b"RNT1") => {
                // A version 1 request sent whole is refused; one cut short may first run
                // out of time (its frame begun and not whole within the idle timeout).
                if request_sent_whole(input) {
                    assert_eq!(status, Status::BadRequest, "a version 1 request");
                } else {
                    assert!(
                        matches!(status, Status::BadRequest | Status::TimedOut),
                        "a version 1 request cut short got {status:?}"
                    );
                }
            }
            (Message::Status { status, .. }, _, _) => assert_ne!(status, Status::Ok),
            (other, _, request) => panic!("{other:?} answering {request:?}"),
        }
    }
    for name in verified {
        let digest = stored(store, name);
        assert!(
            accepted.contains(&(name, digest)),
            "{name} was verified but holds data no accepted put of it announced"
        );
    }
});
