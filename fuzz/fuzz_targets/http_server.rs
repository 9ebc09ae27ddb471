//! The HTTP server fed arbitrary request bytes by one or two clients at once on the
//! simulated wire: never a panic; every connection ends within the server's timeouts;
//! every answer is an HTTP/1.1 response; an upload is never left open in the store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringnet::http::HttpServer;
use ringnet::transfer::{RamStore, Store, StoreError};
use ringnet::{Duration, SocketHandle, Stack};
use ringnet_fuzz::{clients, exchange, Script};

type Ram = RamStore<3, 8192>;

fuzz_target!(|data: &[u8]| {
    let Some((script, rest)) = Script::split(data) else {
        return;
    };
    // The second byte: bit 0, writes need `Authorization: Bearer secret`; bit 1, two
    // clients at once.
    let Some((&options, input)) = rest.split_first() else {
        return;
    };
    let inputs = clients(options, script, input);
    let start = |stack: &mut Stack<'_>, backlog: &[SocketHandle]| {
        let mut store = Ram::new();
        let mut upload = store.begin("seed.bin", 3000).unwrap();
        store.write(&mut upload, &[0x5a; 3000]).unwrap();
        store.commit(upload).unwrap();
        let mut server = HttpServer::<Ram, 3, 1024>::new(stack, 80, backlog, store).unwrap();
        if options & 1 == 1 {
            server.set_token(Some("secret")).unwrap();
        }
        server
    };
    let (outcomes, mut server, still_active) =
        exchange(80, 3, start, &inputs, Duration::from_secs(300));
    assert_eq!(still_active, 0, "a connection outlived every timeout");
    for outcome in &outcomes {
        assert!(outcome.ended, "the server never ended a connection");
        if !outcome.received.is_empty() {
            assert!(
                outcome.received.starts_with(b"HTTP/1.1 "),
                "not a response: {:?}",
                String::from_utf8_lossy(&outcome.received[..outcome.received.len().min(64)])
            );
        }
    }
    let store = server.store();
    match store.begin("probe.bin", 1) {
        Ok(upload) => store.abort(upload),
        Err(e) => assert_ne!(e, StoreError::Busy, "an upload was left open"),
    }
});
