//! The transfer server (TCP 7003) fed arbitrary stream bytes by a client on the simulated
//! wire: never a panic; every connection ends within its timeouts; what the server sends
//! starts with a well-formed frame; an upload is never left open in the store; a put the
//! server calls verified is stored whole, with the digest it announced; with a token set,
//! no put without it is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringnet::transfer::wire::{Message, Status, MAX_FRAME};
use ringnet::transfer::{RamStore, Store, StoreError, TransferServer};
use ringnet::{Duration, SocketHandle, Stack};
use ringnet_fuzz::{exchange, Script};
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
    let message = Message::parse(payload).expect("the server's frames parse");
    Some((message, &bytes[4 + len..]))
}

fn stored(store: &mut Ram, name: &str) -> Vec<u8> {
    let (mut reader, size) = store.open(name).expect("the verified file is there");
    let mut data = vec![0u8; size as usize];
    let n = store.read_at(&mut reader, 0, &mut data).unwrap();
    assert_eq!(n as u64, size);
    data
}

fuzz_target!(|data: &[u8]| {
    let Some((script, rest)) = Script::split(data) else {
        return;
    };
    // The second byte's low bit: whether puts need the token "secret".
    let Some((&options, input)) = rest.split_first() else {
        return;
    };
    let token = (options & 1 == 1).then_some("secret");
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
    let (outcome, mut server) = exchange(7003, 2, start, input, script, Duration::from_secs(120));
    assert_eq!(
        outcome.still_active, 0,
        "a connection outlived every timeout"
    );
    assert!(outcome.ended, "the server never ended the connection");
    // No upload is left open: a new one can begin.
    let store = server.store();
    match store.begin("probe.bin", 1) {
        Ok(upload) => store.abort(upload),
        Err(e) => assert_ne!(e, StoreError::Busy, "an upload was left open"),
    }
    let Some((first, rest)) = frame(&outcome.received) else {
        return;
    };
    let request = frame_of_client(input);
    let (put, given) = match request {
        Some(Message::Put { name, size, sha256 }) => (Some((name, size, sha256)), None),
        Some(Message::PutWithToken {
            name,
            size,
            sha256,
            token,
        }) => (Some((name, size, sha256)), Some(token)),
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
        (Message::Accept { size, offset: 0 }, Some((name, announced, sha256)), _) => {
            assert_eq!(size, announced);
            if let Some((
                Message::Status {
                    status: Status::Ok,
                    digest,
                    ..
                },
                _,
            )) = frame(rest)
            {
                assert_eq!(digest, sha256);
                let data = stored(store, name);
                assert_eq!(data.len() as u64, size);
                let actual: [u8; 32] = Sha256::digest(&data).into();
                assert_eq!(actual, sha256, "verified but stored otherwise");
            }
        }
        (Message::Accept { .. }, _, Some(Message::Get { .. })) => {}
        (Message::Status { status, .. }, _, _) => assert_ne!(status, Status::Ok),
        (other, _, request) => panic!("{other:?} answering {request:?}"),
    }
});

/// The client's request frame, if its input starts with a whole one.
fn frame_of_client(input: &[u8]) -> Option<Message<'_>> {
    let len = u32::from_be_bytes(input.get(..4)?.try_into().ok()?) as usize;
    Message::parse(input.get(4..4 + len)?).ok()
}
