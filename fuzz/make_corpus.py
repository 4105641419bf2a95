#!/usr/bin/python3
"""Write the seed corpus of the fuzz targets (run from the repository root).

The header seeds are built from docs/FORMAT.md alone, not from the library, so replaying them
also checks that the document and the code agree: seed 'valid' must be accepted.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def fnv1a(data):
    h = 2166136261
    for b in data:
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def header(size=100, kind=1, flags=0, version=1, header_size=4096, map_size=None,
           state=0x59444552, label=b"seed", attach=(1024, 96, 32), bad_check=False):
    if map_size is None:
        map_size = (header_size + size + 4095) // 4096 * 4096
    h = bytearray(4096)
    h[0:8] = b"SHMLINK\0"
    struct.pack_into("<IIII", h, 8, version, header_size, kind, flags)
    struct.pack_into("<QQ", h, 24, size, map_size)
    struct.pack_into("<iIQq", h, 40, 1234, 0, 5678, 1700000000000000000)
    h[80:80 + len(label)] = label
    struct.pack_into("<III", h, 144, *attach)
    check = fnv1a(bytes(h[0:156])) ^ (1 if bad_check else 0)
    struct.pack_into("<I", h, 156, check)
    struct.pack_into("<I", h, 160, state)
    # One attach entry: pid 1, valid, start 1.
    struct.pack_into("<IIQQI", h, 1024, 1, 1, 1, 1, 0)
    return bytes(h), map_size


def chan_block(magic=0x4E414843, version=1, kind=2, flags=0, nslots=8, stride=128,
               max_msg=100, slots_off=1024, length=1024):
    """A channel control block as docs/FORMAT.md ("Channels") lays it out."""
    b = bytearray(1024)
    struct.pack_into("<IIIIIIQQ", b, 0, magic, version, kind, flags, nslots, stride, max_msg,
                     slots_off)
    return bytes(b[:length])


def write(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for i, a in enumerate([
        "cam0", "posix:cam0", "posix:/cam0", "sysv:1234", "sysv:0x4d2", "sysv:/tmp/key#102",
        "sysv:id=32769", "file:/tmp/seg", "memfd:frames", "win:Local\\cam", "win:Global\\x",
        "", "a/b", "..", "sysv:0", "sysv:/x#0", "sysv:/x#256", "sysv:id=-1", "foo:bar",
        "x" * 201, "posix:", "sysv:0xffffffff", "sysv:0x100000000", "file:", "a\x01b",
    ]):
        write("address", "seed%02d" % i, a.encode())

    def seed(name, img, object_size):
        write("header", name, struct.pack("<Q", object_size) + img)

    img, ms = header()
    seed("valid", img, ms)
    seed("truncated_object", img, ms - 4096)
    seed("short_image", img[:100], ms)
    seed("blank", bytes(4096), 8192)
    seed("foreign", b"hello world" + bytes(4085), 8192)
    seed("version2", header(version=2)[0], ms)
    seed("initialising", header(state=0)[0], ms)
    seed("bad_state", header(state=7)[0], ms)
    seed("bad_check", header(bad_check=True)[0], ms)
    seed("kind0", header(kind=0)[0], ms)
    seed("size0", header(size=0, map_size=4096)[0], 4096)
    seed("hdr_size_odd", header(header_size=5000)[0], 1 << 20)
    seed("map_size_small", header(size=10000, map_size=8192)[0], 1 << 20)
    seed("flags_unknown", header(flags=2)[0], ms)
    seed("attach_moved", header(attach=(2048, 96, 32))[0], ms)
    seed("huge_size", header(size=(1 << 64) - 4096, map_size=4096)[0], 1 << 62)
    seed("label_unterminated", header(label=b"x" * 64)[0], ms)

    # Channel seeds: 8 bytes of data size, then the control block. Seed 'valid' (8 slots of
    # 128 bytes after the 1024-byte block) must be accepted.
    def chan(name, data_size, **kw):
        write("channel", name, struct.pack("<Q", data_size) + chan_block(**kw))

    fits = 1024 + 8 * 128
    chan("valid", fits)
    chan("valid_spsc", fits, flags=1)
    chan("valid_big", 1024 + 256 * 4160, nslots=256, stride=4160, max_msg=4096)
    chan("valid_two_slots", 1024 + 2 * 64, nslots=2, stride=64, max_msg=48)
    chan("data_one_short", fits - 1)
    chan("data_smaller_than_block", 100)
    chan("data_zero", 0)
    chan("short_image", fits, length=40)
    chan("bad_magic", fits, magic=0x4348414E)
    chan("version0", fits, version=0)
    chan("version2", fits, version=2)
    chan("kind_bus", fits, kind=3)
    chan("kind0", fits, kind=0)
    chan("nslots0", fits, nslots=0)
    chan("nslots1", fits, nslots=1)
    chan("nslots3", fits, nslots=3)
    chan("nslots_2_31", 1 << 40, nslots=1 << 31)
    chan("nslots_max", 1 << 62, nslots=0xFFFFFFFF)
    chan("stride_odd", fits, stride=100)
    chan("stride_small", fits, stride=64)
    chan("stride_huge", 1 << 62, nslots=1 << 30, stride=0xFFFFFFC0, max_msg=1 << 30)
    chan("max_msg_huge", fits, max_msg=1 << 63)
    chan("max_msg_2_30_plus", 1 << 40, stride=(1 << 30) + 64, max_msg=(1 << 30) + 1)
    chan("slots_off0", fits, slots_off=0)
    chan("slots_off_far", fits, slots_off=1 << 63)
    chan("size_huge", (1 << 64) - 1)


if __name__ == "__main__":
    main()
