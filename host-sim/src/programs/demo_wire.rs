//! The demo's scenarios where the wire and the reader decide: whether a short delay
//! between sends keeps TCP messages apart (11), and what a broadcast burst does to every
//! host on the wire (12).

use ringnet::framing::{length_prefix, DelimiterDecoder, LengthPrefixDecoder};
use ringnet::phy::Discard;
use ringnet::sim::{Faults, Wire};
use ringnet::smoltcp::phy::{Device, RxToken};
use ringnet::socket::SocketOption;
use ringnet::{Duration, IpEndpoint, Ipv4Address, SocketHandle};
use ringnet_testkit::{udp_socket, world_named, World, A, B, C, ETHERNET_MTU};

use super::demo::{check, err, heading, DemoError};

/// The three ways a sender may try to keep messages apart on a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remedy {
    /// Wait a little between sends and hope each arrives alone.
    Delay,
    /// End each message with `\n`.
    Delimiter,
    /// Put a 4-byte length before each message.
    LengthPrefix,
}

/// What the wire and the reader do meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// The reader reads as soon as data is there; nothing is lost.
    Idle,
    /// The reader reads only after both messages have arrived.
    SlowReader,
    /// The wire loses the segment of the first message; TCP retransmits it.
    LostSegment,
}

/// Between the delay remedy's two sends.
const PAUSE: Duration = Duration::from_millis(20);

const MESSAGES: [&[u8]; 2] = [b"hello", b"world"];

/// Takes the frame now waiting at `port` off the wire, as a lossy link would; says
/// whether there was one carrying data.
fn lose_next_frame<const P: usize>(wire: &Wire<'static, P>, port: usize) -> bool {
    let mut device = wire.port(port);
    match device.receive(wire.now()) {
        // Ethernet + IPv4 + TCP headers are 54 bytes: a longer frame carries payload.
        Some((rx, _)) => rx.consume(|frame| frame.len() > 54),
        None => false,
    }
}

/// Sends the two messages from `server` (on B) to `client` (on A) with `remedy` under
/// `condition`; returns the messages A's reader makes of what it receives.
fn exchange(
    w: &mut World<2>,
    client: SocketHandle,
    server: SocketHandle,
    remedy: Remedy,
    condition: Condition,
) -> Result<Vec<Vec<u8>>, DemoError> {
    let mut reads: Vec<Vec<u8>> = Vec::new();
    let read_now = |w: &mut World<2>, reads: &mut Vec<Vec<u8>>| {
        let mut buf = [0u8; 256];
        while let Ok(n) = w.stacks[A].recv(client, &mut buf) {
            if n == 0 {
                break;
            }
            reads.push(buf[..n].to_vec());
        }
    };
    for (i, message) in MESSAGES.into_iter().enumerate() {
        let mut bytes = Vec::new();
        match remedy {
            Remedy::Delay => bytes.extend_from_slice(message),
            Remedy::Delimiter => {
                bytes.extend_from_slice(message);
                bytes.push(b'\n');
            }
            Remedy::LengthPrefix => {
                bytes.extend_from_slice(&length_prefix(message.len()).map_err(err)?);
                bytes.extend_from_slice(message);
            }
        }
        w.stacks[B].send(server, &bytes).map_err(err)?;
        if i == 0 && condition == Condition::LostSegment {
            let wire = w.wire;
            w.stacks[B].poll(wire.now(), &mut wire.port(B));
            check(
                lose_next_frame(wire, A),
                "expected the first message's segment on the wire",
            )?;
        }
        w.settle();
        if condition != Condition::SlowReader {
            read_now(w, &mut reads);
        }
        if i == 0 && remedy == Remedy::Delay {
            w.run_for(PAUSE);
            if condition != Condition::SlowReader {
                read_now(w, &mut reads);
            }
        }
    }
    // The slow reader reads now; after a loss, the retransmission (smoltcp's RTO is at
    // least 1 s, Linux's 200 ms: far longer than the pause) brings the rest.
    let until = w.wire.now() + Duration::from_secs(3);
    loop {
        read_now(w, &mut reads);
        let got: usize = reads.iter().map(Vec::len).sum();
        let expected: usize = MESSAGES.iter().map(|m| m.len()).sum::<usize>()
            + match remedy {
                Remedy::Delay => 0,
                Remedy::Delimiter => 2,
                Remedy::LengthPrefix => 8,
            };
        if got >= expected || w.wire.now() >= until {
            break;
        }
        w.run_for(Duration::from_millis(100));
    }
    let stream: Vec<u8> = reads.concat();
    let mut messages = Vec::new();
    match remedy {
        // The reader takes each recv as one message: all the delay gives it.
        Remedy::Delay => messages = reads,
        Remedy::Delimiter => {
            let mut decoder = DelimiterDecoder::<64>::new(b'\n');
            let mut input = &stream[..];
            while !input.is_empty() {
                let (used, frame) = decoder.decode(input).map_err(err)?;
                if let Some(frame) = frame {
                    messages.push(frame.to_vec());
                }
                input = &input[used..];
            }
        }
        Remedy::LengthPrefix => {
            let mut decoder = LengthPrefixDecoder::<64>::new();
            let mut input = &stream[..];
            while !input.is_empty() {
                let (used, frame) = decoder.decode(input).map_err(err)?;
                if let Some(frame) = frame {
                    messages.push(frame.to_vec());
                }
                input = &input[used..];
            }
        }
    }
    Ok(messages)
}

