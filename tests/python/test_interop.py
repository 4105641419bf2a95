"""C <-> Python for every channel kind, with the shmlink tool as the C side."""
import subprocess
import time

import pytest

import shmlink


def wait_attached(a, n, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if shmlink.info(a)["channel"]["attached"] >= n:
            return
        time.sleep(0.01)
    raise TimeoutError(a)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


@pytest.mark.parametrize("kind", ["queue", "latest"])
def test_c_to_python_and_back(addr, cli, kind):
    a = addr()
    cls = {"queue": shmlink.Queue, "latest": shmlink.Latest}[kind]
    with cls(a, create=True, max_msg=256) as ch:
        r = run([cli, "send", a, "from C"])
        assert r.returncode == 0, r.stderr
        assert ch.recv(5) == b"from C"
        ch.send(b"from Python")
        r = run([cli, "recv", a, "-n", "1", "--timeout", "5"])
        assert r.returncode == 0 and r.stdout == "from Python\n", r.stderr


def test_bus_both_ways(addr, cli, procs):
    a = addr()
    with shmlink.Bus(a, create=True, max_msg=256) as pub:
        p = subprocess.Popen([cli, "recv", a, "-n", "2", "--timeout", "10"],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        wait_attached(a, 2)
        pub.send(b"py1")
        pub.send(b"py2")
        out, _ = p.communicate(timeout=20)
        assert out == "py1\npy2\n"
    with shmlink.Bus(a, role="subscriber") as sub:
        r = run([cli, "send", a, "c1", "c2"])
        assert r.returncode == 0, r.stderr
        assert [sub.recv(5), sub.recv(5)] == [b"c1", b"c2"]


def test_rpc_both_ways(addr, cli, procs):
    a = addr()
    with shmlink.RPC(a, create=True, max_msg=256) as srv:
        p = subprocess.Popen([cli, "send", a, "question", "--timeout", "10"],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert srv.recv(10) == b"question"
        srv.send(b"answer")
        out, _ = p.communicate(timeout=20)
        assert out == "answer\n"
    b = addr()
    run([cli, "mk", "rpc", b]).check_returncode()
    p = subprocess.Popen([cli, "serve", b, "--echo", "-n", "1", "--timeout", "10"],
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    wait_attached(b, 1)  # the server is there before the request
    with shmlink.RPC(b, role="client") as cl:
        assert cl.call(b"echo me", timeout=10) == b"echo me"
    p.communicate(timeout=20)


def test_inspect_matches_tool(addr, cli):
    import json
    a = addr()
    with shmlink.Queue(a, create=True) as q:
        q.send(b"x")
        tool = json.loads(run([cli, "info", "--json", a]).stdout)
        mine = shmlink.info(a)
        assert set(mine) == set(tool)
        assert set(mine["channel"]) == set(tool["channel"])
        for k in ("address", "backend", "kind_name", "size", "mode", "creator_pid", "label"):
            assert mine[k] == tool[k], k
        assert mine["channel"]["sent"] == tool["channel"]["sent"] == 1
        listed = {s["address"]: s for s in shmlink.ls()}
        tl = {s["address"]: s for s in json.loads(run([cli, "ls", "--json"]).stdout)["segments"]}
        assert set(listed[mine["address"]]) == set(tl[mine["address"]])
        g = shmlink.gc(dry_run=True)
        assert g["dry_run"] is True and all(s["address"] != mine["address"]
                                            for s in g["removed"])


def test_typed_channel_type_in_info(addr, cli):
    """The type a Python creator stores is what the tool and info() show, and what C reads."""
    import json
    import numpy as np
    a = addr()
    dt = np.dtype([("seq", "<u8"), ("t", "<f8"), ("px", "u1", (4,))], align=True)
    with shmlink.Latest(a, create=True, dtype=dt, shape=(2, 3)) as ch:
        t = json.loads(run([cli, "info", "--json", a]).stdout)["channel"]["type"]
        assert t == shmlink.info(a)["channel"]["type"] == ch.stats()["type"]
        assert t["itemsize"] == dt.itemsize == 24 and t["shape"] == [2, 3]
        with shmlink.Latest(a) as reader:  # an opener rebuilds the creator's dtype from it
            assert reader.dtype == dt and reader.shape == (2, 3)
        text = run([cli, "info", a]).stdout
        assert f"type:         {t['format']}, shape [2, 3], items of 24 bytes, 144 bytes a " \
               "message\n" in text, text
    b = addr()
    with shmlink.Queue(b, create=True) as q:
        assert shmlink.info(b)["channel"]["type"] is None and q.stats()["type"] is None
        assert "type:" not in run([cli, "info", b]).stdout
