#!/usr/bin/env bash
# Soak (bounded: the test command runs it for 20 s; longer runs are a benchmark): ringnet serves on a tap inside a
# namespace this script creates and deletes, while many Linux clients at once use every
# service and some of them misbehave (SYN floods, slowloris, downloads never closed,
# uploads aborted half way). Afterwards every service must still answer, serve's RSS must
# not have grown by more than RSS_GROWTH_KB over its figure after the first minute (after
# half the run, for a run shorter than two minutes), and no panic
# may have been logged. Bounded: SOAK_SECONDS (default 600), then everything stops.
#   sudo bash scripts/soak.sh            # SOAK_SECONDS=60 WORKERS=24 HOSTILE=6 to change
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SOAK_SECONDS:-600}
workers=${WORKERS:-24}
hostile=${HOSTILE:-6}
growth_kb=${RSS_GROWTH_KB:-4096}
ns="rnsoak$$"
device=192.168.69.1
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --release -p host-sim
host_sim=$PWD/target/release/host-sim
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 up
ip -n "$ns" addr add 192.168.69.100/24 dev tap0
mkdir -p "$work/files"
RUST_LOG=warn ip netns exec "$ns" "$host_sim" serve --tap tap0 --ip $device/24 \
  --files "$work/files" --duration $((seconds + 120)) >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 50); do
  ip netns exec "$ns" nc -z -w 1 $device 7 && break
  sleep 0.2
done
rss() { ps -o rss= -p "$(pgrep -P "$serve_pid" host-sim || echo "$serve_pid")" | tr -d ' '; }

echo "soak: $seconds s, $workers clients ($hostile hostile) against $device in namespace $ns"
ip netns exec "$ns" python3 scripts/soak_load.py $device "$seconds" "$workers" "$hostile" \
  "$host_sim" "$PWD/scripts/syn_flood.py" >"$work/load.txt" &
load=$!
sleep $((seconds < 60 ? seconds / 2 : 60))
rss_start=$(rss)
rss_max=$rss_start
while kill -0 "$load" 2>/dev/null; do
  now=$(rss)
  [ "$now" -gt "$rss_max" ] && rss_max=$now
  sleep 5
done
wait "$load"
rss_end=$(rss)
cat "$work/load.txt"

verdict=0
check() {
  if "${@:2}" >/dev/null 2>&1; then echo "ok: $1"; else echo "FAILED: $1"; verdict=1; fi
}
sleep 3
inside() { ip netns exec "$ns" "$@"; }
check "echo answers" inside bash -c "echo soak | nc -N -w 5 $device 7 | grep -q soak"
check "file out answers" inside bash -c "printf '1000\n' | nc -N -w 5 $device 7001 | wc -c | grep -qx 1000"
check "file in answers" inside bash -c "head -c 1000 /dev/zero | nc -N -w 5 $device 7002 | grep -q '^1000 '"
check "HTTP answers" inside curl -sf --max-time 5 "http://$device/"
check "transfer answers" inside "$host_sim" peer put "$0" $device --quiet
check "the stats query answers" inside bash -c "'$host_sim' peer udp $device:9001 '?' | grep -q 'end of table'"
check "no panic was logged" bash -c "! grep -qiE 'panick|PANIC' '$work/serve.log'"
check "serve's RSS grew by at most $growth_kb KiB (start $rss_start, max $rss_max, end $rss_end KiB)" \
  test $((rss_max - rss_start)) -le "$growth_kb"
echo "figures: rss start $rss_start KiB, max $rss_max KiB, end $rss_end KiB; warnings logged: $(grep -c WARN "$work/serve.log" || true)"
exit $verdict