fn shown(messages: &[Vec<u8>]) -> String {
    let texts: Vec<String> = messages
        .iter()
        .map(|m| format!("{:?}", String::from_utf8_lossy(m)))
        .collect();
    texts.join(" ")
}

/// Scenario 11: the three remedies for sticky packets under three conditions.
pub(super) fn sticky_remedies(w: &mut World<2>) -> Result<(), DemoError> {
    heading(
        11,
        "three remedies for sticky packets: a delay between sends, a delimiter, a length prefix",
        "a pause keeps sends apart only while the reader keeps up and nothing is lost",
    );
    let (client, server, _listener) = w.connect(7011, (256, 256), (256, 256));
    w.stacks[B]
        .set_option(server, SocketOption::NoDelay(true))
        .map_err(err)?;
    let want: Vec<Vec<u8>> = MESSAGES.iter().map(|m| m.to_vec()).collect();
    for remedy in [Remedy::Delay, Remedy::Delimiter, Remedy::LengthPrefix] {
        for condition in [
            Condition::Idle,
            Condition::SlowReader,
            Condition::LostSegment,
        ] {
            let messages = exchange(w, client, server, remedy, condition)?;
            let kept = messages == want;
            let remedy_name = match remedy {
                Remedy::Delay => "20 ms delay",
                Remedy::Delimiter => "'\\n' delimiter",
                Remedy::LengthPrefix => "length prefix",
            };
            let condition_name = match condition {
                Condition::Idle => "idle wire",
                Condition::SlowReader => "slow reader",
                Condition::LostSegment => "lost segment",
            };
            println!(
                "  {remedy_name:<15} {condition_name:<13} -> {} message(s): {} {}",
                messages.len(),
                shown(&messages),
                if kept { "kept apart" } else { "MERGED" }
            );
            // The claim: the delay works only on an idle wire; the others always.
            let expected = remedy != Remedy::Delay || condition == Condition::Idle;
            check(
                kept == expected,
                format!(
                    "{remedy_name} on a {condition_name}: kept apart {kept}, expected {expected}"
                ),
            )?;
        }
    }
    println!("a delay is no framing: only a delimiter or a length prefix survives a slow reader or a loss");
    w.stacks[A].close(client).map_err(err)?;
    w.stacks[B].close(server).map_err(err)?;
    w.settle();
    Ok(())
}

/// Datagrams in the broadcast burst.
const BURST: usize = 40;
/// Bytes in each.
const BURST_BYTES: usize = 200;
/// The burst's wire: its hosts' names.
const HOSTS: [&str; 4] = ["H1", "H2", "H3", "H4"];

