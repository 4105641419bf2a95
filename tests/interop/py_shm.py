#!/usr/bin/python3
"""Python's standard multiprocessing.shared_memory against shmlink segments (interop tests).

    py_shm.py create NAME SIZE SEED          make a segment, fill it with the pattern, leave it
    py_shm.py read NAME SIZE SEED [NEWSEED]  check SIZE bytes of pattern SEED; then write NEWSEED
    py_shm.py read-managed NAME SEED         read a managed shmlink segment from its documented
                                             layout (docs/FORMAT.md), without the library

Exit 0 when all is as expected, 1 (with the reason on stderr) otherwise.
"""
import struct
import sys
from multiprocessing import resource_tracker, shared_memory


def pattern(n, seed):
    # The same formula as shmt_pattern() in tests/harness.h and classic.h.
    return bytes(((i * 131 + (i >> 8) * 7 + seed * 17 + 1) & 0xFF) for i in range(n))


def attach(name, create=False, size=0):
    sm = shared_memory.SharedMemory(name=name, create=create, size=size)
    # Python 3.11 registers every segment it creates *or opens* with its resource tracker,
    # which unlinks them when this process exits. The segment belongs to the test: forget it.
    resource_tracker.unregister(sm._name, "shared_memory")
    return sm


def fail(msg):
    print("py_shm.py: " + msg, file=sys.stderr)
    return 1


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def main(argv):
    if len(argv) < 4:
        return fail(__doc__)
    cmd, name = argv[1], argv[2]
    if cmd == "create" and len(argv) == 5:
        size, seed = int(argv[3]), int(argv[4])
        sm = attach(name, create=True, size=size)
        sm.buf[:size] = pattern(size, seed)
        sm.close()
        return 0
    if cmd == "read" and len(argv) in (5, 6):
        size, seed = int(argv[3]), int(argv[4])
        sm = attach(name)
        try:
            if sm.size != size:
                return fail("segment has %d bytes, want %d" % (sm.size, size))
            got = bytes(sm.buf[:size])
            want = pattern(size, seed)
            if got != want:
                i = first_diff(got, want)
                return fail("byte %d is 0x%02x, want 0x%02x" % (i, got[i], want[i]))
            if len(argv) == 6:
                sm.buf[:size] = pattern(size, int(argv[5]))
            return 0
        finally:
            sm.close()
    if cmd == "read-managed" and len(argv) == 4:
        seed = int(argv[3])
        sm = attach(name)
        try:
            hdr = bytes(sm.buf[:4096])
            if hdr[:8] != b"SHMLINK\0":
                return fail("no shmlink magic")
            version, header_size, kind, flags, size, map_size = struct.unpack_from("<IIIIQQ", hdr, 8)
            (check, state) = struct.unpack_from("<II", hdr, 156)
            if version != 1 or state != 0x59444552:
                return fail("version %d state 0x%x" % (version, state))
            if fnv1a(hdr[:156]) != check:
                return fail("checksum mismatch")
            if map_size > sm.size or header_size % 4096:
                return fail("map_size %d, object %d, header_size %d" % (map_size, sm.size, header_size))
            label = hdr[80:144].split(b"\0", 1)[0].decode()
            got = bytes(sm.buf[header_size:header_size + size])
            want = pattern(size, seed)
            if got != want:
                i = first_diff(got, want)
                return fail("data byte %d is 0x%02x, want 0x%02x" % (i, got[i], want[i]))
            print("kind=%d size=%d label=%s" % (kind, size, label))
            return 0
        finally:
            sm.close()
    return fail(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
