#!/usr/bin/env bash
# Makes the figures under docs/: the demo's timeline, and both ends of one connection
# (ringnet's rings over a tap and the Linux kernel's queues of the same connection, on one
# axis), each as SVG and as a PNG screenshot taken by headless Chromium (Debian's
# `chromium`), as a person would see it.
#
#   sudo bash scripts/plot-figures.sh
#
# The tap part runs in a network namespace it creates and deletes (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs Debian's chromium (apt-get install chromium)" >&2; exit 1; }
if [ -z "${HOST_SIM:-}" ]; then
  cargo build --release -p host-sim
fi
bin=${HOST_SIM:-$PWD/target/release/host-sim}
out=$PWD/docs/figures
work=$(mktemp -d)
mkdir -p "$out"

shot() { # SVG PNG WIDTH HEIGHT
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="$3,$4" --screenshot="$2" "file://$1" >/dev/null 2>&1
  echo "wrote $2"
}
svg_height() { grep -o 'height="[0-9]*"' "$1" | head -1 | tr -dc 0-9; }

# The demo: the slow-reader scenario (2) and the sticky-packet remedies (11), zoomed.
"$bin" demo --trace "$work/demo.json" --plot "$out/demo.svg" >/dev/null
shot "$out/demo.svg" "$out/demo.png" 1400 "$(svg_height "$out/demo.svg")"
"$bin" plot "$work/demo.json" -o "$out/slow-reader.svg" --socket "A tcp#0" --socket "B tcp#0" \
  --from 95 --to 300 --title "demo scenario 2: send() blocks on a full tx ring while a slow reader drains"
shot "$out/slow-reader.svg" "$out/slow-reader.png" 1400 "$(svg_height "$out/slow-reader.svg")"

# Both ends of one connection over a tap: Linux's peer blast sends 3 MB into file in
# (TCP 7002), whose 8 KiB rx ring runs full and advertises zero windows while the
# kernel's send queue holds what the device has not acknowledged.
ns=rnfig$$
cleanup() { [ -n "${serve:-}" ] && kill "$serve" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 up
ip -n "$ns" addr add 192.168.69.100/24 dev tap0
RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --ip 192.168.69.1/24 --duration 30 \
  --rx-buf 8192 --tx-buf 8192 --trace "$work/device.json" >/dev/null 2>&1 &
serve=$!
for _ in $(seq 50); do ip netns exec "$ns" nc -z -w 1 192.168.69.1 7 && break; sleep 0.2; done
ip netns exec "$ns" "$bin" peer blast 192.168.69.1:7002 --bytes 3000000 --quiet --trace "$work/linux.json"
kill -TERM "$serve"; wait "$serve" || true; serve=
# The device's socket of that connection: the one with the most rx ring events.
device_socket=$(python3 - "$work/device.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
ev = t["traceEvents"]
names = {(e["pid"], e.get("tid", 0)): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
procs = {e["pid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
count = {}
for e in ev:
    if e.get("cat") == "ring" and e["name"].endswith(" rx"):
        count[(e["pid"], e["tid"])] = count.get((e["pid"], e["tid"]), 0) + 1
best = max(count, key=count.get)
print(procs[best[0]] + " " + names[best])
PY
)
"$bin" plot "$work/device.json" "$work/linux.json" -o "$out/both-ends.svg" \
  --socket "$device_socket" --socket "linux blast" \
  --title "one TCP connection, both ends: ringnet's file in (8 KiB rx ring) above, the Linux sender's kernel socket below"
shot "$out/both-ends.svg" "$out/both-ends.png" 1400 "$(svg_height "$out/both-ends.svg")"
