#!/usr/bin/env bash
# Runs schemathesis against a real empmix-server: the OpenAPI document it serves at
# /api/openapi.json must describe every answer. Fails on any 5xx, any response whose status,
# content type or body the document does not allow, and any crash (a request the server does
# not answer). Every operation is tested, the live stream too (its first event is read and
# checked, then the stream is closed); ingest operations get the ingest key, read operations
# the read key, by the document's security schemes.
#
#   bash scripts/schemathesis.sh                # about a minute on 2 cores (after the build)
#   EXAMPLES=500 SEED=1 bash scripts/schemathesis.sh   # more examples per operation; a fixed seed
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: 4.x reads OpenAPI 3.1 (JSON Schema 2020-12), applies auth per security scheme from
# its config file and reads Server-Sent Events (3.x does none of these well); it needs Python
# 3.11 or later. Run as `python3 -m schemathesis.cli`, so the pip of that python3 is the one
# used whatever is on PATH.
VERSION=4.32.5
EXAMPLES=${EXAMPLES:-150}

installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$VERSION" ]; then
    echo "installing schemathesis $VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

cargo build -q --locked -p empmix-server

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

suffix=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
export EMPMIX_ST_INGEST_KEY="pk_st_$suffix"
export EMPMIX_ST_READ_KEY="sk_st_$suffix"

target/debug/empmix-server --listen 127.0.0.1:0 --data-dir "$work/data" \
    --ingest-key "$EMPMIX_ST_INGEST_KEY" --read-key "$EMPMIX_ST_READ_KEY" \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

base=
for _ in $(seq 1 100); do
    base=$(sed -n 's/^empmix-server listening on \(http:[^ ]*\).*/\1/p' "$work/server.out" | head -n1)
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$base" ]; then
    echo "empmix-server did not start:" >&2
    cat "$work/server.out" "$work/server.err" >&2
    exit 1
fi
echo "server at $base"

# Some data first, so that answers have rows to check: a share tree with an open, a re-share
# and a credited registration, page views in two sessions, a check-in.
python3 - "$base" <<'PY'
import json, os, sys, time, urllib.request
base = sys.argv[1]
c = {"conference_id": "conf-st", "url": "https://m.example/conf/st?utm_source=mail"}
events = [
    {"type": "page_view", "distinct_id": "alice", "session_id": "s-a", "properties": c},
    {"type": "share", "distinct_id": "alice", "properties": {**c, "share_code": "SA1", "channel": "wechat", "target_url": c["url"]}},
    {"type": "share_open", "distinct_id": "bob", "attribution": "SA1", "properties": {**c, "share_code": "SA1"}},
    {"type": "page_view", "distinct_id": "bob", "session_id": "s-b", "attribution": "SA1", "properties": c, "context": {"browser": "Firefox", "referrer": "https://search.example/"}},
    {"type": "share", "distinct_id": "bob", "attribution": "SA1", "properties": {**c, "share_code": "SB1", "parent_share_code": "SA1", "channel": "link"}},
    {"type": "registration", "distinct_id": "carol", "attribution": "SB1", "properties": {**c, "form_id": "f1"}},
    {"type": "checkin", "distinct_id": "carol", "properties": {**c, "method": "qr"}},
    {"type": "identify", "distinct_id": "carol", "anonymous_id": "anon-c"},
]
def call(method, path, body=None, key=os.environ["EMPMIX_ST_READ_KEY"]):
    req = urllib.request.Request(base + path, method=method, data=body and json.dumps(body).encode(),
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
answer = call("POST", "/api/analytics/events", {"events": events}, os.environ["EMPMIX_ST_INGEST_KEY"])
assert answer["accepted"] == len(events), answer
deadline = time.time() + 20
while time.time() < deadline:
    days = call("GET", "/api/analytics/daily?conference_id=conf-st")
    if days and days[0]["registrations"] == 1:
        break
    time.sleep(0.2)
else:
    sys.exit("the seeded events were not consumed in 20 s")
call("POST", "/api/analytics/links", {"conference_id": "conf-st", "label": "seeded"})
PY

# Keys by security scheme (components.securitySchemes of openapi.json): IngestKey for the
# ingest operations, ReadKey for the read ones. The live stream is read for one event, then
# closed (it never ends by itself).
cat >"$work/schemathesis.toml" <<'TOML'
[auth.openapi.IngestKey]
api_key = "${EMPMIX_ST_INGEST_KEY}"

[auth.openapi.ReadKey]
api_key = "${EMPMIX_ST_READ_KEY}"

[[operations]]
include-path = "/api/analytics/live"
max-stream-events = 1
request-timeout = 10
TOML

started=$SECONDS
status=0
(
    cd "$work"
    timeout 600 python3 -m schemathesis.cli --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$EXAMPLES" \
        --request-timeout 10 \
        --generation-database none \
        --seed "${SEED:-$RANDOM}" \
        --no-color
) || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "empmix-server exited during the run:" >&2
    tail -n 50 "$work/server.err" >&2
    status=1
    server_pid=
fi
if grep -q "panicked" "$work/server.err"; then
    echo "empmix-server panicked during the run:" >&2
    grep -A5 "panicked" "$work/server.err" | head -n 40 >&2
    status=1
fi
echo "schemathesis: exit $status after $((SECONDS - started)) s"
exit "$status"
