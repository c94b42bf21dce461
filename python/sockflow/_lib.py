"""Finding libsockflow.so, declaring every function's signature once, and
turning negative return codes into `sockflow.Error`.

Search order (the first that loads wins; `sockflow.LIBRARY` tells which):

1. `SOCKFLOW_LIB`, when set: the path of the library to load. Nothing else is
   tried, so a wrong path is an error instead of a silent fallback.
2. From a checkout of the repository (this file under `<repo>/python/`):
   `<repo>/target/release/libsockflow.so`, then `<repo>/target/debug/...`
   (what `make` and `cargo build` produce).
3. The system loader: the soname `libsockflow.so.0.<minor>` (found through
   `LD_LIBRARY_PATH`, `/etc/ld.so.cache` after `ldconfig`, the default
   directories), then whatever `ctypes.util.find_library("sockflow")` finds.
   That is how an installed library (`make install PREFIX=...`) is found.

The library's major.minor must be the package's: the C structs changed
between 0.1 and 0.2, and a mismatch would corrupt memory, so it is refused.
"""

import ctypes
import ctypes.util
import os
from ctypes import c_char_p, c_int, c_size_t, c_ssize_t, c_uint, c_uint64, c_void_p
from pathlib import Path

from . import _ctypes as C
from ._ctypes import (
    ARGV,
    FILE_P,
    P,
    sockflow_addr,
    sockflow_args,
    sockflow_conn,
    sockflow_handler,
    sockflow_server,
    sockflow_server_config,
    sockflow_stats,
    sockflow_tcp,
    sockflow_tcp_listener,
    sockflow_timer_fn,
    sockflow_udp,
)

SONAME = "libsockflow.so.%d.%d" % (C.VERSION_MAJOR, C.VERSION_MINOR)

_args = P(sockflow_args)
_addr = P(sockflow_addr)
_conn = P(sockflow_conn)
_server = P(sockflow_server)
_tcp = P(sockflow_tcp)
_listener = P(sockflow_tcp_listener)
_udp = P(sockflow_udp)
_cfg = P(sockflow_server_config)
_u64p = P(c_uint64)

