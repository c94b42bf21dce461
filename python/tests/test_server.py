"""Servers with Python handlers: serving the C example clients, controls,
timers, the ways to run, exceptions that must never reach C, and the
lifetime of the ctypes callbacks."""

import gc
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref

import pytest

import sockflow
from conftest import HOST, UDP_REPLY_MS, example, secs
from sockflow import Action, CloseReason, Code, Error, Handler, Role, Server, TcpStream, Turn, Udp, parse_args

MS = int(secs(20) * 1000)


class Upper(Handler):
    def on_message(self, conn, msg):
        conn.send(msg.upper())


class Recorder(Handler):
    """Echoes, and records every callback: (event, conn id, detail)."""

    def __init__(self):
        self.events = []
        self.closed = threading.Event()

    def on_connect(self, conn):
        self.events.append(("connect", conn.id, conn.peer.ip))

    def on_message(self, conn, msg):
        self.events.append(("message", conn.id, msg))
        conn.send(msg)

    def on_close(self, conn, reason):
        self.events.append(("close", conn.id, reason))
        self.closed.set()


def client(port, frame=None):
    t = TcpStream.connect(HOST, port, timeout_ms=MS, frame=frame)
    t.set_timeouts(MS, MS)
    return t


def ended(t):
    """Whether the server closed this stream (ECLOSED/ECONNRESET, not a timeout)."""
    try:
        t.recv_msg()
    except Error as e:
        return e.code in (Code.ECLOSED, Code.ECONNRESET)
    return False


@pytest.fixture
def started():
    """started(server) -> server, running on its thread; closed after the test."""
    servers = []

    def start(server):
        servers.append(server)
        server.start()
        return server

    yield start
    for s in servers:
        s.close()


# --- C clients, Python servers --------------------------------------------------


def test_python_upper_server_serves_the_c_tcp_client(spawn, started):
    srv = started(Server.tcp(Upper(), HOST, 0, quiet=1))
    p = spawn([example("tcp_client"), HOST, str(srv.port)], stdin=b"hello\nworld\nquit\n")
    assert p.wait_exit() == 0, bytes(p.err)
    assert bytes(p.out) == b"HELLO\nWORLD\nQUIT\n"


def test_python_echo_server_serves_the_c_tcp_client_in_len32(spawn, started):
    srv = started(Server.tcp(on_message=lambda conn, msg: conn.send(msg), host=HOST, frame="len32", quiet=1))
    lines = b"".join(b"line %d with some text\n" % i for i in range(300))
    p = spawn([example("tcp_client"), "--frame", "len32", HOST, str(srv.port)], stdin=lines)
    assert p.wait_exit() == 0, bytes(p.err)
    assert bytes(p.out) == lines


def test_python_udp_server_serves_the_c_udp_client(spawn, started):
    srv = started(Server.udp(on_message=lambda conn, msg: conn.send(msg[::-1]), host=HOST, quiet=1))
    p = spawn([example("udp_client"), "--timeout", UDP_REPLY_MS, HOST, str(srv.port)], stdin=b"abc\nxyz\n")
    assert p.wait_exit() == 0, bytes(p.err)
    assert bytes(p.out) == b"cba\nzyx\n"


def test_python_chat_room_serves_c_chat_clients(spawn, started):
    class Room(Handler):
        def on_connect(self, conn):
            conn.user = "guest%d" % len(srv.conn_ids())

        def on_message(self, conn, msg):
            conn.broadcast(b"%s: %s" % (conn.user.encode(), msg))

    srv = started(Server.tcp(Room(), HOST, 0, quiet=1))
    listener = spawn([example("chat_client"), HOST, str(srv.port)], stdin=True)
    _wait_count(srv, 1)
    talker = spawn([example("chat_client"), HOST, str(srv.port)], stdin=True)
    _wait_count(srv, 2)
    talker.write(b"hello room\n")
    listener.wait_out(rb"Server: guest2: hello room\n")
    talker.close_stdin()
    listener.close_stdin()
    assert talker.wait_exit() == 0 and listener.wait_exit() == 0


def _wait_count(srv, n):
    deadline = threading.Event()
    for _ in range(int(secs(20) / 0.01)):
        if srv.conn_count() == n:
            return
        deadline.wait(0.01)
    raise AssertionError("never %d connections (%d)" % (n, srv.conn_count()))


# --- callbacks, results, controls -------------------------------------------------


