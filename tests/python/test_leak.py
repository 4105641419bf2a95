"""10^5 round trips with stable memory: no reference or allocation leak."""
import gc
import sys
import tracemalloc

import pytest

import shmlink


def test_round_trips_stable_memory(addr):
    np = pytest.importorskip("numpy")
    with shmlink.Queue(addr(), create=True, max_msg=256) as q:
        msg = b"m" * 64

        def burst(n):
            for _ in range(n):
                q.send(msg)
                q.recv(1)
            for _ in range(n // 100):
                q.send_batch([msg] * 10)
                q.recv_batch(10, timeout=1)
                with q.claim(8) as v:
                    v[:1] = b"c"
                with q.recv_view(1) as v:
                    bytes(v)
            try:
                q.recv(0)
            except TimeoutError:
                pass

        burst(1000)
        gc.collect()
        tracemalloc.start()
        before_refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
        snap0 = tracemalloc.take_snapshot()
        burst(100000)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        growth = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
        assert growth < 64 * 1024, growth
        assert sys.getrefcount(msg) < 10


def test_error_paths_do_not_leak(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=16) as q:
        gc.collect()
        tracemalloc.start()
        s0 = tracemalloc.take_snapshot()
        for _ in range(20000):
            try:
                q.recv(0)
            except TimeoutError:
                pass
            try:
                q.send(b"x" * 17)
            except ValueError:
                pass
            try:
                shmlink.Segment(a + "-missing")
            except FileNotFoundError:
                pass
        gc.collect()
        s1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert sum(s.size_diff for s in s1.compare_to(s0, "filename")) < 64 * 1024
