#!/usr/bin/env python3
"""A fixed echo load for counting a server's system calls or instructions.

usage: load.py CONNS MSGS WINDOW PORT
CONNS connections to 127.0.0.1:PORT, each echoing MSGS 64-byte lines
(63 bytes and a newline: the text `make bench` sends, letters and digits,
so a server's checks of the text cost here what they cost there) with
WINDOW of them in flight: whenever echoes come
back, as many new lines go out. Ends when every echo arrived (or after
120 s). WINDOW 1 is lock-step request/response."""
import selectors
import socket
import sys
import time

conns, msgs, window, port = (int(a) for a in sys.argv[1:5])
line = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(63)) + b"\n"
sel = selectors.DefaultSelector()
sent = {}
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(line * window)
    s.setblocking(False)
    sent[s] = window
    sel.register(s, selectors.EVENT_READ)
got, total, deadline = 0, conns * msgs, time.time() + 120
while got < total and time.time() < deadline:
    for key, _ in sel.select(1):
        s = key.fileobj
        n = s.recv(65536).count(b"\n")
        got += n
        more = min(n, msgs - sent[s])
        if more > 0:
            s.setblocking(True)
            s.sendall(line * more)
            s.setblocking(False)
            sent[s] += more
print(f"echoed {got} of {total} lines", file=sys.stderr)