def test_callbacks_see_bytes_ids_peers_and_reasons(started):
    rec = Recorder()
    srv = started(Server.tcp(rec, HOST, 0, quiet=1))
    with client(srv.port, "len32") as t:
        pass
    with client(srv.port) as t:
        t.send_msg("caf\u00e9")
        assert t.recv_msg() == "caf\u00e9".encode()
    _wait_count(srv, 0)
    srv.stop()
    srv.join()
    events = rec.events
    ids = {e[1] for e in events}
    assert len(ids) == 2 and all(isinstance(i, int) and i > 0 for i in ids)
    assert ("message", max(ids), "caf\u00e9".encode()) in events
    assert all(e[2] == CloseReason.PEER for e in events if e[0] == "close")
    assert [e[0] for e in events].count("close") == 2
    assert isinstance([e for e in events if e[0] == "close"][0][2], CloseReason)


def test_results_close_the_connection_or_stop_the_server(started):
    def on_message(conn, msg):
        return {b"close": Action.CLOSE, b"stop": Action.STOP}.get(msg)

    srv = started(Server.tcp(on_message=on_message, host=HOST, quiet=1))
    with client(srv.port) as t:
        t.send_msg("close")
        assert ended(t)
    with client(srv.port) as t:
        t.send_msg("stop")
        srv.join()  # returns: the server stopped


def test_a_conn_kept_after_its_callback_is_refused(started):
    kept = []
    srv = started(Server.tcp(on_message=lambda conn, msg: kept.append(conn), host=HOST, quiet=1))
    with client(srv.port) as t:
        t.send_msg("x")
        for _ in range(int(secs(20) / 0.01)):
            if kept:
                break
            threading.Event().wait(0.01)
        with pytest.raises(Error) as e:
            kept[0].send(b"late")
        assert e.value.code == Code.EBADHANDLE
        assert kept[0].id > 0  # the id stays usable: that is how to reach it later
        srv.send_to(kept[0].id, b"by id")
        assert t.recv_msg() == b"by id"


def test_server_controls_from_the_main_thread(started):
    rec = Recorder()
    srv = started(Server.tcp(rec, HOST, 0, quiet=1))
    a, b = client(srv.port), client(srv.port)
    with a, b:
        _wait_count(srv, 2)
        ida, idb = srv.conn_ids()
        assert srv.peer(ida).ip == HOST
        srv.broadcast(b"all")
        assert a.recv_msg() == b"all" and b.recv_msg() == b"all"
        srv.send_to(idb, "only b")
        assert b.recv_msg() == b"only b"
        srv.close_id(ida)
        assert ended(a)
        srv.set_idle_timeout(idb, 50)
        assert ended(b)
        assert rec.closed.wait(secs(20))
        _wait_count(srv, 0)
    reasons = [e[2] for e in rec.events if e[0] == "close"]
    assert sorted(reasons) == sorted([CloseReason.HANDLER, CloseReason.IDLE])
    with pytest.raises(Error) as e:
        srv.peer(ida)
    assert e.value.code == Code.EBADHANDLE


def test_user_objects_live_until_on_close_then_are_released(started):
    class Session:
        pass

    seen = []

    class H(Handler):
        def on_connect(self, conn):
            conn.user = Session()
            seen.append(weakref.ref(conn.user))

        def on_message(self, conn, msg):
            conn.send(b"same" if conn.user is seen[0]() else b"other")

        def on_close(self, conn, reason):
            seen.append(conn.user is seen[0]())

    srv = started(Server.tcp(H(), HOST, 0, quiet=1))
    with client(srv.port) as t:
        t.send_msg("a")
        assert t.recv_msg() == b"same"
        t.send_msg("b")
        assert t.recv_msg() == b"same"
    srv.stop()
    srv.join()
    assert seen[1] is True  # on_close still sees it
    gc.collect()
    assert seen[0]() is None, "the user object was kept after on_close"


# --- exceptions never reach C ----------------------------------------------------


def test_an_exception_in_a_handler_closes_that_connection_and_is_printed(started, capsys):
    class Fragile(Handler):
        def on_message(self, conn, msg):
            if msg == b"boom":
                raise ValueError("handler failed on purpose")
            conn.send(msg)

        def on_close(self, conn, reason):
            closes.append(reason)

    closes = []
    srv = started(Server.tcp(Fragile(), HOST, 0, quiet=1))
    with client(srv.port) as good, client(srv.port) as bad:
        bad.send_msg("boom")
        assert ended(bad)
        good.send_msg("still served")
        assert good.recv_msg() == b"still served"
    srv.stop()
    srv.join()
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: handler failed on purpose" in err
    assert CloseReason.ERROR in closes


