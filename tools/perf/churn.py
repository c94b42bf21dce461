#!/usr/bin/env python3
"""Connection churn: N connections, 16 at a time, each connects, sends one
64-byte line, reads its echo and closes.

usage: churn.py N PORT"""
import socket
import sys

n, port = int(sys.argv[1]), int(sys.argv[2])
line = b"y" * 63 + b"\n"
done = 0
while done < n:
    batch = [socket.create_connection(("127.0.0.1", port)) for _ in range(min(16, n - done))]
    for s in batch:
        s.sendall(line)
    for s in batch:
        got = b""
        while len(got) < len(line):
            got += s.recv(100)
        s.close()
    done += len(batch)
print(f"{done} connections", file=sys.stderr)
