"""A peer with write access rewrites a typed channel's stored type (docs/FORMAT.md, control
block offsets 768..1023): no Python receiver may then read message bytes as object pointers.
The receiving side runs in a subprocess so that a crash shows as a signal exit, not as a dead
pytest."""
import subprocess
import sys

import numpy as np
import pytest

import shmlink
from shmlink import _shmlink

# What the hostile peer stores: (format, itemsize, shape); every one fits the 16-byte
# messages of the '<f4' x (4,) channel the test creates, so only the format is at fault.
HOSTILE = [
    ("O", 8, (2,)),                     # bare object pointers
    ("T{O:a:}", 8, (2,)),               # in a struct
    ("(2)O", 16, (1,)),                 # in a sub-array
    ("T{<Q:a:T{O:b:}}", 16, (1,)),      # in a nested struct
    ("<Q(1)T{O:b:}", 16, (1,)),         # a top-level sequence, a sub-array of structs
    ("&B", 8, (2,)),                    # a pointer
    ("P", 8, (2,)),                     # a void pointer
    ("<Q", 4, (4,)),                    # an itemsize smaller than the format's size
    ("<H", 4, (4,)),                    # ... or larger (not a struct: no implicit padding)
]

READER = r"""
import struct, sys
import numpy as np
import shmlink

addr, fmt, itemsize, shape = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), \
    [int(d) for d in sys.argv[4].split(",")]
w = shmlink.Latest(addr, create=True, dtype="<f4", shape=(4,))
w.send(b"\x41" * 16, timeout=1)                    # pointers 0x4141414141414141 if read as 'O'
before = shmlink.Latest(addr)                      # opened before the rewrite
with shmlink.Segment(addr, raw=True) as seg:       # the hostile peer: the control block
    cb = struct.unpack_from("<I", seg.buf, 12)[0]  # follows the header (header_size)
    struct.pack_into("<QII", seg.buf, cb + 768, itemsize, len(shape), len(fmt))
    struct.pack_into("<8Q", seg.buf, cb + 784, *(shape + [0] * (8 - len(shape))))
    seg.buf[cb + 848:cb + 1024] = fmt.ljust(176, b"\0")


def typed_view(ch):
    with ch.recv_view(1, typed=True) as v:         # the C export, read by numpy
        return np.asarray(v).tolist()


def claim(ch):
    with ch.claim_array(timeout=1) as arr:
        return arr.tolist()


def view_array(ch):
    with ch.recv_view_array(timeout=1) as arr:
        return arr.tolist()


ACCESSES = [("typed_view", typed_view), ("dtype", lambda ch: str(ch.dtype)),
            ("recv_array", lambda ch: ch.recv_array(timeout=1).tolist()),
            ("recv_view_array", view_array), ("claim_array", claim)]
for name, access in ACCESSES:
    after = shmlink.Latest(addr, role="writer" if name == "claim_array" else "reader")
    try:
        got = access(after)
        print("after", name, "ACCEPTED", got, flush=True)
    except shmlink.Corrupt as e:
        assert addr in str(e) and ("refused" in str(e) or "itemsize" in str(e)), e
        print("after", name, "Corrupt", flush=True)
    after.close()
# The handle opened before keeps the type it read at open, '<f4' x (4,): plain data.
print("before", before.dtype, before.shape, before.recv_array(timeout=1).dtype, flush=True)
before.close()
w.close()
"""


@pytest.mark.parametrize("fmt,itemsize,shape", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_stored_format_is_refused(addr, fmt, itemsize, shape):
    a = addr("hostile")
    r = subprocess.run([sys.executable, "-c", READER, a, fmt, str(itemsize),
                        ",".join(map(str, shape))], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    for name in ("typed_view", "dtype", "recv_array", "recv_view_array", "claim_array"):
        assert f"after {name} Corrupt" in lines, r.stdout
    assert "before float32 (4,) float32" in lines, r.stdout


# Every format the module writes itself (tests/python/test_dtypes.py covers their round trip
# through a channel), and formats a C writer may store, pass the same check.
PLAIN = ["<b", ">H", "<i", "<q", "<Q", "<e", "<f", ">d", "g", "?", "<Zf", ">Zd", "Zg", "5s",
         "c", "<3w", "4x", "f", "@l", "^g", "=i", "!h", "T{<Q:a:<B:b:}", "T{<Q:a:<B:b:7x}",
         "T{(3)<f:x:T{<h:p:<B:q:}:s:}", "T{(2,3)>h:m:<3s:t:<Zf:c:}", "T{B:a:^g:b:}",
         "T{(2)T{<B:k:3x<I:v:}:inner:<B:z:}", "<Q<B"]


@pytest.mark.parametrize("fmt", PLAIN)
def test_plain_formats_pass(fmt):
    dt = shmlink._channel._pep3118_parser()(fmt)
    size = max(dt.itemsize, 1)
    assert np.asarray(_shmlink.type_probe(fmt, size)).dtype.hasobject is False


@pytest.mark.parametrize("fmt", [h[0] for h in HOSTILE if h[1] == 8 or "O" in h[0]] +
                         ["u", "2p", "t", "X{}", "T{O:a:", "(2", "Zq", "T{<f:a}"])
def test_type_probe_refuses(fmt):
    with pytest.raises(ValueError, match="refused"):
        _shmlink.type_probe(fmt, 64)
