#!/usr/bin/env bash
# Builds and runs one of smoltcp's own examples from the cargo registry's copy of the
# smoltcp crate ringnet depends on, as the anchor its benchmarks compare against.
# The crate is copied to target/smoltcp-anchor; the registry copy is never modified.
# Usage: scripts/bench-smoltcp-anchor.sh EXAMPLE [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:?usage: $0 EXAMPLE [ARGS...]}
shift
version=$(cargo metadata --format-version 1 --locked 2>/dev/null \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="smoltcp"))')
cargo fetch --locked >/dev/null 2>&1 || cargo fetch >/dev/null
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
source=$(ls -d "$registry"/*/smoltcp-"$version" 2>/dev/null | head -n 1)
if [ -z "$source" ]; then
  echo "smoltcp $version is not in $registry" >&2
  exit 1
fi
scratch=target/smoltcp-anchor/smoltcp-$version
if [ ! -d "$scratch" ]; then
  mkdir -p target/smoltcp-anchor
  cp -r "$source" "$scratch"
  # Built on its own, outside ringnet's workspace.
  printf '\n[workspace]\n' >> "$scratch/Cargo.toml"
fi
cd "$scratch"
cargo run --quiet --release --example "$example" -- "$@"
