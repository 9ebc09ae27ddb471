//! The transition log under a [`LogLimit`]: a bulk transfer through small rings logs at
//! most the burst per interval for each socket, says how many lines it left out, and the
//! counters still count every transition. Its own test binary, since it installs the
//! process's logger to read the lines back.

use ringnet::observe::LogLimit;
use ringnet::sim::Faults;
use ringnet::Duration;
use ringnet_testkit::*;

#[test]
fn a_bulk_transfer_under_a_log_limit_logs_its_burst_and_counts_the_rest() {
    let _one = log_capture::capture();
    let mut w = pair(Faults::NONE, 41);
    let limit = LogLimit {
        burst: 4,
        interval: Duration::from_secs(1),
    };
    w.stacks[A].set_log_limit(Some(limit));
    assert_eq!(w.stacks[A].log_limit(), Some(limit));
    let (client, server, _) = w.connect(7, (512, 512), (512, 512));
    log_capture::clear();

    // 64 KiB through 512-byte rings: the sender's tx ring fills and drains again and again.
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut received) = (0, Vec::new());
    let mut buf = [0u8; 512];
    let start = w.wire.now();
    while received.len() < data.len() {
        if let Ok(n) = w.stacks[A].send(client, &data[sent..]) {
            sent += n;
        }
        w.settle();
        while let Ok(n) = w.stacks[B].recv(server, &mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        assert!(
            w.wire.now() - start < Duration::from_secs(60),
            "transfer stalled"
        );
    }
    assert_eq!(received, data);
    let elapsed = w.wire.now() - start;
    // A quiet interval ends the last window, which reports what it left out.
    w.run_for(Duration::from_millis(1100));

    let lines = log_capture::lines();
    let tag = format!("A: tcp{client} ");
    let transitions = lines
        .iter()
        .filter(|l| l.starts_with(&tag) && l.contains(" ring "))
        .count();
    let left_out: u64 = lines
        .iter()
        .filter(|l| l.starts_with(&tag) && l.contains("transition lines left out"))
        .map(|l| {
            l[tag.len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let intervals = elapsed.total_millis() / 1000 + 2;
    assert!(
        transitions as u64 <= 4 * intervals,
        "{transitions} lines in {intervals} intervals"
    );
    assert!(left_out > 0, "the left-out count is reported: {lines:#?}");
    let stats = w.stacks[A].stats(client).unwrap();
    assert!(
        u64::from(stats.tx_full_events) > 4 * intervals,
        "the counters see every transition: {stats:?}"
    );
    // The other stack has no limit: it logged each of its own transitions.
    let peer = w.stacks[B].stats(server).unwrap();
    let peer_full_lines = lines
        .iter()
        .filter(|l| l.starts_with(&format!("B: tcp{server} rx ring")) && l.contains("FULL"))
        .count();
    assert_eq!(peer_full_lines as u32, peer.rx_full_events);
}
