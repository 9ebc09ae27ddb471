#!/usr/bin/env bash
# Bulk TCP over a tap, both directions (device -> Linux from file out, Linux -> device into
# discard, and into file in, which also hashes): smoltcp's own examples/benchmark.rs (built
# from the cargo registry copy), ringnet without offload, and ringnet with offload
# (`serve --offload`: the virtio-net header, checksums and TCP segmentation left to the
# kernel), all with the same 64 KiB socket buffers, in the same run, on the same tap, taking
# turns round by round so that all three meet the same machine load. Then the same at each
# larger tap MTU in MTUS. The Linux side does what smoltcp's in-process client does: moves
# the bytes through 1 MiB reads or writes of one buffer in memory
# (`peer get -o /dev/null --no-digest`, `peer blast`). Runs in a throwaway network
# namespace; needs root. A benchmark, not a test: it prints figures, per run and medians.
# RING sets ringnet's socket rings (default 65535, smoltcp's example's; it cannot change).
# RING_LARGE (default 262144; 0 leaves it out) runs ringnet --offload once more in each
# round with rings of that size: at 64 KiB a sender has at most 64 KiB in flight, which
# bounds offload's large frames by the round trip before the CPU (docs/tap.md).
#   RUNS=5 BYTES=1000000000 MTUS="1500 9000 65521" RING=65535 sudo scripts/bench-tap.sh
# RUNS=0 skips the bulk rounds (only the transfer section below runs, TRANSFER_RUNS times).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
bytes=${BYTES:-1000000000}
mtus=${MTUS:-1500 9000 65521}
ring=${RING:-65535}
large=${RING_LARGE:-262144}
[ "$large" != "$ring" ] || large=0
ns=rn-bench-$$
log=$(mktemp)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
scripts/netns.sh up "$ns" tap0 >/dev/null
cargo build --quiet --release -p host-sim
anchor=$(ANCHOR_BUILD_ONLY=1 bash scripts/bench-smoltcp-anchor.sh benchmark)
bin=target/release/host-sim
in_ns() { ip netns exec "$ns" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Gbit/s from a peer tool's closing line (MB/s * 8 / 1000); nan if the run failed.
gbits() { sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p' | awk '{printf "%.2f", $1*8/1000} END {if (NR==0) print "nan"}'; }

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

# One ringnet round: out, in, hashed in, in Gbit/s, on one line; rings of $rings bytes.
rings=$ring
ringnet() {
  local mtu=$1; shift
  RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --mtu "$mtu" --rx-buf "$rings" --tx-buf "$rings" --duration 900 "$@" >/dev/null 2>"$log" &
  local serve=$!
  local tries=0
  until in_ns nc -z -w 1 192.168.69.1 7 2>/dev/null || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries+1)); done
  local out in hashed
  out=$(in_ns timeout 300 "$bin" peer get 192.168.69.1:7001 --request "$bytes" -o /dev/null -q --no-digest | gbits)
  in=$(in_ns timeout 300 "$bin" peer blast 192.168.69.1:9 --bytes "$bytes" -q | gbits)
  hashed=$(in_ns timeout 300 "$bin" peer blast 192.168.69.1:7002 --bytes "$bytes" -q | gbits)
  kill "$serve" 2>/dev/null || echo "serve $* ended early: $(tail -n 3 "$log")" >&2
  wait "$serve" 2>/dev/null || true
  echo "$out $in $hashed"
}

