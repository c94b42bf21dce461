"""The C declarations of include/sockflow.h as ctypes: constants, enums,
structs and callback types.

Written by hand but never trusted by hand: tests/test_signatures.py parses
the header and fails when a value, a field or a type here differs from it,
so a change of the C API cannot silently corrupt memory on the Python side
(a struct that is too small here would be overrun by sockflow_*_init).
"""

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_int,
    c_size_t,
    c_uint,
    c_uint64,
    c_void_p,
)
from enum import IntEnum

# --- #define constants (without their SOCKFLOW_ prefix) ----------------------

VERSION = "0.2.0"
VERSION_MAJOR = 0
VERSION_MINOR = 2
VERSION_PATCH = 0
FOREVER = -1
IP_MAX = 46
HOST_MAX = 256
QUIT_MAX = 64
PROG_MAX = 64
TLS_PATH_MAX = 1024
ARGS_QUIET = 256
ARGS_RAW = 512
CLOSE_REASONS = 8


class Code(IntEnum):
    """Return codes: SOCKFLOW_OK and the negative SOCKFLOW_E... errors."""

    OK = 0
    EINVAL = -1
    EADDR = -2
    ERESOLVE = -3
    EADDRINUSE = -4
    EACCES = -5
    ECONNREFUSED = -6
    ETIMEDOUT = -7
    ECLOSED = -8
    EMSGSIZE = -9
    EAGAIN = -10
    EBADHANDLE = -11
    EPANIC = -12
    EOS = -13
    ECONNRESET = -14
    EUSAGE = -15
    EHELP = -16
    EBUSY = -17
    ETLS = -18


# --- enums: class Name mirrors `sockflow_name`, members drop SOCKFLOW_NAME_ ---


class Frame(IntEnum):
    LINE = 0
    RAW = 1
    FIXED = 2
    LEN32 = 3


class Role(IntEnum):
    SERVER = 1
    CLIENT = 2


class Family(IntEnum):
    ANY = 0
    V4 = 4
    V6 = 6


class Builtin(IntEnum):
    NONE = 0
    PRINT = 1
    ECHO = 2
    HELLO = 3
    UPPER = 4


class Action(IntEnum):
    """What a callback returns (None from a Python callback is CONTINUE)."""

    CONTINUE = 0
    CLOSE = 1
    STOP = 2
    ABORT = -1


class CloseReason(IntEnum):
    PEER = 1
    QUIT = 2
    IDLE = 3
    ERROR = 4
    STOPPING = 5
    HANDLER = 6
    OVERFLOW = 7
    CONNECT_FAILED = 8


class Mode(IntEnum):
    EVENT_LOOP = 0
    THREAD_PER_CONNECTION = 1


class Turn(IntEnum):
    RUNNING = 0
    STOPPED = 1


class CloseMode(IntEnum):
    FLUSH = 0
    NOW = 1


class LogLevel(IntEnum):
    ERROR = 1
    WARN = 2
    INFO = 3


ENUMS = (Frame, Role, Family, Builtin, Action, CloseReason, Mode, Turn, CloseMode, LogLevel)

# --- opaque handles ---------------------------------------------------------


class sockflow_conn(Structure):
    pass


class sockflow_server(Structure):
    pass


class sockflow_tcp(Structure):
    pass


class sockflow_tcp_listener(Structure):
    pass


class sockflow_udp(Structure):
    pass


OPAQUE = (sockflow_conn, sockflow_server, sockflow_tcp, sockflow_tcp_listener, sockflow_udp)

# --- callbacks ----------------------------------------------------------------
# `msg` is POINTER(c_char), not c_char_p: c_char_p would stop at the first NUL
# of a binary message; the bytes are taken with ctypes.string_at(msg, len).

sockflow_on_connect = CFUNCTYPE(c_int, c_void_p, POINTER(sockflow_conn))
sockflow_on_message = CFUNCTYPE(c_int, c_void_p, POINTER(sockflow_conn), POINTER(c_char), c_size_t)
sockflow_on_close = CFUNCTYPE(None, c_void_p, POINTER(sockflow_conn), c_int)
sockflow_timer_fn = CFUNCTYPE(c_int, c_void_p, POINTER(sockflow_server), c_uint64)
sockflow_log_fn = CFUNCTYPE(None, c_void_p, c_int, ctypes.c_char_p)

CALLBACKS = (sockflow_on_connect, sockflow_on_message, sockflow_on_close, sockflow_timer_fn, sockflow_log_fn)

# --- structs --------------------------------------------------------------------


class sockflow_args(Structure):
    _fields_ = [
        ("role", c_int),
        ("host", c_char * HOST_MAX),
        ("port", c_int),
        ("family", c_int),
        ("frame", c_int),
        ("frame_size", c_uint),
        ("quit", c_char * QUIT_MAX),
        ("timeout_ms", c_int),
        ("prog", c_char * PROG_MAX),
        ("max_per_ip", c_int),
        ("workers", c_int),
        ("stats", c_int),
        ("mode", c_int),
        ("tls", c_int),
        ("tls_ca", c_char * TLS_PATH_MAX),
        ("tls_cert", c_char * TLS_PATH_MAX),
        ("tls_key", c_char * TLS_PATH_MAX),
        ("tls_client_ca", c_char * TLS_PATH_MAX),
    ]


class sockflow_addr(Structure):
    _fields_ = [("ip", c_char * IP_MAX), ("port", c_int), ("family", c_int)]


class sockflow_handler(Structure):
    _fields_ = [
        ("on_connect", sockflow_on_connect),
        ("on_message", sockflow_on_message),
        ("on_close", sockflow_on_close),
        ("builtin", c_int),
    ]


class sockflow_server_config(Structure):
    _fields_ = [
        ("max_conns", c_int),
        ("idle_timeout_ms", c_int),
        ("max_queue", c_size_t),
        ("mode", c_int),
        ("handle_signals", c_int),
        ("backlog", c_int),
        ("log", c_void_p),  # FILE *
        ("quiet", c_int),
        ("log_fn", sockflow_log_fn),
        ("log_userdata", c_void_p),
        ("max_per_ip", c_int),
        ("incomplete_timeout_ms", c_int),
        ("memory_budget", c_size_t),
        ("udp_peers", c_int),
        ("workers", c_int),
    ]


class sockflow_stats(Structure):
    _fields_ = [
        ("conns_open", c_uint64),
        ("conns_total", c_uint64),
        ("conns_refused", c_uint64),
        ("msgs_in", c_uint64),
        ("bytes_in", c_uint64),
        ("msgs_out", c_uint64),
        ("bytes_out", c_uint64),
        ("closed", c_uint64 * CLOSE_REASONS),
        ("dropped", c_uint64),
        ("queued_bytes", c_uint64),
    ]


STRUCTS = (sockflow_args, sockflow_addr, sockflow_handler, sockflow_server_config, sockflow_stats)

# Shorthands for the signature table.
P = POINTER
FILE_P = c_void_p
ARGV = POINTER(ctypes.c_char_p)
