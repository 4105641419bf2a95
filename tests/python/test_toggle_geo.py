"""A peer with write access toggles geometry while Python uses it: the segment header's data
size and offset (docs/FORMAT.md, header offsets 24 and 12) and a channel's table offsets and
counts (control block offsets 16..63). What was validated at open is what is used: a Segment
keeps the size it checked, info() shows the true geometry or refuses it, an open channel
keeps working. The hostile peer and the side under test are subprocesses, so that a crash
shows as a signal exit, not as a dead pytest. The header's window (between the check of the
copy and a second read of the mapping) is short for processes that share a loaded machine:
tests/segment/test_toggle_hdr.c, with a thread, hits it reliably; here it is a second face."""
import json
import os
import struct
import subprocess
import sys

import pytest

import shmlink

RUN = "1.0"  # seconds of toggling per case

# The peer, the one tests/cli/toggle_geo.py is: flip one field (one store per value) between
# its value and hostile ones until SIGTERM, then leave the value it found.
TOGGLER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "toggle_geo.py")

SEGMENT_USER = r"""
import sys, time
import shmlink

addr, run = sys.argv[1], float(sys.argv[2])
opened = refused = 0
end = time.monotonic() + run
while time.monotonic() < end:
    try:
        seg = shmlink.Segment(addr)
    except shmlink.Corrupt:
        refused += 1
        continue
    with seg:
        assert seg.size == 8192, "Segment reports %d bytes of an 8192-byte segment" % seg.size
        assert len(seg.buf) == 8192, len(seg.buf)
        seg.buf[8191] = seg.buf[0] ^ 1
    opened += 1
print(opened, refused)
"""

CHANNEL_USER = r"""
import json, sys, time
import shmlink

addr, run = sys.argv[1], float(sys.argv[2])


def open_queue(role):
    # An open copies the geometry once: refused while a hostile value is there, or whole.
    for _ in range(100000):
        try:
            return shmlink.Queue(addr, role=role)
        except shmlink.Corrupt:
            pass
    raise AssertionError("every open was refused")


prod, cons = open_queue("producer"), open_queue("consumer")
want = json.loads(sys.argv[3])
rounds = 0
end = time.monotonic() + run
while time.monotonic() < end:
    msg = b"m%d" % rounds
    prod.send(msg, timeout=5)
    assert cons.recv(timeout=5) == msg
    try:
        ch = shmlink.info(addr)["channel"]
    except shmlink.Corrupt:
        ch = None
    if ch is not None and "slots" in ch:
        assert {k: ch[k] for k in want} == want, (ch, want)
    try:
        with shmlink.Queue(addr, role="consumer") as extra:
            assert extra.max_msg == want["max_msg"]
    except shmlink.Corrupt:
        pass
    rounds += 1
print(rounds)
"""


def _run_toggled(procs, path, off, width, values, user, args):
    """Run `user` (a script) with args while a peer toggles the field at `off` of `path`."""
    tog = subprocess.Popen([sys.executable, TOGGLER, "--toggle", path, str(off), str(width)] +
                           [str(v) for v in values], stdout=subprocess.PIPE, text=True)
    procs.append(tog)
    assert tog.stdout.readline() == "ready\n"
    try:
        r = subprocess.run([sys.executable, "-c", user] + args, capture_output=True, text=True,
                           timeout=60)
    finally:
        tog.terminate()
        assert tog.wait(timeout=30) == 0
    assert r.returncode == 0, "exit %d under a toggled field: %s" % (r.returncode, r.stderr)
    return r.stdout


@pytest.mark.parametrize("field,off,width,values", [
    ("size", 24, 8, [1 << 36, 1 << 62, 4096]),
    ("header_size", 12, 4, [1 << 20, 8192, 0]),
])
def test_segment_keeps_the_validated_size_and_offset(addr, procs, field, off, width, values):
    a = addr()
    with shmlink.Segment(a, create=True, size=8192) as seg:
        seg.buf[0] = 7
        out = _run_toggled(procs, "/dev/shm/" + a, off, width, values, SEGMENT_USER, [a, RUN])
    opened, refused = (int(x) for x in out.split())
    assert opened + refused > 0
    with shmlink.Segment(a) as seg:
        assert seg.size == 8192


@pytest.mark.parametrize("field,off,width,values", [
    ("ep_off", 48, 8, [1 << 40, 2**64 - 4096, 1 << 30]),
    ("slots_off", 32, 8, [1 << 40, 2**64 - 4096, 1 << 30]),
    ("nslots", 16, 4, [1 << 30, 1 << 31, 0xffffffff]),
    ("stride", 20, 4, [0xffffffc0, 1 << 30, 1 << 24]),
    ("nendpoints", 44, 4, [4096, 0xffffffff, 1 << 20]),
])
def test_channel_info_and_endpoints_keep_the_validated_geometry(addr, procs, field, off,
                                                               width, values):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64, capacity=1024):
        with shmlink.Segment(a, raw=True) as seg:  # the control block follows the header
            data = struct.unpack_from("<I", seg.buf, 12)[0]
        ch = shmlink.info(a)["channel"]
        want = {k: ch[k] for k in ("slots", "slot_size", "max_msg", "endpoints")}
        out = _run_toggled(procs, "/dev/shm/" + a, data + off, width, values, CHANNEL_USER,
                           [a, RUN, json.dumps(want)])
    assert int(out.split()[-1]) > 0
