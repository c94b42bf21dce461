#!/bin/sh
# Runs an echo server under a tool while a fixed load runs against it.
#
# usage: tools/perf/measure.sh strace|callgrind OUT "LOAD ARGS" SERVER [SERVER ARGS]
#   strace:    strace -c -f, summary table in OUT
#   callgrind: valgrind --tool=callgrind, profile in OUT (callgrind_annotate OUT)
#   LOAD ARGS: "load.py CONNS MSGS WINDOW" or "churn.py N" (this directory);
#              the server's port is appended.
#   SERVER must take the port last (0 = any) and print "... port N" on stderr
#   when ready, as both echo servers do.
# Example (sockflow's echo_server against the epoll baseline, 100,000 lines):
#   tools/perf/measure.sh strace sf.txt "load.py 20 5000 16" build/echo_server --frame line --max-per-ip 1000
#   tools/perf/measure.sh strace c.txt  "load.py 20 5000 16" ./epoll_echo
set -e
TOOL=$1; OUT=$2; LOAD=$3; shift 3
HERE=$(dirname "$0")
ERR=$(mktemp)
case $TOOL in
  strace) strace -c -f -o "$OUT" "$@" 0 2>"$ERR" & ;;
  callgrind) valgrind --tool=callgrind --callgrind-out-file="$OUT" "$@" 0 2>"$ERR" & ;;
  *) echo "usage: $0 strace|callgrind OUT LOAD SERVER [ARGS]" >&2; exit 2 ;;
esac
TRACER=$!
for _ in $(seq 1 300); do grep -q "port [0-9]" "$ERR" && break; sleep 0.1; done
PORT=$(grep -o "port [0-9]*" "$ERR" | head -1 | cut -d' ' -f2)
# shellcheck disable=SC2086
python3 "$HERE"/$LOAD "$PORT"
# The server itself (strace's child; valgrind is the server) ends by SIGINT.
SERVER=$(pgrep -P "$TRACER" || echo "$TRACER")
kill -INT "$SERVER" 2>/dev/null || true
sleep 2
kill -TERM "$SERVER" 2>/dev/null || true
wait "$TRACER" || true
rm -f "$ERR"
