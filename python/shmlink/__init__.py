"""shmlink: shared memory between processes, with channels, crash-safe locks and zero-copy
numpy views.

    import shmlink
    with shmlink.Queue("frames", create=True, dtype="uint8", shape=(480, 640, 3)) as q:
        q.send_array(frame)
    with shmlink.Queue("frames") as q:
        img = q.recv_array(timeout=1.0)

Classes: Segment, Mutex, Event, Semaphore, Queue, Bus, Latest, RPC, WaitSet. Functions: ls,
info, gc, unlink, wait. Channels have fileno() for selectors and select, and arecv/asend/async
for that wait in asyncio's loop itself. Errors are builtin exceptions (FileNotFoundError, FileExistsError,
PermissionError, TimeoutError, ValueError, BufferError, ConnectionResetError, OSError) and,
for shmlink's own conditions, subclasses of shmlink.Error (OwnerDied, NotRecoverable,
Corrupt, NotShmlink, WrongKind, VersionError, Truncated). numpy is imported only when a numpy
feature is used.
"""
from . import _shmlink
from ._shmlink import (Error, OwnerDied, NotRecoverable, Corrupt, NotShmlink, WrongKind,
                       VersionError, Truncated, Mutex, Event, Semaphore, WaitSet, READABLE,
                       WRITABLE, unlink, library_version)
from ._segment import Segment
from ._channel import Queue, Bus, Latest, RPC, wait
from ._inspect import ls, info, gc

__version__ = library_version
__all__ = ["Segment", "Mutex", "Event", "Semaphore", "Queue", "Bus", "Latest", "RPC",
           "WaitSet", "READABLE", "WRITABLE", "ls", "info", "gc", "unlink", "wait", "Error", "OwnerDied", "NotRecoverable", "Corrupt",
           "NotShmlink", "WrongKind", "VersionError", "Truncated"]