def test_exceptions_in_on_connect_on_close_and_timers_are_contained(started, capsys):
    class H(Handler):
        def on_connect(self, conn):
            raise RuntimeError("no greeting")

        def on_message(self, conn, msg):
            conn.send(msg)

        def on_close(self, conn, reason):
            raise KeyError("close failed")

    calls = []
    ticked = threading.Event()

    def tick():
        calls.append(1)
        ticked.set()
        raise ZeroDivisionError("timer failed")

    srv = started(Server.tcp(H(), HOST, 0, quiet=1))
    with client(srv.port) as t:
        assert ended(t)  # on_connect raised: closed at once
    srv.timer_add(0, tick, repeat_ms=1)  # the exception cancels the repeating timer
    with client(srv.port) as t:  # the server still serves (and on_connect still raises)
        assert ended(t)
    assert ticked.wait(secs(20))
    with client(srv.port) as t:  # a turn or more after the timer raised
        assert ended(t)
    srv.stop()
    srv.join()
    err = capsys.readouterr().err
    for text in ("RuntimeError: no greeting", "KeyError: 'close failed'", "ZeroDivisionError: timer failed"):
        assert text in err
    assert calls == [1], "a timer that raised was called again"


def test_a_result_that_is_no_action_is_contained(started, capsys):
    srv = started(Server.tcp(on_message=lambda conn, msg: "not an action", host=HOST, quiet=1))
    with client(srv.port) as t:
        t.send_msg("x")
        assert ended(t)
    assert "ValueError" in capsys.readouterr().err


def test_keyboard_interrupt_in_a_handler_stops_the_server_and_is_raised_by_join(started):
    def on_message(conn, msg):
        raise KeyboardInterrupt

    srv = started(Server.tcp(on_message=on_message, host=HOST, quiet=1))
    with client(srv.port) as t:
        t.send_msg("x")
        with pytest.raises(KeyboardInterrupt):
            srv.join()


# --- lifetime of the ctypes callbacks -----------------------------------------------


def test_callbacks_outlive_every_reference_the_program_drops(spawn):
    """The classic ctypes crash: C calling a callback object that Python has
    freed. Here the handler, its functions and the server object itself are
    only referenced by the package while the server runs; after gc, clients
    are still served (a freed callback would crash this process)."""

    def make():
        class Throwaway(Handler):
            def on_message(self, conn, msg):
                conn.send(b"alive: " + msg)

        h = Throwaway()
        srv = Server.tcp(h, HOST, 0, quiet=1)
        srv.start()
        return srv.port, weakref.ref(h), weakref.ref(srv)

    port, handler_ref, server_ref = make()
    for _ in range(3):
        gc.collect()
    assert handler_ref() is not None and server_ref() is not None, "a running server let its callbacks go"
    p = spawn([example("tcp_client"), HOST, str(port)], stdin=b"one\ntwo\n")
    assert p.wait_exit() == 0
    assert bytes(p.out) == b"alive: one\nalive: two\n"
    srv = server_ref()
    srv.close()
    del srv
    gc.collect()
    assert server_ref() is None and handler_ref() is None, "a closed server keeps its handler"


# --- ways to run -----------------------------------------------------------------------


def test_run_returns_when_another_thread_stops_it():
    srv = Server.tcp(Upper(), HOST, 0, quiet=1)
    ready = threading.Event()
    srv.timer_add(0, ready.set)
    stopper = threading.Thread(target=lambda: ready.wait(secs(20)) and srv.stop())
    stopper.start()
    srv.run()
    stopper.join(secs(20))
    srv.close()
    with pytest.raises(ValueError):
        srv.port


def test_timers_repeat_cancel_and_stop_the_server():
    srv = Server.tcp(Upper(), HOST, 0, quiet=1)
    ticks, once = [], []
    srv.timer_add(1, lambda: ticks.append(1) or (Action.CLOSE if len(ticks) == 3 else None), repeat_ms=1)
    cancelled = srv.timer_add(MS, lambda: once.append("cancelled fired"))
    srv.timer_cancel(cancelled)
    srv.timer_add(0, lambda: once.append("once"))
    srv.timer_add(0, lambda: Action.STOP if len(ticks) == 3 else Action.CONTINUE, repeat_ms=1)
    srv.run()  # the last timer stops it
    srv.close()
    assert ticks == [1, 1, 1] and once == ["once"]