[ "$runs" -gt 0 ] || mtus=
[ -z "$mtus" ] || echo "bulk TCP over a tap, $bytes bytes (smoltcp's example: 1 GB), socket buffers 65535 B (ringnet: $ring B), $runs rounds per MTU; smoltcp's benchmark.rs, ringnet, ringnet --offload take turns"
[ -z "$mtus" ] || echo "figures in Gbit/s; the machine's CPUs are shared, so single runs are noisy: compare within a round and the medians"
for mtu in $mtus; do
  in_ns ip link set tap0 mtu "$mtu"
  s_out=(); s_in=(); p_out=(); p_in=(); p_hash=(); o_out=(); o_in=(); o_hash=()
  l_out=(); l_in=(); l_hash=(); l_rout=(); l_rin=()
  for round in $(seq "$runs"); do
    read -r a b c < <(ringnet "$mtu")
    p_out+=("$a"); p_in+=("$b"); p_hash+=("$c")
    read -r a b c < <(ringnet "$mtu" --offload)
    o_out+=("$a"); o_in+=("$b"); o_hash+=("$c")
    # The tap takes one program at a time: smoltcp's turn (serve turned the offloads off
    # again when it closed the tap).
    s_out+=("$(smoltcp reader)")
    s_in+=("$(smoltcp writer)")
    echo "MTU $mtu round $round: device -> Linux: smoltcp ${s_out[-1]}, ringnet ${p_out[-1]}, offload ${o_out[-1]}; Linux -> device: smoltcp ${s_in[-1]}, ringnet ${p_in[-1]}, offload ${o_in[-1]}; hashed in: ringnet ${p_hash[-1]}, offload ${o_hash[-1]}"
    if [ "$large" -gt 0 ]; then
      rings=$large
      read -r a b c < <(ringnet "$mtu" --offload)
      rings=$ring
      l_out+=("$a"); l_in+=("$b"); l_hash+=("$c")
      l_rout+=("$(awk -v a="$a" -v s="${s_out[-1]}" 'BEGIN {printf "%.2f", a / s}')")
      l_rin+=("$(awk -v b="$b" -v s="${s_in[-1]}" 'BEGIN {printf "%.2f", b / s}')")
      echo "MTU $mtu round $round: ringnet --offload with $large-byte rings: device -> Linux $a (${l_rout[-1]}x smoltcp's), Linux -> device $b (${l_rin[-1]}x), hashed in $c"
    fi
  done
  m() { printf '%s\n' "$@" | median; }
  awk -v mtu="$mtu" -v so="$(m "${s_out[@]}")" -v si="$(m "${s_in[@]}")" \
      -v po="$(m "${p_out[@]}")" -v pi="$(m "${p_in[@]}")" -v ph="$(m "${p_hash[@]}")" \
      -v oo="$(m "${o_out[@]}")" -v oi="$(m "${o_in[@]}")" -v oh="$(m "${o_hash[@]}")" 'BEGIN {
    printf "MTU %s medians: device -> Linux: smoltcp %.2f, ringnet %.2f (%.2fx), ringnet --offload %.2f (%.2fx)\n", mtu, so, po, po/so, oo, oo/so
    printf "MTU %s medians: Linux -> device: smoltcp %.2f, ringnet %.2f (%.2fx), ringnet --offload %.2f (%.2fx)\n", mtu, si, pi, pi/si, oi, oi/si
    printf "MTU %s medians: Linux -> device with SHA-256 of every byte (file in): ringnet %.2f, ringnet --offload %.2f\n", mtu, ph, oh
  }'
  if [ "$large" -gt 0 ]; then
    range() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd- -; }
    awk -v mtu="$mtu" -v large="$large" -v so="$(m "${s_out[@]}")" -v si="$(m "${s_in[@]}")" \
        -v lo="$(m "${l_out[@]}")" -v li="$(m "${l_in[@]}")" -v lh="$(m "${l_hash[@]}")" \
        -v ro="$(m "${l_rout[@]}")" -v ri="$(m "${l_rin[@]}")" \
        -v rro="$(range "${l_rout[@]}")" -v rri="$(range "${l_rin[@]}")" 'BEGIN {
      printf "MTU %s medians: ringnet --offload with %s-byte rings: device -> Linux %.2f (%.2fx smoltcp; the rounds own ratios %.2f, %s), Linux -> device %.2f (%.2fx; %.2f, %s), hashed in %.2f (goal: 2x both ways)\n", mtu, large, lo, lo/so, ro, rro, li, li/si, ri, rri, lh
    }'
  fi
