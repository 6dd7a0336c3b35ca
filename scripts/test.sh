#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs formatting,
# lints, the wasm checks and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }
started=$SECONDS

step "toolchain: rustfmt, clippy, wasm32-unknown-unknown"
rustup component add rustfmt clippy >/dev/null
rustup target add wasm32-unknown-unknown >/dev/null

step "system tools: a C compiler, python3 (with pip, for schemathesis) and valgrind (for the C ABI tests)"
missing=()
for tool in cc python3 valgrind; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -q >/dev/null
    apt-get install -y -q gcc python3 valgrind >/dev/null
fi
if ! command -v javac >/dev/null; then
    echo "installing: openjdk-17-jdk-headless (javac and jni.h, for the JVM binding of libempmix_engine)"
    apt-get update -q >/dev/null
    apt-get install -y -q openjdk-17-jdk-headless >/dev/null
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "installing: python3-pip"
    apt-get update -q >/dev/null
    apt-get install -y -q python3-pip >/dev/null
fi

if [ -f scripts/services.sh ]; then
    step "services: RabbitMQ and PostgreSQL"
    bash scripts/services.sh
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "empmix-core builds for the browser without serde_json or env imports"
bash scripts/check-core-wasm.sh

step "libempmix_engine: at most 600 KB stripped (x86_64, aarch64-linux-android), no tokio/reqwest/rustls"
bash sdk-ffi-engine/scripts/size.sh

step "cargo test --workspace"
cargo test --workspace --locked

step "schemathesis against the served OpenAPI document (both keys)"
bash scripts/schemathesis.sh

step "dashboard: end to end in headless Chromium against empmix-server"
bash tests/dashboard/test.sh

if [ -f sdk-wasm/scripts/test.sh ]; then
    step "browser package: build, size budget, wasm-bindgen tests, headless Chromium"
    bash sdk-wasm/scripts/test.sh
fi

step "all green in $((SECONDS - started)) s"
