#!/usr/bin/env bash
# Instruction profile of a firmware image over one transfer (a benchmark tool, not a
# test): boots IMAGE under QEMU (lm3s6965evb with the Stellaris Ethernet, or emcraft-sf2
# with the MSS MAC for an image with a .ddr section, as scripts/qemu-firmware.sh chooses)
# with user-mode networking on 127.0.0.1 and
# `-d in_asm,exec,nochain` (every block executed is logged: some 400 MB per MiB moved, and
# the guest runs about 20 times slower), runs one transfer, stops QEMU, and prints
# scripts/insn-profile.py's table.
#   scripts/insn-profile.sh IMAGE out|in|hash|idle [BYTES] [sym|inline] [NAMES]
# out: file out (7001) sends BYTES (default 1 MiB); in: file in (7002) takes BYTES;
# hash: the NIC-limit image's hashing sink (7003); idle: nothing for 2 s.
# Counts include the boot (about 0.15 M instructions).
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:?usage: $0 IMAGE out|in|hash|idle [BYTES] [sym|inline] [NAMES]}
way=${2:?}
bytes=${3:-1048576}
log=$(mktemp /tmp/insn-profile.XXXXXX.log)
port=$((27000 + $$ % 900))
cargo build --quiet --release -p host-sim
machine=lm3s6965evb nic=stellaris
if size -A "$image" | grep -q '^\.ddr '; then machine=emcraft-sf2 nic=msf2-emac; fi
qemu-system-arm -machine "$machine" -nographic -monitor none -serial null \
  -semihosting-config enable=on,target=native \
  -netdev "user,id=net0,net=10.0.2.0/24,host=10.0.2.2,hostfwd=tcp:127.0.0.1:$((port + 1))-10.0.2.15:7001,hostfwd=tcp:127.0.0.1:$((port + 2))-10.0.2.15:7002,hostfwd=tcp:127.0.0.1:$((port + 3))-10.0.2.15:7003" \
  -net nic,netdev=net0,model="$nic" -kernel "$image" -d in_asm,exec,nochain -D "$log" &
qemu=$!
trap 'kill $qemu 2>/dev/null || true; rm -f "$log"' EXIT
sleep 2
peer=target/release/host-sim
case "$way" in
  out) timeout 600 $peer peer get "127.0.0.1:$((port + 1))" --request "$bytes" -o /dev/null -q --no-digest ;;
  in) timeout 600 $peer peer blast "127.0.0.1:$((port + 2))" --bytes "$bytes" -q ;;
  hash) timeout 600 $peer peer blast "127.0.0.1:$((port + 3))" --bytes "$bytes" -q ;;
  idle) ;;
  *) echo "out, in, hash or idle" >&2; exit 2 ;;
esac
sleep 0.5
kill $qemu; wait $qemu 2>/dev/null || true
python3 scripts/insn-profile.py "$log" "$image" "${4:-sym}" 40 "${5:-}"
