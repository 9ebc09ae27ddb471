#!/usr/bin/env bash
# Builds the firmware for a board, boots it under QEMU and checks it from Linux: user-mode
# networking with hostfwd on 127.0.0.1, then a tap inside a network namespace this script
# creates and deletes. Every QEMU run is bounded and killed by PID.
#   scripts/test-firmware.sh                    # lm3s6965evb, Stellaris Ethernet
#   BOARD=emcraft-sf2 scripts/test-firmware.sh  # SmartFusion2, MSS Ethernet MAC (feature sf2)
# Fails when QEMU cannot run and CI is set; without CI it says why and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
qemu_pid=""
ns=""
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
  true
}
trap cleanup EXIT

skip() {
  if [ -n "${CI:-}" ]; then
    echo "FAIL: $*" >&2
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 0
}
command -v qemu-system-arm >/dev/null || skip "qemu-system-arm is not installed (apt-get install qemu-system-arm)"
command -v nc >/dev/null || skip "nc is not installed (apt-get install netcat-openbsd)"
command -v defmt-print >/dev/null || skip "defmt-print is not installed (cargo install defmt-print --locked)"

# Ports of this run's forwarding (another QEMU on the machine keeps its own).
base=$((20000 + ($$ % 400) * 100))
udp_base=$((base + 50))
export PORT_BASE=$base UDP_PORT_BASE=$udp_base
tcp() { echo $((base + $1 - 7000)); }
passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    failed=$((failed + 1))
    echo "FAILED: $what"
  fi
}

board=${BOARD:-lm3s6965evb}
case "$board" in
  lm3s6965evb)
    build=(--release) profile=release expected=firmware/expected/boot.txt tx_full=firmware/expected/tx-full.txt
    # The driver's counters, logged with each stats query: at rest, and after a flood.
    nic_quiet='enet: rx [0-9]+ frames, tx [0-9]+; RX FIFO full 0 times .*, 0 dropped; TX busy 0 times, 0 errors'
    nic_flooded='enet: rx [0-9]+ frames, tx [0-9]+; RX FIFO full [1-9][0-9]* times'
    nic_warning='WARN  enet: RX FIFO FULL \(31/31 frames\)'
    ;;
  emcraft-sf2)
    # Its own profile (opt-level 3), so that each board's build stays cached beside the other's,
    # with the default features as `cargo sf2` builds it (`sf2` brings `sha-compact`).
    build=(--profile sf2 --no-default-features --features sf2,http,transfer,defmt) profile=sf2 expected=firmware/expected/boot-sf2.txt tx_full=firmware/expected/tx-full-sf2.txt
    nic_quiet='emac: rx [0-9]+ frames, tx [0-9]+; RX ring full 0 times .*, DMA stopped 0 times, 0 dropped; TX ring full 0 times'
    # QEMU sends a frame the moment DMA is enabled: the TX ring never fills there.
    nic_flooded='emac: rx [0-9]+ frames, tx [0-9]+; RX ring full [1-9][0-9]* times .*, DMA stopped [1-9][0-9]* times, 0 dropped; TX ring full 0 times'
    nic_warning='WARN  emac: RX descriptors exhausted \([0-9]+/64 hold frames\): DMA stopped'
    ;;
  *) echo "BOARD must be lm3s6965evb or emcraft-sf2" >&2; exit 2 ;;
