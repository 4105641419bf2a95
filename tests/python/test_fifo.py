"""A FIFO someone made at an address (mkfifo /dev/shm/NAME, or at a file: path) is refused at
once with ValueError naming it, instead of blocking in open() until a writer comes. The calls
run in a subprocess with a timeout, so a blocking open fails the test instead of hanging it."""
import json
import os

import pytest

from conftest import run_py

# Run with `addr` defined before it; prints what each call raised.
CALLS = r"""
import json
import shmlink
calls = {
    "info": lambda: shmlink.info(addr),
    "Segment": lambda: shmlink.Segment(addr),
    "Segment readonly": lambda: shmlink.Segment(addr, readonly=True),
    "Segment raw readonly": lambda: shmlink.Segment(addr, raw=True, readonly=True),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = "no error"
    except Exception as e:
        out[name] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
"""


@pytest.mark.parametrize("where", ["posix", "file"])
def test_fifo_is_refused_at_once(where, addr, tmp_path):
    if where == "posix":
        name = addr("fifo")
        path, target = f"/dev/shm/{name}", f"posix:/{name}"
    else:
        path = str(tmp_path / "fifo")
        target = f"file:{path}"
    os.mkfifo(path, 0o600)
    try:
        r = run_py(f"addr = {target!r}\n" + CALLS, timeout=10)
        assert r.returncode == 0, r.stderr
        for call, err in json.loads(r.stdout).items():
            assert err.startswith("ValueError: ") and f"{path} is a FIFO" in err, (call, err)
    finally:
        os.unlink(path)
