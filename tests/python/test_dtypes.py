"""Typed channels: every numpy dtype with a PEP 3118 form, packed and aligned, round-trips,
and the stored format names its byte order as a C user writes it."""
import numpy as np
import pytest

import shmlink
from shmlink import _shmlink

PACKED = [("a", "<u8"), ("b", "u1")]
DTYPES = [
    "<i1", "<u1", "<i2", ">i2", "<u2", ">u4", "<i4", "<i8", ">u8", "<f2", "<f4", ">f4", "<f8",
    ">f8", "<c8", ">c16", "?", "S5", "<U3", ">U2", "V4", "=f4",
    PACKED,
    np.dtype(PACKED, align=True),
    [("x", "<f4", (3,)), ("s", [("p", "<i2"), ("q", "u1")])],          # nested, packed
    np.dtype([("x", "<f4", (3,)), ("s", [("p", "<i2"), ("q", "u1")])], align=True),
    [("m", ">i2", (2, 3)), ("t", "S3"), ("c", "<c8")],                # sub-array, mixed order
    np.dtype({"names": ["a", "b"], "formats": ["<u2", ">f8"], "offsets": [4, 16],
              "itemsize": 32}),                                       # explicit gaps
    [("inner", np.dtype([("k", "u1"), ("v", "<u4")], align=True), (2,)), ("z", "u1")],
]


def sample(dt, shape):
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, size=dt.itemsize * int(np.prod(shape)), dtype=np.uint8)
    return raw.view(dt).reshape(shape).copy()


def same(x, y):
    """Equal bytes in every field (padding, which numpy need not copy, left out)."""
    if x.dtype.names is None:
        return np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()
    return all(same(x[n], y[n]) for n in x.dtype.names)


@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_dtype_round_trip(addr, spec):
    dt = np.dtype(spec)
    a = addr()
    with shmlink.Queue(a, create=True, dtype=dt, shape=(2,), capacity=1 << 16) as q, \
            shmlink.Queue(a, role="consumer") as other:
        assert q.dtype == dt and q.dtype.itemsize == dt.itemsize
        assert other.dtype == dt and other.shape == (2,)  # rebuilt from the stored format
        fmt = q._type[0]
        if dt.kind in "iufc" and dt.names is None:
            assert fmt[0] in "<>", fmt  # explicit byte order, as C writes "<f"
        x = sample(dt, (2,))
        q.send_array(x)
        y = other.recv_array(timeout=1)
        assert y.dtype == dt and same(x, y)
        with q.claim_array(timeout=1) as arr:
            arr[...] = x
        with other.recv_view_array(timeout=1) as v:
            assert v.dtype == dt and same(x, v)
            del v
        info = shmlink.info(a)["channel"]["type"]
        assert info == {"format": fmt, "itemsize": dt.itemsize, "shape": [2]}


def test_scalar_formats_are_explicit():
    assert shmlink._channel._format_of(np.dtype("<f4")) == "<f"
    assert shmlink._channel._format_of(np.dtype(">f8")) == ">d"
    assert shmlink._channel._format_of(np.dtype(PACKED)) == "T{<Q:a:<B:b:}"
    assert shmlink._channel._format_of(np.dtype(PACKED, align=True)) == "T{<Q:a:<B:b:7x}"


@pytest.mark.parametrize("fmt,itemsize,expect", [
    ("<f", 4, np.dtype("<f4")),              # as README's C writer stores it
    ("f", 4, np.dtype("float32")),
    (">H", 2, np.dtype(">u2")),
    ("T{<Q:a:<B:b:}", 16, np.dtype(PACKED, align=True)),  # trailing padding left implicit
])
def test_formats_written_by_c(addr, fmt, itemsize, expect):
    a = addr()
    ch = _shmlink.Channel(a, _shmlink.QUEUE, True, format=fmt, itemsize=itemsize, shape=(3,))
    ch.close()
    with shmlink.Queue(a) as q:
        assert q.dtype == expect and q.dtype.itemsize == itemsize
        x = np.zeros(3, expect)
        q.send_array(x)
        assert same(q.recv_array(timeout=1), x)


def test_subarray_dtype_goes_into_the_shape(addr):
    with shmlink.Queue(addr(), create=True, dtype=("<f4", (3,)), shape=2) as q:
        assert q.dtype == np.dtype("<f4") and q.shape == (2, 3)


@pytest.mark.parametrize("spec", ["<M8[ns]", "O", [("a", "<u4"), ("o", "O")]], ids=str)
def test_dtypes_without_a_form_are_refused(addr, spec):
    with pytest.raises(ValueError):
        shmlink.Queue(addr(), create=True, dtype=spec)


def test_long_double_in_native_form(addr):
    with shmlink.Queue(addr(), create=True, dtype=np.longdouble, shape=2) as q:
        q.send_array(np.array([1.5, 2.5], np.longdouble))
        assert q.recv_array(timeout=1).tolist() == [1.5, 2.5]