# Every function of include/sockflow.h: name, return type, argument types.
# One table, applied once at load; tests/test_signatures.py checks it against
# the header, both ways (nothing missing, nothing extra, every type equal).
SIGNATURES = [
    # args
    ("sockflow_args_parse", c_int, [_args, c_int, ARGV, c_int]),
    ("sockflow_args_init", c_int, [_args, c_int, c_char_p, c_int]),
    ("sockflow_args_set_frame", c_int, [_args, c_char_p]),
    ("sockflow_args_take_int", c_int, [P(c_int), ARGV, c_char_p, c_int, P(c_int)]),
    # one-call flows
    ("sockflow_tcp_client_run", c_int, [_args, FILE_P, FILE_P]),
    ("sockflow_udp_client_run", c_int, [_args, FILE_P, FILE_P]),
    ("sockflow_chat_server_run", c_int, [_args, FILE_P, FILE_P]),
    ("sockflow_chat_client_run", c_int, [_args, FILE_P, FILE_P]),
    ("sockflow_tcp_server_run", c_int, [_args, sockflow_handler, c_void_p]),
    ("sockflow_udp_server_run", c_int, [_args, sockflow_handler, c_void_p]),
    # errors
    ("sockflow_strerror", c_char_p, [c_int]),
    ("sockflow_last_error", c_size_t, [c_char_p, c_size_t]),
    ("sockflow_last_error_code", c_int, []),
    ("sockflow_last_errno", c_int, []),
    ("sockflow_exit_code", c_int, [c_int]),
    ("sockflow_perror", c_int, [c_char_p, c_int]),
    ("sockflow_version", c_char_p, []),
    # built-in handlers
    ("sockflow_handler_print", sockflow_handler, []),
    ("sockflow_handler_echo", sockflow_handler, []),
    ("sockflow_handler_hello", sockflow_handler, []),
    ("sockflow_handler_upper", sockflow_handler, []),
    # inside callbacks
    ("sockflow_conn_send", c_int, [_conn, c_void_p, c_size_t]),
    ("sockflow_conn_send_str", c_int, [_conn, c_char_p]),
    ("sockflow_conn_broadcast", c_int, [_conn, c_void_p, c_size_t, c_int]),
    ("sockflow_conn_send_to", c_int, [_conn, c_uint64, c_void_p, c_size_t]),
    ("sockflow_conn_relay", c_int, [_conn, c_uint64, c_void_p, c_size_t]),
    ("sockflow_conn_close_id", c_int, [_conn, c_uint64]),
    ("sockflow_conn_connect", c_int, [_conn, c_char_p, c_int, c_int, c_void_p, _u64p]),
    ("sockflow_conn_connect_args", c_int, [_conn, _args, c_void_p, _u64p]),
    ("sockflow_conn_error", c_int, [_conn]),
    ("sockflow_conn_stop_server", c_int, [_conn]),
    ("sockflow_conn_id", c_uint64, [_conn]),
    ("sockflow_conn_worker", c_int, [_conn]),
    ("sockflow_conn_peer", c_int, [_conn, _addr]),
    ("sockflow_conn_peer_cred", c_int, [_conn, P(c_int), P(c_uint), P(c_uint)]),
    ("sockflow_conn_user", c_void_p, [_conn]),
    ("sockflow_conn_set_user", c_int, [_conn, c_void_p]),
    # servers
    ("sockflow_server_config_init", c_int, [_cfg]),
    ("sockflow_tcp_server_new", c_int, [_args, _cfg, sockflow_handler, c_void_p, P(_server)]),
    ("sockflow_udp_server_new", c_int, [_args, _cfg, sockflow_handler, c_void_p, P(_server)]),
    ("sockflow_client_loop_new", c_int, [_args, _cfg, sockflow_handler, c_void_p, P(_server)]),
    ("sockflow_server_connect", c_int, [_server, c_char_p, c_int, c_int, c_void_p, _u64p]),
    ("sockflow_server_connect_args", c_int, [_server, _args, c_void_p, _u64p]),
    ("sockflow_server_run", c_int, [_server]),
    ("sockflow_server_start", c_int, [_server]),
    ("sockflow_server_join", c_int, [_server]),
    ("sockflow_server_stop", c_int, [_server]),
    ("sockflow_server_close", None, [_server]),
    ("sockflow_server_port", c_int, [_server]),
    ("sockflow_server_send_to", c_int, [_server, c_uint64, c_void_p, c_size_t]),
    ("sockflow_server_broadcast", c_int, [_server, c_void_p, c_size_t]),
    ("sockflow_server_turn", c_int, [_server, c_int]),
    ("sockflow_server_fd", c_int, [_server]),
    ("sockflow_server_timeout", c_int, [_server, P(c_int)]),
    ("sockflow_server_close_id", c_int, [_server, c_uint64, c_int]),
    ("sockflow_server_conn_count", c_ssize_t, [_server]),
    ("sockflow_server_conn_ids", c_ssize_t, [_server, _u64p, c_size_t]),
    ("sockflow_server_peer", c_int, [_server, c_uint64, _addr]),
    ("sockflow_server_set_idle_timeout", c_int, [_server, c_uint64, c_int]),
    ("sockflow_server_stats", c_int, [_server, P(sockflow_stats)]),
    ("sockflow_server_timer_add", c_int, [_server, c_int, c_int, sockflow_timer_fn, c_void_p, _u64p]),
    ("sockflow_server_timer_cancel", c_int, [_server, c_uint64]),
    # TCP primitives
    ("sockflow_tcp_listen", c_int, [c_char_p, c_int, c_int, P(_listener)]),
    ("sockflow_tcp_listen_args", c_int, [_args, P(_listener)]),
    ("sockflow_tcp_accept", c_int, [_listener, c_int, P(_tcp), _addr]),
    ("sockflow_tcp_listener_port", c_int, [_listener]),
    ("sockflow_tcp_listener_fd", c_int, [_listener]),
    ("sockflow_tcp_listener_close", None, [_listener]),
    ("sockflow_tcp_connect", c_int, [c_char_p, c_int, c_int, P(_tcp)]),
    ("sockflow_tcp_connect_args", c_int, [_args, P(_tcp)]),
    ("sockflow_tcp_set_frame", c_int, [_tcp, c_char_p]),
    ("sockflow_tcp_set_timeouts", c_int, [_tcp, c_int, c_int]),
    ("sockflow_tcp_send", c_int, [_tcp, c_void_p, c_size_t]),
    ("sockflow_tcp_recv", c_ssize_t, [_tcp, c_void_p, c_size_t]),
    ("sockflow_tcp_send_msg", c_int, [_tcp, c_void_p, c_size_t]),
    ("sockflow_tcp_recv_msg", c_ssize_t, [_tcp, c_void_p, c_size_t]),
    ("sockflow_tcp_flush", c_int, [_tcp]),
    ("sockflow_tcp_peer", c_int, [_tcp, _addr]),
    ("sockflow_tcp_peer_cred", c_int, [_tcp, P(c_int), P(c_uint), P(c_uint)]),
    ("sockflow_tcp_fd", c_int, [_tcp]),
    ("sockflow_tcp_shutdown", c_int, [_tcp]),
    ("sockflow_tcp_close", None, [_tcp]),
    # UDP primitives
    ("sockflow_udp_bind", c_int, [c_char_p, c_int, P(_udp)]),
    ("sockflow_udp_bind_args", c_int, [_args, P(_udp)]),
    ("sockflow_udp_connect", c_int, [c_char_p, c_int, P(_udp)]),
    ("sockflow_udp_connect_args", c_int, [_args, P(_udp)]),
    ("sockflow_udp_set_frame", c_int, [_udp, c_char_p]),
    ("sockflow_udp_send_to", c_int, [_udp, c_void_p, c_size_t, c_char_p, c_int]),
    ("sockflow_udp_send", c_int, [_udp, c_void_p, c_size_t]),
    ("sockflow_udp_recv_from", c_ssize_t, [_udp, c_void_p, c_size_t, _addr]),
    ("sockflow_udp_set_timeouts", c_int, [_udp, c_int, c_int]),
    ("sockflow_udp_set_broadcast", c_int, [_udp, c_int]),
    ("sockflow_udp_join", c_int, [_udp, c_char_p, c_char_p]),
    ("sockflow_udp_leave", c_int, [_udp, c_char_p, c_char_p]),
    ("sockflow_udp_port", c_int, [_udp]),
    ("sockflow_udp_fd", c_int, [_udp]),
    ("sockflow_udp_close", None, [_udp]),
]


