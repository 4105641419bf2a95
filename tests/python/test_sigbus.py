"""An object truncated under Python's mappings (another process's ftruncate): the Segment's
bytes read as zeros, its calls and a channel's recv raise shmlink.Truncated, and the
interpreter does not die of SIGBUS, with faulthandler enabled (pytest enables it) and when
faulthandler is enabled again after a segment was mapped."""
import faulthandler
import os
import subprocess
import sys
import textwrap

import pytest

import shmlink


def _path(a):
    return "/dev/shm/" + a


def test_segment_truncated_under_buf(addr):
    assert faulthandler.is_enabled()  # as pytest runs us: our handler must come first
    a = addr()
    seg = shmlink.Segment(a, create=True, size=65536)
    seg.buf[:] = b"\x5a" * 65536
    os.truncate(_path(a), 0)
    assert seg.buf[60000] == 0  # faulted; the mapping is zeros now, not a crash
    seg.buf[60000] = 1
    with pytest.raises(shmlink.Truncated, match="truncated"):
        seg.check()
    with pytest.raises(shmlink.Truncated):
        seg.read(0, 16)
    with pytest.raises(shmlink.Truncated):
        seg.write(0, b"x")
    seg.close()


def test_recv_after_truncation(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64, capacity=4096) as q:
        with shmlink.Queue(a, role="consumer") as c:
            q.send(b"before")
            assert c.recv(1) == b"before"
            q.send(b"lost")
            os.truncate(_path(a), 0)
            with pytest.raises(shmlink.Truncated, match=a):
                c.recv(1)
            with pytest.raises(shmlink.Truncated):
                q.send(b"after")
            with pytest.raises(shmlink.Truncated):
                c.stats()


def test_faulthandler_enabled_after_mapping(addr):
    """faulthandler enabled after the first mapping goes on top of our handler; the next
    mapping puts ours back on top, and both segments survive their truncation."""
    a, b = addr(), addr()
    code = textwrap.dedent(f"""
        import faulthandler, os, shmlink
        s1 = shmlink.Segment({a!r}, create=True, size=8192)
        faulthandler.disable()
        faulthandler.enable()
        s2 = shmlink.Segment({b!r}, create=True, size=8192)
        os.truncate("/dev/shm/{a}", 0)
        os.truncate("/dev/shm/{b}", 0)
        assert s1.buf[100] == 0 and s2.buf[100] == 0
        for s in (s1, s2):
            try:
                s.check()
            except shmlink.Truncated:
                pass
            else:
                raise SystemExit("not Truncated")
            s.close()
        print("survived")
    """)
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "survived" in p.stdout and "Fatal Python error" not in p.stderr
