#!/usr/bin/env bash
# Seconds from `make run` to the first 200 on /login/, for the cold and warm start figures of
# docs/operations.md and the README. Cold: run it in a fresh clone (package caches warm);
# warm: run it again in the same clone. Stops the whole stack (SIGINT to its process group).
#
#   bash bench/make_run_start.sh [PORT]
set -uo pipefail
cd "$(dirname "$0")/.."
port=${1:-8131}
log=$(mktemp)
started=$(date +%s.%N)
setsid bash -c "PORT=$port make run" >"$log" 2>&1 &
group=$!
for _ in $(seq 1 1500); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/login/" || true)
	[ "$code" = "200" ] && break
	sleep 0.2
done
finished=$(date +%s.%N)
printf 'first page after %.1f s (load average %s); log: %s\n' \
	"$(echo "$finished - $started" | bc)" "$(cut -d' ' -f1 /proc/loadavg)" "$log"
kill -INT -- "-$group" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$group" 2>/dev/null || exit 0; sleep 0.3; done
kill -KILL -- "-$group" 2>/dev/null
