"""Channels: Queue, Bus, Latest, RPC over the C endpoint, with typed (numpy) messages and
asyncio helpers."""
import asyncio
import contextlib
import errno
import sys

from . import _shmlink


def _np():
    import numpy
    return numpy


_ORDER = {"<": "<", ">": ">", "=": "<" if sys.byteorder == "little" else ">"}
_CODES = {("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
          ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
          ("f", 2): "e", ("f", 4): "f", ("f", 8): "d", ("c", 8): "Zf", ("c", 16): "Zd",
          ("b", 1): "?"}


def _encode(dt, order):
    """The PEP 3118 format of dtype `dt` with standard sizes and an explicit byte order
    before every number ('<f', '(2,3)<f', 'T{<Q:a:<B:b:7x}'): no alignment rule is left to
    the reader, every gap is explicit 'x' padding, so packed and aligned structs decode to
    the same offsets and itemsize. `order` is the running byte order ('<' or '>')."""
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return "(" + ",".join(str(d) for d in shape) + ")" + _encode(base, order)
    if dt.names is not None:
        out, pos = [], 0
        for name in dt.names:
            f, off = dt.fields[name][:2]
            if ":" in name or off < pos:
                raise ValueError(f"field {name!r}: a PEP 3118 format cannot hold a name with "
                                 "':' or overlapping fields")
            if off > pos:
                out.append(f"{off - pos}x")
            out.append(_encode(f, order) + f":{name}:")
            pos = off + f.itemsize
        if dt.itemsize > pos:
            out.append(f"{dt.itemsize - pos}x")
        return "T{" + "".join(out) + "}"
    o = _ORDER.get(dt.byteorder, order)
    if dt.kind == "S":
        return f"{o}{dt.itemsize}s"
    if dt.kind == "U":
        return f"{o}{dt.itemsize // 4}w"
    if dt.kind == "V":
        return f"{dt.itemsize}x"
    code = _CODES.get((dt.kind, dt.itemsize))
    if code is None:
        raise ValueError(f"dtype {dt} has no PEP 3118 format with standard sizes")
    return o + code


def _dtype_of(fmt, itemsize):
    """The numpy dtype a stored PEP 3118 format describes, of exactly `itemsize` bytes
    (numpy's parser drops a struct's trailing padding when the format does not spell it)."""
    np = _np()
    try:
        dt = np.asarray(_shmlink.type_probe(fmt, itemsize)).dtype
    except RuntimeError:
        # numpy refuses a buffer whose itemsize differs from the format's (a struct whose
        # trailing padding the writer left implicit): parse the format alone.
        dt = _pep3118_parser()(fmt)
    if dt.hasobject:  # type_probe refuses such formats already: never let one through
        raise ValueError(f"stored format {fmt!r} holds Python objects")
    if dt.names == () or (dt.names is None and dt.itemsize == 0):
        dt = np.dtype(f"V{itemsize}")  # padding only: raw bytes
    if dt.itemsize != itemsize:
        if not dt.names or dt.itemsize > itemsize:
            raise ValueError(f"stored format {fmt!r} has itemsize {dt.itemsize}, the channel "
                             f"says {itemsize}")
        dt = np.dtype({"names": dt.names, "formats": [dt.fields[n][0] for n in dt.names],
                       "offsets": [dt.fields[n][1] for n in dt.names], "itemsize": itemsize})
    return dt


def _pep3118_parser():
    """numpy's own PEP 3118 parser (the one np.asarray uses), which numpy does not export."""
    try:
        from numpy.core._internal import _dtype_from_pep3118
    except ImportError:  # numpy >= 2
        from numpy._core._internal import _dtype_from_pep3118
    return _dtype_from_pep3118


def _format_of(dt):
    """The format a typed channel stores for dtype `dt`: ours (explicit byte order and
    padding) when it decodes back to `dt`, else numpy's own export (long double, native only)
    when that does; ValueError if neither does."""
    np = _np()
    if dt.hasobject:
        raise ValueError(f"dtype {dt} holds Python objects: their pointers mean nothing in "
                         "another process")
    tries = []
    with contextlib.suppress(ValueError):
        tries.append(_encode(dt, _ORDER["="]))
    with contextlib.suppress(ValueError, TypeError):
        tries.append(memoryview(np.empty(0, dt)).format)
    for fmt in tries:
        try:
            if _dtype_of(fmt, dt.itemsize) == dt:
                return fmt
        except (ValueError, TypeError, RuntimeError):
            pass
    raise ValueError(f"dtype {dt} has no PEP 3118 form that reads back as the same dtype")


class _Mode(int):
    """Permission bits that help() and repr() show in octal, as they are written (0o600)."""

    def __repr__(self):
        return oct(self)


_MODE_DEFAULT = _Mode(0o600)


class _Channel(_shmlink.Channel):
    """Common base: see Queue for the constructor and methods."""

    _kind = 0

    def __init__(self, addr, create=False, *, capacity=None, max_msg=None, dtype=None,
                 shape=None, policy="block", wait="adaptive", mode=_MODE_DEFAULT, role=None,
                 endpoints=None, spsc=False, owned=False, timeout=0, durable=None):
        fmt, itemsize, shp = None, 0, None
        if dtype is not None or shape is not None:
            if not create:
                raise ValueError("dtype and shape are fixed at create; an opener reads them "
                                 "from the channel")
            np = _np()
            dt = np.dtype(dtype if dtype is not None else "B")
            shp = () if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
            if dt.subdtype is not None:  # an element that is an array: its shape goes last
                shp, dt = shp + dt.shape, dt.base
            fmt = _format_of(dt)
            itemsize = dt.itemsize
        super().__init__(addr, self._kind, create, capacity=capacity, max_msg=max_msg,
                         policy=policy, wait=wait, mode=mode, role=role, endpoints=endpoints,
                         spsc=spsc, format=fmt, itemsize=itemsize, shape=shp, owned=owned,
                         timeout=timeout, durable=durable)
        self._dtype = None
        self._async_busy = False
        self._async_wait = None  # (loop, fd, future) while a coroutine waits

    # ---- types ----
    @property
    def dtype(self):
        """The numpy dtype of a typed channel (rebuilt from the stored PEP 3118 format), or
        None for untyped bytes. shmlink.Corrupt if the stored format is not plain data or
        does not describe the stored itemsize: another process wrote it, nothing of it is
        trusted."""
        t = self._type  # Corrupt if the format is not plain data (checked in C)
        if t is None:
            return None
        if self._dtype is None:
            fmt, itemsize, _ = t
            try:
                self._dtype = _dtype_of(fmt, itemsize)
            except (ValueError, RuntimeError) as e:
                raise _shmlink.Corrupt(errno.EBADMSG, f"typed channel {self.address}: {e}",
                                       self.address) from None
        return self._dtype

    @property
    def shape(self):
        """The shape of one message of a typed channel (() for one element), or None."""
        t = self._type
        return None if t is None else t[2]

    def _nbytes(self):
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n

    def _array(self, view):
        """A numpy array of the channel's dtype and shape over `view` (a message's bytes),
        built from the dtype rather than from the stored format, so that it has the
        channel's itemsize whatever numpy's parser makes of the format."""
        np = _np()
        if view.nbytes != self._nbytes():
            raise ValueError(f"{self.address}: message of {view.nbytes} bytes does not match "
                             f"the channel's type ({self._nbytes()} bytes)")
        return np.frombuffer(view, dtype=self.dtype).reshape(self.shape)

    def send_array(self, arr, timeout=None):
        """Send a numpy array of exactly the channel's dtype and shape (one copy, into the
        slot), waiting for room at most timeout seconds (None: for ever); TimeoutError."""
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
        """Receive one message as a numpy array of the channel's dtype and shape, waiting at
        most timeout seconds (None: for ever); TimeoutError. copy=True (the default) returns
        an array the caller owns. A zero-copy array is only available inside
        `with ch.recv_view_array() as arr:` (copy=False here raises ValueError)."""
        if not copy:
            raise ValueError("a zero-copy array must not outlive its message: use "
                             "`with ch.recv_view_array() as arr:`")
        with self.recv_view(timeout) as v:
            a = self._array(v)
            out = a.copy()
            del a
        return out

    @contextlib.contextmanager
    def recv_view_array(self, timeout=None):
        """`with ch.recv_view_array(t) as arr:` a read-only numpy array over the message in
        place (no copy), valid inside the block; entering waits at most timeout seconds (None:
        for ever). At the end of the block the message is released: an array kept after it
        still points into the channel's memory (never dangling: close() refuses while such
        arrays live, so `del arr` before the channel closes) but at a slot that may hold other
        messages from then on. Copy what you keep (recv_array() copies)."""
        with self.recv_view(timeout) as v:
            arr = self._array(v)
            try:
                yield arr
            finally:
                del arr

    @contextlib.contextmanager
    def claim_array(self, timeout=None):
        """`with ch.claim_array() as arr:` a writable numpy array over a claimed slot of the
        channel's type, published at the end of the block (not published if it raises);
        entering waits for room at most timeout seconds (None: for ever). Writing through the
        array after the block writes into a slot that is no longer yours: don't."""
        with self.claim(self._nbytes(), timeout) as v:
            arr = self._array(v)
            try:
                yield arr
            finally:
                del arr

    # ---- asyncio ----
    async def _ready(self, loop, deadline):
        """Wait in the event loop (no thread) until the descriptor is readable, the deadline
        (loop time) passes, or the handle should look again anyway (a peer in the way may
        have died: _fd_timeout)."""
        fd = self.fileno()
        fut = loop.create_future()

        def wake():
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, wake)
        self._async_wait = (loop, fd, fut)
        timer = None
        wait = self._fd_timeout()
        if deadline is not None:
            left = max(0.0, deadline - loop.time())
            wait = left if wait is None else min(wait, left)
        if wait is not None:
            timer = loop.call_later(wait, wake)
        try:
            await fut
        finally:
            if self._async_wait is not None:
                self._async_wait = None
                loop.remove_reader(fd)
            if timer is not None:
                timer.cancel()

    async def _await_call(self, attempt, timeout, what):
        """Call attempt() (a call with timeout 0, which arms the descriptor when it finds
        nothing) until it gives a result other than None, waiting for the descriptor in
        between. Only attempt() takes or sends a message, and it runs in this coroutine, so a
        cancelled call has taken nothing. One coroutine per handle at a time."""
        if self._async_busy:
            raise RuntimeError(f"{self.address}: another coroutine is waiting on this handle "
                               "(open one handle per concurrent coroutine)")
        r = attempt()  # the fast path needs no loop (looking it up costs a system call)
        if r is not None:
            return r
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._async_busy = True
        try:
            while True:
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError(errno.ETIMEDOUT, f"{what} {self.address}: timed out")
                await self._ready(loop, deadline)
                r = attempt()
                if r is not None:
                    return r
        finally:
            self._async_busy = False

    async def arecv(self, timeout=None):
        """The next message (bytes), waiting in the running event loop at most timeout
        seconds (None: for ever); TimeoutError. No thread: the loop waits on the channel's
        descriptor (fileno()). Cancelled (wait_for, task.cancel()), it has taken nothing: a
        message is taken only by the call that returns it. One coroutine per handle at a
        time (RuntimeError otherwise)."""
        return await self._await_call(self._try_recv, timeout, "recv from")

    async def asend(self, data, timeout=None):
        """send() in the running event loop, waiting for room at most timeout seconds (None:
        for ever); TimeoutError. Cancelled, it has sent nothing. As arecv: no thread, one
        coroutine per handle."""
        await self._await_call(lambda: True if self._try_send(data) else None, timeout,
                               "send to")

    def __aiter__(self):
        return self

    async def __anext__(self):
        """`async for msg in ch`: arecv() until the channel is closed."""
        if self.closed:
            raise StopAsyncIteration
        try:
            return await self.arecv()
        except ValueError:
            if self.closed:
                raise StopAsyncIteration from None
            raise

    def close(self):
        """Close the endpoint (see the C method's help: BufferError inside a claim or
        recv_view block; deferred while arrays of finished messages live). A coroutine waiting
        on the handle (arecv, asend, async for) wakes up: ValueError, or the end of its async
        for."""
        wait, self._async_wait = self._async_wait, None
        if wait is not None:
            loop, fd, fut = wait
            loop.remove_reader(fd)
        super().close()
        if wait is not None and not fut.done():
            fut.get_loop().call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<shmlink.{type(self).__name__} {self.address}{' (closed)' if self.closed else ''}>"


