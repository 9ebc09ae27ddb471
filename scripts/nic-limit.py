#!/usr/bin/env python3
"""The host side of the firmware's NIC-limit mode (firmware feature nic-limit, see
firmware/src/nic_limit.rs): raw UDP frames through the emulated NIC with no stack above
the driver.

  nic-limit.py tx PORT BYTES   # guest -> host: the firmware sends BYTES, we count them
  nic-limit.py tx PORT BYTES pattern   # the same, each payload filled with file out's
                                       # pattern on the device (file out's per-byte work)
  nic-limit.py rx PORT BYTES   # host -> guest: we send BYTES, the firmware counts them

PORT is the host's UDP port forwarded to the firmware's 9000 (on 127.0.0.1). Prints one
line: the direction, MB/s, and what was lost on the way. tx is timed by the host, from the
command to the firmware's report (which it sends after the last datagram), as the TCP
tools time a transfer: the guest's SysTick loses ticks when the host is busy, so its own
figure (printed too) runs high. rx is timed by the firmware, from the first datagram to
the last: QEMU's user-mode network reads one datagram per turn of its main loop, so it
measures that network more than the NIC (the benchmark takes host -> guest from the
firmware's TCP sink instead). Every wait is bounded; exits non-zero when the firmware does
not answer.
"""
import socket
import sys
import time

SIZE = 1472  # the payload of a full frame: 1500 less the IPv4 and UDP headers
TIMEOUT = 30.0


def main():
    args = sys.argv[1:]
    pattern = len(args) == 4 and args[0] == "tx" and args[3] == "pattern"
    if not (len(args) == 3 or pattern) or args[0] not in ("tx", "rx"):
        sys.exit(__doc__)
    direction, port, total = args[0], int(args[1]), int(args[2])
    peer = ("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # SO_RCVBUFFORCE (as root) past rmem_max: the guest's burst must not be lost here.
        sock.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.settimeout(2.0)

    def ask(command, prefix):
        """Sends a command until a datagram starting with prefix answers it."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            sock.sendto(command, peer)
            try:
                while True:
                    data, _ = sock.recvfrom(65536)
                    if data.startswith(prefix):
                        return data.decode().split()
            except socket.timeout:
                continue
        sys.exit(f"nic-limit: no answer to {command!r} from 127.0.0.1:{port}")

    # Counts afresh, and has the firmware learn where we are.
    ask(b"rx?", b"rx ")
    if direction == "tx":
        start = time.monotonic()
        sock.sendto(f"tx {total} {SIZE}{' pattern' if pattern else ''}".encode(), peer)
        received = 0
        deadline = time.monotonic() + TIMEOUT
        report = None
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                continue
            if data.startswith(b"tx "):
                report = data.decode().split()
                break
            received += len(data)
        elapsed = time.monotonic() - start
        if report is None:
            sys.exit("nic-limit: the firmware did not report its transmission")
        frames, sent, micros = int(report[1]), int(report[2]), int(report[3])
        print(
            f"guest -> host: {received / elapsed / 1e6:.1f} MB/s (host-timed: {received} of "
            f"{sent} bytes in {elapsed * 1e3:.0f} ms; the firmware's clock: {frames} frames "
            f"in {micros} us)"
        )
    else:
        payload = b"D" + bytes(SIZE - 1)
        sent = 0
        start = time.monotonic()
        while sent < total:
            try:
                sock.sendto(payload, peer)
            except BlockingIOError:
                continue
            sent += SIZE
        blasted = time.monotonic() - start
        time.sleep(0.5)
        report = ask(b"rx?", b"rx ")
        frames, got, micros, full = int(report[1]), int(report[2]), int(report[3]), int(report[4])
        if micros == 0:
            sys.exit(f"nic-limit: the firmware counted {frames} frames, too few to time")
        print(
            f"host -> guest: {got / micros:.1f} MB/s (firmware-timed: {frames} frames, "
            f"{got} bytes in {micros} us, its receive side full {full} times; the host sent "
            f"{sent} in {blasted * 1e3:.0f} ms)"
        )


if __name__ == "__main__":
    main()
