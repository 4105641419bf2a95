"""A Python holder that goes away holding a mutex, in every ordinary way: the next locker gets
OwnerDied with the lock, within a bounded time, with or without a timeout."""
import subprocess
import sys
import threading

import pytest

import shmlink

ENDINGS = {
    "exit": "sys.exit(0)",
    "exception": "raise RuntimeError('boom')",
    "close": "m.close()\ns.close()\nsys.exit(0)",
    "os_exit": "os._exit(0)",
    "exec": "os.execv('/bin/true', ['true'])",
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("timeout", [2.0, None])
def test_holder_gone_lock_taken_over(addr, ending, timeout):
    a = addr()
    s = shmlink.Segment(a, create=True, size=4096)
    m = shmlink.Mutex(s, 0, create=True)
    code = (f"import shmlink, os, sys\ns = shmlink.Segment({a!r})\n"
            f"m = shmlink.Mutex(s, 0)\nm.lock()\n{ENDINGS[ending]}\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert p.returncode == (1 if ending == "exception" else 0), p.stderr
    got = []

    def lock():  # in a thread, so that a lock never taken over cannot hang the test
        try:
            m.lock(timeout=timeout)
            got.append("locked")
        except shmlink.OwnerDied as e:
            got.append(e)
            m.consistent()  # the holding thread repairs and unlocks
            m.unlock()
        except Exception as e:  # noqa: BLE001 - the test reports whatever it was
            got.append(e)

    t = threading.Thread(target=lock, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the lock was never taken over"
    assert len(got) == 1 and isinstance(got[0], shmlink.OwnerDied), got
    assert m.lock(timeout=1)
    m.unlock()
    m.close()
    s.close()
