#!/usr/bin/env bash
# Scale-out consumers on the seed mix (project issue 19): for each consumer count, a fresh
# PostgreSQL database and RabbitMQ queue; an ingest process (--no-consumer) takes REQUESTS
# requests of 50 events of `empmix-loadgen --mix seed`, is stopped, then N
# `empmix-server consume --drain` processes start at once. Prints, per N, the wall time from
# their start until the last exits (minus the 2 s each waits to see the queue stay empty),
# events/s, and what each consumer stored; checks that the database holds every event once.
#
#   bash scripts/bench-consumers.sh              # 1, 2 and 4 consumers
#   COUNTS="1 2" ROUNDS=2 bash scripts/bench-consumers.sh
#
# Settings (environment): COUNTS ("1 2 4"), ROUNDS (1: each count once, in order; 2: twice,
# interleaved), REQUESTS (6000), BIN (target/release; NO_BUILD=1 uses it as it is).
# Needs PostgreSQL and RabbitMQ as `bash scripts/services.sh` starts them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
counts=${COUNTS:-1 2 4}
rounds=${ROUNDS:-1}
requests=${REQUESTS:-6000}
bin=${BIN:-$root/target/release}
amqp='amqp://guest:guest@127.0.0.1:5672/%2f'
export PGOPTIONS=--client-min-messages=warning

say() { printf '[bench-consumers %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

if [ "${NO_BUILD:-0}" != 1 ]; then
    say "building: cargo build --release -p empmix-server"
    (cd "$root" && cargo build --release -p empmix-server)
fi

dir=$(mktemp -d /tmp/empmix-bench-consumers.XXXXXX)
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() {
    local n=$1 db=empmix_bench_mix queue=empmix.bench_mix.$$.$1.$2
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
    local store="postgres://postgres@127.0.0.1:5432/$db" data="$dir/data-$n-$2"
    local common=(--data-dir "$data" --ingest-key pk_mix --read-key sk_mix --queue "$amqp" --queue-name "$queue" --store "$store")
    "$bin/empmix-server" --listen 127.0.0.1:0 --no-consumer "${common[@]}" >"$dir/ingest.out" 2>"$dir/ingest.err" &
    local ingest=$! addr=
    pids+=("$ingest")
    for _ in $(seq 1 600); do
        addr=$(sed -n 's|^empmix-server listening on http://||p' "$dir/ingest.out")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { cat "$dir/ingest.err" >&2; exit 1; }
    "$bin/empmix-loadgen" --addr "$addr" --ingest-key pk_mix --mix seed --batch 50 --connections 8 \
        --requests "$requests" --seconds 600 >"$dir/load.out"
    kill "$ingest"
    wait "$ingest" 2>/dev/null || true
    rm -f "$dir"/consume-*.out "$dir"/consume-*.err
    local started=$(date +%s.%N) consumers=()
    for i in $(seq 1 "$n"); do
        "$bin/empmix-server" "${common[@]}" consume --drain >"$dir/consume-$i.out" 2>"$dir/consume-$i.err" &
        consumers+=($!)
    done
    for p in "${consumers[@]}"; do wait "$p"; done
    local ended=$(date +%s.%N)
    local stored expected=$((requests * 50))
    stored=$(psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT COUNT(*) FROM events")
    local secs per
    secs=$(echo "$ended - $started - 2" | bc -l)
    per=$(sed -n 's/^empmix-server consumed \([0-9]*\) events.*/\1/p' "$dir"/consume-*.out | paste -sd+ -)
    printf '%s consumers: %.1f s, %.0f events/s; stored per consumer %s; %s of %s events in the database\n' \
        "$n" "$secs" "$(echo "$expected / $secs" | bc -l)" "$per" "$stored" "$expected"
    [ "$stored" = "$expected" ] || { say "FAIL: $stored events stored, expected $expected"; exit 1; }
    rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
    rabbitmqctl -q delete_queue "$queue.dlq" >/dev/null 2>&1 || true
    rm -rf "$data"
}

say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); binaries in $bin"
for round in $(seq 1 "$rounds"); do
    for n in $counts; do
        run "$n" "$round"
    done
done
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
