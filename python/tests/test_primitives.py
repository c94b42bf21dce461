"""The primitives from Python: against each other in process, and as
clients of the C example servers (echo_server, udp_echo_server, chat_room)."""

import threading

import pytest

import sockflow
from conftest import HOST, secs
from sockflow import Code, Error, TcpListener, TcpStream, Udp

MS = int(secs(20) * 1000)  # a generous limit for every blocking call


def pair(frame=None):
    """A connected (client, server-side) TcpStream pair on loopback."""
    with TcpListener.listen(HOST, 0) as listener:
        client = TcpStream.connect(HOST, listener.port, timeout_ms=MS, frame=frame)
        server, peer = listener.accept(MS)
    assert peer.ip == HOST and peer.port == client_port(client)
    if frame:
        server.set_frame(frame)
    for s in (client, server):
        s.set_timeouts(MS, MS)
    return client, server


def client_port(stream):
    import socket

    s = socket.socket(fileno=stream.fileno())
    try:
        return s.getsockname()[1]
    finally:
        s.detach()


def test_line_messages_come_out_as_sent_even_when_glued():
    c, s = pair()
    with c, s:
        c.send(b"one\ntwo\r\nthr")  # glued, then split
        c.send(b"ee\n")
        c.send_msg("four")
        assert [s.recv_msg() for _ in range(4)] == [b"one", b"two", b"three", b"four"]
        c.shutdown()
        with pytest.raises(Error) as e:
            s.recv_msg()
        assert e.value.code == Code.ECLOSED


def test_len32_messages_are_binary_safe_and_any_length():
    c, s = pair("len32")
    with c, s:
        msgs = [b"", b"\0\n\0", bytes(range(256)) * 300]  # 76800 bytes: past any fixed buffer
        done = threading.Thread(target=lambda: [c.send_msg(m) for m in msgs])
        done.start()
        assert [s.recv_msg() for _ in msgs] == msgs
        done.join(secs(20))


def test_recv_is_empty_at_the_end_of_the_stream():
    c, s = pair("raw")
    with c, s:
        c.send(b"bytes")
        c.close()
        got = b""
        for _ in range(10):
            chunk = s.recv()
            if not chunk:
                break
            got += chunk
        assert got == b"bytes"


def test_timeouts_follow_the_millisecond_rule():
    c, s = pair()
    with c, s:
        s.set_timeouts(recv_ms=50)
        with pytest.raises(Error) as e:
            s.recv_msg()
        assert e.value.code == Code.ETIMEDOUT
        with pytest.raises(Error) as e:
            s.set_timeouts(0, sockflow.FOREVER)  # 0 is no limit's mistake: EINVAL
        assert e.value.code == Code.EINVAL and "0" in e.value.message
        s.set_timeouts(sockflow.FOREVER, sockflow.FOREVER)
    with TcpListener.listen(HOST, 0) as listener:
        with pytest.raises(Error) as e:
            listener.accept(0)  # 0 = just check
        assert e.value.code == Code.ETIMEDOUT


def test_errors_carry_the_code_and_the_message():
    with TcpListener.listen(HOST, 0) as listener:
        port = listener.port
    with pytest.raises(Error) as e:
        TcpStream.connect(HOST, port, timeout_ms=MS)
    assert e.value.code == Code.ECONNREFUSED
    assert "%s:%d" % (HOST, port) in e.value.message and "refused" in e.value.message.lower()
    assert "SOCKFLOW_ECONNREFUSED" in str(e.value)
    with pytest.raises(Error) as e:
        TcpStream.connect(HOST, 80, timeout_ms=0)
    assert e.value.code == Code.EINVAL


def test_a_message_too_long_for_the_frame_is_refused_not_cut():
    c, s = pair("line:8")
    with c, s:
        with pytest.raises(Error) as e:
            c.send_msg(b"123456789")
        assert e.value.code == Code.EMSGSIZE
        with pytest.raises(Error) as e:
            c.send_msg(b"a\nb")
        assert e.value.code == Code.EINVAL


def test_closed_handles_refuse_calls_and_close_twice_is_fine():
    c, s = pair()
    c.close()
    c.close()
    with pytest.raises(ValueError):
        c.send_msg(b"x")
    s.close()


def test_udp_between_two_python_sockets():
    with Udp.bind(HOST, 0) as a, Udp.bind(HOST, 0) as b:
        b.set_timeouts(MS, MS)
        a.send_to(b"\0datagram\n", HOST, b.port)
        data, sender = b.recv_from()
        assert data == b"\0datagram\n" and sender == (HOST, a.port, 4)
        a.send_to(b"x" * 100, HOST, b.port)
        with pytest.raises(Error) as e:
            b.recv_from(10)
        assert e.value.code == Code.EMSGSIZE


# --- Python clients, C servers ------------------------------------------------


def test_python_stream_against_c_echo_server_line_frames(c_server):
    _, port = c_server("echo_server", "--frame", "line")
    with TcpStream.connect(HOST, port, timeout_ms=MS) as t:
        t.set_timeouts(MS, MS)
        for i in range(200):
            t.send_msg("message %d" % i)
        assert [t.recv_msg() for _ in range(200)] == [b"message %d" % i for i in range(200)]


def test_python_stream_against_c_echo_server_len32_binary(c_server):
    _, port = c_server("echo_server", "--frame", "len32")
    with TcpStream.connect(HOST, port, timeout_ms=MS, frame="len32") as t:
        t.set_timeouts(MS, MS)
        msgs = [bytes([i]) * (i * 97) + b"\0" for i in range(50)]
        for m in msgs:
            t.send_msg(m)
        assert [t.recv_msg() for _ in msgs] == msgs


def test_python_stream_against_c_echo_server_raw_is_byte_exact(c_server):
    _, port = c_server("echo_server")  # raw by default
    with TcpStream.connect(HOST, port, timeout_ms=MS, frame="raw") as t:
        t.set_timeouts(MS, MS)
        sent = b"Hello World!\r\n\0binary"
        t.send(sent)
        got = b""
        while len(got) < len(sent):
            chunk = t.recv()
            assert chunk, "echo_server closed after %r" % got
            got += chunk
        assert got == sent


def test_python_udp_against_c_udp_echo_server(c_server):
    _, port = c_server("udp_echo_server")
    with Udp.bind(HOST, 0) as u:
        u.set_timeouts(MS, MS)
        for msg in (b"one", b"two\n", b"\0three"):
            u.send_to(msg, HOST, port)
            data, sender = u.recv_from()
            assert data == msg and sender.port == port
    with Udp.connect(HOST, port) as u:
        u.set_timeouts(MS, MS)
        u.send(b"connected")
        assert u.recv() == b"connected"


def test_python_clients_in_the_c_chat_room(c_server):
    _, port = c_server("chat_room")

    def member(nick):
        t = TcpStream.connect(HOST, port, timeout_ms=MS)
        t.set_timeouts(MS, MS)
        t.send_msg(nick)
        return t

    with member("alice") as alice:
        # alice is in the room once /who answers with her name.
        alice.send_msg("/who")
        assert alice.recv_msg() == b"alice"
        with member("bob") as bob:
            assert alice.recv_msg() == b"* bob joined"
            alice.send_msg("hi bob")
            assert bob.recv_msg() == b"alice: hi bob"
            bob.send_msg("/who")
            assert bob.recv_msg() == b"alice,bob"
            bob.send_msg("/quit")
            assert alice.recv_msg() == b"* bob left"