esac
export BOARD=$board
echo "== board $board"
(cd firmware && cargo build --quiet "${build[@]}")
image=firmware/target/thumbv7m-none-eabi/$profile/ringnet-firmware
if [ "$board" = lm3s6965evb ]; then
  # The footprint with every service and the debug-level defmt log (firmware/footprint.txt
  # has the breakdown). Static RAM must meet its 60 KiB target. Flash does not meet its
  # 64 KiB target yet (docs/firmware.md says what is left): until it does, it must stay
  # within the budget below, the last figure and 252 B (86 756 B: +804 B for a backlog
  # socket renewed in smoltcp's set when it listens again, a heard peer's handshake given
  # a grace of four of its listener's handshakes against a spoofed SYN, and a spoofed SYN that finds no room
  # not left waiting in the hold; 85 952 B before: +240 B for a SYN
  # flood's half-opens giving way before a client's handshake, -8 B for a PUT found full
  # at its commit answered 507; 85 720 B before them: +3 476 B from
  # 81 152 B for the ARP queue, which keeps a spoofed source's answers out of the
  # services' rings, +932 B for the check of bytes after a peer's FIN, −52 B with the
  # queue keyed by next hop, +212 B for the TCP headers smoltcp cannot parse counted and
  # a SYN's last MSS option bounded; docs/firmware.md has each row), so that growth fails.
  flash_budget=87008
  footprint=$(bash scripts/footprint-firmware.sh "$image" || true)
  flash=$(sed -n 's/^flash \([0-9]*\) B.*/\1/p' <<<"$footprint")
  ram=$(sed -n 's/^static_ram \([0-9]*\) B.*/\1/p' <<<"$footprint")
  echo "footprint: flash ${flash:-?} B, static RAM ${ram:-?} B; $(grep 'flash target' <<<"$footprint")"
  check "static RAM with every service is at most 60 KiB (${ram:-?} B)" test "${ram:-999999}" -le 61440
  check "flash with every service stays within its budget (${flash:-?} of $flash_budget B)" \
    test "${flash:-999999}" -le "$flash_budget"
fi
# The Linux side of the transfer protocol (the test command has built it already).
cargo build --quiet -p host-sim
host_sim() { cargo run --quiet -p host-sim -- "$@"; }

boot() {
  # boot LOG [env...]: starts QEMU in the background, waits for the firmware's "ready".
  local log=$1
  shift
  env "$@" timeout 600 bash scripts/qemu-firmware.sh "$image" >"$log" 2>&1 &
  qemu_pid=$!
  for _ in $(seq 100); do
    grep -q "ready:" "$log" && return 0
    sleep 0.1
  done
  echo "the firmware did not come up:" >&2
  cat "$log" >&2
  return 1
}

stop() {
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  # defmt-print decodes what QEMU wrote last after QEMU has ended.
  sleep 0.5
}

stats_query() {
  # The UDP stats query on the forwarded port: prints the table the firmware answers.
  python3 - <<'PY'
import os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b"?", ("127.0.0.1", int(os.environ["UDP_PORT_BASE"]) + 1))
print(u.recvfrom(4096)[0].decode())
PY
}

pattern_sha() {
  python3 -c "import hashlib,sys; n=int(sys.argv[1]); print(hashlib.sha256(bytes(((i*7+(i>>11))&0xff) for i in range(n))).hexdigest())" "$1"
}

echo "== user-mode networking (slirp), services on 127.0.0.1 from port $base"
log=$work/uart.log
boot "$log" PCAP="$work/net.pcap" || skip "QEMU could not boot the firmware"

check "echo round trip" test "$(printf 'ringnet echo\n' | nc -N -w 5 127.0.0.1 $((base + 7)))" = "ringnet echo"
check "the built-in file from 7001" \
  test "$(nc -N -w 5 127.0.0.1 "$(tcp 7001)" </dev/null | sha256sum | cut -d' ' -f1)" = "$(sha256sum <firmware/assets/welcome.txt | cut -d' ' -f1)"
# A reader that stalls before it reads: file out's tx ring runs full meanwhile (and has
# room again once it reads) whatever the host's speed; the golden excerpt and the UART
# trace below look for that sequence.
check "a reader that stalls 2 s still gets a 4 MiB pattern from 7001 intact" \
  python3 - "$(tcp 7001)" "$(pattern_sha 4194304)" <<'PY'
import hashlib, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(30)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"4194304\n")
time.sleep(2)
digest, n = hashlib.sha256(), 0
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    digest.update(chunk)
    n += len(chunk)
sys.exit(0 if n == 4194304 and digest.hexdigest() == sys.argv[2] else 1)
PY
for size in 0 1 1048576 16777216; do
  got=$(printf '%s\n' "$size" | timeout 120 nc -N -w 10 127.0.0.1 "$(tcp 7001)" | sha256sum | cut -d' ' -f1)
  check "7001 sends a $size-byte pattern intact" test "$got" = "$(pattern_sha "$size")"
  head -c "$size" /dev/urandom >"$work/in.bin"
  reply=$(timeout 120 nc -N -w 10 127.0.0.1 "$(tcp 7002)" <"$work/in.bin")
  check "7002 receives $size bytes and replies their SHA-256" \
    test "$reply" = "$size $(sha256sum <"$work/in.bin" | cut -d' ' -f1)"
