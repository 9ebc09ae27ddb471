"""The Linux side of ringnet's tap tests, written against Python's standard `socket`
module only: the calls of the original socket lessons (recv, send, sendall, recvfrom with
a small buffer, setsockopt SO_BROADCAST) against the ringnet device at 192.168.69.1.
Exits non-zero with a message on the first behaviour that differs from the kernel's."""

import socket
import sys

DEVICE = "192.168.69.1"
SUBNET_BROADCAST = "192.168.69.255"


def check(condition, what):
    if not condition:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def echo():
    s = socket.create_connection((DEVICE, 7), timeout=5)
    s.send(b"hello")
    got = b""
    while len(got) < 5:
        got += s.recv(5 - len(got))
    check(got == b"hello", "echo: send then recv returns the same bytes")
    data = bytes(range(256)) * 400
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(7000)
        check(chunk != b"", "echo: recv returns data, not EOF, while the peer is open")
        got += chunk
    check(got == data, "echo: sendall of 100 KiB comes back whole and in order")
    s.send(b"abcdef")
    first = s.recv(2)
    rest = b""
    while len(first) + len(rest) < 6:
        rest += s.recv(10)
    check(first + rest == b"abcdef", "echo: a short recv leaves the rest for the next call")
    s.shutdown(socket.SHUT_WR)
    check(s.recv(10) == b"", "echo: recv returns b'' once the device closed after our FIN")
    s.close()


def udp_report():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"x" * 1000, (DEVICE, 9000))
    reply, sender = u.recvfrom(8)
    check(len(reply) == 8, "udp: recvfrom(8) returns only the first 8 bytes of a longer datagram")
    check(sender == (DEVICE, 9000), "udp: recvfrom names the sender")
    u.sendto(b"x" * 1000, (DEVICE, 9000))
    reply, _ = u.recvfrom(2048)
    check(b"truncated: 488 lost" in reply, "udp: the device reports the truncation of a 1000-byte datagram")
    u.close()


def broadcast():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    try:
        u.sendto(b"to all", (SUBNET_BROADCAST, 9000))
        check(False, "broadcast: sendto a broadcast address without SO_BROADCAST must fail")
    except PermissionError:
        check(True, "broadcast: without SO_BROADCAST Linux refuses with EACCES, as ringnet does")
    u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    check(u.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1, "broadcast: getsockopt reads the option back")
    u.sendto(b"to all", (SUBNET_BROADCAST, 9000))
    reply, sender = u.recvfrom(2048)
    check(sender[0] == DEVICE and reply.startswith(b"6 bytes from"), "broadcast: the device received it and answered")
    u.close()


def beacon():
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("0.0.0.0", 9999))
    b.settimeout(5)
    data, sender = b.recvfrom(2048)
    check(sender[0] == DEVICE and data.startswith(b"ringnet dev"), "beacon: a socket on 0.0.0.0:9999 hears the device")
    b.close()


def refused():
    try:
        socket.create_connection((DEVICE, 1), timeout=5)
        check(False, "connect to a closed port must fail")
    except ConnectionRefusedError:
        check(True, "connect to a port nobody listens on is refused (RST), as on Linux")


if __name__ == "__main__":
    echo()
    udp_report()
    broadcast()
    beacon()
    refused()