class Queue(_Channel):
    """Queue(addr, create=False, *, capacity=None, max_msg=None, dtype=None, shape=None,
    policy='block', wait='adaptive', mode=0o600, role=None, endpoints=None, spsc=False,
    owned=False, timeout=0, durable=None)

    Each message goes to exactly one consumer. role: 'producer', 'consumer' or 'both'
    (the default). wait: 'adaptive', 'spin' or 'block'. The channel lives until
    shmlink.unlink(addr), like a file; owned=True (at create) makes it its creator's, removed
    by shmlink.gc() once the creator and every endpoint are gone. timeout (at open): how long
    to wait for a channel that does not exist yet (a consumer started before its producer):
    0 (the default) fails at once with FileNotFoundError, seconds, or None for ever;
    TimeoutError when it passes. durable='NAME' (at open, a consumer): a durable endpoint,
    whose place the next consumer opened with that name takes when its process dies: the
    message it was reading comes first (shmlink/channel.h, "Durable endpoints"); a Bus
    subscriber opened so goes on from where it stopped. Methods: send, recv, send_batch,
    recv_batch, claim, recv_view, commit, send_array, recv_array, recv_view_array, stats,
    close, arecv, asend; attributes dtype, shape, gap, address, max_msg. Every call that
    waits takes timeout: seconds, None (the default) waits for ever, 0 does not wait;
    TimeoutError when it passes."""
    _kind = _shmlink.QUEUE


