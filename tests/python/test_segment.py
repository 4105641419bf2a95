import gc
import os
import pickle
import subprocess
import sys
from multiprocessing import shared_memory

import pytest

import shmlink
from conftest import run_py


def test_create_open_write_read(addr):
    a = addr()
    with shmlink.Segment(a, create=True, size=4096) as s:
        assert s.size == 4096 and s.created and s.address == "posix:/" + a
        s.buf[:5] = b"hello"
        with shmlink.Segment(a) as t:
            assert bytes(t.buf[:5]) == b"hello" and not t.created
    assert s.closed


def test_errors_are_builtin_and_name_the_address(addr):
    a = addr()
    with pytest.raises(FileNotFoundError, match=a):
        shmlink.Segment(a)
    s = shmlink.Segment(a, create=True, size=100)
    with pytest.raises(FileExistsError, match=a):
        shmlink.Segment(a, create=True, size=100)
    with pytest.raises(ValueError):
        shmlink.Segment("bad/name", create=True, size=10)
    with pytest.raises(ValueError):
        shmlink.Segment(a + "x", create=True, size=0)
    s.close()
    m = shmlink.Segment(a + "r", create=True, size=10, raw=True)
    m.close()
    with pytest.raises(shmlink.NotShmlink):
        shmlink.Segment(a + "r")
    assert issubclass(shmlink.NotShmlink, shmlink.Error) and issubclass(shmlink.Error, OSError)
    shmlink.unlink(a + "r")


def test_close_with_live_views_is_buffererror_never_a_crash(addr):
    s = shmlink.Segment(addr(), create=True, size=4096)
    v = s.buf
    w = v[10:20]
    with pytest.raises(BufferError):
        s.close()
    v.release()
    with pytest.raises(BufferError):  # the slice keeps its export
        s.close()
    del w
    s.close()
    with pytest.raises(ValueError):
        s.buf
    s.close()  # twice is fine


def test_numpy_view_keeps_export(addr):
    np = pytest.importorskip("numpy")
    s = shmlink.Segment(addr(), create=True, size=4096)
    arr = s.ndarray("<u4")
    arr[:4] = [1, 2, 3, 4]
    assert arr.shape == (1024,)
    with pytest.raises(BufferError):
        s.close()
    del arr
    gc.collect()
    # Arrays numpy makes from a view keep their own export, even once that view is released.
    with s.buf as mv:
        a = np.frombuffer(mv, dtype="<u4")
    with s.buf as mv:
        b = np.asarray(mv)
    assert a[0] == 1 and b[4] == 2
    with pytest.raises(BufferError):
        s.close()
    del a
    with pytest.raises(BufferError):
        s.close()
    del b
    gc.collect()
    s.close()


def test_readonly(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=64)
    r = shmlink.Segment(a, readonly=True)
    assert r.buf.readonly
    with pytest.raises(TypeError):
        r.buf[0] = 1
    r.close()
    s.close()


def test_pickle_reattaches_never_creates(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=64)
    s.buf[0] = 42
    data = pickle.dumps(s)
    t = pickle.loads(data)
    assert t.buf[0] == 42 and not t.created
    t.close()
    s.close()
    s.unlink()
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)


def test_never_unlinks_what_it_did_not_create(addr):
    a = addr()
    s = shmlink.Segment(a, create=True, size=64)
    r = run_py(f"import shmlink\ns = shmlink.Segment({a!r})\ns.close()\ndel s\n")
    assert r.returncode == 0, r.stderr
    with shmlink.Segment(a) as t:  # still there
        assert t.size == 64
    s.close()


def test_multiprocessing_shared_memory_interop(addr):
    a = addr()
    shm = shared_memory.SharedMemory(name=a, create=True, size=4096)
    try:
        shm.buf[:3] = b"abc"
        with shmlink.Segment(a, raw=True) as s:
            assert s.size >= 4096 and bytes(s.buf[:3]) == b"abc"
            s.buf[3:6] = b"def"
        assert bytes(shm.buf[:6]) == b"abcdef"
    finally:
        shm.close()
    # and the other way: a raw shmlink segment opened by multiprocessing.shared_memory
    b = addr()
    s = shmlink.Segment(b, create=True, size=4096, raw=True)
    s.buf[:2] = b"hi"
    code = ("from multiprocessing import shared_memory, resource_tracker\n"
            f"m = shared_memory.SharedMemory(name={b!r})\n"
            "resource_tracker.unregister(m._name, 'shared_memory')\n"
            "print(bytes(m.buf[:2]).decode()); m.buf[2:4] = b'yo'; m.close()\n")
    r = run_py(code)
    assert r.returncode == 0 and r.stdout.strip() == "hi", r.stderr
    assert bytes(s.buf[:4]) == b"hiyo"
    s.close()


@pytest.mark.parametrize("raw", [False, True])
def test_truncated_by_another_process_raises_not_sigbus(addr, raw):
    a = addr()
    with shmlink.Segment(a, create=True, size=8192, raw=raw) as s:
        assert s.write(5000, b"abcd") == 4 and s.read(5000, 4) == b"abcd"
        s.check()
        with pytest.raises(ValueError, match=a):
            s.read(8190, 4)  # past the end: nothing copied
        with pytest.raises(ValueError):
            s.write(-1, b"x")
        # another process shrinks the object under our mapping
        r = run_py(f"import os; os.truncate('/dev/shm/{a}', 10)")
        assert r.returncode == 0, r.stderr
        with pytest.raises(shmlink.Truncated, match=a):
            s.check()
        with pytest.raises(shmlink.Truncated):
            s.read(5000, 4)
        with pytest.raises(shmlink.Truncated):
            s.write(5000, b"x")
        assert issubclass(shmlink.Truncated, shmlink.Error)
    with shmlink.Segment(a, raw=True, readonly=True) as ro:
        with pytest.raises(PermissionError):
            ro.write(0, b"x")


def test_buf_of_a_truncated_object_faults_as_documented(addr):
    # python/README.md: .buf (and arrays over it) touch the mapping directly; a page the
    # object no longer has faults, the library's handler makes the mapping zeros and the
    # segment lost. SHML_NO_SIGBUS_GUARD=1 (README.md) leaves SIGBUS to kill the process.
    a = addr()
    code = (f"import os, shmlink\ns = shmlink.Segment({a!r}, create=True, size=8192)\n"
            f"s.buf[5000] = 1\nos.truncate('/dev/shm/{a}', 10)\nprint(bytes(s.buf[5000:5004]))\n"
            f"try:\n    s.check()\nexcept shmlink.Truncated:\n    print('lost')\n")
    r = run_py(code)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout == "b'\\x00\\x00\\x00\\x00'\nlost\n"
    shmlink.unlink(a)
    r = run_py(code, env=dict(os.environ, SHML_NO_SIGBUS_GUARD="1"))
    assert r.returncode == -7, (r.returncode, r.stderr)  # SIGBUS
