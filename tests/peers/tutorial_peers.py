#!/usr/bin/env python3
"""The tutorials' Python programs (/work/shared/peers/s00*_*.py), parameterised.

The originals hard-code their ports (8080, 8888, 12345); these copies keep
each program's wire behaviour and printed text but take the port on the
command line, and the servers bind 127.0.0.1 port 0 and announce the port
they got on stderr as `NAME: listening on 127.0.0.1 port N` (the readiness
line sockflow's servers print), so tests never use fixed ports.

Differences from the originals, all for bounded tests: every socket has a
timeout (TIMEOUT seconds) instead of blocking forever, loops are bounded, and
the servers that never exit serve at most MAX_CLIENTS connections.

    python3 -u tutorial_peers.py NAME [PORT]

Clients take the server's PORT (host 127.0.0.1); servers take no argument.
"""
import socket
import sys
import threading

HOST = "127.0.0.1"
TIMEOUT = 20.0
MAX_CLIENTS = 50
MAX_MESSAGES = 10000


def ready(name, sock):
    port = sock.getsockname()[1]
    print(f"{name}: listening on {HOST} port {port}", file=sys.stderr, flush=True)


def tcp_listener(backlog):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((HOST, 0))
    s.listen(backlog)
    return s


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.bind((HOST, 0))
    return s


def tcp_connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((HOST, port))
    return s


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

def s000_tcp_client(port):
    """sendall("hello, server"), one recv(1024), print, sendall("exit"), close."""
    s = tcp_connect(port)
    try:
        s.sendall("hello, server".encode())
        data = s.recv(1024)
        print(f"received from server: {data.decode()}")
        s.sendall("exit".encode())
    finally:
        s.close()


def s001_tcp_client(port):
    """send('你好,服务器!'), one recv(1024), print, close."""
    s = tcp_connect(port)
    s.send('你好,服务器!'.encode('utf-8'))
    data = s.recv(1024).decode('utf-8')
    print('来自服务器的数据:', data)
    s.close()


def s003_tcp_client(port):
    """Reads the welcome (discarded), then Genji/Hanzo/Mcree: send, recv,
    print; then send(b'exit') and close."""
    s = tcp_connect(port)
    s.recv(1024).decode('utf-8')
    for item in [b'Genji', b'Hanzo', b'Mcree']:
        s.send(item)
        print(s.recv(1024).decode('utf-8'))
    s.send(b'exit')
    s.close()


def s004_tcp_client(port):
    """send("Hello, Server"), one recv(1024), print, close."""
    s = tcp_connect(port)
    s.send("Hello, Server".encode("utf-8"))
    response = s.recv(1024)
    print("Received from server:", response.decode("utf-8"))
    s.close()


def s004_chat_client(port):
    """Lock-step: a stdin line is sent (no newline), then one recv(1024) is
    printed as `Server: ...`; a line `exit` closes without sending."""
    s = tcp_connect(port)
    for _ in range(MAX_MESSAGES):
        try:
            message = input("You: ")
        except EOFError:
            break  # the original dies with a traceback here (bug 27)
        if message.lower() == "exit":
            break
        s.send(message.encode("utf-8"))
        response = s.recv(1024)
        print(f"Server: {response.decode('utf-8')}")
    s.close()


def s000_udp_client(port):
    """Sends "Hello, server!", prints the reply, then sends "exit"."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    server_address = (HOST, port)
    try:
        s.sendto("Hello, server!".encode(), server_address)
        data, server = s.recvfrom(4096)
        print(f"Received {data.decode()} from server")
        s.sendto("exit".encode(), server_address)
    finally:
        s.close()


def s001_udp_client(port):
    """Interactive: each stdin line is one datagram (no newline) followed by
    one recvfrom(1024); `quit` (any case) ends it without sending."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        for _ in range(MAX_MESSAGES):
            try:
                message = input("Enter message (or 'quit' to exit): ")
            except EOFError:
                break  # the original dies with a traceback here (bug 27)
            if message.lower() == 'quit':
                break
            s.sendto(message.encode('utf-8'), (HOST, port))
            data, server = s.recvfrom(1024)
            print(f"Received from server: {data.decode('utf-8')}")


def s003_udp_client(port):
    """Genji/Hanzo/Mcree: sendto, recv(1024), print."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    for item in [b'Genji', b'Hanzo', b'Mcree']:
        s.sendto(item, (HOST, port))
        print(s.recv(1024).decode('utf-8'))
    s.close()


def s004_udp_client(port):
    """sendto("Hello, UDP Server"), one recvfrom(1024), print with the address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.sendto("Hello, UDP Server".encode("utf-8"), (HOST, port))
    response, server_addr = s.recvfrom(1024)
    print(f"Received from {server_addr}: {response.decode('utf-8')}")
    s.close()


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

def s000_tcp_server():
    """One connection; replies "hello, tcp client!" to each recv(1024) chunk;
    ends on a chunk `exit` (any case) or EOF, then exits."""
    s = tcp_listener(1)
    print(f"TCP Server is listening on {s.getsockname()}")
    ready("s000_tcp_server", s)
    conn, client_address = s.accept()
    conn.settimeout(TIMEOUT)
    print(f"Connected by {client_address}")
    try:
        for _ in range(MAX_MESSAGES):
            data = conn.recv(1024)
            if not data:
                print("Connection closed by client")
                break
            print(f"Received from client: {data.decode()}")
            if data.decode().lower() == "exit":
                print("Server exiting...")
                break
            conn.sendall(b"hello, tcp client!")
    finally:
        conn.close()
        s.close()


