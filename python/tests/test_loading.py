"""Where the package finds libsockflow.so: SOCKFLOW_LIB alone when set, a
checkout's target/release and target/debug, then the system loader (an
installed copy of the package). And `pip install ./python` works."""

import os
import shutil
import subprocess
import sys

import pytest

import sockflow
from conftest import PYDIR, ROOT, secs
from sockflow import _lib

PRINT_LIBRARY = "import sockflow; print(sockflow.LIBRARY); print(sockflow.__file__)"


def run_python(code, env, cwd):
    """`python3 -c code` in cwd with exactly env (plus PATH); (rc, out, err)."""
    env = dict(env, PATH=os.environ.get("PATH", ""))
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(cwd), capture_output=True,
                       text=True, timeout=secs(60))
    return p.returncode, p.stdout, p.stderr


def test_sockflow_lib_is_the_only_candidate_when_set(tmp_path):
    assert list(_lib.candidates({"SOCKFLOW_LIB": "/x/libsockflow.so"})) == ["/x/libsockflow.so"]
    # Even from a checkout whose target/ holds a library: no silent fallback.
    missing = tmp_path / "nowhere" / "libsockflow.so"
    rc, _, err = run_python(PRINT_LIBRARY, {"PYTHONPATH": str(PYDIR), "SOCKFLOW_LIB": str(missing)}, tmp_path)
    assert rc != 0
    assert "ImportError" in err and str(missing) in err and "SOCKFLOW_LIB" in err


def test_the_library_named_by_sockflow_lib_is_the_one_loaded(tmp_path):
    copy = tmp_path / "libsockflow-copy.so"
    shutil.copy(sockflow.LIBRARY, copy)
    rc, out, err = run_python(PRINT_LIBRARY, {"PYTHONPATH": str(PYDIR), "SOCKFLOW_LIB": str(copy)}, tmp_path)
    assert rc == 0, err
    assert out.splitlines()[0] == str(copy)


def test_a_checkout_tries_target_release_then_debug_then_the_system():
    here = ROOT / "python" / "sockflow" / "_lib.py"
    got = list(_lib.candidates({}, here))
    assert got[:3] == [str(ROOT / "target" / "release" / "libsockflow.so"),
                       str(ROOT / "target" / "debug" / "libsockflow.so"), _lib.SONAME]


def test_an_installed_package_loads_the_installed_library_through_the_system_loader(tmp_path):
    """The package copied elsewhere (no checkout around it) and the library
    in a prefix's lib/ under its soname, found through LD_LIBRARY_PATH."""
    site, libdir = tmp_path / "site", tmp_path / "prefix" / "lib"
    shutil.copytree(PYDIR / "sockflow", site / "sockflow", ignore=shutil.ignore_patterns("__pycache__"))
    libdir.mkdir(parents=True)
    shutil.copy(sockflow.LIBRARY, libdir / ("libsockflow.so.%s" % sockflow.VERSION))
    os.symlink("libsockflow.so.%s" % sockflow.VERSION, libdir / _lib.SONAME)
    assert not any(c.startswith(str(tmp_path)) for c in _lib.candidates({}, site / "sockflow" / "_lib.py"))
    env = {"PYTHONPATH": str(site), "LD_LIBRARY_PATH": str(libdir)}
    rc, out, err = run_python(PRINT_LIBRARY, env, tmp_path)
    assert rc == 0, err
    library, module = out.splitlines()
    assert module.startswith(str(site)), "imported %s, not the installed copy" % module
    assert os.path.realpath(library) == os.path.realpath(libdir / ("libsockflow.so.%s" % sockflow.VERSION))
    # Without it, the error says what was tried and what to do.
    rc, _, err = run_python(PRINT_LIBRARY, {"PYTHONPATH": str(site)}, tmp_path)
    if rc != 0:  # (unless a libsockflow is installed system-wide on this machine)
        assert _lib.SONAME in err and "SOCKFLOW_LIB" in err and "make install" in err


def test_pip_install_of_the_python_directory(tmp_path):
    """`pip install ./python` (here into a target directory, offline: the
    build backend installed here, no build isolation)."""
    probe = subprocess.run([sys.executable, "-c", "import setuptools, pip"], capture_output=True, timeout=secs(60))
    if probe.returncode != 0:
        pytest.skip("pip or setuptools not installed")
    target = tmp_path / "target"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(PYDIR)],
                       capture_output=True, text=True, timeout=secs(300), cwd=str(tmp_path))
    if p.returncode != 0 and "wheel" in (p.stderr + p.stdout).lower() and "bdist_wheel" in p.stderr + p.stdout:
        pytest.skip("setuptools here cannot build a wheel without the wheel package: %s" % p.stderr[-300:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert (target / "sockflow" / "server.py").is_file()
    assert not list(target.glob("sockflow/*.so")), "the package is pure Python"
    rc, out, err = run_python(PRINT_LIBRARY, {"PYTHONPATH": str(target), "SOCKFLOW_LIB": sockflow.LIBRARY}, tmp_path)
    assert rc == 0, err
    assert out.splitlines()[1].startswith(str(target))
