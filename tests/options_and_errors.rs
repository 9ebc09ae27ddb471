//! setsockopt/getsockopt round trips, introspection, and every bad input the issue names.

use ringnet::sim::Faults;
use ringnet::socket::tcp::{AcceptError, ConnectError, ListenError, RecvError, SendError};
use ringnet::socket::udp;
use ringnet::socket::AddrError;
use ringnet::socket::{AddressFamily, OptionError, OptionName, SocketOption};
use ringnet::stack::{CloseError, OpenError};
use ringnet::{Duration, SocketType};
use ringnet_testkit::*;

#[test]
fn every_option_round_trips() {
    let mut w = pair(Faults::NONE, 30);
    let (client, _, _) = w.connect(7, (300, 700), (512, 512));
    let s = &mut w.stacks[A];
    let options = [
        SocketOption::NoDelay(true),
        SocketOption::KeepAlive(Some(Duration::from_secs(30))),
        SocketOption::KeepAlive(None),
        SocketOption::Ttl(7),
        SocketOption::RecvTimeout(Some(Duration::from_millis(250))),
        SocketOption::SendTimeout(Some(Duration::from_secs(2))),
        SocketOption::RecvTimeout(None),
        SocketOption::AckDelay(None),
        SocketOption::AckDelay(Some(Duration::from_millis(40))),
    ];
    for option in options {
        s.set_option(client, option).unwrap();
        assert_eq!(s.get_option(client, option.name()), Ok(option));
    }
    assert_eq!(
        s.get_option(client, OptionName::RecvBufferSize),
        Ok(SocketOption::RecvBufferSize(300))
    );
    assert_eq!(
        s.get_option(client, OptionName::SendBufferSize),
        Ok(SocketOption::SendBufferSize(700))
    );

    let dgram = udp_socket(s, 2, 128);
    for option in [
        SocketOption::Broadcast(true),
        SocketOption::Ttl(1),
        SocketOption::Broadcast(false),
    ] {
        s.set_option(dgram, option).unwrap();
        assert_eq!(s.get_option(dgram, option.name()), Ok(option));
    }
}

#[test]
fn out_of_range_wrong_type_and_read_only_options_are_refused() {
    let mut w = pair(Faults::NONE, 31);
    let s = &mut w.stacks[A];
    let stream = tcp_socket(s, 64, 64);
    let dgram = udp_socket(s, 2, 128);
    for bad in [
        SocketOption::Ttl(0),
        SocketOption::KeepAlive(Some(Duration::from_millis(10))),
        SocketOption::KeepAlive(Some(Duration::from_secs(40_000))),
        SocketOption::RecvTimeout(Some(Duration::ZERO)),
        SocketOption::SendTimeout(Some(Duration::ZERO)),
        SocketOption::AckDelay(Some(Duration::from_millis(501))),
    ] {
        assert_eq!(
            s.set_option(stream, bad),
            Err(OptionError::OutOfRange),
            "{bad:?}"
        );
    }
    assert_eq!(
        s.get_option(stream, OptionName::Ttl),
        Ok(SocketOption::Ttl(64)),
        "unchanged"
    );
    assert_eq!(
        s.set_option(stream, SocketOption::Broadcast(true)),
        Err(OptionError::WrongSocketType)
    );
    assert_eq!(
        s.set_option(dgram, SocketOption::NoDelay(true)),
        Err(OptionError::WrongSocketType)
    );
    assert_eq!(
        s.get_option(dgram, OptionName::KeepAlive),
        Err(OptionError::WrongSocketType)
    );
    assert_eq!(
        s.set_option(stream, SocketOption::RecvBufferSize(1 << 20)),
        Err(OptionError::ReadOnly)
    );
    s.close(dgram).unwrap();
    assert_eq!(
        s.set_option(dgram, SocketOption::Ttl(3)),
        Err(OptionError::BadHandle)
    );
}

#[test]
fn introspection_reports_handle_type_family_and_addresses() {
    let mut w = pair(Faults::NONE, 32);
    let (client, server, listener) = w.connect(8080, (512, 512), (512, 512));
    let a = &w.stacks[A];
    assert_eq!(a.socket_type(client), Some(SocketType::Stream));
    assert_eq!(a.family(client), Some(AddressFamily::Inet));
    assert_eq!(client.fileno(), 0, "first socket, first number");
    let local = a.local_addr(client).unwrap();
    assert_eq!(local.addr, ip(A).into());
    assert_eq!(a.peer_addr(client), Ok(ep(B, 8080)));
    let b = &w.stacks[B];
    assert_eq!(b.socket_type(listener), Some(SocketType::Listener));
    assert_eq!(b.local_addr(listener).unwrap().port, 8080);
    assert_eq!(b.peer_addr(listener), Err(AddrError::NotConnected));
    assert_eq!(b.peer_addr(server), Ok(local));
    let handles: Vec<_> = b.handles().collect();
    assert_eq!(handles, vec![server, listener]);
    let table = b.stats_table().to_string();
    assert!(
        table.contains("listen#1") && table.contains("tcp#0"),
        "{table}"
    );
}

