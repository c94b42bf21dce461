"""sockflow for Python: TCP and UDP through libsockflow.so, over ctypes.

    import sockflow

    class Upper(sockflow.Handler):
        def on_message(self, conn, msg):
            conn.send(msg.upper())

    with sockflow.Server.tcp(Upper(), "127.0.0.1", 9000) as server:
        server.run()                      # Ctrl-C stops it

* Primitives (`prim`): `TcpStream`, `TcpListener`, `Udp`.
* Servers and client loops with Python handlers (`server`): `Server`,
  `Handler`, `Conn`; see that module for exceptions, threads and the GIL.
* One-call flows (`flows`): `tcp_client_run(argv)`, `udp_client_run`,
  `chat_server_run`, `chat_client_run`, `tcp_server_run(argv, handler)`,
  `udp_server_run`; `parse_args`, `take_int`.
* Errors: every failure raises `Error` (`.code`, a `Code`; `.message`,
  what failed and why; `.errno`).
* Constants and enums as in include/sockflow.h without the SOCKFLOW_
  prefix: `FOREVER` (-1: no time limit, for every *_ms argument), `Action`,
  `CloseReason`, `CloseMode`, `Frame`, `Mode`, `Role`, `Family`, `Turn`.

The library is found as `_lib` documents: `SOCKFLOW_LIB`, then a checkout's
target/release and target/debug, then the system loader. `LIBRARY` is the
file that was loaded.
"""

from ._ctypes import (
    FOREVER,
    VERSION,
    Action,
    Builtin,
    CloseMode,
    CloseReason,
    Code,
    Family,
    Frame,
    LogLevel,
    Mode,
    Role,
    Turn,
)
from ._lib import LIBRARY, Error, last_error, lib, strerror
from .flows import (
    chat_client_run,
    chat_server_run,
    parse_args,
    take_int,
    tcp_client_run,
    tcp_server_run,
    udp_client_run,
    udp_server_run,
)
from .prim import Addr, TcpListener, TcpStream, Udp
from .server import Conn, Handler, Server

__version__ = VERSION

__all__ = [
    "FOREVER", "VERSION", "LIBRARY", "Action", "Builtin", "CloseMode", "CloseReason", "Code",
    "Family", "Frame", "LogLevel", "Mode", "Role", "Turn", "Error", "last_error", "lib", "strerror",
    "chat_client_run", "chat_server_run", "parse_args", "take_int", "tcp_client_run",
    "tcp_server_run", "udp_client_run", "udp_server_run", "Addr", "TcpListener", "TcpStream",
    "Udp", "Conn", "Handler", "Server",
]
