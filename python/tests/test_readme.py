"""The README's Python server ("From Python") runs as written (on a free
port instead of 9000): it uppercases what the C tcp_client sends, and
Ctrl-C stops it with a KeyboardInterrupt."""

import re
import signal

from conftest import ROOT, example, python_child


def readme_server():
    text = (ROOT / "README.md").read_text()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_server(spawn):
    code = readme_server()
    assert len(code.strip().splitlines()) <= 10 and '"127.0.0.1", 9000' in code
    p = python_child(code.replace('"127.0.0.1", 9000', '"127.0.0.1", 0'), spawn=spawn)
    port = int(p.wait_out(rb"listening on port (\d+)\n").group(1))
    c = spawn([example("tcp_client"), "127.0.0.1", str(port)], stdin=b"from the readme\n")
    assert c.wait_exit() == 0, bytes(c.err)
    assert bytes(c.out) == b"FROM THE README\n"
    p.signal(signal.SIGINT)
    rc = p.wait_exit()
    assert rc == -signal.SIGINT and b"KeyboardInterrupt" in bytes(p.err), (rc, bytes(p.err))
