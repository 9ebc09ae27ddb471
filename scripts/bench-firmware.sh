#!/usr/bin/env bash
# Firmware figures (a benchmark, not a test): flash and static RAM from `size`, checked
# against the targets (flash <= 64 KiB, static RAM <= 60 KiB) and recorded in
# firmware/footprint.txt; throughput under QEMU with user-mode networking, guest -> host
# and host -> guest, for both boards (lm3s6965evb with the Stellaris Ethernet, emcraft-sf2
# with the MSS Ethernet MAC), each next to its NIC's own limit (the firmware's nic-limit
# mode, no stack above the driver: out, raw UDP datagrams left as they lie, and a bare
# TCP source sending file out's pattern; in, a bare TCP sink, and that sink hashing
# every byte as file in does), all four images booted at once and measured in turns,
# RUNS rounds over BYTES, every figure timed by the host, and QEMU's CPU time for every
# transfer (all its threads, from /proc: on a loaded machine it moves far less than the
# wall clock), with SHA-256 alone on each core (the hashing sink's CPU less the bare
# sink's); QEMU's CPU while the firmware idles.
# Prints every run's figures, the medians, ringnet as a ratio of its NIC's limit (first
# the limit doing the same work per byte and per segment as the service: the TCP source
# of the pattern out, the hashing sink in; then the bare limit: raw datagrams out, the
# sink that only counts in) and the SmartFusion2 as a ratio of the Stellaris board.
# Absolute MB/s differ 2-3x between machines and with their load; the ratios, measured
# side by side, carry.
# COMPARE="cargo build arguments" builds a second Stellaris ringnet image with them (say
# COMPARE='--config profile.release.package.ringnet.opt-level="z"'), boots it beside the
# others and measures it in the same rounds, right after the first: its flash, its MB/s,
# and its ratios to the same limits and to the first image.
# COMPARE_IMAGE=path boots that Stellaris image instead (one built from another commit,
# say the base of a change, into its own --target-dir) and measures it the same way.
# For the Stellaris ringnet images and the TCP source and hashing sink, each transfer's
# QEMU CPU time (user + system, /proc/PID/stat) is printed too, with the per-round ratios
# of those times: the emulation is CPU-bound, and on a loaded machine CPU time moves far
# less than wall-clock time.
# Exits non-zero when a footprint target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
bytes=${BYTES:-16777216}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# Each image in its own target directory, so that all four stay cached; each board's
# NIC-limit image built as its ringnet image is (the SmartFusion2's with its profile, as
# `cargo sf2` builds it).
build() { (cd firmware && cargo build --quiet --target-dir "$1" "${@:2}"); }
build target --release
build target/nic --release --features nic-limit
build target --profile sf2 --no-default-features --features sf2,http,transfer,defmt
build target/sf2-nic --profile sf2 --no-default-features --features sf2,http,transfer,defmt,nic-limit
if [ -n "${COMPARE_IMAGE:-}" ]; then
  compare_image=$COMPARE_IMAGE
  COMPARE="image $COMPARE_IMAGE"
elif [ -n "${COMPARE:-}" ]; then
  # shellcheck disable=SC2086 # the arguments are words for cargo
  build target/compare --release $COMPARE
fi
cargo build --quiet --release -p host-sim
image() { echo "firmware/$1/thumbv7m-none-eabi/$2/ringnet-firmware"; }
image=$(image target release)
compare_image=${compare_image:-$(image target/compare release)}

# Flash and static RAM, with where they go, recorded in firmware/footprint.txt.
verdict=0
RECORD=1 bash scripts/footprint-firmware.sh "$image" | sed -n '1,2p;/target (/p' || verdict=1
if [ -n "${COMPARE:-}" ]; then
  echo "compared image ($COMPARE): $(python3 scripts/footprint.py "$compare_image" --top 0 | head -n 1)"
fi
echo "emcraft-sf2 image: $(size -A "$(image target sf2)" | awk '$1 == ".text" {t=$2} $1 == ".rodata" {r=$2} $1 == ".ddr" {d=$2} END {print t " B text, " r " B rodata (opt-level 3), " d " B of rings in DDR"}')"