done
answer=$(python3 - <<'PY'
import os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b"x" * 600, ("127.0.0.1", int(os.environ["UDP_PORT_BASE"])))
print(u.recvfrom(2048)[0].decode().strip())
PY
)
check "a 600-byte datagram is reported truncated to the sender" grep -q "^600 bytes from .*, truncated: 344 lost$" <<<"$answer"
check "the UART log reports the truncation" grep -q "udp#[0-9]* datagram from .* truncated: 256 of 600 bytes fit, 344 lost" "$log"
stats=$(stats_query)
# File out's socket: the backlogs come first in the table, the listeners after them.
check "the stats query answers with the table" grep -q "tcp#1 .* 7001" <<<"$stats"
top=$(host_sim top 127.0.0.1:$((udp_base + 1)) --count 2 --interval 200 2>&1 || true)
check "top shows the firmware's sockets from its forwarded stats port" \
  test "$(grep -c "^tcp#1 .* 7001 " <<<"$top")" = 2
top=$(host_sim top 127.0.0.1:$((base + 80)) --http --count 1 2>&1 || true)
check "top --http shows them from GET /stats" grep -q "^tcp#1 .* 7001 " <<<"$top"
# The NIC's own ring, logged and counted like the sockets': the bulk transfers above never
# ran it out (their windows are smaller than it), a flood of datagrams does, and frames
# flow again after it.
sleep 0.5
check "nothing above ran the NIC's receive ring out (its counters are zero)" \
  grep -qE "$nic_quiet" <(grep -E 'INFO  (enet|emac): rx' "$log" | tail -n 1)
python3 - <<'PY'
import os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3000):
    u.sendto(b"f" * 1400, ("127.0.0.1", int(os.environ["UDP_PORT_BASE"])))
PY
sleep 1
stats=$(stats_query) || stats=""
check "after a flood of 3000 datagrams the stats query is still answered" grep -q "tcp#1 .* 7001" <<<"$stats"
sleep 0.5
check "the flood ran the NIC's receive ring out, and the UART says so" grep -qE "$nic_warning" "$log"
# The driver logs its counters with each stats query, and the decoder may show that line a
# moment after the answer: ask again until the newest line shows the flood (at most 10 s).
nic_counted() {
  local newest
  for _ in $(seq 20); do
    newest=$(grep -E 'INFO  (enet|emac): rx' "$log" | tail -n 1)
    grep -qE "$nic_flooded" <<<"$newest" && return 0
    stats_query >/dev/null || true
    sleep 0.5
  done
  echo "the newest counter line: $newest" >&2
  return 1
}
check "and the driver counted it" nic_counted
echo "-- verified transfer on 127.0.0.1:$(tcp 7003)"
head -c 1048576 /dev/urandom >"$work/up.bin"
put=$(host_sim peer put "$work/up.bin" 127.0.0.1 --port "$(tcp 7003)" --name up.bin -q --timeout 30 2>&1 || true)
check "a 1 MiB put over 7003 is verified by the device" \
  grep -q "^put up.bin: 1048576 bytes .* sha256 $(sha256sum <"$work/up.bin" | cut -d' ' -f1) verified by the peer" <<<"$put"
check "the UART log records the stored digest" grep -q "transfer tcp#[0-9]*: stored 1048576 bytes, digest verified" "$log"
# The UART log as a trace: file out's tx ring ran full under the 16 MiB pattern.
host_sim trace-from-uart "$log" -o "$work/uart.json" >/dev/null 2>&1 || true
check "trace-from-uart finds file out's tx ring full in the UART log" python3 - "$work/uart.json" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
full = [e for e in events if e.get("cat") == "ring" and e["name"] == "tcp#1 tx"
        and e["args"]["used"] == e["args"]["capacity"] > 0]
sys.exit(0 if full else 1)
PY
check "and plot draws the firmware's sockets from it" \
  bash -c "cargo run --quiet -p host-sim -- plot '$work/uart.json' -o '$work/uart.svg' --socket tcp#1 >/dev/null && grep -q ' tcp#1: rx ring' '$work/uart.svg'"
