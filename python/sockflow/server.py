"""Servers and client loops driven by Python handlers.

A handler is any object with `on_message(conn, msg)` and, optionally,
`on_connect(conn)` and `on_close(conn, reason)` (subclass `Handler`, or pass
the functions as keywords), or the name of a built-in handler ("print",
"echo", "hello", "upper"). `msg` is `bytes`; `conn` is a `Conn`, valid only
during the callback that received it (kept and used later, its calls raise
`Error` EBADHANDLE; keep `conn.id` and use `Server.send_to` instead). A
callback returns None (= `Action.CONTINUE`) or an `Action`.

Exceptions. A Python exception never reaches the C side: one raised by a
handler is printed (traceback on stderr) and that connection is closed at
once (`Action.ABORT`, reason ERROR); the server goes on. From `on_close` it
is printed only; from a timer it also cancels that timer. KeyboardInterrupt
and SystemExit stop the whole server and are raised again by `run`, `join`
or `turn`.

Threads and the GIL. Callbacks run on the server's loop thread (with
`workers=N`, on the connection's worker thread; in
`Mode.THREAD_PER_CONNECTION`, on each connection's thread; a `log` function
on sockflow's log thread; with `turn()`, on the thread that turns). ctypes
takes the GIL for each callback, so Python handler code runs one piece at a
time with the program's other Python threads, the main thread included: a
handler that computes for long, or a main thread that never lets go of the
GIL, delays every connection, and several workers add no parallelism to
Python code (only to sockflow's own I/O). Calls into sockflow release the
GIL while they wait (so a callback can run while the main thread is in
`join`, `stop`, `close`). Handlers that block (sleep, a database) belong in
`Mode.THREAD_PER_CONNECTION`.

Lifetime. The ctypes callback objects handed to C are owned by the
`Server` and live as long as it does, and a started server is kept alive by
its joining thread until it has stopped: dropping every reference to a
running server, or to the handler object, cannot free a callback that C
still calls (the classic ctypes crash). `close()` (or the end of a `with`)
stops a running server, waits for it and frees it.
"""

import _thread
import atexit
import ctypes
import enum
import itertools
import sys
import threading
import traceback
import types
import weakref

from . import _ctypes as C
from ._ctypes import Action, CloseMode, CloseReason, Code, Turn
from ._lib import Error, as_bytes, as_cstr, check, error, lib
from .prim import addr_of

_BUILTINS = {
    "print": lib.sockflow_handler_print,
    "echo": lib.sockflow_handler_echo,
    "hello": lib.sockflow_handler_hello,
    "upper": lib.sockflow_handler_upper,
}

# The _Callbacks whose callback is running on this thread, if any: calls
# that would wait for the loop (join, close) refuse to run from there.
_tls = threading.local()

# Every server not yet collected: those still open at exit are closed then
# (stopped, waited for, their on_close called), while the interpreter can
# still run their callbacks. A running one is also referenced by the thread
# that joins it, so it cannot be collected while C may call it.
_servers = weakref.WeakSet()
# Callbacks of closed servers whose log function was still running.
_lingering = []


@atexit.register
def _close_open_servers():
    for s in list(_servers):
        try:
            s.close()
        except Exception:
            pass


class Handler:
    """An optional base class: override `on_message` and what else you need."""

    def on_connect(self, conn):
        return None

    def on_message(self, conn, msg):
        raise NotImplementedError

    def on_close(self, conn, reason):
        return None


