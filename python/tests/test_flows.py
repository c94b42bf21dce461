"""The one-call flows from Python, with argv lists: clients against the C
servers (in process and as Python programs), servers with Python handlers
serving the C clients, stopped by a signal."""

import signal

import pytest

import sockflow
from conftest import HOST, UDP_REPLY_MS, example, python_child
from sockflow import Code, Error


def test_tcp_client_run_in_process_with_file_objects(c_server, tmp_path):
    _, port = c_server("echo_server", "--frame", "line")
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"first\nsecond\n")
    with open(src, "rb") as i, open(dst, "wb") as o:
        rc = sockflow.tcp_client_run(["tcp_client", HOST, str(port)], stdin=i, stdout=o)
    assert rc == 0
    assert dst.read_bytes() == b"first\nsecond\n"


def test_udp_client_run_in_process(c_server, tmp_path):
    _, port = c_server("udp_upper_server")
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"shout\n")
    with open(src, "rb") as i, open(dst, "wb") as o:
        rc = sockflow.udp_client_run(["udp_client", "--timeout", UDP_REPLY_MS, HOST, str(port)], stdin=i, stdout=o)
    assert rc == 0
    assert dst.read_bytes() == b"SHOUT\n"


def test_a_bad_command_line_is_exit_status_2_with_the_usage(capfd):
    assert sockflow.tcp_client_run(["tcp_client", HOST, "80a"]) == 2
    err = capfd.readouterr().err
    assert "usage: tcp_client" in err and '"80a"' in err


def test_tcp_client_as_a_python_program_against_the_c_hello_server(spawn, c_server):
    _, port = c_server("hello_server")
    p = python_child("import sys, sockflow; sys.exit(sockflow.tcp_client_run(sys.argv))",
                     HOST, str(port), stdin=b"py\nexit\n", spawn=spawn)
    assert p.wait_exit() == 0, bytes(p.err)
    assert bytes(p.out).startswith(b"welcome\nHello py\n")


def test_chat_client_run_against_the_c_chat_server(spawn):
    server = spawn([example("chat_server"), HOST, "0"], stdin=True)
    port = server.wait_listening()
    p = python_child("import sys, sockflow; sys.exit(sockflow.chat_client_run(sys.argv))",
                     HOST, str(port), stdin=True, spawn=spawn)
    server.wait_out(rb"connected")
    p.write(b"from python\n")
    server.wait_out(rb"Client: from python\n")
    server.write(b"from c\n")
    p.wait_out(rb"Server: from c\n")
    p.close_stdin()
    assert p.wait_exit() == 0, bytes(p.err)


SERVER = """
import signal, sys, sockflow

class Upper(sockflow.Handler):
    def on_connect(self, conn):
        conn.send(b"hi " + conn.peer.ip.encode())
    def on_message(self, conn, msg):
        conn.send(msg.upper())

rc = sockflow.tcp_server_run(sys.argv, Upper())
# Python's own handler is back after the run (sockflow leaves the default).
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
print("returned", rc)
sys.exit(rc)
"""


def test_tcp_server_run_with_a_python_handler_serves_the_c_client_and_stops_on_sigterm(spawn):
    server = python_child(SERVER, HOST, "0", spawn=spawn)
    port = server.wait_listening()
    client = spawn([example("tcp_client"), HOST, str(port)], stdin=b"abc\nquit\n")
    assert client.wait_exit() == 0, bytes(client.err)
    assert bytes(client.out) == b"hi 127.0.0.1\nABC\n"
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0, bytes(server.err)
    assert b"returned 0" in bytes(server.out)


def test_udp_server_run_with_a_python_handler(spawn):
    code = ("import sys, sockflow\n"
            "class Reverse:\n"
            "    def on_message(self, conn, msg):\n"
            "        conn.send(msg[::-1])\n"
            "sys.exit(sockflow.udp_server_run(sys.argv, Reverse()))\n")
    server = python_child(code, HOST, "0", spawn=spawn)
    port = server.wait_listening()
    client = spawn([example("udp_client"), "--timeout", UDP_REPLY_MS, HOST, str(port)], stdin=b"stressed\n")
    assert client.wait_exit() == 0, bytes(client.err)
    assert bytes(client.out) == b"desserts\n"
    server.signal(signal.SIGINT)
    assert server.wait_exit() == 0, bytes(server.err)


def test_parse_args_and_take_int():
    argv = ["time_server", "--interval", "250", "--frame", "len32", HOST, "0"]
    assert sockflow.take_int(argv, "--interval", 1000) == 250
    assert argv == ["time_server", "--frame", "len32", HOST, "0"]
    assert sockflow.take_int(argv, "--interval", 1000) == 1000
    args = sockflow.parse_args(argv, sockflow.Role.SERVER)
    assert (args.host, args.port, args.frame, args.timeout_ms) == (HOST.encode(), 0, sockflow.Frame.LEN32, sockflow.FOREVER)
    with pytest.raises(Error) as e:
        sockflow.parse_args(["x", "--bogus", "1"], sockflow.Role.CLIENT, quiet=True)
    assert e.value.code == Code.EUSAGE and "--bogus" in e.value.message


def test_server_from_argv(c_server):
    with sockflow.Server.from_argv(["srv", "--frame", "line", HOST, "0"], "upper", quiet=1) as srv:
        srv.start()
        with sockflow.TcpStream.connect(HOST, srv.port, timeout_ms=20000) as t:
            t.set_timeouts(20000, 20000)
            t.send_msg("argv")
            assert t.recv_msg() == b"ARGV"
