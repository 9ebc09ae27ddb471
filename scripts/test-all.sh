#!/usr/bin/env bash
# Runs every check and test of ringnet. Needs only a Rust toolchain manager (rustup):
# the pinned toolchain, its target and components come from rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml) and the thumbv7m-none-eabi target"
rustup show active-toolchain
rustup target add thumbv7m-none-eabi
rustup component add rustfmt clippy

step "formatting"
cargo fmt --all --check

step "clippy, warnings denied"
cargo clippy --workspace --all-targets -- -D warnings

step "the core builds for thumbv7m-none-eabi: no_std, no alloc"
cargo build --lib --target thumbv7m-none-eabi

step "unit and scenario tests"
cargo test --workspace

step "the demo runs to the end and checks what it shows"
cargo run --release -p host-sim -- demo > target/demo.log
tail -n 1 target/demo.log
