#!/usr/bin/env bash
# Bulk TCP over a tap, both directions (device -> Linux from file out, Linux -> device into
# discard, and into file in, which also hashes), ringnet next to smoltcp's own
# examples/benchmark.rs (built from the cargo registry copy) with the same 64 KiB buffers.
# The Linux side does what smoltcp's in-process client does: moves the bytes through
# 1 MiB reads or writes of one buffer in memory (`peer get -o /dev/null --no-digest`,
# `peer blast`), so both stacks face the same peer. Runs in a throwaway network
# namespace; needs root. A benchmark, not a test.
#   RUNS=5 BYTES=1000000000 sudo scripts/bench-tap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
bytes=${BYTES:-1000000000}
ns=rn-bench-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
scripts/netns.sh up "$ns" tap0 >/dev/null
cargo build --quiet --release -p host-sim
anchor=$(ANCHOR_BUILD_ONLY=1 bash scripts/bench-smoltcp-anchor.sh benchmark)
bin=target/release/host-sim
in_ns() { ip netns exec "$ns" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "bulk TCP over a tap, $bytes bytes, 64 KiB socket buffers, median of $runs (ringnet and smoltcp take turns)"
# smoltcp's example connects its client thread before its loop first listens; when the SYN
# wins that race the client panics and the example never ends. So: a time limit, and up
# to three tries.
smoltcp() {
  local figure=
  for _ in 1 2 3; do
    figure=$(timeout 120 ip netns exec "$ns" "$anchor" --tap tap0 "$1" 2>/dev/null \
      | sed -n 's/throughput: \([0-9.]*\) Gbps/\1/p') || true
    [ -n "$figure" ] && break
  done
  echo "${figure:-nan}"
}
out=(); in=(); hashed=(); reader=(); writer=()
for _ in $(seq "$runs"); do
  RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --rx-buf 65535 --tx-buf 65535 --duration 600 >/dev/null 2>&1 &
  serve=$!
  sleep 1
  # MB/s from the tool's closing line; Gbit/s = MB/s * 8 / 1000.
  out+=("$(in_ns "$bin" peer get 192.168.69.1:7001 --request "$bytes" -o /dev/null -q --no-digest | sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p')")
  in+=("$(in_ns "$bin" peer blast 192.168.69.1:9 --bytes "$bytes" -q | sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p')")
  hashed+=("$(in_ns "$bin" peer blast 192.168.69.1:7002 --bytes "$bytes" -q | sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p')")
  kill "$serve"; wait "$serve" 2>/dev/null || true
  # The tap takes one program at a time: smoltcp's turn.
  reader+=("$(smoltcp reader)")
  writer+=("$(smoltcp writer)")
done
ringnet_out=$(printf '%s\n' "${out[@]}" | median)
ringnet_in=$(printf '%s\n' "${in[@]}" | median)
ringnet_hashed=$(printf '%s\n' "${hashed[@]}" | median)
smoltcp_out=$(printf '%s\n' "${reader[@]}" | median)
smoltcp_in=$(printf '%s\n' "${writer[@]}" | median)
echo "per run: ringnet out ${out[*]} MB/s; smoltcp reader ${reader[*]} Gbit/s; ringnet in ${in[*]} MB/s; smoltcp writer ${writer[*]} Gbit/s"

awk -v ro="$ringnet_out" -v ri="$ringnet_in" -v rh="$ringnet_hashed" -v so="$smoltcp_out" -v si="$smoltcp_in" 'BEGIN {
  printf "device -> Linux: ringnet %.2f Gbit/s (file out, pattern), smoltcp benchmark reader %.2f Gbit/s: ratio %.2f\n", ro*8/1000, so, ro*8/1000/so
  printf "Linux -> device: ringnet %.2f Gbit/s (discard, port 9), smoltcp benchmark writer %.2f Gbit/s: ratio %.2f\n", ri*8/1000, si, ri*8/1000/si
  printf "Linux -> device with SHA-256 of every byte (file in, port 7002): %.2f Gbit/s\n", rh*8/1000
}'