class Bus(_Channel):
    """Bus(addr, ...): publish/subscribe; every subscriber gets every message sent after it
    joined. role: 'publisher' or 'subscriber' (the default when opening; the creator is the
    publisher). policy='overwrite': publishers never wait, `gap` tells what a subscriber
    missed. Options and timeouts as for Queue: timeout=None waits for ever."""
    _kind = _shmlink.BUS


class Latest(_Channel):
    """Latest(addr, ...): one newest value. role: 'writer' or 'reader' (the default when
    opening; the creator is both). recv returns the newest value not read yet; `gap` counts
    skipped values. Options and timeouts as for Queue: timeout=None waits for ever."""
    _kind = _shmlink.LATEST


class RPC(_Channel):
    """RPC(addr, ...): request/reply. role: 'client' (the default when opening) sends a
    request then recv()s its reply; 'server' (the creator) recv()s a request and its next
    send() is the reply, or refuse() answers with a failure (the client's recv() raises
    OSError with errno EHOSTUNREACH). call(data) does both on a client. A client's request with no server
    attached raises ConnectionError at once, unless the client was opened with a timeout
    other than 0: then it waits for a server, within the send's own timeout. Options and
    timeouts as for Queue: timeout=None waits for ever."""
    _kind = _shmlink.RPC

    def call(self, data, timeout=None):
        """Send a request and return its reply (client). timeout: seconds for each of the
        two waits (room for the request, then the reply); None waits for ever;
        TimeoutError."""
        self.send(data, timeout)
        return self.recv(timeout)


def wait(channels, timeout=None):
    """Wait at most timeout seconds (None: for ever) until any of `channels` can make progress
    (a message waits, or room) and return those that can, in a list ([] when the timeout
    passes). Objects with fileno() (sockets, pipes) may be mixed in: they count when readable.
    Built on a WaitSet made for the call (a channel in a WaitSet of its own is refused: wait
    on that set instead). As with fileno(), a channel stays ready until a call with timeout 0
    finds nothing (TimeoutError)."""
    with _shmlink.WaitSet() as ws:
        for c in channels:
            ws.add(c)
        return [obj for obj, _ in ws.wait(timeout)]
