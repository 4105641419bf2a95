"""Segment: a named shared-memory segment, with numpy views that cannot dangle."""
from . import _shmlink


class Segment(_shmlink.Segment):
    """Segment(addr, create=False, size=0, mode=0o600, readonly=False, raw=False, *,
    owned=False, timeout=0, init=None)

    Open (or with create=True, create) the segment at `addr` and map it. `.buf` gives a new
    memoryview of the bytes each time; the segment counts every export, and close() raises
    BufferError while any is alive, so no view ever points at unmapped memory. raw=True maps
    any object (for example one made by multiprocessing.shared_memory) as plain bytes.
    Pickling re-opens by address (it never creates).

    Lifetime: a created segment lives until unlink(), like a file, whoever exits; with
    owned=True it belongs to its creator, and shmlink.gc() removes it once the creator and
    every process attached are gone. timeout (open): how long to wait for a segment that
    does not exist yet: 0 (the default) raises FileNotFoundError at once, seconds, or None
    for ever; TimeoutError when it passes. init (create): a function called with the new
    segment before any other process can open it, to build what it holds (a Mutex, a
    table): no opener ever sees it half-built; if init raises, nothing is created.
    """

    def ndarray(self, dtype="B", shape=None, offset=0):
        """A numpy array of `dtype` and `shape` (default: as many items as fit) over the bytes
        at `offset`. Like any array made from seg.buf (np.asarray, np.frombuffer), it holds
        an export of the segment, so close() raises BufferError while it lives."""
        import numpy as np
        dt = np.dtype(dtype)
        if shape is None:
            shape = ((self.size - offset) // dt.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        n = dt.itemsize
        for d in shape:
            n *= d
        raw = np.asarray(self.buf)[offset:offset + n]
        if raw.nbytes != n:
            raise ValueError(f"{self.address}: {n} bytes at offset {offset} do not fit in "
                             f"{self.size}")
        return raw.view(dt).reshape(shape)