done

# ---------------------------------------------------------------------------------------
# Verified transfer, protocol version 2 (TCP 7003), against the raw stream into discard
# measured in the same run (the same serve process, one after the other): a put (Linux ->
# device, into `serve --files` on a tmpfs, staged and committed after the trailer) and a
# get (device -> Linux into /dev/null, hashed and verified), at tap MTU TRANSFER_MTU
# (default 1500), serve given TRANSFER_SERVE_ARGS (e.g. --offload). The file the put
# stored is what the get reads back; both are checked against the source's SHA-256. Each
# run's figures and ratios are printed, then the medians, and the CPU time per GB that
# serve took for the raw streams in and out, the put and the get (its poll loop's thread,
# "main", and its other threads: the store's writer and reader) and that the Linux client
# took (its user and system time). Then, in a second serve without --files (the digest
# store, which keeps each upload's size and SHA-256 as the firmware's does), the raw
# stream into discard and a put again: the protocol's own cost, without the tmpfs's, whose
# new pages cost this VM's kernel about 2 s per GB (docs/transfer.md, "How fast").
# TRANSFER_BASE=PATH (another build of host-sim) runs each round with that binary too,
# serve and client alike, the two taking turns, and prints the new build's ratio to it.
# TRANSFER_RUNS=0 skips this; TRANSFER_RUNS=3 RUNS=0 runs only this.
# ---------------------------------------------------------------------------------------
transfer_runs=${TRANSFER_RUNS:-$runs}
if [ "$transfer_runs" -gt 0 ]; then
  shm=$(mktemp -d /dev/shm/rn-bench-transfer.XXXXXX)
  trap 'rm -rf "$shm"; cleanup' EXIT
  mkdir "$shm/files"
  head -c "$bytes" /dev/urandom >"$shm/source.bin"
  source_sha=$(sha256sum <"$shm/source.bin" | cut -d' ' -f1)
  in_ns ip link set tap0 mtu "${TRANSFER_MTU:-1500}"
  hz=$(getconf CLK_TCK)
  per_gb() { awk -v t="$1" -v b="$bytes" 'BEGIN { printf "%.2f", t / (b / 1e9) }'; }
  # Runs "$@", keeps its output in `answer`, and in `cpu` the CPU seconds per GB serve took
  # meanwhile (its main thread, and its other threads) and the client took.
  ticks() { awk '{print $14 + $15}' "$1"; }
  cpu_of() {
    local all0 main0 main other client
    all0=$(ticks "/proc/$serve/stat"); main0=$(ticks "/proc/$serve/task/$serve/stat")
    answer=$( ( "$@"; times >"$shm/times" ) || true)
    main=$(( $(ticks "/proc/$serve/task/$serve/stat") - main0 ))
    other=$(( $(ticks "/proc/$serve/stat") - all0 - main ))
    # `times`: the children's user and system time, "1m2.345s 0m0.678s".
    client=$(sed -n 's/\([0-9]*\)m\([0-9.]*\)s/\1 \2/gp' "$shm/times" | sed -n 2p | awk '{print $1 * 60 + $2 + $3 * 60 + $4}')
    cpu="serve main $(per_gb "$(awk -v t="$main" -v hz="$hz" 'BEGIN {print t / hz}')")"
    cpu+=" + other $(per_gb "$(awk -v t="$other" -v hz="$hz" 'BEGIN {print t / hz}')")"
    cpu+=", client $(per_gb "$client")"
  }
  # One round with the host-sim at $1: prints "raw raw_out put get" on stdout, the CPU
  # figures on stderr.
  transfer_round() {
    local bin=$1 raw raw_out put get got raw_cpu out_cpu put_cpu get_cpu
    rm -f "$shm/files/up.bin"
    # Started without the in_ns function, so that $! is serve itself and the kill reaches it.
    # shellcheck disable=SC2086
    RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --mtu "${TRANSFER_MTU:-1500}" --rx-buf 65535 --tx-buf 65535 \
      --files "$shm/files" --duration 900 ${TRANSFER_SERVE_ARGS:-} >/dev/null 2>&1 &
    serve=$!
    local tries=0
    until in_ns nc -z -w 1 192.168.69.1 7 2>/dev/null || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries+1)); done
    cpu_of in_ns timeout 300 "$bin" peer blast 192.168.69.1:9 --bytes "$bytes" -q
    raw=$(gbits <<<"$answer"); raw_cpu=$cpu
    cpu_of in_ns timeout 300 "$bin" peer get 192.168.69.1:7001 --request "$bytes" -o /dev/null -q --no-digest
    raw_out=$(gbits <<<"$answer"); out_cpu=$cpu
    cpu_of in_ns timeout 300 "$bin" peer put "$shm/source.bin" 192.168.69.1 --name up.bin -q --timeout 60
    put=$(gbits <<<"$answer"); put_cpu=$cpu
    cpu_of in_ns timeout 300 "$bin" peer get up.bin 192.168.69.1 -o /dev/null -q --timeout 60
    got=$answer; get_cpu=$cpu
    kill "$serve"; wait "$serve" 2>/dev/null || true
    get=$(gbits <<<"$got")
    grep -q "sha256 $source_sha verified" <<<"$got" || { echo "$bin: the get did not verify the source's digest: $got" >&2; exit 1; }
    [ "$(sha256sum <"$shm/files/up.bin" | cut -d' ' -f1)" = "$source_sha" ] || { echo "$bin: the stored file differs from the source" >&2; exit 1; }
    # shellcheck disable=SC2086
    RUST_LOG=warn ip netns exec "$ns" "$bin" serve --tap tap0 --mtu "${TRANSFER_MTU:-1500}" --rx-buf 65535 --tx-buf 65535 \
      --duration 900 ${TRANSFER_SERVE_ARGS:-} >/dev/null 2>&1 &
    serve=$!
    tries=0
    until in_ns nc -z -w 1 192.168.69.1 7 2>/dev/null || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries+1)); done
    local digest_raw digest_put digest_raw_cpu digest_put_cpu
    cpu_of in_ns timeout 300 "$bin" peer blast 192.168.69.1:9 --bytes "$bytes" -q
    digest_raw=$(gbits <<<"$answer"); digest_raw_cpu=$cpu
    cpu_of in_ns timeout 300 "$bin" peer put "$shm/source.bin" 192.168.69.1 --name up.bin -q --timeout 60
    grep -q "sha256 $source_sha verified" <<<"$answer" || { echo "$bin: the put into the digest store did not verify: $answer" >&2; exit 1; }
    digest_put=$(gbits <<<"$answer"); digest_put_cpu=$cpu
    kill "$serve"; wait "$serve" 2>/dev/null || true
    echo "CPU s per GB: raw in: $raw_cpu; raw out: $out_cpu; put: $put_cpu; get: $get_cpu; digest store: raw in: $digest_raw_cpu; put: $digest_put_cpu" >&2
    echo "$raw $raw_out $put $get $digest_raw $digest_put"
  }
  ratios() { awk -v r="$1" -v o="$2" -v p="$3" -v g="$4" -v dr="$5" -v dp="$6" 'BEGIN { printf "%.2f %.2f %.2f %.2f\n", p/r, g/r, g/o, dp/dr }'; }
  echo "verified transfer v2 over a tap, $bytes bytes, MTU ${TRANSFER_MTU:-1500}, serve ${TRANSFER_SERVE_ARGS:-(no extra flags)}, $transfer_runs runs, Gbit/s (shared CPUs: compare within a run)${TRANSFER_BASE:+; against $TRANSFER_BASE, taking turns}"
  t_raw=(); t_out=(); t_put=(); t_get=(); t_put_ratio=(); t_get_ratio=(); t_get_out_ratio=()
  t_digest_raw=(); t_digest_put=(); t_digest_ratio=()
  b_put_ratio=(); b_get_ratio=(); new_put=(); new_get=()
  base_round() {
    read -r raw raw_out put get digest_raw digest_put < <(transfer_round "$TRANSFER_BASE" 2> >(sed "s/^/run $run: base: /" >&2))
    read -r put_ratio get_ratio get_out_ratio digest_ratio < <(ratios "$raw" "$raw_out" "$put" "$get" "$digest_raw" "$digest_put")
    b_put_ratio+=("$put_ratio"); b_get_ratio+=("$get_ratio"); base_put=$put; base_get=$get
    echo "run $run: base: raw into discard $raw, raw out of file out $raw_out; verified put $put ($put_ratio of raw in); verified get $get ($get_ratio of raw in, $get_out_ratio of raw out); digest store: raw into discard $digest_raw, verified put $digest_put ($digest_ratio of raw in)"
  }
  for run in $(seq "$transfer_runs"); do
    # The base goes first in odd runs and last in even ones, so that the order weighs on
    # both builds alike (with --offload, the second round of a run was the slower one
    # more often than the builds explained, in its put as well as its get).
    if [ -n "${TRANSFER_BASE:-}" ] && [ $((run % 2)) -eq 1 ]; then base_round; fi
    read -r raw raw_out put get digest_raw digest_put < <(transfer_round "$bin" 2> >(sed "s/^/run $run: /" >&2))
    read -r put_ratio get_ratio get_out_ratio digest_ratio < <(ratios "$raw" "$raw_out" "$put" "$get" "$digest_raw" "$digest_put")
    t_digest_raw+=("$digest_raw"); t_digest_put+=("$digest_put"); t_digest_ratio+=("$digest_ratio")
    t_raw+=("$raw"); t_out+=("$raw_out"); t_put+=("$put"); t_get+=("$get")
    t_put_ratio+=("$put_ratio"); t_get_ratio+=("$get_ratio"); t_get_out_ratio+=("$get_out_ratio")
    echo "run $run: raw into discard $raw, raw out of file out $raw_out; verified put $put ($put_ratio of raw in); verified get $get ($get_ratio of raw in, $get_out_ratio of raw out); digest store: raw into discard $digest_raw, verified put $digest_put ($digest_ratio of raw in)"
    if [ -n "${TRANSFER_BASE:-}" ] && [ $((run % 2)) -eq 0 ]; then
      new_put_rate=$put; new_get_rate=$get
      base_round
      put=$new_put_rate; get=$new_get_rate
    fi
    if [ -n "${TRANSFER_BASE:-}" ]; then
      read -r p g < <(awk -v p="$put" -v g="$get" -v bp="$base_put" -v bg="$base_get" 'BEGIN { printf "%.2f %.2f\n", p/bp, g/bg }')
      new_put+=("$p"); new_get+=("$g")
      echo "run $run: this build against the base: put ${p}x, get ${g}x"
    fi
  done
  m() { printf '%s\n' "$@" | median; }
  echo "medians of $transfer_runs: raw into discard $(m "${t_raw[@]}"), raw out $(m "${t_out[@]}"), verified put $(m "${t_put[@]}"), verified get $(m "${t_get[@]}"); ratios to raw into discard: put $(m "${t_put_ratio[@]}"), get $(m "${t_get_ratio[@]}") (goal: a put or a get at 0.90 or more); get to raw out $(m "${t_get_out_ratio[@]}")"
  echo "digest store (serve without --files), medians of $transfer_runs: raw into discard $(m "${t_digest_raw[@]}"), verified put $(m "${t_digest_put[@]}"), put to raw in $(m "${t_digest_ratio[@]}")"
  [ -z "${TRANSFER_BASE:-}" ] || echo "base, medians of $transfer_runs: ratios to its raw into discard: put $(m "${b_put_ratio[@]}"), get $(m "${b_get_ratio[@]}"); this build against the base: put $(m "${new_put[@]}")x, get $(m "${new_get[@]}")x"
fi
