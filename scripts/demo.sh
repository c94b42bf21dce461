#!/usr/bin/env bash
# Runs a sockflow server and client from build/ on loopback and prints both
# transcripts (`make demo` builds everything first).
#
#   scripts/demo.sh [SERVER CLIENT]     default: build/tcp_server build/tcp_client
#                                       (build/prim_tcp_server/_client if those are missing)
#
# The server is started on port 0 (any free port); its port is read from its
# readiness line on stderr ("... listening on 0.0.0.0 port N"). The client gets
# "hello", "world", "quit" on stdin. Every wait is bounded; the server is
# stopped by PID (SIGINT, like Ctrl-C; SIGKILL if it does not stop).
set -euo pipefail
cd "$(dirname "$0")/.."

server=${1:-build/tcp_server}
client=${2:-build/tcp_client}
if [[ $# -eq 0 && ! ( -x $server && -x $client ) && -x build/prim_tcp_server && -x build/prim_tcp_client ]]; then
    echo "demo: $server or $client is not built; using the primitives pair instead"
    server=build/prim_tcp_server
    client=build/prim_tcp_client
fi
for p in "$server" "$client"; do
    [[ -x $p ]] || { echo "demo: $p is not built (run make)" >&2; exit 1; }
done

tmp=$(mktemp -d)
server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -INT "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do # at most 5 s
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
cleanup() {
    stop_server
    exec 3<&- 4<&- 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The server writes into two FIFOs that this script reads with timeouts.
mkfifo "$tmp/out" "$tmp/err"
"$server" 0 >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
exec 4<"$tmp/out" 3<"$tmp/err" # the order the server opens them

port=
for _ in $(seq 1 20); do # at most 20 lines, 10 s each
    IFS= read -r -t 10 line <&3 || break
    echo "$line" >>"$tmp/server.err"
    if [[ $line == *listening* && $line =~ port\ ([0-9]+) ]]; then
        port=${BASH_REMATCH[1]}
        break
    fi
done
if [[ -z $port ]]; then
    echo "demo: $server did not print a readiness line with its port" >&2
    cat "$tmp/server.err" >&2 2>/dev/null || true
    exit 1
fi
cat <&3 >>"$tmp/server.err" & # keep draining stderr
drain_pid=$!

echo "\$ $server 0                      # listening on port $port"
echo "\$ printf 'hello\\nworld\\nquit\\n' | $client 127.0.0.1 $port"
client_rc=0
printf 'hello\nworld\nquit\n' | timeout 10 "$client" 127.0.0.1 "$port" >"$tmp/client.out" 2>"$tmp/client.err" || client_rc=$?

# Read the server's log until it reports the client gone (bounded).
for _ in $(seq 1 100); do # at most 100 lines, 5 s each
    IFS= read -r -t 5 line <&4 || break
    echo "$line" >>"$tmp/server.out"
    [[ $line == *closed* || $line == *left* ]] && break
done
stop_server
cat <&4 >>"$tmp/server.out" || true
wait "$drain_pid" || true

echo
echo "--- client stdout (exit status $client_rc)"
cat "$tmp/client.out"
echo "--- client stderr"
cat "$tmp/client.err"
echo "--- server stdout"
cat "$tmp/server.out" 2>/dev/null || true
echo "--- server stderr"
cat "$tmp/server.err"
exit "$client_rc"
