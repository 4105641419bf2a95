"""shmlink.info() says what `shmlink info --json` says: the same keys and the same words, for
a plain segment with declared objects and for every channel kind with its endpoints."""
import json
import subprocess

import pytest

import shmlink

# An attach entry's role in the words of the segment's kind (include/shmlink/names.h).
WORDS = {"queue": ("producer", "consumer"), "bus": ("publisher", "subscriber"),
         "latest": ("writer", "reader"), "rpc": ("client", "server")}
VOLATILE = {"age_s"}  # seconds since creation: may tick between the two reads


def tool_info(cli, a):
    r = subprocess.run([cli, "info", "--json", a], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def compare(py, tool, kind, path=""):
    """Every key and value equal: the tool and Python take their words from the same name
    table (an attach role of a channel endpoint is the kind's word, never role#N)."""
    if isinstance(py, dict):
        assert isinstance(tool, dict) and set(py) == set(tool), (path, set(py) ^ set(tool))
        for k in py:
            if k not in VOLATILE:
                compare(py[k], tool[k], kind, f"{path}/{k}")
    elif isinstance(py, list):
        assert isinstance(tool, list) and len(py) == len(tool), path
        for i, (x, y) in enumerate(zip(py, tool)):
            compare(x, y, kind, f"{path}[{i}]")
    else:
        assert py == tool, (path, py, tool)


def test_plain_segment_with_declared_objects(addr, cli):
    a = addr()
    with shmlink.Segment(a, create=True, size=4096) as s:
        m = shmlink.Mutex(s, 0, create=True)
        e = shmlink.Event(s, 64, create=True)
        sem = shmlink.Semaphore(s, 128, value=2, create=True)
        s.declare("lock", "mutex", 0)
        s.declare("ready", "event", 64)
        s.declare("slots", "semaphore", 128)
        s.declare("later", "mutex", 256)  # not initialised: state unknown
        m.lock()
        e.notify()
        py = shmlink.info(a)
        compare(py, tool_info(cli, a), "plain")
        assert [d["type"] for d in py["declared"]] == ["mutex", "event", "sem", "mutex"]
        assert py["declared"][0]["state"] == "held" and py["declared"][1]["state"] is None
        assert py["declared"][1]["state_text"] == "generation 1, 0 waiters"
        m.unlock()
        compare(shmlink.info(a), tool_info(cli, a), "plain")
        for o in (m, e, sem):
            o.close()
    r = addr()
    shmlink.Segment(r, create=True, size=100, raw=True).close()
    py = shmlink.info(r)
    assert py["declared"] is None
    compare(py, tool_info(cli, r), "raw")


@pytest.mark.parametrize("cls,roles", [
    (shmlink.Queue, ["producer", "consumer", "both"]),
    (shmlink.Bus, ["publisher", "subscriber"]),
    (shmlink.Latest, ["writer", "reader"]),
    (shmlink.RPC, ["server", "client"]),
])
def test_channel_with_endpoints(addr, cli, cls, roles):
    a = addr()
    kind = cls.__name__.lower()
    with cls(a, create=True, max_msg=64) as c:
        handles = [cls(a, role=r) for r in roles]
        try:
            py = shmlink.info(a)
            compare(py, tool_info(cli, a), kind)
            snd, rcv = WORDS[kind]
            names = {e["role_name"] for e in py["channel"]["endpoint_table"]}
            assert {snd, rcv} <= names, names
            assert {snd, rcv} <= {x["role_name"] for x in py["attach"]}
        finally:
            for h in handles:
                h.close()