# The four images, each with its own forwarded ports (TCP base+N-7000, UDP base+50).
boot() { # boot IMAGE PORT_BASE
  PORT_BASE=$2 UDP_PORT_BASE=$(($2 + 50)) timeout 1800 bash scripts/qemu-firmware.sh "$1" >/dev/null 2>&1 &
  pids+=($!)
}
base=$((30000 + ($$ % 50) * 200))
boot "$image" $base
boot "$(image target/nic release)" $((base + 100))
boot "$(image target sf2)" $((base + 1000))
boot "$(image target/sf2-nic sf2)" $((base + 1100))
if [ -n "${COMPARE:-}" ]; then
  boot "$compare_image" $((base + 500))
fi
sleep 3
# Each image's QEMU: timeout's child, which the runner exec'd into QEMU.
qemu=()
for p in "${pids[@]}"; do qemu+=("$(pgrep -P "$p" | head -n 1)"); done

# QEMU's CPU time so far in ms, all its threads (the emulation is CPU-bound, so this
# moves far less with the machine's load than the wall clock does).
cpu_ms() {
  local total=0 ns _
  for task in /proc/"$1"/task/*/schedstat; do
    read -r ns _ <"$task" && total=$((total + ns))
  done
  echo $((total / 1000000))
}
# measure KEY PID FUNCTION ARGS...: the function's figure (MB/s) added as KEY, the CPU
# time QEMU (PID) spent on it as KEY-cpu.
measure() {
  local key=$1 pid=$2 before figure
  shift 2
  before=$(cpu_ms "$pid")
  figure=$("$@")
  add "$key" "$figure"
  add "$key-cpu" $(($(cpu_ms "$pid") - before))
}
mbs() { sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p'; }
# get PORT: MB/s of a BYTES-byte pattern from a file-out port (bounded in time).
get() { timeout 120 target/release/host-sim peer get "127.0.0.1:$1" --request "$bytes" -o /dev/null -q --no-digest | mbs; }
# blast PORT: MB/s into a sink that answers with the byte count first (file in, and the
# NIC-limit image's TCP sink); a figure only when the count is all of it.
blast() {
  local answer
  answer=$(target/release/host-sim peer blast "127.0.0.1:$1" --bytes "$bytes" -q)
  if [ "$(sed -n 2p <<<"$answer" | cut -d' ' -f1)" = "$bytes" ]; then
    mbs <<<"$answer"
  else
    echo "127.0.0.1:$1 took less than $bytes bytes: $answer" >&2
    echo 0
  fi
}
raw_out() { timeout 60 python3 scripts/nic-limit.py tx "$1" "$bytes" "${@:2}" | sed -n 's/.*: \([0-9.]*\) MB\/s.*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A figures
add() { figures[$1]="${figures[$1]:-} $2"; }
last() { printf '%s\n' ${figures[$1]} | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
# The compared image's two figures (COMPARE), file out then file in, with QEMU's CPU.
compare_round() {
  [ -n "${COMPARE:-}" ] || return 0
  measure compare-out "${qemu[4]}" get $((base + 501))
  measure compare-in "${qemu[4]}" blast $((base + 502))
  echo "run $run compared image: guest -> host $(last compare-out) MB/s (file out, QEMU CPU $(last compare-out-cpu) ms), host -> guest $(last compare-in) MB/s (file in, $(last compare-in-cpu) ms)"
}
for run in $(seq "$runs"); do
  for board in lm3s sf2; do
    [ "$board" = lm3s ] && at=$base || at=$((base + 1000))
    # The compared image in turns before and after the first (which goes first is
    # slower on a loaded machine).
    [ "$board" = lm3s ] && [ $((run % 2)) = 1 ] && compare_round
    # Guest -> host: the NIC-limit image's raw datagrams and its bare TCP source of the
    # pattern (7001), then file out (7001), one tool for both TCP figures.
    [ "$board" = lm3s ] && ring=${qemu[0]} nic=${qemu[1]} || ring=${qemu[2]} nic=${qemu[3]}
    measure "$board-limit-out" "$nic" raw_out $((at + 150))
    measure "$board-limit-pattern" "$nic" get $((at + 101))
    measure "$board-out" "$ring" get $((at + 1))
    # Host -> guest, one tool for both: the NIC-limit image's TCP sink, then file in (7002).
    measure "$board-limit-in" "$nic" blast $((at + 102))
    # The same sink hashing every byte as file in does: file in's ceiling on this core.
    measure "$board-limit-hash" "$nic" blast $((at + 103))
    measure "$board-in" "$ring" blast $((at + 2))
    # SHA-256 alone on this core: what the hashing sink spent over the sink that counts.
    add "$board-sha-cpu" $(($(last $board-limit-hash-cpu) - $(last $board-limit-in-cpu)))
    limit_out=$(last $board-limit-out) limit_pattern=$(last $board-limit-pattern) out=$(last $board-out)
    limit_in=$(last $board-limit-in) limit_hash=$(last $board-limit-hash) in=$(last $board-in)
    [ "$board" = lm3s ] && [ $((run % 2)) = 0 ] && compare_round
    echo "run $run $board: guest -> host ringnet $out MB/s (file out), NIC limit $limit_out (raw UDP), TCP source $limit_pattern; host -> guest ringnet $in MB/s (file in, hashing), NIC limit $limit_in, hashing $limit_hash"
    echo "run $run $board: QEMU CPU ms per transfer: file out $(last $board-out-cpu), raw UDP $(last $board-limit-out-cpu), TCP source $(last $board-limit-pattern-cpu); file in $(last $board-in-cpu), NIC limit $(last $board-limit-in-cpu), hashing $(last $board-limit-hash-cpu) (SHA-256 alone $(last $board-sha-cpu))"
  done
  # This round's ratios, of figures taken a few seconds apart: the machine's load moves
  # less between them than across the whole run.
  for board in lm3s sf2; do
    # The same work per byte and per segment as the service: the TCP source of the
    # pattern out, the hashing sink in.
    add "$board-ratio-out" "$(ratio "$(last $board-out)" "$(last $board-limit-pattern)")"
    add "$board-ratio-in" "$(ratio "$(last $board-in)" "$(last $board-limit-hash)")"
    # The bare limits: the NIC with nothing done per byte.
    add "$board-ratio-out-bare" "$(ratio "$(last $board-out)" "$(last $board-limit-out)")"
    add "$board-ratio-in-bare" "$(ratio "$(last $board-in)" "$(last $board-limit-in)")"
  done
  # By QEMU's CPU time: the limit's time over ringnet's (higher is better, as above).
  add lm3s-cpu-ratio-out "$(ratio "$(last lm3s-limit-pattern-cpu)" "$(last lm3s-out-cpu)")"
  add lm3s-cpu-ratio-in "$(ratio "$(last lm3s-limit-hash-cpu)" "$(last lm3s-in-cpu)")"
  if [ -n "${COMPARE:-}" ]; then
    add compare-cpu-ratio-out "$(ratio "$(last lm3s-limit-pattern-cpu)" "$(last compare-out-cpu)")"
    add compare-cpu-ratio-in "$(ratio "$(last lm3s-limit-hash-cpu)" "$(last compare-in-cpu)")"
    add compare-cpu-vs-out "$(ratio "$(last lm3s-out-cpu)" "$(last compare-out-cpu)")"
    add compare-cpu-vs-in "$(ratio "$(last lm3s-in-cpu)" "$(last compare-in-cpu)")"
    add compare-ratio-out "$(ratio "$(last compare-out)" "$(last lm3s-limit-pattern)")"
    add compare-ratio-in "$(ratio "$(last compare-in)" "$(last lm3s-limit-hash)")"
    add compare-vs-out "$(ratio "$(last compare-out)" "$(last lm3s-out)")"
    add compare-vs-in "$(ratio "$(last compare-in)" "$(last lm3s-in)")"
  fi
  for way in out in; do
    add "boards-ratio-$way" "$(ratio "$(last sf2-$way)" "$(last lm3s-$way)")"
    # The same by QEMU's CPU time per transfer: the Stellaris's over the SmartFusion2's.
    add "boards-cpu-ratio-$way" "$(ratio "$(last lm3s-$way-cpu)" "$(last sf2-$way-cpu)")"
  done
  add boards-cpu-ratio-sha "$(ratio "$(last lm3s-sha-cpu)" "$(last sf2-sha-cpu)")"
  add sf2-cpu-ratio-in "$(ratio "$(last sf2-limit-hash-cpu)" "$(last sf2-in-cpu)")"
done
med() { printf '%s\n' ${figures[$1]} | median; }
range() { printf '%s\n' ${figures[$1]} | sort -g | awk 'NR == 1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
echo "medians of $runs x $bytes bytes (MB/s):"
for board in lm3s sf2; do
  [ "$board" = lm3s ] && name="lm3s6965evb (Stellaris)" || name="emcraft-sf2 (MSS MAC)  "
  echo "  $name guest -> host: ringnet $(med $board-out), NIC limit $(med $board-limit-out) (raw UDP), TCP source $(med $board-limit-pattern)" \
    "| host -> guest: ringnet $(med $board-in), NIC limit $(med $board-limit-in), hashing $(med $board-limit-hash)"
done
echo "  emcraft-sf2 / lm3s6965evb, ringnet: guest -> host $(ratio "$(med sf2-out)" "$(med lm3s-out)"), host -> guest $(ratio "$(med sf2-in)" "$(med lm3s-in)") (goal >= 3 both ways);" \
  "NIC limits: $(ratio "$(med sf2-limit-out)" "$(med lm3s-limit-out)"), $(ratio "$(med sf2-limit-in)" "$(med lm3s-limit-in)")"
echo "medians of QEMU's CPU time per transfer (ms):"
for board in lm3s sf2; do
  echo "  $board: file out $(med $board-out-cpu), TCP source $(med $board-limit-pattern-cpu); file in $(med $board-in-cpu), bare sink $(med $board-limit-in-cpu), hashing sink $(med $board-limit-hash-cpu), SHA-256 alone $(med $board-sha-cpu)"
done
echo "median (range) of the $runs rounds' own ratios:"
for board in lm3s sf2; do
  [ "$board" = lm3s ] && name="lm3s6965evb" || name="emcraft-sf2"
  echo "  $name ringnet / NIC limit doing the same work (TCP source of the pattern out, hashing sink in):" \
    "guest -> host $(med $board-ratio-out) ($(range $board-ratio-out)), host -> guest $(med $board-ratio-in) ($(range $board-ratio-in))$([ $board = lm3s ] && echo " (goal >= 0.8)");" \
    "of the bare limit: $(med $board-ratio-out-bare) ($(range $board-ratio-out-bare)), $(med $board-ratio-in-bare) ($(range $board-ratio-in-bare))"
done
echo "  lm3s6965evb by QEMU CPU time per transfer (the limit's over ringnet's): guest -> host $(med lm3s-cpu-ratio-out) ($(range lm3s-cpu-ratio-out)), host -> guest $(med lm3s-cpu-ratio-in) ($(range lm3s-cpu-ratio-in));" \
  "medians: file out $(med lm3s-out-cpu) ms, TCP source $(med lm3s-limit-pattern-cpu) ms, file in $(med lm3s-in-cpu) ms, hashing sink $(med lm3s-limit-hash-cpu) ms"
if [ -n "${COMPARE:-}" ]; then
  echo "  compared image by QEMU CPU time: of the limit doing the same work $(med compare-cpu-ratio-out) ($(range compare-cpu-ratio-out)), $(med compare-cpu-ratio-in) ($(range compare-cpu-ratio-in));" \
    "the first image's time over its own (above 1: the first is slower) $(med compare-cpu-vs-out) ($(range compare-cpu-vs-out)), $(med compare-cpu-vs-in) ($(range compare-cpu-vs-in));" \
    "medians $(med compare-out-cpu) ms out, $(med compare-in-cpu) ms in"
  echo "  compared image ($COMPARE): guest -> host $(med compare-out) MB/s, host -> guest $(med compare-in) MB/s;" \
    "of the limit doing the same work: $(med compare-ratio-out) ($(range compare-ratio-out)), $(med compare-ratio-in) ($(range compare-ratio-in));" \
    "of the first image: $(med compare-vs-out) ($(range compare-vs-out)), $(med compare-vs-in) ($(range compare-vs-in))"
fi
echo "  emcraft-sf2 / lm3s6965evb, ringnet: guest -> host $(med boards-ratio-out) ($(range boards-ratio-out)), host -> guest $(med boards-ratio-in) ($(range boards-ratio-in)) (goal >= 3)"
echo "  the same by QEMU's CPU per transfer (Stellaris / SmartFusion2): guest -> host $(med boards-cpu-ratio-out) ($(range boards-cpu-ratio-out)), host -> guest $(med boards-cpu-ratio-in) ($(range boards-cpu-ratio-in)); SHA-256 alone $(med boards-cpu-ratio-sha) ($(range boards-cpu-ratio-sha));" \
  "emcraft-sf2 file in / hashing sink by CPU $(med sf2-cpu-ratio-in) ($(range sf2-cpu-ratio-in))"

qemu_pid=${qemu[0]}
ticks() { awk '{print $14 + $15}' "/proc/$qemu_pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks); sleep 10; after=$(ticks)
echo "QEMU CPU while idle: $(awk -v d=$((after - before)) -v hz="$hz" 'BEGIN {printf "%.1f", d / hz / 10 * 100}')% of a core (target <= 5%)"
exit $verdict
