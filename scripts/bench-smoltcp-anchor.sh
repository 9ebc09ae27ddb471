#!/usr/bin/env bash
# Builds and runs one of smoltcp's own examples from the cargo registry's copy of the
# smoltcp crate ringnet depends on, as the anchor its benchmarks compare against.
# The crate is copied to target/smoltcp-anchor; the registry copy is never modified.
# Usage: scripts/bench-smoltcp-anchor.sh EXAMPLE [ARGS...]
# With ANCHOR_BUILD_ONLY=1 it only builds, and prints the example binary's path (for
# running it where there is no network to fetch dependencies, e.g. in a namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:?usage: $0 EXAMPLE [ARGS...]}
shift
version=$(awk '/^name = "smoltcp"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
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
cargo build --quiet --release --example "$example"
binary=$PWD/target/release/examples/$example
if [ -n "${ANCHOR_BUILD_ONLY:-}" ]; then
  echo "$binary"
  exit 0
fi
exec "$binary" "$@"
