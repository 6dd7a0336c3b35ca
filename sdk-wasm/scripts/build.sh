#!/usr/bin/env bash
# Builds the browser package: scripts/build.sh [--web] [--stable]
#
# The shipped package, into sdk-wasm/pkg/:
#   empmix.wasm  the engine behind raw exports (src/wasm.rs), size-optimised
#   index.js     the driver (js/index.js after js/core.js, the constants generated from the
#                core, js/context.js, the browser context, and js/share.js, share links),
#                minified
#   index.d.ts, package.json
#   exports.json the engine's export names as wasm-opt shortened them, for the tests (not published)
# With --web, the driver in Rust (src/browser, the crate's `web` feature; issue 16, not yet
# shipped: over the size ceiling), into sdk-wasm/pkg-web/:
#   index.js     the loader and public API (js/loader.js after js/core.js and js/share.js),
#                the one module on the page's critical path
#   empmix.js    the wasm-bindgen glue, imported by the loader when it starts the engine
#   empmix.wasm  the engine and the browser driver, size-optimised
#   context.js   the page's browser context (js/context.js) and the compression worker
#                (js/gzip.js), imported by the glue
#
# Both rebuild std for size with the toolchain pinned in rust-toolchain.toml; --stable builds
# the same sources on plain stable with the precompiled std instead (bigger; into a -stable
# directory, tested too, so the package never depends on the unstable flags).
#
# Installs what it needs, each only when missing or of the wrong version:
#   - the pinned toolchain (linked to the installed stable when that is the pinned version),
#     the rustup target wasm32-unknown-unknown and the rust-src component
#   - wasm-bindgen-cli at exactly the locked wasm-bindgen version
#   - npm dev tools in sdk-wasm/node_modules: binaryen (wasm-opt), terser, playwright-core, and
#     webpack (the end-to-end test bundles an app that imports the package)
#   - Debian chromium, chromium-driver and brotli for the tests (when root)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
mode=pinned
out=pkg
features=()
for arg in "$@"; do
    case $arg in
    --web) out=pkg-web features=(--features web) ;;
    --stable) mode=stable ;;
    *) echo "usage: scripts/build.sh [--web] [--stable]" >&2 && exit 2 ;;
    esac
done
[ $mode = stable ] && out=$out-stable

pinned=$(awk -F'"' '/^channel/ { print $2 }' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$pinned-"; then
    # rustup cannot fetch toolchains everywhere; the installed stable is the pinned one here.
    stable_sysroot=$(rustc +stable --print sysroot)
    if rustc +stable --version | grep -q "^rustc $pinned "; then
        rustup toolchain link "$pinned" "$stable_sysroot"
    else
        rustup toolchain install "$pinned" --profile minimal
    fi
fi
for tc in "$pinned" stable; do
    rustup +"$tc" target add wasm32-unknown-unknown >/dev/null 2>&1 || true
    rustup +"$tc" component add rust-src >/dev/null 2>&1 || true
done

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
if [ $mode = pinned ]; then
    # The precompiled std is built for speed and keeps panic messages (core::fmt, Debug impls,
    # Unicode tables, source paths) that a trap can never show. Rebuilding core/alloc/std with
    # `panic=immediate-abort` turns every panic into a bare `unreachable`, so none of that is
    # linked, and compiles std's non-generic code at opt-level z too. Rust has these behind
    # RUSTC_BOOTSTRAP only; they are the documented way (`-Zbuild-std`) to size-optimise std,
    # and are used only with the pinned toolchain (checked here, not assumed).
    # strip=false keeps the name section for wasm-sizes.py; wasm-opt strips it afterwards.
    rustc +"$pinned" --version | grep -q "^rustc $pinned " || { echo "the pinned toolchain $pinned is not installed" >&2; exit 1; }
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
        cargo +"$pinned" build -q --locked -p empmix-wasm "${features[@]}" --target wasm32-unknown-unknown \
        --profile wasm-release -Zbuild-std=core,alloc,std,panic_abort --config profile.wasm-release.strip=false \
        --target-dir "$target_dir/wasm-pinned"
    raw="$target_dir/wasm-pinned/wasm32-unknown-unknown/wasm-release/empmix_wasm.wasm"
else
    cargo +stable build -q --locked -p empmix-wasm "${features[@]}" --target wasm32-unknown-unknown \
        --profile wasm-release --config profile.wasm-release.strip=false
    raw="$target_dir/wasm32-unknown-unknown/wasm-release/empmix_wasm.wasm"
fi

rm -rf "$out" && mkdir -p "$out"
# --flatten --rereloop before -Oz rebuilds the control flow so -Oz finds more to merge, and
# the module owns its memory, which starts zeroed, with the stack (not data) in its low
# addresses (--zero-filled-memory, --low-memory-unused): together 0.3 KB gzip smaller. The
# target_features section only tells tools what the module uses (0.1 KB): it goes too.
# For the web build, -ocimfs 20: a function with one caller is inlined only when small (binaryen
# inlines every one by default); the big ones stay apart, which gzip compresses better: 0.65 KB
# off it (measured from 0 to 1000: 10 to 30 are all within 0.1 KB of that). The shipped build
# gains nothing from it (from +0.25 KB to -0.07 KB over the same range), so keeps the default.
features_wasm=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals
    --enable-multivalue --enable-reference-types)