def test_join_errors():
    with Server.tcp(Upper(), HOST, 0, quiet=1) as srv:
        with pytest.raises(Error) as e:
            srv.join()
        assert e.value.code == Code.EBADHANDLE
        answers = []

        def join_from_inside():
            try:
                srv.join()
            except Error as e:
                answers.append(e.code)
            return Action.STOP

        srv.timer_add(0, join_from_inside)
        srv.run()
        assert answers == [Code.EBUSY]


def test_own_loop_with_turn(started):
    srv = Server.tcp(Upper(), HOST, 0, quiet=1)
    result = []

    def talk():
        with client(srv.port) as t:
            t.send_msg("turned")
            result.append(t.recv_msg())
        srv.stop()

    th = threading.Thread(target=talk)
    th.start()
    for _ in range(100000):
        timeout = srv.timeout()
        select.select([srv.fileno()], [], [], None if timeout < 0 else timeout / 1000)
        if srv.turn(0) == Turn.STOPPED:
            break
    th.join(secs(20))
    srv.close()
    assert result == [b"TURNED"]


def test_thread_per_connection_mode_runs_python_handlers(started):
    srv = started(Server.tcp(Upper(), HOST, 0, quiet=1, mode=sockflow.Mode.THREAD_PER_CONNECTION))
    clients = [client(srv.port) for _ in range(4)]
    for i, t in enumerate(clients):
        t.send_msg("c%d" % i)
    assert [t.recv_msg() for t in clients] == [b"C%d" % i for i in range(4)]
    for t in clients:
        t.close()


# --- client loops ----------------------------------------------------------------------


class PingTwo(Handler):
    """A client loop's handler for two connects: each sends "ping USER" and
    closes at the reply (kept in `got`); a failed connect is kept in
    `failures` as (user, code); the loop stops when both have ended."""

    def __init__(self, got, failures):
        self.got, self.failures = got, failures

    def on_connect(self, conn):
        conn.send("ping %s" % conn.user)

    def on_message(self, conn, msg):
        self.got.append(msg)
        return Action.CLOSE

    def on_close(self, conn, reason):
        if reason == CloseReason.CONNECT_FAILED:
            self.failures.append((conn.user, conn.error.code))
        if len(self.got) + len(self.failures) == 2:
            conn.stop_server()


def test_client_loop_talks_to_the_c_echo_server_and_reports_a_refused_connect(c_server):
    _, port = c_server("echo_server", "--frame", "line")
    with Udp.bind(HOST, 0) as u:  # a port no TCP server listens on (well, very likely)
        closed_port = u.port
    got, failures = [], []
    h = PingTwo(got, failures)

    with Server.client_loop(h, quiet=1) as loop:
        loop.connect(HOST, port, MS, user="first")
        loop.connect(HOST, closed_port, MS, user="refused")
        loop.run()
    assert got == [b"ping first"]
    assert failures == [("refused", Code.ECONNREFUSED)]


def test_client_loop_connects_with_args_over_tls(c_server, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make certificates")

    def self_signed(name):
        key, cert = str(tmp_path / (name + ".key")), str(tmp_path / (name + ".pem"))
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"],
            check=True, capture_output=True)
        return key, cert

    key, cert = self_signed("server")
    _, other = self_signed("other")
    _, port = c_server("echo_server", "--frame", "line", "--tls-cert", cert, "--tls-key", key)
    got, failures = [], []
    h = PingTwo(got, failures)

    trusted = parse_args(["client", "--tls-ca", cert, "localhost", str(port)], role=Role.CLIENT)
    wrong = parse_args(["client", "--tls-ca", other, "localhost", str(port)], role=Role.CLIENT)
    with Server.client_loop(h, quiet=1) as loop:
        with pytest.raises(Error) as e:  # a server's arguments are not a connect's
            loop.connect_args(parse_args(["server", HOST, "0"]))
        assert e.value.code == Code.EINVAL
        loop.connect_args(trusted, user="tls")
        loop.connect_args(wrong, user="wrong")
        loop.run()
    assert got == [b"ping tls"], (got, failures)
    assert failures == [("wrong", Code.ETLS)]


