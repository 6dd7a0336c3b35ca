#!/usr/bin/env bash
# Builds the browser package and runs all its tests; exits non-zero on any failure:
#   1. the size: pkg/ (wasm + JS) gzip -9 against the 24 KB target (reported; not met yet, see
#      docs/performance.md) and against a regression ceiling that fails the run
#      (EMPMIX_WASM_CEILING, bytes); the plain-stable build and the web build's sizes beside it,
#      and the web build's loader against its 2 KB budget (fails the run)
#   2. wasm-bindgen-test unit tests in Node and in headless Chromium (chromedriver)
#   3. the package's JS API in Node (node --test), including hostile input and the storage
#      layer: on the shipped build (pinned toolchain), on the same sources built on plain
#      stable, and on the web build (the driver in Rust)
#   4. end to end in headless Chromium against a real empmix-server (playwright-core): the
#      shipped build, then the web build's own steps (tests/e2e/web.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/build.sh --stable
bash scripts/build.sh --web

echo "== size"
target=24576
# The package does not meet its 24 KB target yet (docs/performance.md). Until it does, this
# ceiling (issue 16's) keeps it from growing unnoticed.
ceiling=${EMPMIX_WASM_CEILING:-30000}
gz=$(cat pkg/empmix.wasm pkg/index.js | gzip -9 | wc -c)
gz_wasm=$(gzip -9 <pkg/empmix.wasm | wc -c)
gz_js=$(gzip -9 <pkg/index.js | wc -c)
br=$( (command -v brotli >/dev/null && cat pkg/empmix.wasm pkg/index.js | brotli -q 11 -c | wc -c) || echo "?")
echo "package: $gz bytes gzip -9 (wasm $gz_wasm + js $gz_js separately), $br bytes brotli -q 11"
if [ "$gz" -gt "$target" ]; then
    echo "NOT MET: the package is over its 24 KB target ($gz > $target bytes gzip -9)"
fi
# The same sources on plain stable (no std rebuild), and the web build (every file a page
# loads), reported beside it: the web build replaces pkg/ once it is under the ceiling.
for dir in pkg-stable pkg-web; do
    echo "$dir: $(cat $dir/*.wasm $dir/*.js | gzip -9 | wc -c) bytes gzip -9 ($(cd $dir && for f in *.wasm *.js; do printf '%s %s, ' "$f" "$(gzip -9 <"$f" | wc -c)"; done | sed 's/, $//'))"
done
size_ok=1
# The web build's loader is the one module on the page's critical path: at most 2 KB (issue 16).
loader=$(gzip -9 <pkg-web/index.js | wc -c)
echo "pkg-web loader (index.js): $loader bytes gzip -9 (budget 2048)"
if [ "$loader" -gt 2048 ]; then
    echo "FAIL: the web build's loader is over its 2 KB budget ($loader > 2048 bytes gzip -9)" >&2
    size_ok=0
fi
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
echo "== JS API in Node: the plain-stable build"
EMPMIX_PKG=pkg-stable node --test --test-force-exit tests/node/
echo "== JS API in Node: the web build"
EMPMIX_PKG=pkg-web node --test --test-force-exit tests/node/

echo "== end to end in headless Chromium against empmix-server"
cargo build -q --locked -p empmix-server
node tests/e2e/run.mjs
echo "== end to end in headless Chromium: the web build"
node tests/e2e/web.mjs

[ "$size_ok" = 1 ] || exit 1
echo "sdk-wasm: all tests passed"
