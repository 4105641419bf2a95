"""asyncio: arecv()/asend()/async for wait on the channel's descriptor in the loop itself (no
thread); a cancelled call takes and sends nothing. Channels in selectors, select, WaitSet and
shmlink.wait()."""
import asyncio
import os

import pytest
from conftest import run_py

import shmlink


def run_without_join(coro):
    """Run coro in a new loop closed without joining its executor (asyncio.run would wait for
    a worker left running, and the failure to test would be a hang)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_cancelled_arecv_takes_nothing(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64, role="producer") as p, \
            shmlink.Queue(a, role="consumer") as c:
        async def timed_out():
            try:
                await asyncio.wait_for(c.arecv(timeout=3), 0.2)
            except asyncio.TimeoutError:
                return "timeout"
        assert run_without_join(timed_out()) == "timeout"
        # The worker of the cancelled arecv is gone: nobody holds a stale receive on this
        # channel, the next message is for whoever receives next.
        with shmlink.Queue(a, role="consumer") as other:
            p.send(b"for the other")
            assert other.recv(timeout=1) == b"for the other"
        p.send(b"next")
        assert c.recv(timeout=1) == b"next"
        st = p.stats()
        assert st["sent"] == 2 and st["received"] == 2 and st["queued"] == 0


def test_cancelled_asend_sends_nothing(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64, capacity=64) as q:
        n = 0
        while True:  # fill it
            try:
                q.send(b"%d" % n, timeout=0)
            except TimeoutError:
                break
            n += 1

        async def timed_out():
            try:
                await asyncio.wait_for(q.asend(b"late", timeout=3), 0.2)
            except asyncio.TimeoutError:
                return "timeout"
        assert run_without_join(timed_out()) == "timeout"
        got = [q.recv(timeout=1) for _ in range(n)]
        assert got == [b"%d" % i for i in range(n)]
        # Room now, and the cancelled send must not fill it.
        try:
            extra = q.recv(timeout=0.3)
        except TimeoutError:
            extra = None
        assert extra is None
        assert q.stats()["sent"] == n


def test_cancelled_arecv_lets_asyncio_run_return(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64):
        code = f"""
import asyncio, shmlink
async def main():
    with shmlink.Queue({a!r}, role="consumer") as c:
        t = asyncio.ensure_future(c.arecv())      # no timeout: waits for ever
        await asyncio.sleep(0.1)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            print("cancelled")
asyncio.run(main())
async def forgotten():                            # asyncio.run() cancels it at its end
    c = shmlink.Queue({a!r}, role="consumer")
    asyncio.ensure_future(c.arecv())
    await asyncio.sleep(0.1)
asyncio.run(forgotten())
print("returned")
"""
        r = run_py(code, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["cancelled", "returned"]


def test_arecv_asend_still_deliver(addr):
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64) as q:
        async def main():
            t = asyncio.ensure_future(q.arecv(timeout=5))
            await asyncio.sleep(0.05)
            with shmlink.Queue(a, role="producer") as p:
                await p.asend(b"async")
            return await t
        assert asyncio.run(main()) == b"async"
        # a handle whose async call was cancelled serves later calls normally
        async def again():
            try:
                await asyncio.wait_for(q.arecv(timeout=3), 0.05)
            except asyncio.TimeoutError:
                pass
            await q.asend(b"after")
            return await q.arecv(timeout=5)
        assert run_without_join(again()) == b"after"


# ---- the event loop waits on the channel's descriptor: no thread, nothing lost ----

# Under valgrind (scripts/test, phase 5) the counts are divided by SHMT_CHAN_DIV.
DIV = max(1, int(os.environ.get("SHMT_CHAN_DIV", "1")))

FEEDER = """
import sys, shmlink
addrs, per = sys.argv[1].split(","), int(sys.argv[2])
chans = [shmlink.Queue(a, role="producer") for a in addrs]
for k in range(per):
    for i, c in enumerate(chans):
        c.send(b"%d:%d" % (i, k), timeout=10)
