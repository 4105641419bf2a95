import asyncio
import errno
import gc
import subprocess
import sys
import textwrap

import pytest

import shmlink


def test_queue_send_recv_batch(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=128, capacity=4096) as q:
        q.send(b"one")
        q.send(bytearray(b"two"))
        q.send(memoryview(b"three"))
        assert [q.recv(0), q.recv(0), q.recv(0)] == [b"one", b"two", b"three"]
        with pytest.raises(TimeoutError, match=a):
            q.recv(timeout=0.05)
        with pytest.raises(ValueError):
            q.send(b"x" * 129)
        assert q.send_batch([b"a", b"bb", b"ccc"]) == 3
        assert q.recv_batch(max_messages=10, timeout=1) == [b"a", b"bb", b"ccc"]
        st = q.stats()
        assert st["sent"] == 6 and st["received"] == 6 and st["kind"] == shmlink._shmlink.QUEUE
        with shmlink.Queue(a, role="consumer") as c:
            q.send(b"to the other")
            assert c.recv(1) == b"to the other"
            with pytest.raises(OSError):
                c.send(b"not a producer")


def test_claim_commit_abort_and_view_lifetime(addr):
    with shmlink.Queue(addr(), create=True, max_msg=64) as q:
        with q.claim(16) as v:
            v[:5] = b"hello"
            q.commit(5)
        with pytest.raises(ValueError):
            v[0] = 1  # released at the end of the block
        with q.recv_view(1) as r:
            assert bytes(r) == b"hello" and r.readonly
        with pytest.raises(ValueError):
            bytes(r)
        # an exception in the block publishes nothing
        with pytest.raises(RuntimeError):
            with q.claim(8) as v:
                v[:3] = b"bad"
                raise RuntimeError("abort")
        with pytest.raises(TimeoutError):
            q.recv(0.05)
        q.send(b"after")
        assert q.recv(1) == b"after"
        # the discarded room is free again: more aborted claims than slots, of any size
        for i in range(3 * q.stats()["slots"]):
            with pytest.raises(RuntimeError):
                with q.claim(q.max_msg if i % 2 else 1) as v:
                    raise RuntimeError("abort")
        with q.claim(q.max_msg) as v:
            v[:4] = b"full"
            q.commit(4)
        assert q.recv(1) == b"full" and q.stats()["lost"] == 0
        # a slice that outlives the block never dangles: the message is released at the end
        # of the block (the handle goes on); close() inside a block refuses
        q.send(b"keep")
        with q.recv_view(1) as r:
            part = r[0:2]
            with pytest.raises(BufferError):
                q.close()
        assert bytes(part) == b"ke"
        with pytest.raises(TimeoutError):
            q.recv(0)
        q.send(b"next")
        assert q.recv(1) == b"next"
        # close() while the slice lives: the handle is closed, the mapping stays until the
        # slice goes (then the endpoint closes too)
        attached = q.stats()["attached"]
        with shmlink.Queue(q.address) as other:
            assert other.stats()["attached"] == attached + 1
            q.close()
            assert q.closed and bytes(part) == b"ke"
            with pytest.raises(ValueError, match="closed"):
                q.send(b"x")
            assert other.stats()["attached"] == attached + 1
            del part
            gc.collect()
            assert other.stats()["attached"] == attached


def test_typed_structured_and_arrays(addr):
    np = pytest.importorskip("numpy")
    dt = np.dtype([("seq", "<u8"), ("flag", "u1"), ("t", "<f8"), ("px", "u1", (2, 3))],
                  align=True)
    a = addr()
    with shmlink.Queue(a, create=True, dtype=dt, shape=(4,)) as q:
        assert q.dtype == dt and q.dtype.itemsize == dt.itemsize and q.shape == (4,)
        x = np.zeros(4, dt)
        x["seq"] = [1, 2, 3, 4]
        x["t"] = 0.5
        q.send_array(x)
        y = q.recv_array(timeout=1)
        assert (y == x).all() and y.flags.writeable
        with pytest.raises(ValueError):
            q.send_array(np.zeros(3, dt))
        with pytest.raises(ValueError):
            q.send_array(np.zeros(4, "u1"))
        with shmlink.Queue(a) as o:  # the opener reads the type from the channel
            assert o.dtype == dt and o.shape == (4,)
            o.send_array(x)
        with q.recv_view_array(1) as arr:
            assert arr["seq"].sum() == 10 and not arr.flags.writeable
            del arr
        with q.claim_array() as w:
            w["seq"] = 7
            del w
        assert (q.recv_array(1)["seq"] == 7).all()


