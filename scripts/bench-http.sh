#!/usr/bin/env bash
# HTTP figures (a benchmark, not a test): requests per second for a 1 KiB file over one
# persistent connection (Python's http.client, for SECONDS), and MB/s for a 16 MiB file
# (curl), on the tap host (in a throwaway namespace; root) and on the firmware under QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_RUN:-5}
work=$(mktemp -d)
ns=rn-http-$$
qemu=""
cleanup() {
  [ -n "$qemu" ] && kill "$qemu" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
  true
}
trap cleanup EXIT
cargo build --quiet --release -p host-sim
(cd firmware && cargo build --quiet --release)

rate() { # rate URL: requests per second on one keep-alive connection
  python3 - "$1" "$seconds" <<'PY'
import http.client, sys, time, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:
    c.request("GET", url.path)
    body = c.getresponse().read()
    assert len(body) == 1024
    n += 1
print(f"{n / float(sys.argv[2]):.0f}")
PY
}
bulk() { # bulk URL: MB/s of one download
  curl -sf --max-time 300 -o /dev/null -w '%{speed_download}' "$1" | awk '{printf "%.1f", $1 / 1e6}'
}

mkdir -p "$work/files"
python3 -c "import sys; open(sys.argv[1],'wb').write(bytes(range(256))*4)" "$work/files/1k.bin"
head -c 16777216 /dev/urandom >"$work/files/16m.bin"
scripts/netns.sh up "$ns" tap0 >/dev/null
RUST_LOG=warn ip netns exec "$ns" target/release/host-sim serve --tap tap0 --files "$work/files" --duration 600 >/dev/null 2>&1 &
serve=$!
sleep 1
echo "tap host: $(ip netns exec "$ns" bash -c "$(declare -f rate); seconds=$seconds; rate http://192.168.69.1/1k.bin") requests/s for 1 KiB (python http.client, keep-alive)," \
  "$(ip netns exec "$ns" bash -c "$(declare -f bulk); bulk http://192.168.69.1/16m.bin") MB/s for 16 MiB (curl)"
kill "$serve"

timeout 600 bash scripts/qemu-firmware.sh firmware/target/thumbv7m-none-eabi/release/ringnet-firmware >/dev/null 2>&1 &
qemu=$!
sleep 2
echo "firmware under QEMU: $(rate http://127.0.0.1:17080/pattern-1024) requests/s for 1 KiB," \
  "$(bulk http://127.0.0.1:17080/pattern-16777216) MB/s for 16 MiB (curl)"
