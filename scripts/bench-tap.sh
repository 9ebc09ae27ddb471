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

# ---------------------------------------------------------------------------------------
# Verified transfer, protocol version 2 (TCP 7003), against the raw stream into discard
# measured in the same run (the same serve process): a put (Linux -> device, into
# `serve --files` on a tmpfs, staged and committed after the trailer) and a get (device ->
# Linux into /dev/null, hashed and verified). The file in the same run's files directory
# is what the put stored; its SHA-256 is checked against the source's. Each run's figures
# and ratios are printed, then the medians. TRANSFER_RUNS=0 skips the section.
# ---------------------------------------------------------------------------------------
transfer_runs=${TRANSFER_RUNS:-$runs}
if [ "$transfer_runs" -gt 0 ]; then
  shm=$(mktemp -d /dev/shm/rn-bench-transfer.XXXXXX)
  trap 'rm -rf "$shm"; cleanup' EXIT
  mkdir "$shm/files"
  head -c "$bytes" /dev/urandom >"$shm/source.bin"
  source_sha=$(sha256sum <"$shm/source.bin" | cut -d' ' -f1)
  mbps() { sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p'; }
  t_raw=(); t_put=(); t_get=(); t_put_ratio=(); t_get_ratio=()
  echo "verified transfer v2 over a tap, $bytes bytes, $transfer_runs runs (2 shared CPUs: single runs vary; compare within a run)"
  for run in $(seq "$transfer_runs"); do
    rm -f "$shm/files/up.bin"
    RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --rx-buf 65535 --tx-buf 65535 \
      --files "$shm/files" --duration 600 >/dev/null 2>&1 &
    serve=$!
    sleep 1
    raw=$(in_ns "$bin" peer blast 192.168.69.1:9 --bytes "$bytes" -q | mbps)
    put=$(in_ns "$bin" peer put "$shm/source.bin" 192.168.69.1 --name up.bin -q --timeout 60 | mbps)
    got=$(in_ns "$bin" peer get up.bin 192.168.69.1 -o /dev/null -q --timeout 60)
    kill "$serve"; wait "$serve" 2>/dev/null || true
    get=$(mbps <<<"$got")
    grep -q "sha256 $source_sha verified" <<<"$got" || { echo "run $run: the get did not verify the source's digest: $got" >&2; exit 1; }
    stored_sha=$(sha256sum <"$shm/files/up.bin" | cut -d' ' -f1)
    [ "$stored_sha" = "$source_sha" ] || { echo "run $run: the stored file differs from the source" >&2; exit 1; }
    ratios=$(awk -v r="$raw" -v p="$put" -v g="$get" 'BEGIN { printf "%.2f %.2f", p/r, g/r }')
    t_raw+=("$raw"); t_put+=("$put"); t_get+=("$get")
    t_put_ratio+=("${ratios% *}"); t_get_ratio+=("${ratios#* }")
    awk -v n="$run" -v r="$raw" -v p="$put" -v g="$get" 'BEGIN {
      printf "run %d: raw into discard %.2f Gbit/s; verified put %.2f Gbit/s (%.2f of raw); verified get %.2f Gbit/s (%.2f of raw)\n",
        n, r*8/1000, p*8/1000, p/r, g*8/1000, g/r }'
  done
  awk -v r="$(printf '%s\n' "${t_raw[@]}" | median)" -v p="$(printf '%s\n' "${t_put[@]}" | median)" \
      -v g="$(printf '%s\n' "${t_get[@]}" | median)" -v pr="$(printf '%s\n' "${t_put_ratio[@]}" | median)" \
      -v gr="$(printf '%s\n' "${t_get_ratio[@]}" | median)" -v n="$transfer_runs" 'BEGIN {
    printf "median of %d: raw into discard %.2f Gbit/s, verified put %.2f Gbit/s, verified get %.2f Gbit/s; median ratios put %.2f, get %.2f (goal: at least 0.90)\n",
      n, r*8/1000, p*8/1000, g*8/1000, pr, gr }'
fi