got=$(host_sim peer get up.bin 127.0.0.1 --port "$(tcp 7003)" -o "$work/got.bin" -q --timeout 30 2>&1 || true)
check "a get from the digest-only store is refused with a reason" grep -q "this store keeps digests only" <<<"$got"
v1=$(TRANSFER_PORT=$(tcp 7003) python3 - <<'PY'
import hashlib, os, socket, struct
# A version 1 put (the digest in the request): the device answers in version 1's words.
data = b"hello"
payload = b"RNT1\x01\x01f" + struct.pack(">Q", len(data)) + hashlib.sha256(data).digest()
s = socket.create_connection(("127.0.0.1", int(os.environ["TRANSFER_PORT"])), timeout=10)
s.sendall(struct.pack(">I", len(payload)) + payload + data)
reply = b""
while len(reply) < 4 or len(reply) < 4 + struct.unpack(">I", reply[:4])[0]:
    chunk = s.recv(512)
    if not chunk:
        break
    reply += chunk
print(reply[4:8].decode(errors="replace"), reply[8], reply[9], reply[43:].decode(errors="replace"))
PY
)
check "a version 1 put is refused in a version 1 status frame" grep -q "^RNT1 4 1 protocol version 1 is not served" <<<"$v1"
http=http://127.0.0.1:$((base + 80))
echo "-- HTTP on $http"
check "GET the built-in file" \
  test "$(curl -sf --max-time 10 $http/welcome.txt | sha256sum | cut -d' ' -f1)" = "$(sha256sum <firmware/assets/welcome.txt | cut -d' ' -f1)"
for size in 0 1 1048576 16777216; do
  check "GET a $size-byte pattern" \
    test "$(curl -sf --max-time 120 $http/pattern-$size | sha256sum | cut -d' ' -f1)" = "$(pattern_sha "$size")"
done
check "HEAD has the length and no body" grep -q "Content-Length: 1048576" <(curl -sfI --max-time 10 $http/pattern-1048576)
check "a range resumes" test "$(curl -sf --max-time 10 -r 1000- $http/pattern-5000 | wc -c)" = 4000
head -c 1500 /dev/urandom >"$work/small.bin"
check "PUT stores a small file (201)" test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -T "$work/small.bin" $http/small.bin)" = 201
check "and GET returns it" cmp -s "$work/small.bin" <(curl -sf --max-time 10 $http/small.bin)
head -c 10000 /dev/urandom >"$work/large.bin"
check "PUT of more than the RAM store holds is 413" \
  test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -T "$work/large.bin" $http/large.bin)" = 413
check "DELETE of the built-in file is 403" test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE $http/welcome.txt)" = 403
check "DELETE removes an upload (204), then it is 404" \
  test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE $http/small.bin) $(curl -s --max-time 10 -o /dev/null -w '%{http_code}' $http/small.bin)" = "204 404"
check "a pattern of 4 GiB streams on a 32-bit device (no u64 as usize)" \
  test "$(curl -s --max-time 10 $http/pattern-4294967296 2>/dev/null | head -c 100000 | wc -c)" = 100000
check "traversal is 404" test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' $http/%2e%2e%2fetc%2fpasswd)" = 404
check "two requests reuse one connection" \
  grep -qE "(Re-using|Reusing) existing" <(curl -sv --max-time 10 -o /dev/null -o /dev/null $http/welcome.txt $http/welcome.txt 2>&1)
check "a malformed request is 400" \
  grep -q "^HTTP/1.1 400 Bad Request" <(printf 'nonsense\r\n\r\n' | nc -N -w 5 127.0.0.1 $((base + 80)))
check "an unknown method is 501" test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X BREW $http/welcome.txt)" = 501
parallel=$(for _ in 1 2 3 4; do (curl -s --max-time 30 -o /dev/null -w '%{http_code}\n' $http/pattern-100000; true) & done; wait)
check "four parallel clients are served or cleanly refused" \
  test "$(grep -cE '^(200|503|000)$' <<<"$parallel")" = 4 -a "$(grep -c '^200$' <<<"$parallel")" -ge 1