#[test]
fn zero_capacity_rings_and_a_full_table_are_refused() {
    let mut w = pair(Faults::NONE, 33);
    let s = &mut w.stacks[A];
    assert_eq!(
        s.tcp_socket(leak(0), leak(64)).unwrap_err(),
        OpenError::ZeroCapacity
    );
    let ring = |slots: usize, bytes: usize| udp::UdpBuffer {
        slots: vec![ringnet::smoltcp::socket::udp::PacketMetadata::EMPTY; slots].leak(),
        payload: leak(bytes),
    };
    assert_eq!(
        s.udp_socket(ring(0, 64), ring(1, 64)).unwrap_err(),
        OpenError::ZeroCapacity
    );
    assert_eq!(
        s.udp_socket(ring(1, 64), ring(1, 0)).unwrap_err(),
        OpenError::ZeroCapacity
    );
    for _ in 0..SOCKETS {
        tcp_socket(s, 16, 16);
    }
    assert_eq!(
        s.tcp_socket(leak(16), leak(16)).unwrap_err(),
        OpenError::TableFull
    );
}

#[test]
fn misuse_of_stream_sockets_gets_a_specific_error() {
    let mut w = pair(Faults::NONE, 34);
    let (client, _, listener) = w.connect(7, (64, 64), (64, 64));
    let s = &mut w.stacks[A];
    let mut empty = [0u8; 0];
    assert_eq!(s.recv(client, &mut empty), Err(RecvError::EmptyBuffer));
    assert_eq!(s.send(client, b""), Ok(0));
    let fresh = tcp_socket(s, 64, 64);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(fresh, &mut buf), Err(RecvError::NotConnected));
    assert_eq!(
        s.send(fresh, b"early"),
        Err(SendError::NotConnected),
        "send before connect"
    );
    assert_eq!(s.connect(fresh, ep(B, 0)), Err(ConnectError::Unaddressable));
    assert_eq!(
        s.connect(client, ep(B, 7)),
        Err(ConnectError::AlreadyConnected)
    );
    assert_eq!(s.accept(client), Err(AcceptError::NotListening));
    let dgram = udp_socket(s, 1, 64);
    assert_eq!(s.recv(dgram, &mut buf), Err(RecvError::NotStream));
    assert_eq!(s.send(dgram, b"x"), Err(SendError::NotStream));

    let b = &mut w.stacks[B];
    assert_eq!(b.recv(listener, &mut buf), Err(RecvError::Listening));
    assert_eq!(b.send(listener, b"x"), Err(SendError::NotConnected));
    let spare = tcp_socket(b, 64, 64);
    assert_eq!(
        b.listen(7, &[spare]),
        Err(ListenError::AddrInUse),
        "port bound twice"
    );
    assert_eq!(b.listen(0, &[spare]), Err(ListenError::InvalidPort));
    assert_eq!(b.listen(8, &[]), Err(ListenError::EmptyBacklog));
    assert_eq!(b.listen(8, &[spare, spare]), Err(ListenError::NotFresh));
    assert_eq!(b.listen(8, &[listener]), Err(ListenError::NotFresh));

    let s = &mut w.stacks[A];
    s.close(client).unwrap();
    assert_eq!(s.close(client), Err(CloseError::BadHandle), "closed twice");
    assert_eq!(s.recv(client, &mut buf), Err(RecvError::BadHandle));
    assert_eq!(s.send(client, b"x"), Err(SendError::BadHandle));
}

#[test]
fn misuse_of_datagram_sockets_gets_a_specific_error() {
    let mut w = pair(Faults::NONE, 35);
    let s = &mut w.stacks[A];
    let d = udp_socket(s, 2, 64);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv_from(d, &mut buf), Err(udp::RecvError::NotBound));
    s.udp_bind(d, 7000).unwrap();
    assert_eq!(s.recv_from(d, &mut []), Err(udp::RecvError::EmptyBuffer));
    assert_eq!(
        s.send_to(d, &[0; 65], ep(B, 1)),
        Err(udp::SendError::TooLarge),
        "larger than the tx ring"
    );
    let stream = tcp_socket(s, 16, 16);
    assert_eq!(
        s.recv_from(stream, &mut buf),
        Err(udp::RecvError::NotDatagram)
    );
    assert_eq!(s.udp_bind(stream, 7001), Err(udp::BindError::NotDatagram));
}

#[test]
fn closing_with_unread_data_resets_the_connection_as_linux_does() {
    let mut w = pair(Faults::NONE, 36);
    let (client, server, _) = w.connect(7, (64, 64), (64, 64));
    w.stacks[B].send(server, b"unread").unwrap();
    w.settle();
    w.stacks[A].close(client).unwrap();
    w.settle();
    let mut buf = [0u8; 8];
    assert_eq!(
        w.stacks[B].recv(server, &mut buf),
        Err(RecvError::ConnectionReset)
    );
    assert_eq!(w.stacks[A].handles().count(), 0, "the slot was freed");
}
