#!/usr/bin/env bash
# Makes sure the services the scale-out tests of empmix-server need are running: RabbitMQ
# (127.0.0.1:5672, guest/guest) and PostgreSQL (127.0.0.1:5432, trust auth for local TCP).
# Starts each one that is stopped and waits (bounded) until it answers. A service that is not
# installed or does not come up is an error (exit 1) with the command that installs it; the
# test suite then fails under CI=true (the scale tests never skip there).
#
#   bash scripts/services.sh          # start / check both
#   SERVICES_TIMEOUT=120 bash scripts/services.sh
set -uo pipefail

timeout_s=${SERVICES_TIMEOUT:-90}
install_hint="apt-get update && apt-get install -y rabbitmq-server postgresql"
failed=0

say() { printf 'services: %s\n' "$*"; }

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

wait_for() { # name check-command...
    local name=$1; shift
    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    say "$name did not become ready within ${timeout_s}s"
    return 1
}

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -h 127.0.0.1 -p 5432 -q
    else
        port_open 127.0.0.1 5432
    fi
}

pg_clusters() { ls /etc/postgresql 2>/dev/null; }

start_postgres() {
    if pg_ready; then
        say "PostgreSQL is up on 127.0.0.1:5432"
        return 0
    fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_clusters)" ]; then
        say "PostgreSQL is not installed. Install it with: $install_hint"
        return 1
    fi
    local version
    for version in $(pg_clusters); do
        say "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1 | sed 's/^/services:   /' || true
    done
    wait_for PostgreSQL pg_ready || return 1
    say "PostgreSQL is up on 127.0.0.1:5432"
}

rabbit_ready() {
    port_open 127.0.0.1 5672 && rabbitmqctl -q status >/dev/null 2>&1
}

start_rabbitmq() {
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        if port_open 127.0.0.1 5672; then
            say "RabbitMQ answers on 127.0.0.1:5672 (not managed here)"
            return 0
        fi
        say "RabbitMQ is not installed. Install it with: $install_hint"
        return 1
    fi
    if rabbit_ready; then
        say "RabbitMQ is up on 127.0.0.1:5672"
        return 0
    fi
    if rabbitmqctl -q ping >/dev/null 2>&1; then
        # The Erlang node runs but the app was stopped (rabbitmqctl stop_app).
        say "RabbitMQ node is up but its app is stopped; starting the app"
        timeout "$timeout_s" rabbitmqctl -q start_app 2>&1 | sed 's/^/services:   /' || true
    else
        say "starting RabbitMQ"
        rabbitmq-server -detached 2>&1 | sed 's/^/services:   /' || true
        wait_for "RabbitMQ node" rabbitmqctl -q ping || return 1
    fi
    timeout "$timeout_s" rabbitmqctl -q await_startup >/dev/null 2>&1 || true
    wait_for RabbitMQ rabbit_ready || return 1
    say "RabbitMQ is up on 127.0.0.1:5672"
}

start_postgres || failed=1
start_rabbitmq || failed=1

if ((failed)); then
    if [ "${CI:-}" = "true" ]; then
        say "FAILED: a service the scale-out tests need is missing or did not start (CI=true: this is an error, never a skip)"
    else
        say "FAILED: a service is missing or did not start; the scale-out tests will skip loudly (they fail under CI=true)"
    fi
    exit 1
fi
say "ready"
