#!/usr/bin/env bash
# The firmware's footprint: flash and static RAM of a release image against the targets
# (flash <= 64 KiB, static RAM <= 60 KiB), with where the bytes go, by crate, by module and
# by symbol (scripts/footprint.py: size -A and nm -C --size-sort).
#   scripts/footprint-firmware.sh [IMAGE]            # prints the report
#   RECORD=1 scripts/footprint-firmware.sh [IMAGE]   # also writes firmware/footprint.txt
# Exits non-zero when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-firmware/target/thumbv7m-none-eabi/release/ringnet-firmware}
report=$(python3 scripts/footprint.py "$image" --top 30)
flash=$(sed -n 's/^flash \([0-9]*\) B.*/\1/p' <<<"$report" | head -n 1)
ram=$(sed -n 's/^static_ram \([0-9]*\) B.*/\1/p' <<<"$report" | head -n 1)
verdict=0
targets=""
if [ "$flash" -le 65536 ]; then
  targets+="flash target (<= 65536): met"$'\n'
else
  targets+="flash target (<= 65536): NOT met, $((flash - 65536)) B over"$'\n'
  verdict=1
fi
if [ "$ram" -le 61440 ]; then
  targets+="static RAM target (<= 61440): met"
else
  targets+="static RAM target (<= 61440): NOT met, $((ram - 61440)) B over"
  verdict=1
fi
if [ -n "${RECORD:-}" ]; then
  {
    echo "# ringnet firmware footprint: the lm3s6965evb release image with every service (echo, file"
    echo "# out, file in, transfer, HTTP, UDP report, stats, beacon), the defmt log at debug level."
    echo "# Written by scripts/footprint-firmware.sh (RECORD=1; bench-firmware.sh does it too);"
    echo "# bytes. Symbols are attributed to the crate and module their name starts with: code that"
    echo "# LTO inlined into a caller counts as the caller's (main holds the loop, the stack's poll"
    echo "# and smoltcp's interface poll), so smoltcp's share is larger than its line here."
    echo
    echo "$report" | head -n 3
    echo "$targets"
    echo "$report" | tail -n +4
  } >firmware/footprint.txt
fi
echo "$report"
echo "$targets"
exit $verdict
