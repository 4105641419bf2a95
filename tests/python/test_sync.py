import os
import signal
import subprocess
import sys
import time

import pytest

import shmlink
from conftest import run_py


def test_mutex_lock_unlock_timeout(addr):
    s = shmlink.Segment(addr(), create=True, size=4096)
    m = shmlink.Mutex(s, 0, create=True)
    with m:
        assert m.state()["state"] == "held"
    assert m.lock(timeout=0)
    m.unlock()
    with pytest.raises(ValueError):
        shmlink.Mutex(s, 3)  # misaligned
    with pytest.raises(ValueError):
        shmlink.Mutex(s, 4096)  # past the end
    with pytest.raises(BufferError):
        s.close()  # the mutex holds an export
    m.close()
    s.close()


def test_mutex_timeout_and_owner_died(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=4096)
    m = shmlink.Mutex(s, 0, create=True)
    code = (f"import shmlink, os, sys\ns = shmlink.Segment({a!r})\nm = shmlink.Mutex(s, 0)\n"
            "m.lock()\nprint('locked', flush=True)\nsys.stdin.readline()\nos._exit(0)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=a):
            m.lock(timeout=0.2)
        assert 0.15 < time.monotonic() - t0 < 2
        p.kill()
        p.wait(10)
        with pytest.raises(shmlink.OwnerDied):
            m.lock(timeout=5)
        m.consistent()  # we hold it
        m.unlock()
        assert m.lock(timeout=1)
        m.unlock()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    m.close()
    s.close()


def test_event_and_semaphore_across_processes(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=4096)
    e = shmlink.Event(s, 64, create=True)
    sem = shmlink.Semaphore(s, 128, value=0, create=True)
    g = e.generation
    code = (f"import shmlink\ns = shmlink.Segment({a!r})\n"
            "e = shmlink.Event(s, 64); sem = shmlink.Semaphore(s, 128)\n"
            "sem.post(); sem.post(); e.notify()\n")
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    assert e.wait(g, 5) == g + 1
    assert e.wait(timeout=0, seen=g - 1) == g + 1  # keywords, in any order
    assert sem.value == 2
    sem.wait(0)
    sem.wait(1)
    with pytest.raises(TimeoutError):
        sem.wait(0.05)
    with pytest.raises(TimeoutError):
        e.wait(timeout=0.05)
    # C's order, shml_event_wait(e, seen, timeout_ns): the generation first, then the timeout
    with pytest.raises(TimeoutError):
        e.wait(g + 1, 0.05)
    e.close()
    sem.close()
    s.close()