/// Scenario 12: a broadcast burst on a wire of four hosts. Returns the wire's stacks, for
/// the stats at the end.
pub(super) fn broadcast_burst(
    start: ringnet::Instant,
    sink: Option<&'static crate::trace::TraceFile>,
) -> Result<World<4>, DemoError> {
    heading(
        12,
        "a broadcast burst fills every host's rx ring",
        "every host on the segment must take each broadcast frame: a burst costs each of them, listening or not",
    );
    // Hosts of their own names: the logs and traces keep them apart from A and B.
    let mut w: World<4> = world_named(HOSTS, Faults::NONE, 2027, ETHERNET_MTU, 256 * 1024);
    println!("H1 sends; H2 and H3 listen on UDP 9999; H4 runs nothing on the port.");
    w.wire.advance_to(start);
    super::demo::set_clock(w.wire);
    // A stack's clock moves at its polls: one now, so its first events are stamped now.
    let wire = w.wire;
    for (port, stack) in w.stacks.iter_mut().enumerate() {
        stack.poll(start, &mut wire.port(port));
    }
    if let Some(sink) = sink {
        for stack in &mut w.stacks {
            stack.set_event_sink(Some(sink));
        }
    }
    // A sender ring that takes the whole burst: it leaves back to back.
    let sender = udp_socket(&mut w.stacks[A], BURST, BURST * BURST_BYTES);
    w.stacks[A]
        .set_option(sender, SocketOption::Broadcast(true))
        .map_err(err)?;
    // B and C listen with rings of 4 datagrams (4 × 200 bytes); D runs nothing on the port.
    let listeners: Vec<SocketHandle> = [B, C]
        .into_iter()
        .map(|host| udp_socket(&mut w.stacks[host], 4, 4 * BURST_BYTES))
        .collect();
    for (host, socket) in [B, C].into_iter().zip(&listeners) {
        w.stacks[host].udp_bind(*socket, 9999).map_err(err)?;
    }
    // The burst leaves 10 ms into the scenario, so that its plot shows the rings before.
    w.run_for(Duration::from_millis(10));
    let frames_before: Vec<u64> = w.stacks.iter().map(|s| s.frame_counts().0).collect();
    let to = IpEndpoint::new(Ipv4Address::BROADCAST.into(), 9999);
    let payload = [b'b'; BURST_BYTES];
    let mut sent = 0;
    while sent < BURST {
        match w.stacks[A].send_to(sender, &payload, to) {
            Ok(_) => sent += 1,
            // The sender's own ring is full: let it drain onto the wire.
            Err(_) => w.settle(),
        }
    }
    w.settle();
    println!("H1 sent {BURST} broadcasts of {BURST_BYTES} bytes; nobody read yet:");
    for host in [B, C, 3] {
        let frames = w.stacks[host].frame_counts().0 - frames_before[host];
        let name = HOSTS[host];
        match listeners.get(host - 1) {
            Some(&socket) => {
                let stats = w.stacks[host].stats(socket).unwrap_or_default();
                let (rx, _) = w.stacks[host].ring_usage(socket).unwrap_or_default();
                println!(
                    "  {name}: {frames} frames in; rx ring {}/{} bytes, {} datagrams dropped at the full ring",
                    rx.0, rx.1, stats.rx_drops
                );
                check(
                    frames == BURST as u64,
                    format!("{name} should have taken every broadcast frame"),
                )?;
                check(
                    stats.rx_drops as usize == BURST - 4,
                    format!("{name}: expected {} drops", BURST - 4),
                )?;
            }
            None => {
                let discarded = w.stacks[host].discards().get(Discard::NoSocket);
                println!(
                    "  {name}: {frames} frames in, none for any socket of its: {discarded} discarded (no socket)"
                );
                check(
                    frames == BURST as u64 && discarded as usize == BURST,
                    format!("{name} should have taken and discarded every frame"),
                )?;
            }
        }
    }
    let wire = w.wire.stats();
    println!(
        "the wire carried {} frames and delivered {} copies: one broadcast costs every host",
        wire.sent, wire.delivered
    );
    Ok(w)
}