check "a client that sends half a request gets 408" \
  grep -q "^HTTP/1.1 408" <( (printf 'GET / HTTP/1.1\r\nHost: mcu'; sleep 12) | nc -w 15 127.0.0.1 $((base + 80)))
check "/stats is JSON" python3 -c "import json,urllib.request; d=json.load(urllib.request.urlopen('$http/stats', timeout=10)); assert d['host'] == 'mcu'"
sleep 1.5
stop
# Every service above ran, transfer's and HTTP's deepest calls among them: the stack must have stayed
# 2 KiB clear of the statics (the loop warns otherwise), and nothing may have faulted.
high_water=$(grep -o 'stack high water [0-9]*/[0-9]*' "$log" | tail -n 1 || true)
check "the stack kept its headroom through every service (${high_water:-no high water logged})" \
  bash -c "grep -q 'memory: stack high water' '$log' && ! grep -qE 'left before the statics|PANIC|HARD FAULT' '$log'"
# Golden excerpts, read from defmt-print's decoded lines: the boot banner, and a
# full-then-room sequence of the file-out ring.
strip() { sed -E 's/^[0-9]+\.[0-9]{6} //'; }
check "boot banner matches $expected" \
  diff <(strip <"$log" | grep -E '^INFO  (ringnet firmware|memory: [0-9]+ sockets|memory: (transfer|http|udp|rings)|log: |mcu: up|ready)' | head -n 9) "$expected"
check "a full-then-room sequence matches $tx_full" \
  diff <(strip <"$log" | grep -E 'tcp#1 tx ring' | grep -m 1 -A 1 'FULL' | sed -E 's/ring [0-9]+\//ring N\//') "$tx_full"
if command -v tshark >/dev/null; then
  beacons=$(tshark -r "$work/net.pcap" -Y 'udp.dstport == 9999' 2>/dev/null | wc -l)
  check "the beacon appears in the filter-dump capture ($beacons frames)" test "$beacons" -ge 2
fi

echo "== tap inside a network namespace"
if [ "$(id -u)" = 0 ] && ip netns add "rnfw$$" 2>/dev/null; then
  ns="rnfw$$"
  ip -n "$ns" link set lo up
  ip -n "$ns" tuntap add dev tap0 mode tap
  ip -n "$ns" link set tap0 up
  ip -n "$ns" addr add 10.0.2.2/24 dev tap0
  log=$work/uart-tap.log
  env NET=tap TAP=tap0 timeout 120 ip netns exec "$ns" bash scripts/qemu-firmware.sh "$image" >"$log" 2>&1 &
  qemu_pid=$!
  heard=$(ip netns exec "$ns" python3 - <<'PY'
import socket
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.bind(("0.0.0.0", 9999))
b.settimeout(10)
print(b.recvfrom(2048)[0].decode().strip())
PY
  ) || heard=""
  check "a Linux socket in the namespace hears the beacon" grep -q "^ringnet mcu 10.0.2.15" <<<"$heard"
  check "echo over the tap" test "$(printf 'via tap\n' | ip netns exec "$ns" nc -N -w 5 10.0.2.15 7)" = "via tap"
  # Spoofed datagrams to the report from addresses of the subnet that no host holds (the
  # namespace's own), one every 0.4 s, each a new source: their answers wait on the ARP
  # queue, and a real client asking once a second is answered every time (before the
  # queue, none of its asks was).
  cat >"$work/spoof_report.py" <<'PY'
# spoof_report.py: 25 spoofed datagrams to 10.0.2.15:9000 from 10.0.2.100.. on tap0, one
# every 0.4 s, while a real socket asks 10 times, once a second; prints the answers it got.
import socket, struct, threading, time
from fw_frames import FW_IP, ethernet, ipv4, open_tap
raw, own_mac = open_tap()
def datagram(src, payload):
    udp = struct.pack("!HHHH", 4000, 9000, 8 + len(payload), 0) + payload
    return ethernet(own_mac, ipv4(src, FW_IP, 17, udp))
def spoof():
    for k in range(25):
        raw.send(datagram(socket.inet_aton(f"10.0.2.{100 + k}"), b"?"))
        time.sleep(0.4)
