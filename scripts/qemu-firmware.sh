#!/usr/bin/env bash
# Boots a ringnet firmware image under QEMU: lm3s6965evb with the Stellaris Ethernet, or
# emcraft-sf2 with the MSS Ethernet MAC for an image built with feature sf2 (it has a .ddr
# section; BOARD=lm3s6965evb or BOARD=emcraft-sf2 says so instead).
#   scripts/qemu-firmware.sh IMAGE                       # user-mode networking, services on 127.0.0.1
#   NET=tap TAP=tap0 scripts/qemu-firmware.sh IMAGE      # on a tap (run it inside a namespace)
#   PCAP=file.pcap ...                                   # also dump every frame (filter-dump)
# Host ports under user-mode networking (all bound to 127.0.0.1 only):
#   TCP 17007 -> 7 echo, 17080 -> 80 http, 17001 -> 7001 file out, 17002 -> 7002 file in,
#   17003 -> 7003 transfer
#   UDP 19000 -> 9000 report, 19001 -> 9001 stats
# The UART log goes to stdout, decoded by defmt-print when the image logs defmt frames
# (the default build; a text-log image is printed as it is); a panic ends QEMU with a
# failure status (semihosting), which is this script's status.
set -euo pipefail
image=${1:?usage: $0 IMAGE}
board=${BOARD:-}
if [ -z "$board" ]; then
  board=lm3s6965evb
  size -A "$image" | grep -q '^\.ddr ' && board=emcraft-sf2
fi
case "$board" in
  lm3s6965evb) nic=stellaris ;;
  emcraft-sf2) nic=msf2-emac ;;
  *)
    echo "BOARD must be lm3s6965evb or emcraft-sf2" >&2
    exit 2
    ;;
esac
base=${PORT_BASE:-17000}
udp_base=${UDP_PORT_BASE:-19000}
case "${NET:-user}" in
  user)
    fwd="hostfwd=tcp:127.0.0.1:$((base + 7))-10.0.2.15:7,hostfwd=tcp:127.0.0.1:$((base + 80))-10.0.2.15:80"
    for port in 7001 7002 7003; do
      fwd+=",hostfwd=tcp:127.0.0.1:$((base + port - 7000))-10.0.2.15:$port"
    done
    for port in 9000 9001; do
      fwd+=",hostfwd=udp:127.0.0.1:$((udp_base + port - 9000))-10.0.2.15:$port"
    done
    netdev="user,id=net0,net=10.0.2.0/24,host=10.0.2.2,$fwd"
    ;;
  tap)
    netdev="tap,id=net0,ifname=${TAP:-tap0},script=no,downscript=no"
    ;;
  *)
    echo "NET must be user or tap" >&2
    exit 2
    ;;
esac
dump=()
if [ -n "${PCAP:-}" ]; then
  dump=(-object "filter-dump,id=dump0,netdev=net0,file=$PCAP")
fi
qemu=(qemu-system-arm -machine "$board" -nographic -monitor none -serial stdio
  -semihosting-config enable=on,target=native
  -netdev "$netdev" -net nic,netdev=net0,model="$nic" "${dump[@]}"
  -kernel "$image")
if size -A "$image" | grep -q '^\.defmt '; then
  if ! command -v defmt-print >/dev/null; then
    echo "$image logs defmt frames: install defmt-print (cargo install defmt-print --locked)," >&2
    echo "or build the text log: cargo build --release --no-default-features --features http,transfer,text-log,sha-compact" >&2
    exit 2
  fi
  # QEMU keeps this script's PID (a kill reaches it), and its exit status; the decoder
  # reads the UART until QEMU ends and writes decoded lines, with the uptime, to stdout.
  exec "${qemu[@]}" > >(exec defmt-print -e "$image")
fi
exec "${qemu[@]}"
