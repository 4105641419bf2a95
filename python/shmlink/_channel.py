"""Channels: Queue, Bus, Latest, RPC over the C endpoint, with typed (numpy) messages and
asyncio helpers."""
import asyncio
import contextlib
import functools

from . import _shmlink


def _np():
    import numpy
    return numpy


class _Channel(_shmlink.Channel):
    """Common base: see Queue for the constructor and methods."""

    _kind = 0

    def __init__(self, addr, create=False, *, capacity=None, max_msg=None, dtype=None,
                 shape=None, policy="block", wait="adaptive", mode=0o600, role=None,
                 endpoints=None, spsc=False):
        fmt, itemsize, shp = None, 0, None
        if dtype is not None or shape is not None:
            if not create:
                raise ValueError("dtype and shape are fixed at create; an opener reads them "
                                 "from the channel")
            np = _np()
            dt = np.dtype(dtype if dtype is not None else "B")
            fmt = memoryview(np.empty(0, dt)).format
            itemsize = dt.itemsize
            shp = () if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
        super().__init__(addr, self._kind, create, capacity=capacity, max_msg=max_msg,
                         policy=policy, wait=wait, mode=mode, role=role, endpoints=endpoints,
                         spsc=spsc, format=fmt, itemsize=itemsize, shape=shp)
        self._dtype = None

    # ---- types ----
    @property
    def dtype(self):
        """The numpy dtype of a typed channel (rebuilt from the stored PEP 3118 format), or
        None for untyped bytes."""
        t = self._type
        if t is None:
            return None
        if self._dtype is None:
            np = _np()
            fmt, itemsize, _ = t
            dt = np.asarray(_shmlink.type_probe(fmt, itemsize)).dtype
            if dt.itemsize != itemsize:  # trailing padding numpy's parser drops
                if dt.names:
                    dt = np.dtype({"names": dt.names,
                                   "formats": [dt.fields[n][0] for n in dt.names],
                                   "offsets": [dt.fields[n][1] for n in dt.names],
                                   "itemsize": itemsize})
                else:
                    raise ValueError(f"{self.address}: stored format {fmt!r} has itemsize "
                                     f"{dt.itemsize}, the channel says {itemsize}")
            self._dtype = dt
        return self._dtype

    @property
    def shape(self):
        """The shape of one message of a typed channel (() for one element), or None."""
        t = self._type
        return None if t is None else t[2]

    def send_array(self, arr, timeout=None):
        """Send a numpy array of exactly the channel's dtype and shape (one copy, into the
        slot)."""
        np = _np()
        if self._type is None:
            raise ValueError(f"{self.address}: not a typed channel")
        a = np.asarray(arr)
        if a.dtype != self.dtype or a.shape != tuple(self.shape):
            raise ValueError(f"{self.address}: array of {a.dtype}{list(a.shape)} does not match "
                             f"the channel's {self.dtype}{list(self.shape)}")
        self.send(np.ascontiguousarray(a).view(np.uint8).reshape(-1) if a.nbytes else b"",
                  timeout)

    def recv_array(self, timeout=None, copy=True):
        """Receive one message as a numpy array of the channel's dtype and shape. copy=True
        (the default) returns an array the caller owns. A zero-copy array is only available
        inside `with ch.recv_view_array() as arr:` (copy=False here raises ValueError)."""
        if not copy:
            raise ValueError("a zero-copy array must not outlive its message: use "
                             "`with ch.recv_view_array() as arr:`")
        np = _np()
        with self.recv_view(timeout, typed=True) as v:
            a = np.asarray(v)
            out = a.copy()
            del a
        return out

    @contextlib.contextmanager
    def recv_view_array(self, timeout=None):
        """`with ch.recv_view_array(t) as arr:` a read-only numpy array over the message in
        place (no copy), valid inside the block. At the end of the block the message is
        released: an array kept after it still points into the channel's memory (never
        dangling: close() refuses while such arrays live) but at a slot that may hold other
        messages from then on. Copy what you keep (recv_array() copies)."""
        np = _np()
        with self.recv_view(timeout, typed=True) as v:
            arr = np.asarray(v)
            try:
                yield arr
            finally:
                del arr

    @contextlib.contextmanager
    def claim_array(self, timeout=None):
        """`with ch.claim_array() as arr:` a writable numpy array over a claimed slot of the
        channel's type, published at the end of the block (not published if it raises).
        Writing through the array after the block writes into a slot that is no longer
        yours: don't."""
        np = _np()
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        with self.claim(n, timeout, typed=True) as v:
            arr = np.asarray(v)
            try:
                yield arr
            finally:
                del arr

    # ---- asyncio ----
    async def _async_call(self, fn, *args):
        """Run the blocking call fn(*args) of this handle in the loop's default executor.

        Cancelled (a wait_for timeout, task.cancel(), asyncio.run() ending), it stops the
        worker before its next attempt (_cancel: a flag read before every attempt, and the
        library's interrupt for the wait in progress) and waits for it to return, so no
        worker outlives the call and none takes or sends a message afterwards. If the attempt
        under way at that very instant succeeded, the message was received (or sent): the
        result is returned instead of CancelledError, so nothing is lost."""
        loop = asyncio.get_running_loop()
        self._uncancel()
        fut = loop.run_in_executor(None, functools.partial(fn, *args))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._cancel()
            try:
                while True:
                    try:
                        await asyncio.shield(fut)
                        break
                    except asyncio.CancelledError:
                        if fut.done():  # the worker's own result, not a new cancellation
                            break
                    except Exception:
                        break
            finally:
                self._uncancel()
            if fut.cancelled() or fut.exception() is not None:
                raise
            return fut.result()

    async def arecv(self, timeout=None):
        """recv() in the event loop's default executor: the next message, waiting at most
        timeout seconds (None: for ever); TimeoutError. A channel has no fd to poll, so each
        pending arecv/asend occupies one executor thread while it waits; use one channel
        handle per concurrent coroutine (a handle serves one call at a time). Cancelled, it
        takes nothing: the worker is stopped before it returns (see python/README.md)."""
        return await self._async_call(self.recv, timeout)

    async def asend(self, data, timeout=None):
        """send() in the event loop's default executor, waiting for room at most timeout
        seconds (None: for ever); see arecv for the limits. Cancelled, it sends nothing."""
        return await self._async_call(self.send, data, timeout)

    def fileno(self):
        raise OSError("shmlink channels have no file descriptor to poll: use arecv()/asend()")

    def __repr__(self):
        return f"<shmlink.{type(self).__name__} {self.address}{' (closed)' if self.closed else ''}>"