threading.Thread(target=spoof, daemon=True).start()
time.sleep(0.5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(1.0)
answers = 0
for k in range(10):
    start = time.monotonic()
    u.sendto(f"ask {k}".encode(), ("10.0.2.15", 9000))
    try:
        if u.recvfrom(256)[0].startswith(b"5 bytes from 10.0.2.2:"):
            answers += 1
    except socket.timeout:
        pass
    time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
print(answers)
PY
  spoof_answers=$(ip netns exec "$ns" env PYTHONPATH="$PWD/scripts" timeout 30 python3 "$work/spoof_report.py" 2>&1) || spoof_answers="error: $spoof_answers"
  check "spoofed datagrams every 0.4 s do not stop the report answering a real client (${spoof_answers} of 10)" \
    test "$spoof_answers" = 10
  check "the UART tells of the spoofed sources' answers given up on the ARP queue" \
    grep -q 'dropped from the ARP queue: their next hop did not answer ARP in 3 s' "$log"
  # A spoofed SYN flood (scripts/syn_flood.py, from an address no host holds) at echo
  # and HTTP, 300 a second to each for 5 s, while a Linux client uses both: every one of
  # its rounds is served (its young handshake never gives way to a spoofed SYN, and its
  # SYN-ACK leaves at once from a socket a spoofed half-open gave up), and the listeners
  # count the half-opens that gave way.
  cat >"$work/flood_clients.py" <<'PY'
# flood_clients.py: 30 echo rounds and GETs of /welcome.txt against 10.0.2.15, one every
# 0.1 s; prints how many were served whole and the slowest round's seconds.
import socket, time, urllib.request
served, slowest = 0, 0.0
for i in range(30):
    start = time.monotonic()
    try:
        message = b"round %d" % i
        with socket.create_connection(("10.0.2.15", 7), timeout=15) as s:
            s.sendall(message)
            got = b""
            while len(got) < len(message):
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        body = urllib.request.urlopen("http://10.0.2.15/welcome.txt", timeout=15).read()
        served += got == message and body.startswith(b"ringnet")
    except OSError:
        pass
    slowest = max(slowest, time.monotonic() - start)
    time.sleep(0.1)
print(served, f"{slowest:.1f}")
PY
  flood=$(ip netns exec "$ns" bash -c "timeout 20 python3 scripts/syn_flood.py 10.0.2.77 10.0.2.15 7 1500 300 >/dev/null &
    timeout 20 python3 scripts/syn_flood.py 10.0.2.77 10.0.2.15 80 1500 300 >/dev/null &
    timeout 120 python3 $work/flood_clients.py; wait" 2>&1) || flood="error: $flood"
  read -r flood_served flood_slowest <<<"$flood"
  check "under a spoofed SYN flood at echo and HTTP a Linux client's 30 rounds are all served (${flood_served:-?} of 30, the slowest ${flood_slowest:-?} s)" \
    test "${flood_served:-0}" = 30
  flood_stats=$(ip netns exec "$ns" python3 -c "
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
u.sendto(b'?', ('10.0.2.15', 9001))
try:
    while True:
        print(u.recvfrom(4096)[0].decode())
except socket.timeout:
    pass" 2>&1) || flood_stats=""
  # ho-evi, the sixth column from the end of a listener's row.
  evicted_7=$(awk '$1 ~ /^listen#/ && $2 == 7 {print $(NF-5)}' <<<"$flood_stats")
  evicted_80=$(awk '$1 ~ /^listen#/ && $2 == 80 {print $(NF-5)}' <<<"$flood_stats")
  check "and the listeners counted the half-opens that gave way (echo ${evicted_7:-?}, HTTP ${evicted_80:-?} of 1500 SYNs each)" \
    test "${evicted_7:-0}" -ge 1000 -a "${evicted_80:-0}" -ge 1000
  if [ "$board" = lm3s6965evb ]; then
    # The Stellaris driver verifies received TCP checksums itself (smoltcp is told it need
    # not): SYNs to echo with a wrong TCP checksum, sent raw on the tap, must be dropped,
    # warned and counted, and the same SYN with the right checksum answered.
    nic_dropped() {
      # The driver's dropped count from the counter line it logs with each stats query.
      local before
      before=$(grep -cE 'INFO  enet: rx' "$log" || true)
      ip netns exec "$ns" python3 -c "import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.sendto(b'?', ('10.0.2.15', 9001)); u.recvfrom(4096)" || return 1
      for _ in $(seq 50); do
        [ "$(grep -cE 'INFO  enet: rx' "$log" || true)" -gt "$before" ] && break
        sleep 0.1
      done
      grep -E 'INFO  enet: rx' "$log" | tail -n 1 | sed -nE 's/.*, ([0-9]+) dropped;.*/\1/p'
    }
    cat >"$work/raw_syn.py" <<'PY'
# raw_syn.py bad|good COUNT: sends COUNT SYNs to 10.0.2.15:7 on tap0 (the firmware's MAC,
# from tap0's), each from its own port, with a wrong or the right TCP checksum, and prints
# how many of them a SYN-ACK answered within 3 s (sniffed on the same raw socket).
import socket, struct, sys, time
from fw_frames import FW_IP, FW_MAC, OWN_IP, csum, ethernet, ipv4, open_tap
mode, count = sys.argv[1], int(sys.argv[2])
s, own_mac = open_tap()
def syn(sport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, 7, seq, 0, 5 << 4, 0x02, 8192, 0, 0)
    check = csum(OWN_IP + FW_IP + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    if mode == "bad":
        check ^= 0x5A5A
    tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
    return ethernet(own_mac, ipv4(OWN_IP, FW_IP, 6, tcp, ident=sport))
ports = {}
for k in range(count):
    sport, seq = 40000 + (2 if mode == "good" else 1) * 1000 + k, 0x1000 + k * 77
    ports[sport] = seq
    s.send(syn(sport, seq))
answered = set()
s.settimeout(0.2)
end = time.monotonic() + 3
while time.monotonic() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    if frame[:6] != own_mac or frame[6:12] != FW_MAC or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        continue
    tcp = frame[14 + (frame[14] & 0xF) * 4:]
    sport, dport, _, ack, _, flags = struct.unpack("!HHIIBB", tcp[:14])
    if sport == 7 and dport in ports and flags & 0x12 == 0x12 and ack == ports[dport] + 1:
        answered.add(dport)
print(len(answered))
PY
    dropped_before=$(nic_dropped || true)
    warned_before=$(grep -c 'WARN  enet: dropped a received TCP segment whose checksum fails' "$log" || true)
    bad_answered=$(ip netns exec "$ns" env PYTHONPATH="$PWD/scripts" python3 "$work/raw_syn.py" bad 3 2>&1) || bad_answered="error: $bad_answered"
    dropped_after=$(nic_dropped || true)
    warned_after=$(grep -c 'WARN  enet: dropped a received TCP segment whose checksum fails' "$log" || true)
    check "3 SYNs with a wrong TCP checksum get no SYN-ACK in 3 s (${bad_answered} answered)" test "$bad_answered" = 0
    check "the driver counted exactly those 3 dropped (${dropped_before:-?} -> ${dropped_after:-?})" \
      test -n "$dropped_before" -a -n "$dropped_after" -a "$((${dropped_after:-0} - ${dropped_before:-0}))" = 3
    check "and warned of each on the UART ($warned_before -> $warned_after)" test "$((warned_after - warned_before))" = 3
    good_answered=$(ip netns exec "$ns" env PYTHONPATH="$PWD/scripts" python3 "$work/raw_syn.py" good 1 2>&1) || good_answered="error: $good_answered"
    check "the same SYN with the right checksum gets its SYN-ACK (${good_answered} of 1)" test "$good_answered" = 1
  fi
  stop
  ip netns del "$ns"
  ns=""
else
  [ -n "${CI:-}" ] && { echo "FAIL: the tap boot needs root and ip netns" >&2; exit 1; }
  echo "SKIPPED: the tap boot needs root and ip netns"
fi

if [ "$board" = lm3s6965evb ]; then
  echo "== the text log (feature text-log, for a serial console without defmt-print)"
  (cd firmware && cargo build --quiet --release --no-default-features --features http,transfer,text-log,sha-compact --target-dir target/text-log)
  text_image=firmware/target/text-log/thumbv7m-none-eabi/release/ringnet-firmware
  log=$work/uart-text.log
  env timeout 60 bash scripts/qemu-firmware.sh "$text_image" >"$log" 2>&1 &
  qemu_pid=$!
  for _ in $(seq 100); do
    grep -q "ready:" "$log" && break
    sleep 0.1
  done
  check "the text-log image boots and prints its banner as text" \
    grep -qE '^\[ *[0-9]+\.[0-9]{3}\] INFO  ringnet firmware .* log level debug$' "$log"
  check "and its services come up" test "$(printf 'text log\n' | nc -N -w 5 127.0.0.1 $((base + 7)))" = "text log"
  stop
  # A clean clone under CI keeps no build it will not use again (test-all.sh says why).
  if [ -n "${CI:-}" ]; then rm -rf firmware/target/text-log; fi
fi

if [ "$board" = lm3s6965evb ]; then
  echo "== the memcpy check (feature memcpy-check: the image's own __aeabi_memcpy, __aeabi_memmove and __aeabi_memclr and memcmp against byte-by-byte references, __aeabi_uldivmod checked by multiplication)"
  (cd firmware && cargo build --quiet --release --features memcpy-check --target-dir target/memcpy-check)
  check_image=firmware/target/memcpy-check/thumbv7m-none-eabi/release/ringnet-firmware
  log=$work/uart-memcpy.log
  # It ends QEMU itself: with success when every case held, with failure otherwise.
  memcpy_status=0
  timeout 60 bash scripts/qemu-firmware.sh "$check_image" >"$log" 2>&1 || memcpy_status=$?
  sleep 0.5
  grep -E '(memcpy|memmove|memclr|memcmp|uldivmod) check' "$log" || true
  # memcpy: source and destination alignments 0..8, lengths 0..=96 and 1500 and 4097;
  # memmove: source alignments 0..8, shifts -8..=8, the same lengths; memclr: alignments
  # 0..8, the same lengths; memcmp: alignments 0..4 each side, lengths 0..=40 and 1500,
  # equal or one byte differing; uldivmod: 64 dividends by 62 divisors.
  check "the memcpy check ran 6336 cases and none failed (QEMU's status $memcpy_status)" \
    bash -c "test $memcpy_status = 0 && grep -qE 'INFO  memcpy check: 6336 cases, 0 failed\$' '$log'"
  check "the memmove check ran 13464 cases and none failed" \
    grep -qE 'INFO  memmove check: 13464 cases, 0 failed$' "$log"
  check "the memclr check ran 792 cases and none failed" \
    grep -qE 'INFO  memclr check: 792 cases, 0 failed$' "$log"
  check "the memcmp check ran 2640 cases and none failed" \
    grep -qE 'INFO  memcmp check: 2640 cases, 0 failed$' "$log"
  check "the uldivmod check ran 3968 cases and none failed" \
    grep -qE 'INFO  uldivmod check: 3968 cases, 0 failed$' "$log"
  # The check must reach the image's functions, not copies LLVM inlined: its loops call them.
  objdump=$(command -v llvm-objdump || ls ~/.rustup/toolchains/*/lib/rustlib/*/bin/llvm-objdump 2>/dev/null | head -n 1 || true)
  if [ -n "$objdump" ]; then
    check_code=$("$objdump" -d --no-show-raw-insn "$check_image" |
      awk '/^[0-9a-f]+ <.*mem_check.*>:$/ { inside = 1; next } /^[0-9a-f]+ <.*>:$/ { inside = 0 } inside')
    for function in __aeabi_memcpy __aeabi_memmove __aeabi_memclr memcmp __aeabi_uldivmod; do
      at=$(nm "$check_image" | sed -n "s/^\([0-9a-f]*\) T $function\$/\1/p")
      calls=$(grep -cE "bl[[:space:]]+0x$(printf '%x' $((0x${at:-0} & ~1)))( |$)" <<<"$check_code" || true)
      check "the check's code calls $function (at 0x${at:-?}; $calls calls)" test "${calls:-0}" -ge 1
    done
  fi
  if [ -n "${CI:-}" ]; then rm -rf firmware/target/memcpy-check; fi
fi

echo "firmware on $board: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
