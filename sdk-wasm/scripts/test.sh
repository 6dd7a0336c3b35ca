#!/usr/bin/env bash
# Builds the browser package and runs all its tests; exits non-zero on any failure:
#   1. the size: pkg/ (wasm + JS) gzip -9 against the 10 KB target (reported; not met yet, see
#      docs/performance.md) and against a regression ceiling that fails the run
#      (EMPMIX_WASM_CEILING, bytes)
#   2. wasm-bindgen-test unit tests in Node and in headless Chromium (chromedriver)
#   3. the package's JS API in Node (node --test), including hostile input and the storage layer
#   4. end to end in headless Chromium against a real empmix-server (playwright-core)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

echo "== size"
target=10240
# The package does not meet its 10 KB target yet (the engine itself is ~24 KB gzip; see
# docs/performance.md). Until it does, this ceiling keeps it from growing unnoticed. Issue 17
# raised it from 29,000 to 30,000 (the most the issue allows): the core reading Retry-After
# dates costs about 1 KB by itself, and the settings decoder and typed events in the engine
# more; savings elsewhere in the engine paid for the rest.
ceiling=${EMPMIX_WASM_CEILING:-30000}
gz=$(cat pkg/empmix.wasm pkg/index.js | gzip -9 | wc -c)
gz_wasm=$(gzip -9 -c pkg/empmix.wasm | wc -c)
gz_js=$(gzip -9 -c pkg/index.js | wc -c)
br=$( (command -v brotli >/dev/null && cat pkg/empmix.wasm pkg/index.js | brotli -q 11 -c | wc -c) || echo "?")
echo "package: $gz bytes gzip -9 (wasm $gz_wasm + js $gz_js separately), $br bytes brotli -q 11"
if [ "$gz" -gt "$target" ]; then
    echo "NOT MET: the package is over its 10 KB target ($gz > $target bytes gzip -9)"
fi
size_ok=1
if [ "$gz" -gt "$ceiling" ]; then
    echo "FAIL: the package grew past its regression ceiling ($gz > $ceiling bytes gzip -9)" >&2
    size_ok=0
fi

echo "== wasm-bindgen-test: Node"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
cargo test --locked -p empmix-wasm --target wasm32-unknown-unknown --test driver
echo "== wasm-bindgen-test: headless Chromium"
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} WASM_BINDGEN_USE_BROWSER=1 \
    cargo test --locked -p empmix-wasm --target wasm32-unknown-unknown --test driver

echo "== JS API in Node"
# --test-force-exit: a tab left with unsendable events (the dead-tab storage test) keeps retrying
# on timers, as it would in a page, which would otherwise keep Node running after the tests.
node --test --test-force-exit tests/node/

echo "== end to end in headless Chromium against empmix-server"
cargo build -q --locked -p empmix-server
node tests/e2e/run.mjs

[ "$size_ok" = 1 ] || exit 1
echo "sdk-wasm: all tests passed"