@pytest.mark.parametrize("dtype,shape", [("uint8", (480, 640, 3)), ("<f4", ()), (">i2", (5,)),
                                         ("complex128", (2, 2))])
def test_typed_simple(addr, dtype, shape):
    np = pytest.importorskip("numpy")
    with shmlink.Queue(addr(), create=True, dtype=dtype, shape=shape) as q:
        assert q.dtype == np.dtype(dtype) and q.shape == shape
        x = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
        q.send_array(x)
        assert (q.recv_array(1) == x).all()


def test_bus_overwrite_gap(addr):
    a = addr()
    with shmlink.Bus(a, create=True, capacity=4096, max_msg=64, policy="overwrite") as pub:
        with shmlink.Bus(a, role="subscriber") as sub:
            for i in range(200):
                pub.send(b"%d" % i)
            got = sub.recv(1)
            assert sub.gap > 0 and int(got) == sub.gap


def test_latest_and_rpc(addr):
    a, b = addr(), addr()
    with shmlink.Latest(a, create=True, max_msg=32) as w, shmlink.Latest(a, role="reader") as r:
        w.send(b"v1")
        w.send(b"v2")
        assert r.recv(1) == b"v2"
        with pytest.raises(TimeoutError):
            r.recv(0.05)
    with shmlink.RPC(b, create=True) as srv, shmlink.RPC(b, role="client") as cl:
        cl.send(b"ping")
        assert srv.recv(1) == b"ping"
        # a reply whose block raises is not sent: the client still waits, the reply is owed
        with pytest.raises(RuntimeError):
            with srv.claim(4) as v:
                v[:4] = b"oops"
                raise RuntimeError("abort")
        with pytest.raises(TimeoutError):
            cl.recv(0.05)
        srv.send(b"pong")
        assert cl.recv(1) == b"pong"
        # a server that cannot answer refuses: the client hears it at once
        cl.send(b"unanswerable")
        assert srv.recv(1) == b"unanswerable"
        srv.refuse()
        with pytest.raises(OSError) as e:
            cl.recv(5)
        assert e.value.errno == errno.EHOSTUNREACH
        with pytest.raises(OSError) as e:
            srv.refuse()  # nothing awaits a reply now
        assert e.value.errno == errno.EPROTO
        assert srv.stats()["drops"] == 1


def test_asyncio(addr):
    a = addr()

    async def main(q):
        t = asyncio.ensure_future(q.arecv(timeout=5))
        await asyncio.sleep(0.05)
        with shmlink.Queue(a, role="producer") as p:
            await p.asend(b"async")
        return await t

    with shmlink.Queue(a, create=True, role="consumer") as q:
        assert asyncio.run(main(q)) == b"async"
        assert q.fileno() >= 0 and q.fileno() == q.fileno()


def test_bad_options(addr):
    with pytest.raises(ValueError):
        shmlink.Queue(addr(), create=True, policy="nope")
    with pytest.raises(ValueError):
        shmlink.RPC(addr(), create=True, role="both")
    with pytest.raises(FileNotFoundError):
        shmlink.Queue(addr())
    a = addr()
    shmlink.Segment(a, create=True, size=64).close()
    with pytest.raises(shmlink.WrongKind):
        shmlink.Queue(a)


