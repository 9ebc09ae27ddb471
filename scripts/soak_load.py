#!/usr/bin/env python3
"""The soak's load: for SECONDS, WORKERS clients at once against the ringnet device at DST
(inside the soak's own namespace), each doing echo, file out, file in, HTTP GET and PUT,
the verified transfer (through host-sim peer) and UDP; HOSTILE of them misbehave instead:
SYN floods from a spoofed address, slowloris heads, downloads never closed, uploads
aborted half way. Prints one line of figures per kind of operation. Bounded in time.

usage: soak_load.py DST SECONDS WORKERS HOSTILE HOST_SIM SYN_FLOOD
"""
import hashlib
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

DST, SECONDS, WORKERS, HOSTILE, HOST_SIM, SYN_FLOOD = (
    sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
END = time.monotonic() + SECONDS
ok, failed, refused = Counter(), Counter(), Counter()
reasons = Counter()
lock = threading.Lock()


def note(kind, good):
    with lock:
        (ok if good else failed)[kind] += 1


def pattern(n):
    return bytes(((i * 7 + (i >> 11)) & 0xFF) for i in range(n))


def read_all(s):
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return got
        got += chunk


def echo():
    data = os.urandom(random.randint(1, 20000))
    with socket.create_connection((DST, 7), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_all(s) == data


def file_out():
    n = random.randint(0, 300_000)
    with socket.create_connection((DST, 7001), timeout=10) as s:
        s.sendall(b"%d\n" % n)
        return read_all(s) == pattern(n)


def file_in():
    data = os.urandom(random.randint(0, 200_000))
    with socket.create_connection((DST, 7002), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = read_all(s).decode().split()
    return reply == [str(len(data)), hashlib.sha256(data).hexdigest()]


def http(request):
    with socket.create_connection((DST, 80), timeout=10) as s:
        s.sendall(request)
        return read_all(s)


def http_get():
    status = http(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")[:12]
    return status == b"HTTP/1.1 200" or status.decode(errors="replace")


def http_put():
    body = os.urandom(random.randint(0, 50_000))
    name = "soak-%d.bin" % random.randint(0, 20)
    head = b"PUT /%s HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (name.encode(), len(body))
    status = http(head + body)[:12]
    # A concurrent upload of the same name may win: 409 is the truthful answer then.
    return status in (b"HTTP/1.1 201", b"HTTP/1.1 204", b"HTTP/1.1 409") or status.decode(errors="replace")


def transfer():
    path = "/tmp/soak-%d-%d.bin" % (os.getpid(), threading.get_ident())
    with open(path, "wb") as f:
        f.write(os.urandom(random.randint(0, 100_000)))
    try:
        done = subprocess.run([HOST_SIM, "peer", "put", path, DST, "--quiet"], capture_output=True, timeout=30)
        why = done.stderr.decode(errors="replace").strip()
        if "Connection refused" in why:
            raise ConnectionRefusedError(why)
        return done.returncode == 0 or why[-60:]
    finally:
        os.unlink(path)


def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        port = random.choice([9000, 9001])
        u.sendto(b"?" * random.randint(1, 600), (DST, port))
        return len(u.recvfrom(4096)[0]) > 0


NORMAL = [echo, file_out, file_in, http_get, http_put, transfer, udp]


def syn_flood():
    port = random.choice([7, 80, 7001, 7002, 7003])
    subprocess.run([sys.executable, SYN_FLOOD, "192.168.69.77", DST, str(port), "200", "400"],
                   capture_output=True, timeout=30)
    return True


def slowloris():
    with socket.create_connection((DST, 80), timeout=30) as s:
        for byte in b"GET / HTTP/1.1\r\nHost: slow\r\n":
            s.send(bytes([byte]))
            time.sleep(0.5)
            if time.monotonic() > END:
                break
    return True


def never_close():
    s = socket.create_connection((DST, random.choice([7001, 7])), timeout=10)
    s.sendall(b"1000\n")
    time.sleep(random.uniform(5, 20))
    s.close()
    return True


def abort_upload():
    s = socket.create_connection((DST, random.choice([7002, 80])), timeout=10)
    s.sendall(b"PUT /aborted.bin HTTP/1.1\r\nHost: d\r\nContent-Length: 1000000\r\n\r\n" + os.urandom(30_000))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST mid-upload
    return True


HOSTILE_KINDS = [syn_flood, slowloris, never_close, abort_upload]


def worker(kinds):
    while time.monotonic() < END:
        kind = random.choice(kinds)
        try:
            good = kind()
        except ConnectionRefusedError:
            # Every socket of the service's backlog holds a live connection: a fixed
            # backlog's answer to more clients than sockets, counted apart.
            with lock:
                refused[kind.__name__] += 1
            continue
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as e:
            good = type(e).__name__
        if good is not True:
            with lock:
                reasons[(kind.__name__, str(good))] += 1
        note(kind.__name__, good is True)


threads = [threading.Thread(target=worker, args=(HOSTILE_KINDS if i < HOSTILE else NORMAL,))
           for i in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for kind in [k.__name__ for k in NORMAL + HOSTILE_KINDS]:
    total = ok[kind] + failed[kind] + refused[kind]
    print(f"{kind:13} {total:6} tried, {refused[kind]:5} refused (backlog full), {failed[kind]:5} failed")
for (kind, why), n in reasons.most_common(8):
    print(f"  {kind}: {n} x {why}")
