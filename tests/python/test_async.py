"""A cancelled arecv()/asend() takes and sends nothing, and leaves no worker behind."""
import asyncio

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