class Conn:
    """A connection as one callback sees it (see the module doc)."""

    __slots__ = ("_ptr", "_cb", "id")

    def __init__(self, ptr, cb):
        self._ptr = ptr
        self._cb = cb
        self.id = lib.sockflow_conn_id(ptr)

    def send(self, msg):
        """Sends one message (framed) to this connection, or a datagram back."""
        b = as_bytes(msg)
        check(lib.sockflow_conn_send(self._ptr, b, len(b)))

    def broadcast(self, msg, include_self=False):
        b = as_bytes(msg)
        check(lib.sockflow_conn_broadcast(self._ptr, b, len(b), int(bool(include_self))))

    def send_to(self, id, msg):
        b = as_bytes(msg)
        check(lib.sockflow_conn_send_to(self._ptr, id, b, len(b)))

    def relay(self, id, msg):
        b = as_bytes(msg)
        check(lib.sockflow_conn_relay(self._ptr, id, b, len(b)))

    def close_id(self, id):
        check(lib.sockflow_conn_close_id(self._ptr, id))

    def connect(self, host, port, timeout_ms=C.FOREVER, user=None):
        """Opens an outgoing connection from this loop; returns its id at once.
        `host` may be "unix:PATH" or "unix:@NAME" (port 0)."""
        return self._cb.connect(lambda key, out: lib.sockflow_conn_connect(self._ptr, as_cstr(host), port, timeout_ms, key, out), user)

    def connect_args(self, args, user=None):
        """As connect, to what a client's `sockflow_args` (`parse_args(...,
        role=Role.CLIENT)`) describes, over TLS with its TLS options."""
        return self._cb.connect(lambda key, out: lib.sockflow_conn_connect_args(self._ptr, ctypes.byref(args), key, out), user)

    def stop_server(self):
        check(lib.sockflow_conn_stop_server(self._ptr))

    @property
    def worker(self):
        """The worker (event-loop thread) this connection lives on: 0..workers-1."""
        return check(lib.sockflow_conn_worker(self._ptr))

    @property
    def peer(self):
        a = C.sockflow_addr()
        check(lib.sockflow_conn_peer(self._ptr, ctypes.byref(a)))
        return addr_of(a)

    @property
    def error(self):
        """In on_close with CONNECT_FAILED: why, as an Error; else None."""
        rc = lib.sockflow_conn_error(self._ptr)
        return error(rc) if rc < 0 else None

    @property
    def user(self):
        """Any Python object kept with this connection until its on_close."""
        return self._cb.users.get(lib.sockflow_conn_user(self._ptr))

    @user.setter
    def user(self, obj):
        key = self._cb.keep_user(obj)
        old = lib.sockflow_conn_user(self._ptr)
        try:
            check(lib.sockflow_conn_set_user(self._ptr, key))
        except Error:
            self._cb.users.pop(key, None)
            raise
        self._cb.users.pop(old, None)


