#!/usr/bin/env bash
# Builds the browser package into sdk-wasm/pkg/: empmix.wasm (the engine, size-optimised),
# index.js (the hand-written driver, minified, after js/core.js: the constants generated from
# the core), index.d.ts and package.json.
#
# Installs what it needs, each only when missing or of the wrong version:
#   - rustup target wasm32-unknown-unknown and the rust-src component (std is rebuilt for size)
#   - wasm-bindgen-cli at exactly the locked wasm-bindgen version (its wasm-bindgen-test-runner
#     runs the unit tests; the package itself needs no generated glue)
#   - npm dev tools in sdk-wasm/node_modules: binaryen (wasm-opt), terser, playwright-core, and
#     webpack (the end-to-end test bundles an app that imports the package)
#   - Debian chromium, chromium-driver and brotli for the tests (when root)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
rustup component add rust-src >/dev/null 2>&1 || true

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' ../Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (found: ${have:-none})"
    # --locked first; a yanked lock entry in the registry makes it fail, then resolve afresh.
    cargo install wasm-bindgen-cli --version "$want" --locked ||
        cargo install wasm-bindgen-cli --version "$want"
fi

if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/terser ] || [ ! -d node_modules/playwright-core ] ||
    [ ! -d node_modules/webpack ]; then
    npm install --no-audit --no-fund --loglevel=error
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v brotli >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver brotli >/dev/null
    else
        echo "warning: chromium, chromium-driver or brotli missing (run as root to install)" >&2
    fi
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# The precompiled std is built for speed and keeps panic messages (core::fmt, Debug impls,
# Unicode tables, source paths) that a trap can never show. Rebuilding core/alloc/std with
# `panic=immediate-abort` turns every panic into a bare `unreachable`, so none of that is
# linked, and compiles std's non-generic code at opt-level z too. Stable rustc has these behind
# RUSTC_BOOTSTRAP only; they are the documented way (`-Zbuild-std`) to size-optimise std.
# strip=false keeps the name section for wasm-sizes.py; wasm-opt strips it afterwards.
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
    cargo build -q --locked -p empmix-wasm --target wasm32-unknown-unknown --profile wasm-release \
    -Zbuild-std=core,alloc,std,panic_abort --config profile.wasm-release.strip=false
raw="$target_dir/wasm32-unknown-unknown/wasm-release/empmix_wasm.wasm"

rm -rf pkg && mkdir -p pkg
# --flatten --rereloop before -Oz rebuilds the control flow so -Oz finds more to merge, and
# the module owns its memory, which starts zeroed, with the stack (not data) in its low
# addresses (--zero-filled-memory, --low-memory-unused): together 0.3 KB gzip smaller.
node_modules/.bin/wasm-opt --flatten --rereloop -Oz -Oz --converge --low-memory-unused --zero-filled-memory \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --enable-multivalue --strip-debug --strip-producers "$raw" -o pkg/empmix.wasm
node_modules/.bin/terser js/core.js js/index.js --module --compress passes=2 --mangle --mangle-props regex=/^_/ \
    -o pkg/index.js
cp js/index.d.ts pkg/index.d.ts
cp README.md pkg/README.md 2>/dev/null || true
version=$(awk '/^\[workspace.package\]/ { f = 1 } f && /^version/ { gsub(/version = |"/, ""); print; exit }' ../Cargo.toml)
cat >pkg/package.json <<JSON
{
  "name": "empmix-wasm",
  "version": "$version",
  "description": "EmpMix browser analytics SDK (WebAssembly engine + ES module).",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "index.js",
  "module": "index.js",
  "types": "index.d.ts",
  "exports": { ".": { "types": "./index.d.ts", "default": "./index.js" }, "./empmix.wasm": "./empmix.wasm" },
  "files": ["index.js", "index.d.ts", "empmix.wasm", "README.md"],
  "sideEffects": false
}
JSON
wasm=$(wc -c <pkg/empmix.wasm)
js=$(wc -c <pkg/index.js)
echo "built $here/pkg: empmix.wasm $wasm bytes, index.js $js bytes"