def candidates(environ=None, here=None):
    """The paths or names to try, in order (see the module doc). A generator:
    find_library, which runs ldconfig, is asked only when the others failed."""
    environ = os.environ if environ is None else environ
    lib = environ.get("SOCKFLOW_LIB")
    if lib:
        yield lib
        return
    repo = (Path(__file__).resolve() if here is None else Path(here)).parent.parent.parent
    if (repo / "Cargo.toml").is_file() and (repo / "include" / "sockflow.h").is_file():
        for profile in ("release", "debug"):
            yield str(repo / "target" / profile / "libsockflow.so")
    yield SONAME
    system = ctypes.util.find_library("sockflow")
    if system:
        yield system


def _load():
    tried = []
    for cand in candidates():
        if "/" in cand and not os.path.exists(cand):
            tried.append("%s: no such file" % cand)
            continue
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append(str(e))
            continue
        lib.sockflow_version.restype = c_char_p
        version = lib.sockflow_version().decode()
        if version.split(".")[:2] != C.VERSION.split(".")[:2]:
            tried.append("%s is version %s, this package needs %s" % (cand, version, C.VERSION))
            continue
        path = cand if "/" in cand else _loaded_path(lib, cand)
        return lib, path
    raise ImportError(
        "sockflow: libsockflow.so not found; tried, in order:\n  "
        + "\n  ".join(tried)
        + "\nSet SOCKFLOW_LIB=/path/to/libsockflow.so, build it in the checkout (make), "
        "or install it (make install PREFIX=...; then ldconfig, or LD_LIBRARY_PATH=PREFIX/lib)."
    )


def _loaded_path(lib, name):
    """The file a name loaded through the system loader resolved to."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "libsockflow" in line and "/" in line:
                    return line.split(None, 5)[-1].strip()
    except OSError:
        pass
    return name


def _declare(lib):
    for name, restype, argtypes in SIGNATURES:
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = argtypes
    return lib


lib, LIBRARY = _load()
_declare(lib)


class Error(Exception):
    """A sockflow call failed. `code` is the negative SOCKFLOW_E... value (a
    `sockflow.Code` when known), `message` what failed and why (the C
    library's last error on this thread), `errno` the OS errno behind an
    EOS error (else 0)."""

    def __init__(self, code, message=None, errno=0):
        try:
            code = C.Code(code)
        except ValueError:
            pass
        self.code = code
        self.message = message if message is not None else strerror(code)
        self.errno = errno
        name = code.name if isinstance(code, C.Code) else str(int(code))
        super().__init__("%s (SOCKFLOW_%s)" % (self.message, name))


def strerror(code):
    return lib.sockflow_strerror(int(code)).decode("utf-8", "replace")


def last_error():
    """This thread's last error message (empty when nothing failed yet)."""
    n = lib.sockflow_last_error(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    lib.sockflow_last_error(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def error(code):
    """An Error for `code`, with this thread's last message and errno."""
    return Error(code, last_error() or strerror(code), lib.sockflow_last_errno())


def check(rc):
    """Returns rc when >= 0, else raises the Error it stands for."""
    if rc < 0:
        raise error(rc)
    return rc


def as_bytes(data):
    """bytes for a message argument: bytes-like as is, str as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def as_cstr(s):
    """A char * argument: None stays NULL, str is UTF-8."""
    if s is None or isinstance(s, bytes):
        return s
    return str(s).encode()