def test_orphaned_views_are_counted_exactly(addr):
    """A message starts with nothing orphaned, whatever memory it reuses: close() waits
    exactly while a view outlives its block, message after message."""
    for _ in range(5):
        with shmlink.Queue(addr(), create=True, max_msg=64) as q:
            for _ in range(4):
                q.send(b"x")
                with q.recv_view(1) as r:  # released inside its block
                    assert bytes(r) == b"x"
                q.send(b"keep")
                with q.recv_view(1) as r:
                    part = r[0:2]  # outlives its block
                assert q._orphans == 1  # close() would wait for it
                del part
                gc.collect()
                assert q._orphans == 0


def test_bus_overwrite_stuck_claim_passed(addr):
    # A claim held open (a stuck publisher) never makes another publisher wait on an
    # overwrite bus; subscribers go on; the stuck commit reports ESTALE, counted lost.
    a = addr()
    with shmlink.Bus(a, create=True, capacity=8 * 128, max_msg=64, policy="overwrite") as pub, \
            shmlink.Bus(a, role="publisher") as stuck, shmlink.Bus(a, role="subscriber") as sub:
        n = pub.stats()["slots"]
        with pytest.raises(OSError) as e:
            with stuck.claim(8) as v:
                for i in range(3 * n):
                    pub.send(b"%d" % i, timeout=0)
                v[:] = b"stuck!!!"
                got = [int(m) for m in sub.recv_batch(timeout=0)]
                assert got and got[-1] == 3 * n - 1 and got == sorted(got)
        assert e.value.errno == errno.ESTALE
        stuck.send(b"again", timeout=0)
        assert sub.recv(1) == b"again"
        assert pub.stats()["lost"] == 1


def first_line_then_kill(child, procs):
    """Run the Python code `child`; return the first line it prints, then kill it (SIGKILL)."""
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE)
    procs.append(proc)
    line = proc.stdout.readline().strip()
    proc.kill()
    proc.wait(10)
    return line


def test_durable_consumer_takes_the_place_of_a_killed_one(addr, procs):
    """A consumer opened durable='NAME' and killed (SIGKILL) while it reads a message in place:
    the next one opened with that name gets that message first; nothing is lost."""
    a = addr()
    child = textwrap.dedent(f"""
        import sys, time, shmlink
        with shmlink.Queue({a!r}, role="consumer", durable="worker") as q:
            with q.recv_view(timeout=10) as v:
                print(bytes(v).decode(), flush=True)
                time.sleep(60)
    """)
    with shmlink.Queue(a, create=True, max_msg=64, role="producer") as p:
        p.send(b"first")
        p.send(b"second")
        assert first_line_then_kill(child, procs) == b"first"
        with shmlink.Queue(a, role="consumer", durable="worker") as q:
            assert q.recv(5) == b"first"
            assert q.recv(5) == b"second"
            eps = shmlink.info(a)["channel"]["endpoint_table"]
            mine = [e for e in eps if e["role_name"] == "consumer"]
            assert len(mine) == 1 and mine[0]["durable"] and mine[0]["redelivered"] == 1
        st = p.stats()
        assert st["lost"] == 0 and st["sent"] == st["received"] == 2
    with pytest.raises(ValueError):
        shmlink.Queue(a, durable="worker")  # producer and consumer both


def test_durable_producer_mark(addr, procs):
    """A producer opened durable='NAME' marks its messages; killed (SIGKILL), the next one
    opened with that name finds the mark of the last message it published."""
    a = addr()
    child = textwrap.dedent(f"""
        import time, shmlink
        with shmlink.Queue({a!r}, role="producer", durable="feed") as q:
            assert q.mark() is None
            for seq in (7, 8):
                q.set_mark(seq)
                q.send(b"%d" % seq)
            print(q.mark(), flush=True)
            time.sleep(60)
    """)
    with shmlink.Queue(a, create=True, max_msg=64, role="consumer") as c:
        assert first_line_then_kill(child, procs) == b"8"
        with shmlink.Queue(a, role="producer", durable="feed") as q:
            assert q.mark() == 8
            q.set_mark(9)
            q.send(b"9")
            assert q.mark() == 9
        assert [c.recv(5) for _ in range(3)] == [b"7", b"8", b"9"]
        with pytest.raises(ValueError):
            c.set_mark(1)
        with pytest.raises(ValueError):
            c.mark()
