"""Raw Ethernet frames for the firmware test's hostile peers on the tap (tap0, inside the
test's network namespace): the firmware's addresses, a raw socket on tap0, the Internet
checksum and an IPv4 header. Imported by the scripts test-firmware.sh writes."""
import socket
import struct

FW_MAC = bytes.fromhex("525400123456")
FW_IP = socket.inet_aton("10.0.2.15")
OWN_IP = socket.inet_aton("10.0.2.2")


def open_tap():
    """A raw socket on tap0 taking every frame, and tap0's own MAC."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(("tap0", 0))
    return s, s.getsockname()[4]


def csum(data):
    """The Internet checksum (RFC 1071) of `data`."""
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1):
    """An IPv4 packet (don't fragment, TTL 64) from `src` to `dst` carrying `payload`."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + payload


def ethernet(src_mac, payload):
    """An IPv4 Ethernet frame to the firmware."""
    return FW_MAC + src_mac + b"\x08\x00" + payload
