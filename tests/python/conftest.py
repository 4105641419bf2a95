"""Fixtures for the shmlink Python tests: unique addresses removed after each test, the
shmlink tool as the C side of interop tests, bounded subprocesses."""
import os
import subprocess
import sys
import uuid

import pytest

import shmlink

CLI = os.environ.get("SHML_CLI", "")


@pytest.fixture
def addr():
    """A fresh POSIX address; whatever exists under it at the end is removed."""
    names = []

    def make(tag="t"):
        a = f"pyt-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        names.append(a)
        return a

    yield make
    for a in names:
        try:
            shmlink.unlink(a)
        except FileNotFoundError:
            pass


@pytest.fixture
def procs():
    """Subprocesses started through this list are killed and reaped at the end."""
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.fixture
def cli():
    if not CLI or not os.access(CLI, os.X_OK):
        pytest.skip("the shmlink tool is not built (SHML_CLI unset)")
    return CLI


def run_py(code, timeout=30, **kw):
    """Run `code` in a fresh interpreter with the same module path."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, **kw)
