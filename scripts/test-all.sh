#!/usr/bin/env bash
# Runs every check and test of ringnet. Needs only a Rust toolchain manager (rustup):
# the pinned toolchain, its target and components come from rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A clean clone on a small disk: no incremental caches (they help edits, not one build),
# and where CI is set, a stage's build outputs that no later stage uses go as soon as it
# has passed (a developer's run keeps them for the next one). A clean clone's run then
# peaks at 2.0 GB under the clone, against 5.2 GB before.
export CARGO_INCREMENTAL=0
drop_outputs() {
  if [ -n "${CI:-}" ]; then
    rm -rf "$@"
    echo "removed $* (CI: no later stage uses it)"
  fi
}

step "system packages the tap and QEMU tests use"
missing=()
command -v nc >/dev/null || missing+=(netcat-openbsd)
command -v tshark >/dev/null || missing+=(tshark)
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
# host-sim top is driven under tmux in a tap test.
command -v tmux >/dev/null || missing+=(tmux)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
# The full-disk tests mount a tmpfs in a mount namespace of their own.
command -v unshare >/dev/null || missing+=(util-linux)
command -v mount >/dev/null || missing+=(mount)
# Linking the 32-bit (i686) test binaries.
dpkg -s gcc-multilib >/dev/null 2>&1 || missing+=(gcc-multilib)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif [ -n "${CI:-}" ]; then
    echo "missing ${missing[*]} and not root: cannot install them" >&2
    exit 1
  else
    echo "missing ${missing[*]}: the tap tests will say they are skipped (sudo apt-get install ${missing[*]})"
  fi
fi
echo "packages checked"

step "toolchain (rust-toolchain.toml) and the thumbv7m-none-eabi target"
rustup show active-toolchain
rustup target add thumbv7m-none-eabi
rustup component add rustfmt clippy
# The firmware logs defmt frames; the runner and the QEMU tests decode them with it.
command -v defmt-print >/dev/null || cargo install defmt-print --locked

step "formatting"
cargo fmt --all --check

step "clippy, warnings denied"
cargo clippy --workspace --all-targets -- -D warnings

step "the core builds for thumbv7m-none-eabi: no_std, no alloc (with and without the default features, and with defmt)"
cargo build --lib --target thumbv7m-none-eabi
cargo build --lib --target thumbv7m-none-eabi --no-default-features
# The log macros' other two back ends: defmt (the firmware's), and none (lines compiled out,
# which the build above is).
cargo clippy --lib --target thumbv7m-none-eabi --no-default-features --features defmt -- -D warnings

step "the docs, warnings denied (broken intra-doc links): the core with and without the default features, the host programs"
RUSTDOCFLAGS="-D warnings" cargo doc -p ringnet --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc -p ringnet --no-deps --no-default-features
RUSTDOCFLAGS="-D warnings" cargo doc -p host-sim --no-deps

step "unit, scenario and tap tests (the tap tests make their own network namespaces; root)"
cargo test --workspace

step "the core's unit and scenario tests on a 32-bit target (i686): no u64 is cut to a usize"
if rustup target add i686-unknown-linux-gnu && dpkg -s gcc-multilib >/dev/null 2>&1; then
  cargo test -p ringnet --target i686-unknown-linux-gnu
  drop_outputs target/i686-unknown-linux-gnu
elif [ -n "${CI:-}" ]; then
  echo "i686-unknown-linux-gnu or gcc-multilib cannot be had: the 32-bit tests cannot run" >&2
  exit 1
else
  echo "skipped: needs the i686-unknown-linux-gnu target and gcc-multilib (apt-get install gcc-multilib)"
fi

step "fuzzing: every target of fuzz/ for ${FUZZ_SECONDS:-10} s, failing on a crash (cargo-fuzz; RUSTC_BOOTSTRAP=1 lets the pinned stable toolchain take its sanitizer flags)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(
  cd fuzz
  cargo fmt --check
  for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target" target
    log="target/fuzz-$target.log"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="${FUZZ_SECONDS:-10}" -print_final_stats=1 >"$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzz target $target failed: its input is kept under fuzz/artifacts/$target/" >&2
      exit 1
    fi
    printf '%s: %s\n' "$target" "$(grep -E '^Done' "$log")"
  done
)
drop_outputs fuzz/target

step "firmware: clippy and format for both boards and both log forms, then boot each board under QEMU and test it from Linux"
(
  cd firmware
  cargo fmt --check
  cargo clippy --quiet --release -- -D warnings
  cargo clippy --quiet --profile sf2 --no-default-features --features sf2,http,transfer,defmt -- -D warnings
  cargo clippy --quiet --release --no-default-features --features http,transfer,text-log,sha-compact \
    --target-dir target/text-log -- -D warnings
)
bash scripts/test-firmware.sh
BOARD=emcraft-sf2 bash scripts/test-firmware.sh

step "a bounded soak on a tap: ${SOAK_SECONDS:-20} s of 24 clients at once, 6 of them hostile (SYN floods, slowloris, downloads never closed, uploads aborted); every service must answer afterwards, with no panic and no RSS growth (root: a namespace of its own)"
if [ "$(id -u)" = 0 ]; then
  SOAK_SECONDS=${SOAK_SECONDS:-20} bash scripts/soak.sh
elif [ -n "${CI:-}" ]; then
  echo "the soak needs root for its network namespace" >&2
  exit 1
else
  echo "skipped: the soak needs root for its network namespace (sudo SOAK_SECONDS=20 bash scripts/soak.sh)"
fi

step "the demo runs to the end and checks what it shows (the test build's binary: no release build)"
cargo run -p host-sim -- demo > target/demo.log
tail -n 1 target/demo.log
