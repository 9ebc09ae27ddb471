#!/usr/bin/env bash
# Creates (up) or removes (down) a network namespace holding a tap interface for ringnet,
# so ringnet can talk to the Linux kernel without touching the root namespace.
#
#   sudo scripts/netns.sh up   [NS] [TAP]   # default NS=ringnet TAP=tap0
#   sudo ip netns exec ringnet host-sim serve --tap tap0          # ringnet is 192.168.69.1
#   sudo ip netns exec ringnet nc 192.168.69.1 7                  # Linux is 192.168.69.100
#   sudo scripts/netns.sh down [NS]
#
# Inside the namespace the Linux side of the tap has 192.168.69.100/24; ringnet, reading
# and writing frames through the same tap from user space, uses 192.168.69.1.
set -euo pipefail
action=${1:-}
ns=${2:-ringnet}
tap=${3:-tap0}
linux_ip=${LINUX_IP:-192.168.69.100/24}

case "$action" in
  up)
    if ip netns list | grep -qw "^$ns"; then
      echo "namespace $ns exists already (remove it with: $0 down $ns)" >&2
      exit 1
    fi
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" tuntap add dev "$tap" mode tap
    ip -n "$ns" link set "$tap" up
    ip -n "$ns" addr add "$linux_ip" dev "$tap"
    echo "namespace $ns: $tap up, Linux side $linux_ip; run ringnet with:"
    echo "  ip netns exec $ns host-sim serve --tap $tap --ip 192.168.69.1/24"
    ;;
  down)
    ip netns del "$ns"
    echo "namespace $ns removed (with its $tap)"
    ;;
  *)
    echo "usage: $0 up|down [NS] [TAP]" >&2
    exit 2
    ;;
esac