def s001_tcp_echo_server():
    """One client at a time; every recv(1024) chunk is printed and echoed."""
    s = tcp_listener(5)
    print(f"服务器启动,监听 {HOST}:{s.getsockname()[1]}")
    ready("s001_tcp_echo_server", s)
    for _ in range(MAX_CLIENTS):
        c, addr = s.accept()
        c.settimeout(TIMEOUT)
        print(f"连接地址: {addr}")
        try:
            for _ in range(MAX_MESSAGES):
                data = c.recv(1024).decode('utf-8')
                if not data:
                    break
                print(f"收到: {data}")
                c.sendall(data.encode('utf-8'))
        finally:
            c.close()


def s003_tcp_threaded_server():
    """A thread per connection: `welcome`, then `Hello <chunk>` per
    recv(1024) chunk, until a chunk `exit` or EOF."""
    def tcplink(sock, addr):
        sock.settimeout(TIMEOUT)
        print('accept new connection from', addr)
        sock.send(b'welcome')
        for _ in range(MAX_MESSAGES):
            data = sock.recv(1024)
            if not data or data.decode('utf-8') == 'exit':
                break
            sock.send(('Hello %s' % data.decode('utf-8')).encode('utf-8'))
        sock.close()

    s = tcp_listener(5)
    ready("s003_tcp_threaded_server", s)
    for _ in range(MAX_CLIENTS):
        sock, addr = s.accept()
        threading.Thread(target=tcplink, args=(sock, addr), daemon=True).start()


def s004_tcp_server():
    """Per connection: one recv(1024) (ignored), send "Hello, Client", close
    (the server closes first)."""
    s = tcp_listener(5)
    print("Server is listening...")
    ready("s004_tcp_server", s)
    for _ in range(MAX_CLIENTS):
        c, client_addr = s.accept()
        c.settimeout(TIMEOUT)
        print(f"Connection from {client_addr}")
        c.recv(1024)
        c.send(b"Hello, Client")
        c.close()


def s004_chat_server():
    """One connection, lock-step: each recv(1024) chunk is printed as
    `Client: ...`, then one line of stdin is sent back; ends on EOF."""
    s = tcp_listener(5)
    print("Server is waiting for connection...")
    ready("s004_chat_server", s)
    c, client_addr = s.accept()
    c.settimeout(TIMEOUT)
    print(f"Connection established with {client_addr}")
    for _ in range(MAX_MESSAGES):
        message = c.recv(1024)
        if not message:
            break
        print(f"Client: {message.decode('utf-8')}")
        response = input("You: ")
        c.send(response.encode("utf-8"))
    c.close()
    s.close()


def s000_udp_server():
    """Replies "Hello, client!" to each datagram; a datagram `exit` (any
    case) stops the whole server without a reply."""
    s = udp_socket()
    print("Server is listening on {}:{}".format(HOST, s.getsockname()[1]))
    ready("s000_udp_server", s)
    for _ in range(MAX_MESSAGES):
        data, client_address = s.recvfrom(4096)
        print(f"Received {data.decode()} from {client_address}")
        if data.decode().lower() == "exit":
            print("Server exiting...")
            break
        s.sendto("Hello, client!".encode(), client_address)
    s.close()


def s001_udp_server():
    """Replies with the datagram in upper case (an empty one gets an empty reply)."""
    with udp_socket() as s:
        print(f"UDP server listening on {HOST}:{s.getsockname()[1]}")
        ready("s001_udp_server", s)
        for _ in range(MAX_MESSAGES):
            data, addr = s.recvfrom(1024)
            print(f"Received {data.decode('utf-8')} from {addr}")
            s.sendto(data.decode('utf-8').upper().encode('utf-8'), addr)


def s003_udp_server():
    """Replies `Hello,<text>` (no space) from a thread per datagram; prints nothing."""
    s = udp_socket()

    def udplink(data, addr):
        s.sendto(('Hello,' + data.decode('utf-8')).encode('utf-8'), addr)

    ready("s003_udp_server", s)
    for _ in range(MAX_MESSAGES):
        data, addr = s.recvfrom(1024)
        threading.Thread(target=udplink, args=(data, addr), daemon=True).start()


def s004_udp_server():
    """Replies "Hello, UDP Client" to each datagram."""
    s = udp_socket()
    print("Server is listening...")
    ready("s004_udp_server", s)
    for _ in range(MAX_MESSAGES):
        message, client_addr = s.recvfrom(1024)
        print(f"Received from {client_addr}: {message.decode('utf-8')}")
        s.sendto(b"Hello, UDP Client", client_addr)


CLIENTS = {f.__name__: f for f in [
    s000_tcp_client, s001_tcp_client, s003_tcp_client, s004_tcp_client, s004_chat_client,
    s000_udp_client, s001_udp_client, s003_udp_client, s004_udp_client,
]}
SERVERS = {f.__name__: f for f in [
    s000_tcp_server, s001_tcp_echo_server, s003_tcp_threaded_server, s004_tcp_server,
    s004_chat_server, s000_udp_server, s001_udp_server, s003_udp_server, s004_udp_server,
]}


def main(argv):
    if len(argv) == 3 and argv[1] in CLIENTS:
        CLIENTS[argv[1]](int(argv[2]))
    elif len(argv) == 2 and argv[1] in SERVERS:
        SERVERS[argv[1]]()
    else:
        names = ", ".join(sorted(CLIENTS)) + " PORT | " + ", ".join(sorted(SERVERS))
        print(f"usage: {argv[0]} {names}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