def test_bad_settings_and_handlers_are_refused():
    with pytest.raises(TypeError):
        Server.tcp(Upper(), HOST, 0, no_such_setting=1)
    with pytest.raises(TypeError):
        Server.tcp(object(), HOST, 0)
    with pytest.raises(ValueError):
        Server.tcp("shout", HOST, 0)
    with pytest.raises(Error) as e:
        Server.tcp(Upper(), HOST, 0, idle_timeout_ms=0)
    assert e.value.code == Code.EINVAL
    with pytest.raises(Error) as e:
        Server.tcp(Upper(), HOST, 0, frame="lines")
    assert e.value.code == Code.EINVAL


def test_builtin_handlers_by_name(started):
    srv = started(Server.tcp("hello", HOST, 0, quiet=1))
    with client(srv.port) as t:
        assert t.recv_msg() == b"welcome"
        t.send_msg("py")
        assert t.recv_msg() == b"Hello py"


RUN_UNTIL_CTRL_C = """
import sys, sockflow

class H(sockflow.Handler):
    def on_message(self, conn, msg):
        conn.send(msg)
    def on_close(self, conn, reason):
        print("closed", reason.name, flush=True)

srv = sockflow.Server.tcp(H(), "127.0.0.1", 0)
print("port", srv.port, flush=True)
try:
    srv.run()
except KeyboardInterrupt:
    print("KeyboardInterrupt after the stop", flush=True)
srv.close()
"""


def test_ctrl_c_stops_run_gracefully_then_raises_keyboard_interrupt(spawn):
    from conftest import python_child

    p = python_child(RUN_UNTIL_CTRL_C, spawn=spawn)
    port = int(p.wait_out(rb"port (\d+)\n").group(1))
    with client(port) as t:
        t.send_msg("ping")
        assert t.recv_msg() == b"ping"  # connected and served: now interrupt
        p.signal(signal.SIGINT)
        assert ended(t)
    assert p.wait_exit() == 0, bytes(p.err)
    assert bytes(p.out).endswith(b"closed STOPPING\nKeyboardInterrupt after the stop\n")


def test_conn_reaches_other_connections_by_id(started):
    class Switchboard(Handler):
        def on_message(self, conn, msg):
            verb, _, rest = msg.partition(b" ")
            if verb == b"who":
                conn.send(b"%d" % conn.id)
            elif verb in (b"send", b"relay"):
                to, _, text = rest.partition(b" ")
                (conn.send_to if verb == b"send" else conn.relay)(int(to), text)
            elif verb == b"kick":
                conn.close_id(int(rest))

    srv = started(Server.tcp(Switchboard(), HOST, 0, quiet=1))
    with client(srv.port) as a, client(srv.port) as b:
        b.send_msg("who")
        idb = int(b.recv_msg())
        a.send_msg("send %d via send_to" % idb)
        assert b.recv_msg() == b"via send_to"
        a.send_msg("relay %d via relay" % idb)
        assert b.recv_msg() == b"via relay"
        a.send_msg("kick %d" % idb)
        assert ended(b)
        a.send_msg("who")
        assert int(a.recv_msg()) != idb


def test_udp_peers_from_python_keep_their_user_object(started):
    class Peers(Handler):
        def on_connect(self, conn):
            conn.user = {"count": 0}

        def on_message(self, conn, msg):
            conn.user["count"] += 1
            conn.send(b"%d" % conn.user["count"])

    srv = started(Server.udp(Peers(), HOST, 0, quiet=1, udp_peers=1))
    with Udp.connect(HOST, srv.port) as a, Udp.connect(HOST, srv.port) as b:
        for u in (a, b):
            u.set_timeouts(MS, MS)
        replies = []
        for u in (a, a, b, a):
            u.send(b"x")
            replies.append(u.recv())
        assert replies == [b"1", b"2", b"1", b"3"]


def test_user_objects_of_single_datagrams_are_not_kept(started):
    """Without udp_peers a UDP user pointer lasts one datagram: the objects
    set in on_message are released after it."""
    refs = []

    class Session:
        pass

    def on_message(conn, msg):
        conn.user = Session()
        refs.append(weakref.ref(conn.user))
        conn.send(msg)

    srv = started(Server.udp(on_message=on_message, host=HOST, quiet=1))
    with Udp.connect(HOST, srv.port) as u:
        u.set_timeouts(MS, MS)
        for i in range(3):
            u.send(b"%d" % i)
            assert u.recv() == b"%d" % i
    # The reply leaves inside on_message, so the client can read it before
    # the loop releases that datagram's user object: wait (bounded) for it.
    deadline = time.monotonic() + 10
    while not all(r() is None for r in refs) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert len(refs) == 3 and all(r() is None for r in refs)


