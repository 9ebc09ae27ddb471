#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (run from fuzz/: python3 seeds/make.py).

Each server target's input is a script byte (bit 7: FIN after the input; bits 0-6: bytes
per send, 0 for all), then an options byte (bit 0: the server requires a token, "secret"; bit 1: two clients
at once, and the stream starts with the first one's length, 2 bytes), then the stream. The inspector's is a flags byte (bit 0: address the frames to the stack and
fill in checksums; bit 1: the listener is starved), then frames with 2-byte lengths."""
import hashlib, os, struct

here = os.path.dirname(os.path.abspath(__file__))

def write(target, name, data):
    os.makedirs(os.path.join(here, target), exist_ok=True)
    with open(os.path.join(here, target, name), "wb") as f:
        f.write(data)

def frame(payload):
    return struct.pack(">I", len(payload)) + payload

def trailer(data):
    return frame(b"RNT2\x06" + hashlib.sha256(data).digest())

def put(name, data):
    return (frame(b"RNT2\x01" + bytes([len(name)]) + name + struct.pack(">Q", len(data)))
            + data + trailer(data))

def put_token(name, data, token):
    return (frame(b"RNT2\x05" + bytes([len(name)]) + name + struct.pack(">Q", len(data))
                  + bytes([len(token)]) + token) + data + trailer(data))

def get(name, offset):
    return frame(b"RNT2\x02" + bytes([len(name)]) + name + struct.pack(">Q", offset))

def put_v1(name, data):
    return frame(b"RNT1\x01" + bytes([len(name)]) + name + struct.pack(">Q", len(data))
                 + hashlib.sha256(data).digest()) + data

for script in (0x80, 0x07):
    s = bytes([script, script & 1])
    write("transfer_server", f"put-token-{script:02x}", s + put_token(b"t.bin", b"tok" * 9, b"secret"))
    write("transfer_server", f"put-{script:02x}", s + put(b"new.bin", b"hello" * 40))
    write("transfer_server", f"put-empty-{script:02x}", s + put(b"e", b""))
    write("transfer_server", f"put-seed-{script:02x}", s + put(b"seed.bin", b"x" * 100))
    write("transfer_server", f"get-{script:02x}", s + get(b"seed.bin", 0))
    write("transfer_server", f"get-resume-{script:02x}", s + get(b"seed.bin", 2999))
    write("transfer_server", f"put-v1-{script:02x}", s + put_v1(b"old.bin", b"hello" * 40))
    write("transfer_server", f"put-bad-trailer-{script:02x}", s + put(b"new.bin", b"hello" * 40)[:-32] + b"\x00" * 32)
    write("transfer_wire", f"put-{script:02x}", put(b"a.txt", b"")[4:-41])
    write("transfer_wire", f"put-token-{script:02x}", put_token(b"a.txt", b"", b"k")[4:-41])
    write("transfer_wire", f"trailer-{script:02x}", trailer(b"abc")[4:])
    write("transfer_wire", f"get-{script:02x}", get(b"a.txt", 5)[4:])

http = {
    "get": b"GET /seed.bin HTTP/1.1\r\nHost: d\r\n\r\n",
    "range": b"GET /seed.bin HTTP/1.1\r\nRange: bytes=10-20\r\n\r\n",
    "head-list": b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    "stats": b"GET /stats HTTP/1.1\r\n\r\nGET /stats?x HTTP/1.1\r\n\r\n",
    "put": b"PUT /n.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "put-continue": b"PUT /n.txt HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "put-token": b"PUT /n.txt HTTP/1.1\r\nAuthorization: Bearer secret\r\nContent-Length: 2\r\n\r\nhi",
    "post": b"POST /p.txt HTTP/1.1\r\nContent-Length: 1\r\n\r\nz",
    "delete": b"DELETE /seed.bin HTTP/1.1\r\n\r\nGET /seed.bin HTTP/1.1\r\n\r\n",
    "options": b"OPTIONS * HTTP/1.1\r\n\r\n",
    "absolute": b"GET http://d/seed.bin HTTP/1.1\r\n\r\n",
    "pattern": b"GET /pattern-5000 HTTP/1.1\r\n\r\n",
}
def two(first, second):
    return struct.pack(">H", len(first)) + first + second

for script in (0x80, 0x05):
    s = bytes([script, 2])
    body = b"hello" * 40
    write("transfer_server", f"two-puts-{script:02x}", s + two(put(b"race.bin", body), put(b"race.bin", body[::-1])))
    write("transfer_server", f"put-and-get-{script:02x}", s + two(put(b"seed.bin", body), get(b"seed.bin", 0)))
    write("http_server", f"two-puts-{script:02x}", s + two(
        b"PUT /r.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"PUT /r.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nworld"))
    write("http_server", f"stats-and-list-{script:02x}", s + two(
        b"GET /stats HTTP/1.1\r\n\r\n" * 20, b"GET / HTTP/1.1\r\n\r\n"))

for name, data in http.items():
    write("http_server", name, bytes([0x80, 0]) + data)
    write("http_server", name + "-cut", bytes([0x03, 1]) + data)

def eth_ipv4(proto, l4):
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip + l4

udp = struct.pack(">HHHH", 5000, 9000, 8 + 4, 0) + b"ping"
syn = struct.pack(">HHIIBBHHH", 40000, 7, 1, 0, 0x50, 0x02, 64240, 0, 0)
ack = struct.pack(">HHIIBBHHH", 40000, 7, 2, 1, 0x50, 0x10, 0, 0, 0) + b"data"
for flags in (1, 3):
    frames = b"".join(struct.pack(">H", len(f)) + f
                      for f in (eth_ipv4(17, udp), eth_ipv4(6, syn), eth_ipv4(6, ack)))
    write("inspector", f"udp-syn-ack-{flags}", bytes([flags]) + frames)
write("framing", "frames", bytes([3, 1, 5, 2]) + b"\x00\x00\x00\x02hi" + b"line\n")
