"""Harness for the Python tests: the C examples to talk to, child processes
with bounded waits (killed by PID at the end of each test), loopback only.

Environment (set by tests/python.rs, which builds everything first):
* SOCKFLOW_LIB: the library under test (else the package's search order).
* SOCKFLOW_EXAMPLES: a directory holding the C example binaries (a missing
  one fails the test); else the checkout's build/, from `make` (a missing
  one skips it).
* SOCKFLOW_TEST_TIMEOUT_SCALE: multiplies every timeout.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYDIR = ROOT / "python"
sys.path.insert(0, str(PYDIR))  # the package of this checkout, installed or not
HOST = "127.0.0.1"
SCALE = float(os.environ.get("SOCKFLOW_TEST_TIMEOUT_SCALE", "1") or 1)


def secs(s):
    return s * SCALE


TIMEOUT = secs(20)
# udp_client --timeout: how long each line waits for its reply, and how long
# the client waits for late replies after its input ended.
UDP_REPLY_MS = str(int(secs(3) * 1000))


def example(name):
    """The path of C example `name`, or skip the test."""
    given = os.environ.get("SOCKFLOW_EXAMPLES")
    p = Path(given or ROOT / "build") / name
    if not p.is_file():
        if given:  # tests/python.rs builds every example it names: missing is a bug
            pytest.fail("%s missing from SOCKFLOW_EXAMPLES (add it to tests/python.rs EXAMPLES)" % p)
        pytest.skip("%s not built (run `make`, or `cargo test --test python`)" % p)
    return str(p)


def py_env(**extra):
    """The environment of a Python child that imports this package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYDIR) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    import sockflow

    env.setdefault("SOCKFLOW_LIB", sockflow.LIBRARY)
    env.update(extra)
    return env


class Proc:
    """A child with stdout/stderr collected by threads; waits are bounded.
    stdin: None (/dev/null), bytes (written, then end of file) or True (a
    pipe for `write` and `close_stdin`)."""

    def __init__(self, argv, stdin=None, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.p = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(stream, buf), daemon=True)
            for stream, buf in ((self.p.stdout, self.out), (self.p.stderr, self.err))
        ]
        for t in self.readers:
            t.start()
        if isinstance(stdin, bytes):
            self.p.stdin.write(stdin)
            self.p.stdin.close()

    def write(self, data):
        """Writes to a child started with stdin=True (kept open)."""
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def _read(self, stream, buf):
        while True:
            chunk = stream.read1(65536)
            with self.cond:
                if not chunk:
                    self.cond.notify_all()
                    return
                buf += chunk
                self.cond.notify_all()

    def _wait(self, pred, what, timeout):
        deadline = time.monotonic() + (timeout or TIMEOUT)
        with self.cond:
            while True:
                got = pred()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out waiting for %s\nstdout: %r\nstderr: %r"
                                         % (" ".join(self.argv), what, bytes(self.out), bytes(self.err)))
                self.cond.wait(min(left, 0.2))

    def wait_err(self, pattern, timeout=None):
        """The first match of regex `pattern` (bytes) in stderr."""
        return self._wait(lambda: re.search(pattern, bytes(self.err)), pattern, timeout)

    def wait_out(self, pattern, timeout=None):
        return self._wait(lambda: re.search(pattern, bytes(self.out)), pattern, timeout)

    def wait_listening(self):
        """The port of the `... listening on HOST port N` line."""
        return int(self.wait_err(rb"listening on \S+ port (\d+)").group(1))

    def wait_exit(self, timeout=None):
        """The exit status, with every output line read."""
        try:
            rc = self.p.wait(timeout or TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit\nstdout: %r\nstderr: %r"
                                 % (" ".join(self.argv), bytes(self.out), bytes(self.err)))
        for t in self.readers:  # the rest of its output (a child of it may hold a pipe: bounded)
            t.join(secs(5))
        return rc

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
        try:
            self.p.wait(secs(10))
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def spawn():
    """spawn(argv, stdin=None, env=None) -> Proc; all killed by PID after the test."""
    procs = []

    def start(argv, stdin=None, env=None, cwd=None):
        p = Proc(argv, stdin=stdin, env=env, cwd=cwd)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def c_server(spawn):
    """c_server(name, *args) -> (Proc, port): a C example server on loopback, port 0."""

    def start(name, *args):
        p = spawn([example(name), *args, HOST, "0"])
        return p, p.wait_listening()

    return start


def python_child(code, *args, stdin=None, spawn=None, **env):
    """`python3 -c code args...` importing this package."""
    return spawn([sys.executable, "-c", code, *args], stdin=stdin, env=py_env(**env))