# KEEP_NAMES=1 keeps the function names in the optimised module (bigger; for profiles, see
# bench/bench.mjs --profile).
names=() strip=(--strip-debug) inline=()
[ ${#features[@]} = 0 ] || inline=(-ocimfs 20)
[ "${KEEP_NAMES:-}" = 1 ] && names=(-g) strip=(-g)
optimise() {
    node_modules/.bin/wasm-opt --flatten --rereloop -Oz -Oz --converge "${inline[@]}" --low-memory-unused --zero-filled-memory \
        "${features_wasm[@]}" "${strip[@]}" --strip-producers --strip-target-features "$1" -o "$out/empmix.wasm"
}
terse() { node_modules/.bin/terser "$@" --module --compress passes=2 --mangle; }
# The module with its name section, for scripts/wasm-sizes.py.
named="$target_dir/$out.named.wasm"
if [ ${#features[@]} = 0 ]; then
    cp "$raw" "$named"
    optimise "$raw"
    terse js/core.js js/context.js js/share.js js/index.js --mangle-props regex=/^_/ -o "$out/index.js"
    # The driver calls the engine's exports by name (`em_track`): wasm-opt shortens them in
    # both files (0.7 KB gzip); $out/exports.json maps them for the tests (not published).
    node_modules/.bin/wasm-opt "${features_wasm[@]}" "${names[@]}" --minify-imports-and-exports "$out/empmix.wasm" \
        -o "$out/empmix.wasm" >"$out/names.json"
    python3 scripts/minify-exports.py "$out/index.js" "$out/names.json" "$out/exports.json"
    rm "$out/names.json"
    files='"index.js", "index.d.ts", "empmix.wasm", "README.md"'
    exports='"./empmix.wasm": "./empmix.wasm"'
else
    glue=$(mktemp -d)
    trap 'rm -rf "$glue"' EXIT
    # --encode-into always: strings go into wasm memory by TextEncoder.encodeInto, with no
    # fallback for browsers without it (before Chrome 74, Firefox 66, Safari 14.1; the package's
    # own syntax, `?.` and `||=`, needs Chrome 85 and Safari 14 anyway): -40 B gzip.
    wasm-bindgen --target web --encode-into always --out-dir "$glue" --out-name empmix --no-typescript "$raw"
    # The closure shims only wasm-bindgen's descriptors named stay in the function table, so
    # in the module, unless taken out of the table (the script says why that is safe).
    python3 scripts/unlist-describe-only.py "$glue/empmix_bg.wasm" "$glue/empmix_bg.wasm"
    cp "$glue/empmix_bg.wasm" "$named"
    # wasm-bindgen's import and export names are long (a hash each; a closure shim's runs to
    # 300 characters): wasm-opt shortens them and prints the renames, which are applied to
    # the glue too.
    # (A pass of its own: within -Oz --converge it would run, and rename, more than once.)
    optimise "$glue/empmix_bg.wasm"
    node_modules/.bin/wasm-opt "${features_wasm[@]}" "${names[@]}" --minify-imports-and-exports-and-modules "$out/empmix.wasm" \
        -o "$out/empmix.wasm" >"$glue/names.json"
    python3 scripts/minify-glue.py "$glue/empmix.js" "$glue/names.json" "$out/empmix.wasm" >"$glue/minified.js"
    # The glue names the wasm file and the context module by their wasm-bindgen paths; the
    # package has them beside it.
    # js/gzip.js (the compression worker) goes into the same module as js/context.js.
    sed -e "s|empmix_bg\\.wasm|empmix.wasm|g" -e "s#^\\(import .* from \\)[\"']\\./snippets/[^/]*/js/\\(context\\|gzip\\)\\.js[\"']#\\1\"./context.js\"#" \
        "$glue/minified.js" >"$glue/glue.js"
    grep -q '^import .* from "./context.js"' "$glue/glue.js" || { echo "the glue's import of context.js was not found" >&2; exit 1; }
    ! grep -q 'snippets/' "$glue/glue.js" || { echo "the glue imports a snippet the package does not have" >&2; exit 1; }
    terse "$glue/glue.js" -o "$out/empmix.js"
    terse js/context.js js/gzip.js -o "$out/context.js"
    terse js/core.js js/share.js js/loader.js --mangle-props regex=/^_/ -o "$out/index.js"
    files='"index.js", "empmix.js", "context.js", "index.d.ts", "empmix.wasm", "README.md"'
    exports='"./context": "./context.js", "./empmix.wasm": "./empmix.wasm"'
fi
cp js/index.d.ts "$out/index.d.ts"
cp README.md "$out/README.md" 2>/dev/null || true
version=$(awk '/^\[workspace.package\]/ { f = 1 } f && /^version/ { gsub(/version = |"/, ""); print; exit }' ../Cargo.toml)
cat >"$out/package.json" <<JSON
{
  "name": "empmix-wasm",
  "version": "$version",
  "description": "EmpMix browser analytics SDK (WebAssembly engine + ES module).",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "index.js",
  "module": "index.js",
  "types": "index.d.ts",
  "exports": { ".": { "types": "./index.d.ts", "default": "./index.js" }, $exports },
  "files": [$files],
  "sideEffects": false
}
JSON
echo "built $here/$out ($mode): $(cd "$out" && wc -c -- *.js *.wasm | grep -v total | awk '{ printf "%s %s bytes; ", $2, $1 }')"