class _Callbacks:
    """The C side of one server's Python code: the ctypes callback objects
    (owned here, so they live as long as the server), the user objects of
    connections and the timers' functions, by integer keys that C carries
    as its void * user and userdata pointers."""

    def __init__(self, handler, per_datagram):
        self.handler = handler
        self.per_datagram = per_datagram
        self.users = {}
        self.timers = {}
        self.timer_keys = {}
        self.keys = itertools.count(1)
        self.interrupt = None
        self.logging = 0  # log calls running (on sockflow's log thread)
        self.c_timer = C.sockflow_timer_fn(self._on_timer)
        if handler is None:
            return
        has_connect = getattr(handler, "on_connect", None) is not None
        self.c_on_connect = C.sockflow_on_connect(self._on_connect) if has_connect else C.sockflow_on_connect()
        self.c_on_message = C.sockflow_on_message(self._on_message)
        self.c_on_close = C.sockflow_on_close(self._on_close)
        self.struct = C.sockflow_handler(self.c_on_connect, self.c_on_message, self.c_on_close, C.Builtin.NONE)

    def log_fn(self, fn):
        """The C log function calling fn(level, text) on the server's log
        thread; its exceptions are printed, never raised into C."""

        def call(_userdata, level, msg):
            self.logging += 1
            try:
                fn(_enum(C.LogLevel, level), msg.decode("utf-8", "replace"))
            except BaseException as e:
                self.report(e)
            finally:
                self.logging -= 1

        self.c_log = C.sockflow_log_fn(call)
        return self.c_log

    def keep_user(self, obj):
        key = next(self.keys)
        self.users[key] = obj
        return key

    def connect(self, call, user):
        """Runs call(user_key, id_out), a sockflow_*_connect* call, keeping
        `user` for the new connection."""
        key = self.keep_user(user) if user is not None else None
        out = ctypes.c_uint64()
        rc = call(key, ctypes.byref(out))
        if rc < 0:
            self.users.pop(key, None)
            raise error(rc)
        return out.value

    def report(self, e):
        """Prints a handler's exception; remembers KeyboardInterrupt/SystemExit."""
        if not isinstance(e, Exception) and self.interrupt is None:
            self.interrupt = e
        try:
            traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
            sys.stderr.flush()
        except BaseException:
            pass

    def _guarded(self, stop, fn, *args):
        """Runs Python code for C: its result as a C action, and any
        exception printed and turned into ABORT (`stop` stops the server
        for KeyboardInterrupt/SystemExit). Nothing raised here reaches C."""
        prev, _tls.current = getattr(_tls, "current", None), self
        try:
            result = fn(*args)
            if result is None:
                return Action.CONTINUE
            return max(Action.ABORT, min(int(result), 0x7FFFFFFF))  # a C int: C reports unknown ones
        except BaseException as e:
            self.report(e)
            if not isinstance(e, Exception):
                stop()
            return Action.ABORT
        finally:
            _tls.current = prev

    def _call(self, ptr, fn, *args):
        """A handler callback with the Conn of `ptr`."""
        return self._guarded(lambda: lib.sockflow_conn_stop_server(ptr), lambda: fn(Conn(ptr, self), *args))

    def _on_connect(self, _userdata, ptr):
        return self._call(ptr, self.handler.on_connect)

    def _on_message(self, _userdata, ptr, msg, n):
        try:
            return self._call(ptr, self.handler.on_message, ctypes.string_at(msg, n))
        finally:
            if self.per_datagram:
                self.users.pop(lib.sockflow_conn_user(ptr), None)

    def _on_close(self, _userdata, ptr, reason):
        on_close = getattr(self.handler, "on_close", None)
        try:
            if on_close is not None:
                self._call(ptr, lambda conn: on_close(conn, _enum(CloseReason, reason)))
        finally:
            self.users.pop(lib.sockflow_conn_user(ptr), None)

    def add_timer(self, server_ptr, after_ms, repeat_ms, fn):
        key = next(self.keys)
        self.timers[key] = (fn, repeat_ms == 0)
        out = ctypes.c_uint64()
        rc = lib.sockflow_server_timer_add(server_ptr, after_ms, repeat_ms, self.c_timer, key, ctypes.byref(out))
        if rc < 0:
            self.timers.pop(key, None)
            raise error(rc)
        if key in self.timers:  # not already fired and ended
            self.timer_keys[out.value] = key
        return out.value

    def forget_timer(self, timer_id):
        self.timers.pop(self.timer_keys.pop(timer_id, None), None)

    def _on_timer(self, key, server_ptr, timer_id):
        fn, one_shot = self.timers.get(key, (None, True))
        if fn is None:
            return Action.CLOSE
        result = self._guarded(lambda: lib.sockflow_server_stop(server_ptr), fn)
        if one_shot or result != Action.CONTINUE:
            self.forget_timer(timer_id)
            self.timers.pop(key, None)
        return result


def callbacks_of(handler, per_datagram):
    """(_Callbacks, the sockflow_handler struct to pass) for a handler from
    `handler_of`: a built-in's struct, or the Python handler's callbacks.
    Keep the _Callbacks for as long as C may call them."""
    if isinstance(handler, str):
        return _Callbacks(None, per_datagram), _BUILTINS[handler]()
    cb = _Callbacks(handler, per_datagram)
    return cb, cb.struct


def _enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        return value


def handler_of(handler, on_connect, on_message, on_close):
    funcs = {"on_connect": on_connect, "on_message": on_message, "on_close": on_close}
    given = {k: f for k, f in funcs.items() if f is not None}
    if handler is not None and given:
        raise TypeError("give a handler or on_* functions, not both")
    if handler is None:
        if on_message is None:
            raise TypeError("a handler, or at least on_message, is needed")
        return types.SimpleNamespace(**funcs)
    if not isinstance(handler, str) and getattr(handler, "on_message", None) is None:
        raise TypeError("%r has no on_message" % (handler,))
    if isinstance(handler, str) and handler not in _BUILTINS:
        raise ValueError("no built-in handler %r (there are %s)" % (handler, ", ".join(_BUILTINS)))
    return handler