print("sent", flush=True)
"""


def test_asyncio_200_channels_one_thread(addr, procs, cli):
    """200 channels, one coroutine each, in one thread; half fed by a Python process, half by
    the C tool: every message arrives once, and no thread is started while they wait."""
    import subprocess
    import sys
    import threading
    n, per = max(20, 200 // DIV), 5
    addrs = [addr("m") for _ in range(n)]
    chans = [shmlink.Queue(a, create=True, role="consumer", capacity=4096, max_msg=32,
                           endpoints=4) for a in addrs]
    try:
        got = {}
        threads_seen = []

        async def consume(i, c):
            out = []
            while len(out) < per:
                out.append(await c.arecv(timeout=30))
            got[i] = out

        async def watch():
            while len(got) < n:
                threads_seen.append(threading.active_count())
                await asyncio.sleep(0.005)

        async def main():
            tasks = [asyncio.ensure_future(consume(i, c)) for i, c in enumerate(chans)]
            w = asyncio.ensure_future(watch())
            await asyncio.sleep(0.2)  # every coroutine is waiting now
            threads_seen.append(threading.active_count())
            half = n // 2
            procs.append(subprocess.Popen(
                [sys.executable, "-c", FEEDER, ",".join(addrs[:half]), str(per)],
                stdout=subprocess.PIPE, text=True))
            for i in range(half, n):
                lines = "".join("%d:%d\n" % (i - half, k) for k in range(per))
                procs.append(subprocess.Popen([cli, "send", addrs[i], "--timeout", "10s"],
                                              stdin=subprocess.PIPE, text=True))
                procs[-1].stdin.write(lines)
                procs[-1].stdin.close()
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            await w

        asyncio.run(main())
        assert set(threads_seen) == {1}
        for i in range(n):
            j = i if i < n // 2 else i - n // 2
            assert got[i] == [b"%d:%d" % (j, k) for k in range(per)], i
        for p in procs:
            assert p.wait(timeout=30) == 0
        for c in chans:
            st = c.stats()
            assert st["sent"] == per and st["received"] == per and st["queued"] == 0
    finally:
        for c in chans:
            c.close()


def test_cancellation_storm_loses_nothing(addr, procs):
    """wait_for with random short timeouts while messages flow: every message sent is
    received by a coroutine, exactly once."""
    import random
    import subprocess
    import sys
    n, per = 20, max(20, 200 // DIV)
    addrs = [addr("s") for _ in range(n)]
    chans = [shmlink.Queue(a, create=True, role="consumer", capacity=1024, max_msg=32,
                           endpoints=4) for a in addrs]
    try:
        received = [[] for _ in range(n)]
        rng = random.Random(1234)
        timeouts = [0]

        async def consume(i, c):
            while len(received[i]) < per:
                try:
                    received[i].append(await asyncio.wait_for(c.arecv(),
                                                              rng.uniform(0.0001, 0.005)))
                except asyncio.TimeoutError:
                    timeouts[0] += 1

        async def main():
            procs.append(subprocess.Popen(
                [sys.executable, "-c", FEEDER, ",".join(addrs), str(per)]))
            await asyncio.wait_for(asyncio.gather(*(consume(i, c) for i, c in
                                                    enumerate(chans))), 120)

        asyncio.run(main())
        assert procs[-1].wait(timeout=30) == 0
        assert timeouts[0] > 0  # the storm happened
        for i, c in enumerate(chans):
            assert received[i] == [b"%d:%d" % (i, k) for k in range(per)]
            st = c.stats()
            assert st["sent"] == per and st["received"] == per and st["queued"] == 0
    finally:
        for c in chans:
            c.close()


def test_wait_for_then_two_messages_both_arrive(addr):
    """The case of the report: a timed-out wait_for, then two sends: both arrive."""
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64, role="producer") as p, \
            shmlink.Queue(a, role="consumer") as c:
        async def main():
            try:
                await asyncio.wait_for(c.arecv(), 0.2)
            except asyncio.TimeoutError:
                pass
            p.send(b"one")
            p.send(b"two")
            return [await c.arecv(timeout=2), await c.arecv(timeout=2)]
        assert asyncio.run(main()) == [b"one", b"two"]
        assert p.stats()["received"] == 2


def test_async_for_asend_rpc_and_close(addr):
    a, r = addr(), addr()
    with shmlink.Queue(a, create=True, max_msg=64, capacity=2 * 128) as q, \
            shmlink.RPC(r, create=True, max_msg=64) as srv, \
            shmlink.RPC(r) as cl:
        async def main():
            # asend waits for room in the loop, async for receives until the channel closes
            assert q._try_send(b"0") and q._try_send(b"1") and not q._try_send(b"x")
            c = shmlink.Queue(a, role="consumer")
            seen = []

            async def reader():
                async for m in c:
                    seen.append(m)
            t = asyncio.ensure_future(reader())
            p = shmlink.Queue(a, role="producer")
            for i in range(2, 6):
                await p.asend(b"%d" % i, timeout=5)
            while len(seen) < 6:
                await asyncio.sleep(0.01)
            c.close()  # ends the async for
            await asyncio.wait_for(t, 5)
            p.close()
            assert seen == [b"%d" % i for i in range(6)]
            # one coroutine per handle
            t1 = asyncio.ensure_future(q.arecv())
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError):
                await q.arecv()
            t1.cancel()
            # rpc: the client awaits its reply, the server its request
            cl.send(b"ping")
            req = await srv.arecv(timeout=5)
            await srv.asend(req.upper())
            return await cl.arecv(timeout=5)
        assert asyncio.run(main()) == b"PING"


def test_selectors_select_and_wait(addr):
    import os
    import select
    import selectors
    a, b = addr(), addr()
    with shmlink.Queue(a, create=True, max_msg=64) as qa, \
            shmlink.Bus(b, create=True, max_msg=64) as pub, \
            shmlink.Bus(b) as sub:
        for ch in (qa, sub):  # a descriptor starts ready: drain to arm it
            ch.fileno()
            with pytest.raises(TimeoutError):
                ch.recv(0)
        assert shmlink.wait([qa, sub], 0.05) == []
        pub.send(b"news")
        assert shmlink.wait([qa, sub], 5) == [sub]
        with selectors.DefaultSelector() as sel:
            sel.register(sub, selectors.EVENT_READ)
            sel.register(qa, selectors.EVENT_READ)
            assert [k.fileobj for k, _ in sel.select(5)] == [sub]
        assert select.select([qa, sub], [], [], 5)[0] == [sub]
        assert sub.recv(0) == b"news"
        with pytest.raises(TimeoutError):
            sub.recv(0)
        assert select.select([qa, sub], [], [], 0.05)[0] == []
        r, w = os.pipe()
        try:
            with shmlink.WaitSet() as ws:
                ws.add(qa)
                ws.add(r)
                ws.add(w, shmlink.WRITABLE)
                assert len(ws) == 3
                assert ws.wait(5) == [(w, shmlink.WRITABLE)]
                ws.remove(w)
                assert ws.wait(0.05) == []
                qa.send(b"q")
                assert ws.wait(5) == [(qa, shmlink.READABLE)]
                with pytest.raises(KeyError):
                    ws.remove(w)
                with pytest.raises(OSError):  # a channel belongs to one set at a time
                    shmlink.wait([qa], 0)
        finally:
            os.close(r)
            os.close(w)


def test_wait_is_interrupted_by_ctrl_c(addr):
    """Ctrl-C ends shmlink.wait() at once with KeyboardInterrupt, as every other wait."""
    a = addr()
    with shmlink.Queue(a, create=True, max_msg=64):
        code = f"""
import os, signal, threading, time, shmlink
# The signal mask and dispositions are inherited: a parent under valgrind forks this with
# SIGINT blocked now and then. The test is about the wait, not about what it inherits.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
signal.signal(signal.SIGINT, signal.default_int_handler)
c = shmlink.Queue({a!r}, role="consumer")
c.fileno()
try:
    c.recv(0)
except TimeoutError:
    pass
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t = time.monotonic()
try:
    shmlink.wait([c], 20)
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - t < 5)
"""
        r = run_py(code, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["interrupted", "True"]