class Queue(_Channel):
    """Queue(addr, create=False, *, capacity=None, max_msg=None, dtype=None, shape=None,
    policy='block', wait='adaptive', mode=0o600, role=None, endpoints=None, spsc=False)

    Each message goes to exactly one consumer. role: 'producer', 'consumer' or 'both'
    (the default). wait: 'adaptive', 'spin' or 'block'. Methods: send, recv, send_batch,
    recv_batch, claim, recv_view, commit, send_array, recv_array, recv_view_array, stats,
    close, arecv, asend; attributes dtype, shape, gap, address, max_msg."""
    _kind = _shmlink.QUEUE


class Bus(_Channel):
    """Bus(addr, ...): publish/subscribe; every subscriber gets every message sent after it
    joined. role: 'publisher' or 'subscriber' (the default when opening; the creator is the
    publisher). policy='overwrite': publishers never wait, `gap` tells what a subscriber
    missed."""
    _kind = _shmlink.BUS


class Latest(_Channel):
    """Latest(addr, ...): one newest value. role: 'writer' or 'reader' (the default when
    opening; the creator is both). recv returns the newest value not read yet; `gap` counts
    skipped values."""
    _kind = _shmlink.LATEST


class RPC(_Channel):
    """RPC(addr, ...): request/reply. role: 'client' (the default when opening) sends a
    request then recv()s its reply; 'server' (the creator) recv()s a request and its next
    send() is the reply. call(data) does both on a client."""
    _kind = _shmlink.RPC

    def call(self, data, timeout=None):
        """Send a request and return its reply (client)."""
        self.send(data, timeout)
        return self.recv(timeout)