def _server_args(host, port, frame, quit):
    args = C.sockflow_args()
    check(lib.sockflow_args_init(ctypes.byref(args), C.Role.SERVER, as_cstr(host), port))
    if frame is not None:
        check(lib.sockflow_args_set_frame(ctypes.byref(args), as_cstr(frame)))
    if quit is not None:
        q = as_cstr(quit)
        if len(q) >= C.QUIT_MAX or b"\0" in q:
            raise ValueError("quit word: at most %d bytes, no NUL" % (C.QUIT_MAX - 1))
        args.quit = q
    return args


class _State(enum.Enum):
    NEW = "new"  # bound, not run yet (or driven by turn())
    RUNNING = "running"  # started: a joining thread waits for its end
    ENDED = "ended"  # the run returned
    CLOSED = "closed"  # freed


class Server:
    """A TCP or UDP server, or a client loop, with a Python or built-in handler.

    Make one with `Server.tcp`, `Server.udp`, `Server.client_loop` or
    `Server.from_argv`; keyword arguments beyond the documented ones are
    fields of `sockflow_server_config` (max_conns, idle_timeout_ms,
    max_queue, mode, handle_signals, backlog, quiet, max_per_ip,
    incomplete_timeout_ms, memory_budget, udp_peers, workers), and `log`:
    a function log(level, text) that gets the server's log lines instead of
    stderr, on sockflow's log thread (a `LogLevel` and the line without its
    `NAME: ` prefix). Run it one way:
    `run()`; or `start()`, then `stop()` and `join()`; or `turn()` from
    your own loop. `close()` (or `with`) frees it.
    """

    @classmethod
    def tcp(cls, handler=None, host=None, port=0, *, frame="line", quit=None,
            on_connect=None, on_message=None, on_close=None, **config):
        """A TCP server on host (None = 0.0.0.0) and port (0 = any free port: see `port`)."""
        h = handler_of(handler, on_connect, on_message, on_close)
        return cls(lib.sockflow_tcp_server_new, _server_args(host, port, frame, quit), h, config, udp=False)

    @classmethod
    def udp(cls, handler=None, host=None, port=0, *, frame="raw", quit=None,
            on_connect=None, on_message=None, on_close=None, **config):
        """A UDP server: on_message per datagram (on_connect/on_close per sender with udp_peers=1)."""
        h = handler_of(handler, on_connect, on_message, on_close)
        return cls(lib.sockflow_udp_server_new, _server_args(host, port, frame, quit), h, config, udp=True)

    @classmethod
    def client_loop(cls, handler=None, *, frame="line", quit=None,
                    on_connect=None, on_message=None, on_close=None, **config):
        """A loop without a listener: its connections are the ones `connect` opens."""
        h = handler_of(handler, on_connect, on_message, on_close)
        return cls(lib.sockflow_client_loop_new, _server_args(None, 0, frame, quit), h, config, udp=False)

    @classmethod
    def from_argv(cls, argv, handler=None, *, udp=False, raw=False,
                  on_connect=None, on_message=None, on_close=None, **config):
        """A server from a command line (`[options] [host] <port>`, as the C
        examples take it); a bad one raises Error EUSAGE after printing the usage."""
        from .flows import parse_args

        h = handler_of(handler, on_connect, on_message, on_close)
        args = parse_args(argv, C.Role.SERVER, raw=raw)
        new = lib.sockflow_udp_server_new if udp else lib.sockflow_tcp_server_new
        return cls(new, args, h, config, udp=udp)

    def __init__(self, new, args, handler, config, udp):
        cfg = C.sockflow_server_config()
        check(lib.sockflow_server_config_init(ctypes.byref(cfg)))
        log = config.pop("log", None)
        names = {f for f, _ in C.sockflow_server_config._fields_} - {"log", "log_fn", "log_userdata"}
        for k, v in config.items():
            if k not in names:
                raise TypeError("unknown server setting %r (known: log, %s)" % (k, ", ".join(sorted(names))))
            setattr(cfg, k, int(v))
        self._cb, struct = callbacks_of(handler, per_datagram=udp and not cfg.udp_peers)
        if log is not None:
            cfg.log_fn = self._cb.log_fn(log)
        self._ptr = None
        self._state = _State.NEW
        self._done = threading.Event()
        self._join_lock = threading.Lock()
        self._result = None
        out = ctypes.POINTER(C.sockflow_server)()
        check(new(ctypes.byref(args), ctypes.byref(cfg), struct, None, ctypes.byref(out)))
        self._ptr = out
        _servers.add(self)

    def _h(self):
        if self._state is _State.CLOSED:
            raise ValueError("the server is closed")
        return self._ptr

    def _in_own_callback(self):
        return getattr(_tls, "current", None) is self._cb

    def _raise_interrupt(self):
        e, self._cb.interrupt = self._cb.interrupt, None
        if e is not None:
            raise e

    # --- running -----------------------------------------------------------------

    def run(self):
        """Runs until stopped (`stop()`, a callback's Action.STOP, a timer's).
        Callbacks run on the server's thread while this one waits; Ctrl-C
        stops the server (connections closed, on_close called), then raises."""
        try:
            self.start()
            self._wait_done()
        except BaseException:
            self._stop_and_join()
            raise
        self._raise_result()

    def start(self):
        """Runs the server on a thread of its own and returns at once."""
        h = self._h()
        # RUNNING before the loop starts: its first callbacks may come at once.
        prev, self._state = self._state, _State.RUNNING
        rc = lib.sockflow_server_start(h)
        if rc < 0:
            self._state = prev
            check(rc)
        # _thread: threading.Thread.start() waits, and a Ctrl-C there would
        # leave a running server behind.
        _thread.start_new_thread(self._join_once, ())

    def _join_once(self):
        """sockflow_server_join, once, by whichever thread comes first (the
        joining thread, or one that stops the server after an interruption)."""
        with self._join_lock:
            if self._state is not _State.RUNNING:
                return
            rc = lib.sockflow_server_join(self._ptr)
            self._result = error(rc) if rc < 0 else None
            self._state = _State.ENDED
            self._done.set()

    def _stop_and_join(self):
        if self._state is _State.RUNNING:
            lib.sockflow_server_stop(self._ptr)
            self._join_once()

    def _wait_done(self):
        # In short waits: a signal delivered to one of sockflow's threads
        # (the kernel picks any) does not wake a lock wait of the main thread,
        # so Ctrl-C is seen at the next timeout, unlike inside a call into C.
        while not self._done.wait(0.25):
            pass

    def _raise_result(self):
        self._raise_interrupt()
        if self._result is not None:
            raise self._result

    def join(self):
        """Waits until a started server has stopped; raises what ended it
        (Ctrl-C meanwhile stops it first)."""
        if self._in_own_callback():
            raise Error(Code.EBUSY, "join: called from the server's own callback, it would wait for itself")
        if self._state is _State.NEW:
            raise Error(Code.EBADHANDLE, "join: the server was not started")
        try:
            self._wait_done()
        except BaseException:
            self._stop_and_join()
            raise
        self._raise_result()

    def stop(self):
        """Asks the server to stop gracefully; returns at once. Any thread, callbacks too."""
        if self._state is not _State.CLOSED:
            check(lib.sockflow_server_stop(self._ptr))

    def turn(self, timeout_ms=C.FOREVER):
        """One bounded turn from your own loop (poll `fileno()` for reading
        with `timeout()` ms first). Callbacks run on this thread. Returns
        `Turn.RUNNING` or `Turn.STOPPED`."""
        rc = check(lib.sockflow_server_turn(self._h(), timeout_ms))
        self._raise_interrupt()
        return Turn(rc)

    def fileno(self):
        return check(lib.sockflow_server_fd(self._h()))

    def timeout(self):
        """ms until the next turn is due without an event (FOREVER = none)."""
        ms = ctypes.c_int(C.FOREVER)
        check(lib.sockflow_server_timeout(self._h(), ctypes.byref(ms)))
        return ms.value

    def close(self):
        """Stops the server if it runs, waits for it, and frees it. Not from
        its own callbacks (call stop() there)."""
        if self._state is _State.CLOSED or self._ptr is None:
            return
        if self._in_own_callback():
            raise RuntimeError("close() from the server's own callback: call stop(), close after run/join")
        self._stop_and_join()
        ptr, self._ptr, self._state = self._ptr, None, _State.CLOSED
        lib.sockflow_server_close(ptr)
        if self._cb.logging:
            # sockflow_server_close leaves a log call of more than 2 s running:
            # its callback object must outlive this server.
            _lingering.append(self._cb)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- controls: any thread, callbacks too ---------------------------------------

    @property
    def port(self):
        return check(lib.sockflow_server_port(self._h()))

    def send_to(self, id, msg):
        b = as_bytes(msg)
        check(lib.sockflow_server_send_to(self._h(), id, b, len(b)))

    def broadcast(self, msg):
        b = as_bytes(msg)
        check(lib.sockflow_server_broadcast(self._h(), b, len(b)))

    def close_id(self, id, mode=CloseMode.FLUSH):
        check(lib.sockflow_server_close_id(self._h(), id, mode))

    def conn_count(self):
        return check(lib.sockflow_server_conn_count(self._h()))

    def conn_ids(self):
        """The ids of the open connections, oldest first (a snapshot)."""
        cap = 0
        while True:
            ids = (ctypes.c_uint64 * max(cap, 1))()
            n = check(lib.sockflow_server_conn_ids(self._h(), ids, cap))
            if n <= cap:
                return list(ids[:n])
            cap = n + 16

    def peer(self, id):
        a = C.sockflow_addr()
        check(lib.sockflow_server_peer(self._h(), id, ctypes.byref(a)))
        return addr_of(a)

    def stats(self):
        """The server's counters (all workers together), as a dict of the
        `sockflow_stats` fields; `closed` maps each CloseReason to its count."""
        st = C.sockflow_stats()
        check(lib.sockflow_server_stats(self._h(), ctypes.byref(st)))
        counts = {f: getattr(st, f) for f, _ in C.sockflow_stats._fields_ if f != "closed"}
        counts["closed"] = {CloseReason(i + 1): st.closed[i] for i in range(C.CLOSE_REASONS)}
        return counts

    def set_idle_timeout(self, id, timeout_ms):
        check(lib.sockflow_server_set_idle_timeout(self._h(), id, timeout_ms))

    def connect(self, host, port, timeout_ms=C.FOREVER, user=None):
        """Opens an outgoing connection on this loop; returns its id at once
        (on_connect when connected, on_close with CONNECT_FAILED if not).
        `host` may be "unix:PATH" or "unix:@NAME" (port 0)."""
        return self._cb.connect(lambda key, out: lib.sockflow_server_connect(self._h(), as_cstr(host), port, timeout_ms, key, out), user)

    def connect_args(self, args, user=None):
        """As connect, to what a client's `sockflow_args` (`parse_args(...,
        role=Role.CLIENT)`) describes: host or unix:, port, timeout, and
        its TLS options (the handshake runs on the loop; a failed one is
        on_close with CONNECT_FAILED and conn.error code ETLS)."""
        return self._cb.connect(lambda key, out: lib.sockflow_server_connect_args(self._h(), ctypes.byref(args), key, out), user)

    def timer_add(self, after_ms, fn, repeat_ms=0):
        """Calls fn() on the loop thread after after_ms, then every repeat_ms
        (0 = once) while it returns None/Action.CONTINUE. Returns the timer id."""
        return self._cb.add_timer(self._h(), after_ms, repeat_ms, fn)

    def timer_cancel(self, timer_id):
        check(lib.sockflow_server_timer_cancel(self._h(), timer_id))
        self._cb.forget_timer(timer_id)
