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
#
# When openssl is installed the same pair then talks over TLS: a throw-away
# CA and a localhost certificate are made in a temporary directory (the
# README's recipe), the server gets --tls-cert/--tls-key, the client
# --tls-ca and the host name "localhost" (verified, sent as SNI).
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
drain_pid=
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

# run_pair TITLE HOST SERVER_OPTION... -- CLIENT_OPTION...: one exchange,
# both transcripts; returns the client's exit status.
run_pair() {
    local title=$1 host=$2 sopts=() copts=() line port= client_rc=0 dir
    shift 2
    while [[ $# -gt 0 && $1 != -- ]]; do sopts+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    copts=("$@")
    dir=$tmp/$title
    mkdir -p "$dir"
    echo "=== $title"

    # The server writes into two FIFOs that this script reads with timeouts.
    mkfifo "$dir/out" "$dir/err"
    "$server" "${sopts[@]}" 0 >"$dir/out" 2>"$dir/err" &
    server_pid=$!
    exec 4<"$dir/out" 3<"$dir/err" # the order the server opens them

    for _ in $(seq 1 20); do # at most 20 lines, 10 s each
        IFS= read -r -t 10 line <&3 || break
        echo "$line" >>"$dir/server.err"
        if [[ $line == *listening* && $line =~ port\ ([0-9]+) ]]; then
            port=${BASH_REMATCH[1]}
            break
        fi
    done
    if [[ -z $port ]]; then
        echo "demo: $server did not print a readiness line with its port" >&2
        cat "$dir/server.err" >&2 2>/dev/null || true
        return 1
    fi
    cat <&3 >>"$dir/server.err" & # keep draining stderr
    drain_pid=$!

    echo "\$ $server ${sopts[*]}${sopts[*]:+ }0          # listening on port $port"
    echo "\$ printf 'hello\\nworld\\nquit\\n' | $client ${copts[*]}${copts[*]:+ }$host $port"
    printf 'hello\nworld\nquit\n' | timeout 10 "$client" "${copts[@]}" "$host" "$port" >"$dir/client.out" 2>"$dir/client.err" || client_rc=$?

    # Read the server's log until it reports the client gone (bounded).
    for _ in $(seq 1 100); do # at most 100 lines, 5 s each
        IFS= read -r -t 5 line <&4 || break
        echo "$line" >>"$dir/server.out"
        [[ $line == *closed* || $line == *left* ]] && break
    done
    stop_server
    cat <&4 >>"$dir/server.out" || true
    wait "$drain_pid" || true
    exec 3<&- 4<&-

    echo
    echo "--- client stdout (exit status $client_rc)"
    cat "$dir/client.out"
    echo "--- client stderr"
    cat "$dir/client.err"
    echo "--- server stdout"
    cat "$dir/server.out" 2>/dev/null || true
    echo "--- server stderr"
    cat "$dir/server.err"
    echo
    return "$client_rc"
}

rc=0
run_pair plaintext 127.0.0.1 -- || rc=$?

if command -v openssl >/dev/null; then
    # A CA and a certificate for localhost signed by it, valid one day.
    ( cd "$tmp" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
          -keyout ca.key -out ca.pem -subj /CN=sockflow-demo-ca 2>/dev/null &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
          -keyout key.pem -out req.pem -subj /CN=localhost 2>/dev/null &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >ext.cnf &&
      openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
          -extfile ext.cnf -out cert.pem 2>/dev/null ) || { echo "demo: openssl could not make a certificate" >&2; exit 1; }
    run_pair tls localhost --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" -- --tls-ca "$tmp/ca.pem" || rc=$?
else
    echo "=== tls: skipped (openssl is not installed to make a test certificate)"
fi
exit "$rc"
