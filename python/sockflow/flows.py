"""Command lines and the one-call flows.

Each `*_run(argv, ...)` is the C example of the same name in one call:
`argv` is a list like `sys.argv` (program name first), errors are printed
by sockflow itself (`prog: what failed: why`), and the result is the process
exit status (0, 1, or 2 for a bad command line), so a script is

    import sys, sockflow
    sys.exit(sockflow.tcp_client_run(sys.argv))

The client flows read `stdin` and print to `stdout`: None means the
process's own; a file object or descriptor may be given instead (sockflow
reads and writes its descriptor, through a duplicate).
"""

import contextlib
import ctypes
import os
import signal
import sys
import threading

from . import _ctypes as C
from ._lib import Error, as_cstr, check, lib
from .server import handler_of, callbacks_of

# fdopen/fclose for the FILE * arguments (libc, already in the process).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fdopen.restype = ctypes.c_void_p
_libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
_libc.fclose.restype = ctypes.c_int
_libc.fclose.argtypes = [ctypes.c_void_p]


def _argv(argv):
    items = [as_cstr(a) for a in argv]
    return (ctypes.c_char_p * (len(items) + 1))(*items, None), len(items)


def parse_args(argv, role=C.Role.SERVER, raw=False, quiet=False):
    """Parses a command line as the C examples do (`sockflow_args_parse`):
    returns the `sockflow_args` struct (fields host, port, frame, quit,
    timeout_ms, ...). Raises Error EUSAGE (usage printed unless quiet), or
    EHELP after printing the help."""
    arr, n = _argv(argv)
    flags = int(role) | (C.ARGS_RAW if raw else 0) | (C.ARGS_QUIET if quiet else 0)
    args = C.sockflow_args()
    check(lib.sockflow_args_parse(ctypes.byref(args), n, arr, flags))
    return args


def take_int(argv, name, default):
    """Takes a program's own `NAME N` option out of the list argv (in place,
    before parse_args) and returns N, or default when it is absent."""
    arr, n = _argv(argv)
    argc, out = ctypes.c_int(n), ctypes.c_int()
    check(lib.sockflow_args_take_int(ctypes.byref(argc), arr, as_cstr(name), default, ctypes.byref(out)))
    text = any(isinstance(a, str) for a in argv)
    argv[:] = [arr[i].decode() if text else arr[i] for i in range(argc.value)]
    return out.value


@contextlib.contextmanager
def _cfile(f, mode):
    """A FILE * on a duplicate of f's descriptor (None: NULL, the default)."""
    if f is None:
        yield None
        return
    if hasattr(f, "flush"):
        f.flush()
    fd = os.dup(f if isinstance(f, int) else f.fileno())
    fp = _libc.fdopen(fd, mode)
    if not fp:
        os.close(fd)
        raise OSError(ctypes.get_errno(), "fdopen")
    try:
        yield fp
    finally:
        _libc.fclose(fp)


def _client_flow(fn, role, argv, stdin, stdout):
    try:
        args = parse_args(argv, role)
    except Error as e:
        return lib.sockflow_exit_code(e.code)
    sys.stdout.flush()
    with _cfile(stdin, b"r") as i, _cfile(stdout, b"w") as o:
        return lib.sockflow_exit_code(fn(ctypes.byref(args), i, o))


def tcp_client_run(argv, stdin=None, stdout=None):
    """`tcp_client <host> <port>`: each input line sent, replies printed."""
    return _client_flow(lib.sockflow_tcp_client_run, C.Role.CLIENT, argv, stdin, stdout)


def udp_client_run(argv, stdin=None, stdout=None):
    """`udp_client <host> <port>`: each input line one datagram, replies printed."""
    return _client_flow(lib.sockflow_udp_client_run, C.Role.CLIENT, argv, stdin, stdout)


def chat_server_run(argv, stdin=None, stdout=None):
    """`chat_server [host] <port>`: one client, both sides type."""
    return _client_flow(lib.sockflow_chat_server_run, C.Role.SERVER, argv, stdin, stdout)


def chat_client_run(argv, stdin=None, stdout=None):
    """`chat_client <host> <port>`: both sides type."""
    return _client_flow(lib.sockflow_chat_client_run, C.Role.CLIENT, argv, stdin, stdout)


def _server_flow(fn, argv, handler, raw, udp):
    h = handler_of(handler, None, None, None)
    try:
        args = parse_args(argv, C.Role.SERVER, raw=raw)
    except Error as e:
        return lib.sockflow_exit_code(e.code)
    cb, struct = callbacks_of(h, per_datagram=udp)
    # sockflow handles SIGINT/SIGTERM while it runs (a graceful stop, exit
    # 0) and also calls the handler it found, which would make Python raise
    # KeyboardInterrupt once the run returns: Python's handlers do nothing
    # meanwhile, and are given back afterwards.
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    for s in saved:
        signal.signal(s, _stopping_anyway)
    try:
        rc = fn(ctypes.byref(args), struct, None)
    finally:
        for s, h in saved.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
    e, cb.interrupt = cb.interrupt, None
    if e is not None:
        raise e
    return lib.sockflow_exit_code(rc)


def _stopping_anyway(signum, frame):
    """Python's handler of SIGINT/SIGTERM while sockflow stops the server on them."""


def tcp_server_run(argv, handler="print", raw=False):
    """`tcp_server [host] <port>` with a Python or built-in handler, on this
    thread (callbacks too); SIGINT/SIGTERM stop it gracefully (exit 0)."""
    return _server_flow(lib.sockflow_tcp_server_run, argv, handler, raw, udp=False)


def udp_server_run(argv, handler="print", raw=False):
    """`udp_server [host] <port>`: on_message per datagram."""
    return _server_flow(lib.sockflow_udp_server_run, argv, handler, raw, udp=True)
