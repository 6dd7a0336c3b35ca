#!/usr/bin/env bash
# Main-thread time per event of the browser package against posthog-js, mixpanel-browser and
# @amplitude/analytics-browser in headless Chromium (bench.mjs says what is measured and how).
# A benchmark, not a test: scripts/test.sh does not run it. Takes a few minutes on 2 cores; run it
# on a quiet machine.
#
#   bash sdk-wasm/bench/run.sh [--runs 3] [--events 10000] [--chunk 100] [--only empmix-storage,posthog]
#                              [--trace] [--json out.json]      (--help for all)
#
# Before measuring it:
#   - builds the package (sdk-wasm/scripts/build.sh, into sdk-wasm/pkg/) and its web build
#     (build.sh --web, into sdk-wasm/pkg-web/: the browser driver in Rust) when either is missing
#     or older than the sources (sdk-wasm/src, sdk-wasm/js, sdk-core/src, Cargo.lock); NO_BUILD=1
#     skips that (then both must exist); PKG=<dir> and PKG_WEB=<dir> measure other builds
#   - installs the peers and playwright-core into sdk-wasm/bench/node_modules from the lock file
#     (npm ci) when missing
#   - checks for Chromium (/usr/bin/chromium, or CHROMIUM=<path>) and installs Debian's when
#     missing and running as root
# Exits non-zero with a message when any of that fails, or when a run timed out before its events
# arrived.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wasm=$(cd "$here/.." && pwd)
root=$(cd "$wasm/.." && pwd)

die() { echo "bench: $*" >&2; exit 2; }

command -v node >/dev/null || die "node is missing (apt-get install nodejs npm)"

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    if [ -z "${CHROMIUM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bench: installing Debian's chromium"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
            die "could not install chromium with apt-get"
    fi
    [ -x "$chromium" ] || die "no Chromium at $chromium: install Debian's (apt-get install chromium) or set CHROMIUM=<path>"
fi

# Builds $wasm/<dir> with scripts/build.sh <flags> when one of <files> is missing or it is older than
# the sources.
build_if_stale() {
    local dir=$1 flags=$2 files=$3 stale= f
    for f in $files; do [ -f "$wasm/$dir/$f" ] || stale="$dir/ is not built"; done
    if [ -z "$stale" ] && [ -n "$(find "$wasm/src" "$wasm/js" "$root/sdk-core/src" "$root/sdk-core/Cargo.toml" "$wasm/Cargo.toml" \
        "$root/Cargo.lock" -newer "$wasm/$dir/empmix.wasm" -print -quit)" ]; then
        stale="$dir/ is older than the sources"
    fi
    if [ -n "$stale" ]; then
        echo "bench: $stale: bash sdk-wasm/scripts/build.sh $flags"
        bash "$wasm/scripts/build.sh" $flags || die "the package build failed (sdk-wasm/scripts/build.sh $flags)"
    fi
}
[ -z "${PKG:-}" ] && [ -z "${NO_BUILD:-}" ] && build_if_stale pkg "" "empmix.wasm index.js"
[ -z "${PKG_WEB:-}" ] && [ -z "${NO_BUILD:-}" ] && build_if_stale pkg-web --web "empmix.wasm index.js empmix.js context.js"
pkg=${PKG:-$wasm/pkg}
pkg_web=${PKG_WEB:-$wasm/pkg-web}
{ [ -f "$pkg/empmix.wasm" ] && [ -f "$pkg/index.js" ]; } || die "the EmpMix package is not built: no empmix.wasm and index.js in $pkg"
# bench.mjs checks pkg-web/ (index.js, empmix.js, context.js, empmix.wasm) when its rows are run.

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/posthog-js" ] ||
    [ ! -d "$here/node_modules/mixpanel-browser" ] || [ ! -d "$here/node_modules/@amplitude/analytics-browser" ]; then
    echo "bench: installing the peers and playwright-core (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in sdk-wasm/bench"
fi

cd "$here"
PKG="$pkg" PKG_WEB="$pkg_web" CHROMIUM="$chromium" exec node bench.mjs "$@"