EXIT_WITH_OPEN_SERVERS = """
import sys, sockflow

class H(sockflow.Handler):
    def on_message(self, conn, msg):
        conn.send(msg)
    def on_close(self, conn, reason):
        print("closed", reason.name, flush=True)

started = sockflow.Server.tcp(H(), "127.0.0.1", 0, quiet=1)
started.start()
turned = sockflow.Server.tcp(H(), "127.0.0.1", 0, quiet=1)
a = sockflow.TcpStream.connect("127.0.0.1", started.port)
b = sockflow.TcpStream.connect("127.0.0.1", turned.port)
for t, srv in ((a, None), (b, turned)):
    t.send_msg("ping")
    while srv is not None and srv.conn_count() == 0:
        srv.turn(100)
print("exiting", flush=True)
"""


def test_servers_left_open_at_exit_are_closed_cleanly(spawn):
    """A program that ends without closing its servers (one started, one
    turned by hand) exits 0: they are closed at exit, their on_close run
    while Python still can."""
    from conftest import python_child

    p = python_child(EXIT_WITH_OPEN_SERVERS, spawn=spawn)
    assert p.wait_exit() == 0, bytes(p.err)
    out = bytes(p.out)
    assert out.startswith(b"exiting\n") and out.count(b"closed STOPPING\n") == 2, out


def test_log_lines_go_to_a_python_function_and_its_exceptions_are_contained(capsys):
    lines = []
    ready = threading.Event()

    def log(level, text):
        lines.append((level, text))
        if "listening" in text:
            ready.set()
        raise RuntimeError("a logger that fails")

    srv = Server.tcp(Upper(), HOST, 0, log=log)
    port = srv.port
    srv.start()
    try:
        assert ready.wait(secs(20))
        with client(srv.port) as t:  # still serving
            t.send_msg("x")
            assert t.recv_msg() == b"X"
    finally:
        srv.close()
    level, text = lines[0]
    assert level == sockflow.LogLevel.INFO and text == "listening on %s port %d" % (HOST, port)
    assert "RuntimeError: a logger that fails" in capsys.readouterr().err


def test_stats_count_connections_messages_and_closes(started):
    srv = started(Server.tcp(Upper(), HOST, 0, quiet=1))
    with client(srv.port) as a, client(srv.port) as b:
        for t in (a, b, a):
            t.send_msg("hello")
            assert t.recv_msg() == b"HELLO"
    _wait_count(srv, 0)
    st = srv.stats()
    assert (st["conns_total"], st["conns_open"], st["msgs_in"], st["msgs_out"]) == (2, 0, 3, 3)
    assert st["bytes_in"] >= 15 and st["closed"][CloseReason.PEER] == 2
    assert sum(st["closed"].values()) == 2


def test_several_workers_run_python_handlers(started):
    seen = set()

    def on_message(conn, msg):
        seen.add(conn.worker)
        conn.send(msg.upper())

    srv = started(Server.tcp(on_message=on_message, host=HOST, quiet=1, workers=2))
    streams = [client(srv.port) for _ in range(8)]
    for i, t in enumerate(streams):
        t.send_msg("w%d" % i)
    assert [t.recv_msg() for t in streams] == [b"W%d" % i for i in range(8)]
    for t in streams:
        t.close()
    assert seen <= {0, 1} and seen


LINGERING_LOG = """
import gc, sys, time, sockflow

def log(level, text):
    if text.startswith("stopped"):
        time.sleep(3)  # longer than close() waits for a log call (2 s)
        print("log call returned", flush=True)

srv = sockflow.Server.tcp(on_message=lambda conn, msg: None, host="127.0.0.1", log=log)
srv.start()
srv.close()
del srv
gc.collect()
time.sleep(4)
print("survived", flush=True)
"""


def test_a_log_call_left_running_by_close_keeps_its_callback(spawn):
    """close() returns while a slow log call still runs (sockflow waits 2 s
    for it), and the program survives that call's return after the server
    is gone (its callback object is kept: Server.close, _lingering)."""
    from conftest import python_child

    p = python_child(LINGERING_LOG, spawn=spawn)
    assert p.wait_exit(secs(30)) == 0, bytes(p.err)
    assert bytes(p.out) == b"log call returned\nsurvived\n"
