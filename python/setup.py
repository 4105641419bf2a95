"""Build the shmlink Python package with setuptools, compiling the library's sources from
../src into the extension (self-contained). Usage (Debian 12, in a venv that sees Debian's
numpy):  /usr/bin/python3 -m venv --system-site-packages /tmp/venv &&
          /tmp/venv/bin/pip install ./python --no-build-isolation"""
import glob
import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
core = ["error.c", "opts.c", "names.c", "segment/address.c", "segment/header.c",
        "segment/segment.c", "segment/inspect.c", "sync/mutex.c", "sync/wait.c", "sync/declared.c",
        "sync/cancel.c", "channel/channel.c", "channel/queue.c", "channel/bus.c",
        "channel/latest.c", "channel/rpc.c", "channel/check.c", "channel/notify.c",
        "channel/waitset.c", "os/linux.c", "os/fdpass_unix.c", "os/notify_unix.c",
        "os/futex_linux.c", "os/mutex_pthread.c", "os/sigbus_unix.c", "segment/fd_common.c",
        "segment/posix.c", "segment/sysv.c", "segment/file.c", "segment/memfd.c",
        "segment/table_linux.c"]
# The extension's files, as python/CMakeLists.txt lists them.
extension = ["module.c", "wait.c", "segment.c", "sync.c", "typed.c", "channel.c", "message.c",
             "inspect.c", "waitset.c"]
sources = ["src/" + f for f in extension] + [os.path.relpath(os.path.join(root, "src", f), here)
                                             for f in core]
setup(
    name="shmlink",
    version="0.1.0",
    description="Shared memory between processes: channels, crash-safe locks, zero-copy numpy",
    packages=["shmlink"],
    ext_modules=[Extension(
        "shmlink._shmlink", sources=sources,
        include_dirs=[os.path.join(root, "include"), os.path.join(root, "src")],
        define_macros=[("_GNU_SOURCE", None), ("SHML_STATIC", None)],
        extra_compile_args=["-std=c11", "-fvisibility=hidden"],
        libraries=["pthread"])],
)
