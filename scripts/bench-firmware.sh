#!/usr/bin/env bash
# Firmware figures (a benchmark, not a test): flash and static RAM from `size`, checked
# against the targets (flash <= 64 KiB, static RAM <= 60 KiB) and recorded in
# firmware/footprint.txt; throughput under QEMU with user-mode networking, guest -> host
# and host -> guest, median of RUNS over BYTES; QEMU's CPU while the firmware idles.
# Exits non-zero when a footprint target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
bytes=${BYTES:-16777216}
(cd firmware && cargo build --quiet --release)
cargo build --quiet --release -p host-sim
image=firmware/target/thumbv7m-none-eabi/release/ringnet-firmware

read -r text rodata data bss vectors < <(size -A "$image" | awk '
  $1 == ".text" {t=$2} $1 == ".rodata" {r=$2} $1 == ".data" {d=$2} $1 == ".bss" {b=$2} $1 == ".vector_table" {v=$2}
  END {print t, r, d, b, v}')
flash=$((vectors + text + rodata + data))
ram=$((data + bss))
{
  echo "# firmware footprint, from size -A of the release image (bytes)"
  echo "flash $flash (vector table $vectors, text $text, rodata $rodata, data $data)"
  echo "static_ram $ram (data $data, bss $bss)"
} >firmware/footprint.txt
cat firmware/footprint.txt
verdict=0
[ "$flash" -le $((64 * 1024)) ] && echo "flash target (<= 65536): met" || { echo "flash target (<= 65536): NOT met"; verdict=1; }
[ "$ram" -le $((60 * 1024)) ] && echo "static RAM target (<= 61440): met" || { echo "static RAM target (<= 61440): NOT met"; verdict=1; }

timeout 900 bash scripts/qemu-firmware.sh "$image" >/dev/null 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
sleep 2
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
out=(); in=()
for _ in $(seq "$runs"); do
  out+=("$(target/release/host-sim peer get 127.0.0.1:17001 --request "$bytes" -o /dev/null -q --no-digest | sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p')")
  in+=("$(target/release/host-sim peer blast 127.0.0.1:17002 --bytes "$bytes" -q | sed -n 's/.*= \([0-9.]*\) MB\/s.*/\1/p')")
done
echo "guest -> host: $(printf '%s\n' "${out[@]}" | median) MB/s (median of $runs x $bytes bytes; target >= 40)"
echo "host -> guest: $(printf '%s\n' "${in[@]}" | median) MB/s into file in, which hashes every byte (median of $runs x $bytes bytes; target >= 60)"
qemu_pid=$(pgrep -f "qemu-system-arm.*$image" | head -n 1)
ticks() { awk '{print $14 + $15}' "/proc/$qemu_pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks); sleep 10; after=$(ticks)
echo "QEMU CPU while idle: $(awk -v d=$((after - before)) -v hz="$hz" 'BEGIN {printf "%.1f", d / hz / 10 * 100}')% of a core (target <= 5%)"
exit $verdict
