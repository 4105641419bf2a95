"""Ctrl-C during a blocking call: KeyboardInterrupt within a bound."""
import os
import signal
import subprocess
import sys
import time

import pytest

import shmlink

# The child installs Python's own SIGINT handler: a test runner started in the background
# by a shell passes SIGINT on ignored, and Python then leaves it so.
CODE = """
import shmlink, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
{setup}
print("ready", flush=True)
t0 = time.monotonic()
try:
    {call}
except KeyboardInterrupt:
    print("interrupted %.3f" % (time.monotonic() - t0), flush=True)
    sys.exit(0)
print("returned", flush=True)
"""


CASES = ["queue", "queue_send", "bus", "latest", "rpc", "rpc_no_server", "sem", "event",
         "mutex", "mutex_spin", "segment_wait", "channel_wait"]


def setup_case(what, a, keep):
    """The child's setup and the call that blocks in it, for case `what` on address `a`."""
    if what == "queue":
        keep.append(shmlink.Queue(a, create=True))
        return f"ch = shmlink.Queue({a!r})", "ch.recv()"
    if what == "queue_send":
        q = shmlink.Queue(a, create=True, capacity=256, max_msg=64)
        with pytest.raises(TimeoutError):
            for _ in range(10):
                q.send(b"x", timeout=0)
        keep.append(q)
        return f"ch = shmlink.Queue({a!r}, role='producer')", "ch.send(b'y')"
    if what == "bus":
        keep.append(shmlink.Bus(a, create=True))
        return f"ch = shmlink.Bus({a!r})", "ch.recv()"
    if what == "latest":
        keep.append(shmlink.Latest(a, create=True))
        keep[0].send(b"v")
        return f"ch = shmlink.Latest({a!r}, role='reader')\nch.recv()", "ch.recv()"
    if what == "rpc":
        keep.append(shmlink.RPC(a, create=True))
        return f"ch = shmlink.RPC({a!r}); ch.send(b'q')", "ch.recv()"
    if what == "rpc_no_server":
        shmlink.RPC(a, create=True).close()
        return f"ch = shmlink.RPC({a!r}, timeout=None)", "ch.send(b'q')"
    if what in ("sem", "event", "mutex"):
        s = shmlink.Segment(a, create=True, size=4096)
        shmlink.Semaphore(s, 0, create=True).close()
        shmlink.Event(s, 64, create=True).close()
        m = shmlink.Mutex(s, 128, create=True)
        keep.append(s)
        setup = (f"s = shmlink.Segment({a!r}); m = shmlink.Semaphore(s, 0); "
                 f"e = shmlink.Event(s, 64); x = shmlink.Mutex(s, 128)")
        if what == "mutex":
            m.lock()  # held by this process for the whole test
            keep.append(m)
        return setup, {"sem": "m.wait()", "event": "e.wait()", "mutex": "x.lock()"}[what]
    if what == "segment_wait":
        return "", f"shmlink.Segment({a!r}, timeout=None)"
    if what == "channel_wait":
        return "", f"shmlink.Queue({a!r}, timeout=None)"
    keep.append(shmlink.Queue(a, create=True, wait="spin"))
    return f"ch = shmlink.Queue({a!r}, wait='spin')", "ch.recv()"


def interrupt_child(procs, template, what, a, sig):
    """Run `template` in a child blocked in case `what` on `a`, send it `sig` once it is well
    inside the call, and return its stdout, stderr and the seconds from the signal to its end."""
    keep = []
    setup, call = setup_case(what, a, keep)
    p = subprocess.Popen([sys.executable, "-c", template.format(setup=setup, call=call)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # well inside the blocking call
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=10)
    elapsed = time.monotonic() - t0
    for k in reversed(keep):
        if isinstance(k, shmlink.Mutex):
            k.unlock()
        k.close()
    return out, err, elapsed


@pytest.mark.parametrize("what", CASES)
def test_ctrl_c_interrupts_blocking_call(addr, procs, what):
    out, err, elapsed = interrupt_child(procs, CODE, what, addr(), signal.SIGINT)
    assert out.startswith("interrupted"), (out, err)
    # Process start-up excluded: the wait answers at once (a mutex within 20 ms); the bound is
    # loose because the machine may be loaded, and a wait that ignores SIGINT takes 10 s.
    assert elapsed < 5.0


HANDLERS = """
import os, shmlink, signal, sys, time
seen = []
def note(sig, frame):
    seen.append(sig)
    print("handled", len(seen), flush=True)
def refuse(sig, frame):
    raise ValueError("refused")
signal.signal(signal.SIGUSR1, note)
{install}
ch = shmlink.Queue({addr!r})
print("ready", flush=True)
try:
    msg = ch.recv(timeout=20)
except ValueError as e:
    print("raised", e, flush=True)
    sys.exit(0)
print("got", bytes(msg).decode(), "after", len(seen), "handled", flush=True)
"""


@pytest.mark.parametrize("install", ["", "signal.signal(signal.SIGINT, signal.SIG_IGN)",
                                     "signal.signal(signal.SIGINT, refuse)"])
def test_signal_handlers_run_during_a_wait(addr, procs, install):
    """A handler that returns lets the wait go on; one that raises ends it; SIG_IGN ignores."""
    a = addr()
    q = shmlink.Queue(a, create=True)
    p = subprocess.Popen([sys.executable, "-c", HANDLERS.format(install=install, addr=a)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    for i in range(1, 4):
        p.send_signal(signal.SIGUSR1)
        line = p.stdout.readline().strip()  # one at a time: none coalesce
        if line != f"handled {i}":
            p.kill()
            pytest.fail(f"signal {i}: {line!r}, exit {p.wait()}, stderr {p.stderr.read()!r}")
    if "refuse" in install:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        assert out.strip() == "raised refused", (out, err)
    else:
        if install:
            p.send_signal(signal.SIGINT)  # ignored: nothing to wait for
        q.send(b"m")
        out, err = p.communicate(timeout=10)
        assert out.strip() == "got m after 3 handled", (out, err)
    q.close()


STOP = """
import shmlink, signal, sys
def stop(sig, frame):
    raise RuntimeError("stopped")
signal.signal(signal.SIGTERM, stop)
{setup}
print("ready", flush=True)
try:
    {call}
except RuntimeError:
    print("raised", flush=True)
    sys.exit(0)
print("returned", flush=True)
"""


@pytest.mark.parametrize("what", ["mutex", "mutex_spin", "queue"])
def test_any_python_handler_ends_a_wait(addr, procs, what):
    """Not only SIGINT: a handler of another signal runs while the call waits, even where a
    signal interrupts no sleep (a mutex lock resumes after it; a spin never sleeps)."""
    out, err, _ = interrupt_child(procs, STOP, what, addr(), signal.SIGTERM)
    assert out.strip() == "raised", (out, err)


def test_a_wait_is_one_sleep(addr):
    """No polling in slices: the endpoint sleeps once for the whole timeout."""
    with shmlink.Queue(addr(), create=True) as q:
        with pytest.raises(TimeoutError):
            q.recv(timeout=0.5)
        assert q.stats()["sleeps"] == 1


def test_timeout_bounds(addr):
    with shmlink.Queue(addr(), create=True) as q:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            q.recv(timeout=0.3)
        assert 0.25 < time.monotonic() - t0 < 5.0  # loose above: a loaded machine
