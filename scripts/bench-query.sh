#!/usr/bin/env bash
# Measures the query API and the live stream of empmix-server on 1,000,000 stored events
# (project issue 14): starts a release server on loopback in a temporary data directory (with
# `postgres`: a fresh database and its own RabbitMQ queue, scale-out mode, consumer in the same
# process), loads the events with `empmix-loadgen --mix seed --spread-days 30`, waits until the
# consumer has stored them all, runs `empmix-loadgen --query-bench` and `--live-probes`, prints
# the server's RSS and the database's size, and cleans up (also on failure or Ctrl-C).
#
#   bash scripts/bench-query.sh sqlite
#   bash scripts/bench-query.sh postgres     # needs bash scripts/services.sh
#
# Settings (environment): EVENTS (1000000), BATCH (50), CONNECTIONS (4), RUNS (timed runs per
# query, 20), PROBES (50), WAIT_TIMEOUT (seconds for the consumer to store everything, 3600),
# NO_BUILD=1 (use the binaries in target/release as they are), KEEP=1 (keep the data directory
# and, with postgres, the database, for EXPLAIN; the script prints where they are),
# ANALYZE (1: run VACUUM ANALYZE after loading into PostgreSQL, as autovacuum would: planner
# statistics, and the visibility map index-only scans need; 0: not),
# BENCH_DB (bench_q), SPREAD_ORDER (ascending: event time advances with the load, as live
# traffic arrives; random: a backfill, time order unrelated to arrival order).
set -euo pipefail

mode=${1:-sqlite}
case $mode in sqlite | postgres) ;; *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
events=${EVENTS:-1000000}
batch=${BATCH:-50}
connections=${CONNECTIONS:-4}
runs=${RUNS:-20}
probes=${PROBES:-50}
wait_timeout=${WAIT_TIMEOUT:-3600}
db=${BENCH_DB:-bench_q}
spread_order=${SPREAD_ORDER:-ascending}
requests=$(((events + batch - 1) / batch))
server=$root/target/release/empmix-server
loadgen=$root/target/release/empmix-loadgen
ingest_key=pk_bench
read_key=sk_bench

export PGOPTIONS=--client-min-messages=warning # no NOTICE for DROP DATABASE IF EXISTS

say() { printf '[bench-query %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

if [ "${NO_BUILD:-0}" != 1 ]; then
    say "building: cargo build --release -p empmix-server"
    (cd "$root" && cargo build --release -p empmix-server)
fi

dir=$(mktemp -d /tmp/empmix-bench-query.XXXXXX)
queue=empmix.bench_q.$$
pid=
cleanup() {
    set +e
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    if [ "$mode" = postgres ]; then
        rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1
        rabbitmqctl -q delete_queue "$queue.dlq" >/dev/null 2>&1
        if [ "${KEEP:-0}" = 1 ]; then
            say "kept database $db"
        else
            psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
        fi
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        say "kept data directory $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

extra=()
if [ "$mode" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
    extra=(--queue 'amqp://guest:guest@127.0.0.1:5672/%2f' --queue-name "$queue"
        --store "postgres://postgres@127.0.0.1:5432/$db")
fi

say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "server: $server --listen 127.0.0.1:0 --data-dir $dir/data --ingest-key $ingest_key --read-key $read_key ${extra[*]}"
"$server" --listen 127.0.0.1:0 --data-dir "$dir/data" --ingest-key "$ingest_key" --read-key "$read_key" \
    "${extra[@]}" >"$dir/server.out" 2>"$dir/server.err" &
pid=$!
addr=
for _ in $(seq 1 600); do
    addr=$(sed -n 's|^empmix-server listening on http://||p' "$dir/server.out")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/server.err" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { say "server did not start"; cat "$dir/server.err" >&2; exit 1; }
say "server pid $pid on $addr"

stored() {
    curl -s --max-time 60 -X POST "http://$addr/api/analytics/query" -H "Authorization: Bearer $read_key" \
        -H 'Content-Type: application/json' -d '{"metrics":["events"],"date_range":"all"}' |
        jq -r '.results[0].metrics[0] // 0' 2>/dev/null || echo 0
}

say "loading $events events: $loadgen --addr $addr --ingest-key $ingest_key --mix seed --spread-days 30 --spread-order $spread_order --batch $batch --connections $connections --requests $requests --seconds $wait_timeout --server-pid $pid"
load_start=$SECONDS
timeout $((wait_timeout + 60)) "$loadgen" --addr "$addr" --ingest-key "$ingest_key" --mix seed --spread-days 30 \
    --spread-order "$spread_order" --batch "$batch" --connections "$connections" --requests "$requests" --seconds "$wait_timeout" --server-pid "$pid"
accepted_after=$((SECONDS - load_start))

target=$((requests * batch))
deadline=$((SECONDS + wait_timeout))
last_report=0
while :; do
    n=$(stored)
    [ "$n" -ge "$target" ] && break
    if ((SECONDS >= deadline)); then
        say "only $n of $target events stored after ${wait_timeout}s; giving up"
        exit 1
    fi
    if ((SECONDS - last_report >= 30)); then
        say "stored $n of $target"
        last_report=$SECONDS
    fi
    sleep 5
done
say "all $n events stored $((SECONDS - load_start)) s after the load started (accepted after ${accepted_after} s)"
if [ "$mode" = postgres ] && [ "${ANALYZE:-1}" = 1 ]; then
    # What autovacuum does on a default PostgreSQL (autoanalyze, and the insert-triggered
    # vacuum that sets the visibility map); this machine runs with autovacuum off (ANALYZE=0
    # measures the planner without statistics, and funnels without index-only scans).
    started_analyze=$SECONDS
    psql -h 127.0.0.1 -U postgres -d "$db" -qc "VACUUM ANALYZE" >/dev/null
    say "VACUUM ANALYZE took $((SECONDS - started_analyze)) s"
fi
sleep 5 # let the consumer's last commit and the queue's cleanup settle

say "query bench: $loadgen --addr $addr --read-key $read_key --query-bench --query-runs $runs"
"$loadgen" --addr "$addr" --read-key "$read_key" --query-bench --query-runs "$runs"

say "live probes: $loadgen --addr $addr --ingest-key $ingest_key --read-key $read_key --live-probes $probes"
"$loadgen" --addr "$addr" --ingest-key "$ingest_key" --read-key "$read_key" --live-probes "$probes"

say "server memory: $(grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd, -)"
if [ "$mode" = sqlite ]; then
    say "database size: $(du -cb "$dir"/data/analytics.sqlite3* | awk 'END {printf "%.1f MiB", $1 / 1048576}') (analytics.sqlite3 with its WAL)"
else
    say "database size: $(psql -h 127.0.0.1 -U postgres -Atc "SELECT pg_size_pretty(pg_database_size('$db'))"), events table with indexes $(psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT pg_size_pretty(pg_total_relation_size('events'))")"
fi
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
