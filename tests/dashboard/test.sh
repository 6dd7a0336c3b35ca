#!/usr/bin/env bash
# The dashboard end to end: builds empmix-server (debug) and drives the page in Debian's
# headless Chromium with playwright-core. Prints "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium missing (run as root to install it)" >&2
        exit 1
    fi
fi
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent
gz=$(cat ../../ingest-server/dashboard/* | gzip -9 | wc -c)
echo "dashboard: $gz bytes gzip -9 (budget 61440)"
if [ "$gz" -gt 61440 ]; then
    echo "FAIL: the dashboard is over its 60 KB gzip budget" >&2
    exit 1
fi
(cd ../.. && cargo build -q --locked -p empmix-server)
node run.mjs
