#!/usr/bin/env bash
# Checks what the browser would ship of empmix-core: it builds for wasm32-unknown-unknown,
# links no serde_json, and imports nothing from `env` (an unresolved symbol). Prints its size.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== empmix-core for wasm32-unknown-unknown"
if cargo tree -p empmix-core --target wasm32-unknown-unknown -e normal --prefix none | grep -E '^serde_json '; then
    echo "FAIL: empmix-core's wasm build depends on serde_json" >&2
    exit 1
fi
cargo build -q -p empmix-core-wasm-check --target wasm32-unknown-unknown
cargo build -q -p empmix-core-wasm-check --target wasm32-unknown-unknown --profile wasm-release
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
debug=$target/wasm32-unknown-unknown/debug/empmix_core_wasm_check.wasm
release=$target/wasm32-unknown-unknown/wasm-release/empmix_core_wasm_check.wasm
# The debug build keeps symbol names, so a linked serde_json would show.
if grep -q serde_json "$debug"; then
    echo "FAIL: serde_json symbols in the wasm build" >&2
    exit 1
fi
imports=$(python3 scripts/wasm_imports.py "$release")
if grep -q '^env\.' <<<"$imports"; then
    echo "FAIL: the wasm build imports from env:" >&2
    grep '^env\.' <<<"$imports" >&2
    exit 1
fi
echo "imports: ${imports:-none}"
echo "engine wasm: $(wc -c <"$release") bytes, $(gzip -9 -c "$release" | wc -c) bytes gzip -9"
echo "ok: no serde_json, no env imports"
