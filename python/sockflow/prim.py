"""The blocking primitives: TcpStream, TcpListener, Udp.

Thin classes over the C handles with the C semantics (see README, "API
conventions"): every failure raises `sockflow.Error`; timeouts are in
milliseconds with `FOREVER` (-1) for no limit; one thread may receive while
another sends on the same handle. Each is a context manager and closes its
handle once (on `close()`, at the end of a `with`, or when collected).
Calls release the GIL while they wait, so other Python threads run.
"""

import ctypes
from collections import namedtuple

from . import _ctypes as C
from ._lib import as_bytes, as_cstr, check, lib

Addr = namedtuple("Addr", "ip port family")
Addr.__doc__ = "A peer's address: ip (str), port (int), family (4 or 6)."


def addr_of(a):
    return Addr(a.ip.decode(), a.port, a.family)


class _Handle:
    """Owns one C handle and frees it exactly once with `_close_fn`."""

    _close_fn = None

    def __init__(self, ptr):
        self._ptr = ptr

    def _h(self):
        if not self._ptr:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._ptr

    def close(self):
        ptr, self._ptr = self._ptr, None
        if ptr:
            type(self)._close_fn(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ptr", None):
            self.close()


class TcpStream(_Handle):
    """A connected TCP stream with a message frame ("line" unless set)."""

    _close_fn = lib.sockflow_tcp_close

    @classmethod
    def connect(cls, host, port, timeout_ms=C.FOREVER, frame=None):
        """Connects to host:port (each address tried, each bounded by
        timeout_ms; FOREVER = the OS's limit)."""
        out = ctypes.POINTER(C.sockflow_tcp)()
        check(lib.sockflow_tcp_connect(as_cstr(host), port, timeout_ms, ctypes.byref(out)))
        s = cls(out)
        if frame is not None:
            s.set_frame(frame)
        return s

    @classmethod
    def connect_args(cls, args):
        """Connects to the host, port, timeout and frame of parsed `Args`."""
        out = ctypes.POINTER(C.sockflow_tcp)()
        check(lib.sockflow_tcp_connect_args(ctypes.byref(args), ctypes.byref(out)))
        return cls(out)

    def set_frame(self, spec):
        """"line", "raw", "fixed:N", "len32" (":MAX" sets the longest)."""
        check(lib.sockflow_tcp_set_frame(self._h(), as_cstr(spec)))

    def set_timeouts(self, recv_ms=C.FOREVER, send_ms=C.FOREVER):
        """Receive and send limits in ms (FOREVER = none; 0 is EINVAL);
        an expired one raises Error with code ETIMEDOUT."""
        check(lib.sockflow_tcp_set_timeouts(self._h(), recv_ms, send_ms))

    def send(self, data):
        """Sends every byte of data (str is sent as UTF-8)."""
        b = as_bytes(data)
        check(lib.sockflow_tcp_send(self._h(), b, len(b)))

    def recv(self, cap=65536):
        """One read of at most cap bytes; b"" once the peer has closed."""
        buf = ctypes.create_string_buffer(cap)
        n = lib.sockflow_tcp_recv(self._h(), buf, cap)
        if n == C.Code.ECLOSED:
            return b""
        return buf.raw[: check(n)]

    def send_msg(self, msg):
        """Sends one message through the frame (a line gets its newline)."""
        b = as_bytes(msg)
        check(lib.sockflow_tcp_send_msg(self._h(), b, len(b)))

    def recv_msg(self):
        """Receives exactly one message, as bytes, whatever its length.
        At the end of the stream raises Error with code ECLOSED (its message
        says whether a fixed/len32 frame was cut short)."""
        n = check(lib.sockflow_tcp_recv_msg(self._h(), None, 0))
        buf = ctypes.create_string_buffer(n + 1)
        n = check(lib.sockflow_tcp_recv_msg(self._h(), buf, n + 1))
        return buf.raw[:n]

    def flush(self):
        """Sends what a non-blocking send kept (EAGAIN while some remain)."""
        check(lib.sockflow_tcp_flush(self._h()))

    def shutdown(self):
        """Half-closes: the peer sees the end of the stream; receiving goes on."""
        check(lib.sockflow_tcp_shutdown(self._h()))

    @property
    def peer(self):
        a = C.sockflow_addr()
        check(lib.sockflow_tcp_peer(self._h(), ctypes.byref(a)))
        return addr_of(a)

    def fileno(self):
        return check(lib.sockflow_tcp_fd(self._h()))


class TcpListener(_Handle):
    """A listening TCP socket (SO_REUSEADDR; port 0 = any free port)."""

    _close_fn = lib.sockflow_tcp_listener_close

    @classmethod
    def listen(cls, host="127.0.0.1", port=0, backlog=0):
        out = ctypes.POINTER(C.sockflow_tcp_listener)()
        check(lib.sockflow_tcp_listen(as_cstr(host), port, backlog, ctypes.byref(out)))
        return cls(out)

    @classmethod
    def listen_args(cls, args):
        """Listens on the host and port of parsed `Args`; accepted streams get their frame."""
        out = ctypes.POINTER(C.sockflow_tcp_listener)()
        check(lib.sockflow_tcp_listen_args(ctypes.byref(args), ctypes.byref(out)))
        return cls(out)

    def accept(self, timeout_ms=C.FOREVER):
        """Waits up to timeout_ms (FOREVER = no limit, 0 = just check) for a
        client: returns (TcpStream, Addr); Error ETIMEDOUT when none came."""
        out = ctypes.POINTER(C.sockflow_tcp)()
        a = C.sockflow_addr()
        check(lib.sockflow_tcp_accept(self._h(), timeout_ms, ctypes.byref(out), ctypes.byref(a)))
        return TcpStream(out), addr_of(a)

    @property
    def port(self):
        return check(lib.sockflow_tcp_listener_port(self._h()))

    def fileno(self):
        return check(lib.sockflow_tcp_listener_fd(self._h()))


class Udp(_Handle):
    """A UDP socket: bound (`Udp.bind`) or connected to one peer (`Udp.connect`)."""

    _close_fn = lib.sockflow_udp_close

    @classmethod
    def bind(cls, host="127.0.0.1", port=0):
        out = ctypes.POINTER(C.sockflow_udp)()
        check(lib.sockflow_udp_bind(as_cstr(host), port, ctypes.byref(out)))
        return cls(out)

    @classmethod
    def connect(cls, host, port):
        out = ctypes.POINTER(C.sockflow_udp)()
        check(lib.sockflow_udp_connect(as_cstr(host), port, ctypes.byref(out)))
        return cls(out)

    @classmethod
    def bind_args(cls, args):
        out = ctypes.POINTER(C.sockflow_udp)()
        check(lib.sockflow_udp_bind_args(ctypes.byref(args), ctypes.byref(out)))
        return cls(out)

    @classmethod
    def connect_args(cls, args):
        out = ctypes.POINTER(C.sockflow_udp)()
        check(lib.sockflow_udp_connect_args(ctypes.byref(args), ctypes.byref(out)))
        return cls(out)

    def set_frame(self, spec):
        check(lib.sockflow_udp_set_frame(self._h(), as_cstr(spec)))

    def set_timeouts(self, recv_ms=C.FOREVER, send_ms=C.FOREVER):
        check(lib.sockflow_udp_set_timeouts(self._h(), recv_ms, send_ms))

    def set_broadcast(self, on=True):
        check(lib.sockflow_udp_set_broadcast(self._h(), int(bool(on))))

    def join(self, group, iface=None):
        check(lib.sockflow_udp_join(self._h(), as_cstr(group), as_cstr(iface)))

    def leave(self, group, iface=None):
        check(lib.sockflow_udp_leave(self._h(), as_cstr(group), as_cstr(iface)))

    def send_to(self, data, host, port):
        b = as_bytes(data)
        check(lib.sockflow_udp_send_to(self._h(), b, len(b), as_cstr(host), port))

    def send(self, data):
        b = as_bytes(data)
        check(lib.sockflow_udp_send(self._h(), b, len(b)))

    def recv_from(self, cap=65536):
        """One datagram and its sender: (bytes, Addr). A datagram longer than
        cap raises Error EMSGSIZE (never a silent cut)."""
        buf = ctypes.create_string_buffer(cap)
        a = C.sockflow_addr()
        n = check(lib.sockflow_udp_recv_from(self._h(), buf, cap, ctypes.byref(a)))
        return buf.raw[:n], addr_of(a)

    def recv(self, cap=65536):
        return self.recv_from(cap)[0]

    @property
    def port(self):
        return check(lib.sockflow_udp_port(self._h()))

    def fileno(self):
        return check(lib.sockflow_udp_fd(self._h()))
