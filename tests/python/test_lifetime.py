"""Lifetimes and waiting for a creator, from Python: a segment or channel outlives the program
that made it (gc never takes it), an owned one is gc's once its creator and users are gone,
opens wait for what does not exist yet, and an rpc request with no server fails at once unless
the client waits for one."""
import subprocess
import sys
import threading
import time

import pytest

import shmlink


def run(code, timeout=60):
    p = subprocess.run([sys.executable, "-c", "import shmlink, time\n" + code],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def later(code, procs):
    """Run code in a child that starts it after 0.3 s; the test reaps it."""
    p = subprocess.Popen([sys.executable, "-c", "import shmlink, time\ntime.sleep(0.3)\n" + code],
                         stdin=subprocess.PIPE, text=True)
    procs.append(p)
    return p


def removed_by_gc(addr):
    canon = shmlink.info(addr)["address"]
    return any(s["address"] == canon for s in shmlink.gc(dry_run=True)["removed"])


def test_written_then_exited_is_kept_for_a_later_reader(addr):
    a = addr()
    run(f"s = shmlink.Segment({a!r}, create=True, size=64)\ns.buf[:5] = b'hello'\ns.close()")
    q = addr()
    run(f"q = shmlink.Queue({q!r}, create=True)\nq.send(b'job')\nq.close()")
    for x in (a, q):
        assert shmlink.info(x)["gc"]["verdict"] == "persistent"
        assert not removed_by_gc(x)
    s = shmlink.Segment(a)
    assert bytes(s.buf[:5]) == b"hello"
    s.close()
    with shmlink.Queue(q, role="consumer") as c:
        assert c.recv(timeout=1) == b"job"


def test_owned_goes_once_creator_and_users_are_gone(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=64, owned=True)
    info = shmlink.info(a)
    assert info["flags"] & 0x40 and info["gc"] == {
        "verdict": "in_use", "remove": False, "why": "owned: its creator is alive"}
    s.close()
    with pytest.raises(ValueError):
        shmlink.Segment(a, owned=True)
    b = addr()
    run(f"s = shmlink.Segment({b!r}, create=True, size=64, owned=True)\ns.close()")
    assert shmlink.info(b)["gc"]["verdict"] == "orphaned"
    assert removed_by_gc(b)
    q = addr()
    run(f"q = shmlink.Queue({q!r}, create=True, owned=True)\nq.close()")
    assert shmlink.info(q)["gc"]["remove"]


def test_open_waits_for_the_creator(addr, procs):
    a = addr()
    with pytest.raises(FileNotFoundError):
        shmlink.Segment(a)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        shmlink.Segment(a, timeout=0.2)
    assert time.monotonic() - t0 >= 0.15
    p = later(f"s = shmlink.Segment({a!r}, create=True, size=64)\ns.buf[0] = 7\n"
              "import sys\nsys.stdin.readline()", procs)
    s = shmlink.Segment(a, timeout=20)
    assert s.size == 64
    s.close()
    p.communicate("\n", timeout=20)


def test_consumer_started_before_producer(addr, procs):
    q = addr()
    got = []

    def consume():
        with shmlink.Queue(q, role="consumer", timeout=None) as c:
            got.append(c.recv(timeout=20))

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    p = later(f"q = shmlink.Queue({q!r}, create=True)\nq.send(b'first')\n"
              "import sys\nsys.stdin.readline()", procs)
    t.join(30)
    assert not t.is_alive() and got == [b"first"]
    p.communicate("\n", timeout=20)


def test_rpc_without_server(addr, procs):
    r = addr()
    shmlink.RPC(r, create=True).close()
    with shmlink.RPC(r) as c:
        with pytest.raises(ConnectionError):
            c.call(b"ping", timeout=5)
    with shmlink.RPC(r, timeout=None) as c:
        with pytest.raises(TimeoutError):
            c.send(b"ping", timeout=0.1)
        p = later(f"with shmlink.RPC({r!r}, role='server') as s:\n"
                  "    req = s.recv(timeout=20)\n    s.send(req.upper(), timeout=20)\n", procs)
        assert c.call(b"ping", timeout=20) == b"PING"
        p.wait(20)


def test_init_builds_the_segment_before_anyone_opens_it(addr):
    a = addr()
    seen = []

    def build(seg):
        with pytest.raises(FileNotFoundError):  # not visible yet, to anyone
            shmlink.Segment(a)
        m = shmlink.Mutex(seg, 0, create=True)
        seg.declare("lock", "mutex", 0)
        seg.buf[64:69] = b"ready"
        m.close()
        seen.append(True)

    with shmlink.Segment(a, create=True, size=4096, init=build) as seg:
        assert seen == [True]
        out = run(f"s = shmlink.Segment({a!r})\nm = shmlink.Mutex(s, 0)\nm.lock(timeout=5)\n"
                  "print(bytes(s.buf[64:69]).decode())\nm.unlock()\nm.close()\ns.close()")
        assert out == "ready\n"
        assert shmlink.info(a)["declared"][0]["name"] == "lock"

    b = addr()

    def fails(seg):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        shmlink.Segment(b, create=True, size=64, init=fails)
    with pytest.raises(FileNotFoundError):
        shmlink.Segment(b)
    with pytest.raises(ValueError):
        shmlink.Segment(b, init=fails)  # init is for create


def test_init_that_raises_keeping_a_view_leaves_no_name_and_no_dangling_view(addr):
    a = addr()
    kept = []

    def keeps_a_view(seg):
        kept.append(seg.buf)
        kept[0][:2] = b"ok"
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        shmlink.Segment(a, create=True, size=64, init=keeps_a_view)
    with pytest.raises(FileNotFoundError):
        shmlink.Segment(a)
    assert bytes(kept[0][:2]) == b"ok"  # still mapped: the view never dangles
    kept[0].release()


def test_non_root_gc_keeps_what_another_users_process_may_map(addr, procs):
    """gc as nobody cannot read root's /proc/PID/maps: an owned segment of nobody's whose
    creator is gone, which a root process maps (raw, so no attach entry says so), is kept:
    "cannot tell" is not "nobody maps it". Root, who can tell, takes it once unmapped."""
    import os
    import shutil
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv, to act as nobody")
    a = addr()
    env = dict(os.environ)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 sys.executable, "-c"]

    def nobody(code):
        p = subprocess.run(as_nobody + ["import shmlink\n" + code], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    nobody(f"s = shmlink.Segment({a!r}, create=True, size=4096, owned=True, mode=0o644)\n"
           "s.close()")
    holder = later(f"s = shmlink.Segment({a!r}, raw=True, readonly=True)\n"
                   f"open('/dev/shm/' + {a!r} + '.mapped', 'w').close()\n"
                   "import sys\nsys.stdin.readline()", procs)
    marker = "/dev/shm/" + a + ".mapped"
    for _ in range(200):
        if os.path.exists(marker):
            break
        time.sleep(0.05)
    os.unlink(marker)
    gone = f"print(any(s['address'].endswith({a!r}) for s in shmlink.gc(dry_run=True)['removed']))"
    assert nobody(gone) == "False\n"
    why = nobody(f"print(shmlink.info({a!r})['gc']['why'])")
    assert why in ("owned: another user's process may map it (cannot tell)\n",
                   "owned: a process maps it\n"), why
    assert not removed_by_gc(a)  # root sees the mapping
    holder.communicate("\n", timeout=20)
    assert removed_by_gc(a)      # and, once it is gone, that nobody maps it
