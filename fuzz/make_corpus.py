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


def chan_block(magic=0x4E414843, version=3, kind=2, flags=0, nslots=8, stride=128,
               max_msg=100, slots_off=None, policy=0, nendpoints=4, ep_off=1024, box_off=None,
               box_stride=None, length=1024):
    """A channel control block as docs/FORMAT.md ("Channels", layout version 3) lays it out."""
    end = 1024 + nendpoints * 128
    if box_stride is None:
        box_stride = (64 + max_msg + 63) // 64 * 64 if kind == 5 else 0
    if box_off is None:
        box_off = end if kind == 5 else 0
    if kind == 5:
        end += nendpoints * box_stride
    if slots_off is None:
        slots_off = (end + 127) // 128 * 128
    b = bytearray(1024)
    struct.pack_into("<IIIIIIQQIIQQI", b, 0, magic, version, kind, flags, nslots, stride,
                     max_msg, slots_off, policy, nendpoints, ep_off, box_off, box_stride)
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

    # Channel seeds: 8 bytes of data size, then the control block (layout version 3: 4
    # endpoints, so the slots start at 1536; an rpc channel's mailboxes come first). Seed
    # 'valid' (8 slots of 128 bytes) must be accepted.
    def chan(name, data_size, **kw):
        write("channel", name, struct.pack("<Q", data_size) + chan_block(**kw))

    fits = 1536 + 8 * 128
    chan("valid", fits)
    chan("valid_spsc", fits, flags=1)
    chan("valid_big", 1536 + 256 * 4160, nslots=256, stride=4160, max_msg=4096)
    chan("valid_two_slots", 1536 + 2 * 64, nslots=2, stride=64, max_msg=48)
    chan("valid_bus_overwrite", fits, kind=3, policy=1)
    chan("valid_latest", 1536 + 4 * 192, kind=4, nslots=4, stride=192, max_msg=100)
    chan("valid_rpc", 1024 + 4 * 128 + 4 * 192 + 8 * 128, kind=5, stride=128, max_msg=100)
    chan("valid_4096_endpoints", 1024 + 4096 * 128 + 8 * 128, nendpoints=4096)
    chan("data_one_short", fits - 1)
    chan("data_smaller_than_block", 100)
    chan("data_zero", 0)
    chan("short_image", fits, length=40)
    chan("bad_magic", fits, magic=0x4348414E)
    chan("version0", fits, version=0)
    chan("version1", fits, version=1)
    chan("version2", fits, version=2)
    chan("version4", fits, version=4)
    chan("kind_bus", fits, kind=3)
    chan("kind0", fits, kind=0)
    chan("kind6", fits, kind=6)
    chan("nslots0", fits, nslots=0)
    chan("nslots1", fits, nslots=1)
    chan("nslots3", fits, nslots=3)
    chan("latest_nslots2", fits, kind=4, nslots=2, stride=192)
    chan("nslots_2_31", 1 << 40, nslots=1 << 31)
    chan("nslots_max", 1 << 62, nslots=0xFFFFFFFF)
    chan("stride_odd", fits, stride=100)
    chan("stride_small", fits, stride=64)
    chan("rpc_stride_no_tag", fits, kind=5, stride=128, max_msg=112)
    chan("stride_huge", 1 << 62, nslots=1 << 30, stride=0xFFFFFFC0, max_msg=1 << 30)
    chan("max_msg_huge", fits, max_msg=1 << 63)
    chan("max_msg_2_30_plus", 1 << 40, stride=(1 << 30) + 64, max_msg=(1 << 30) + 1)
    chan("slots_off0", fits, slots_off=0)
    chan("slots_off_1024", fits, slots_off=1024)
    chan("slots_off_far", fits, slots_off=1 << 63)
    chan("policy_overwrite_queue", fits, policy=1)
    chan("policy2", fits, kind=3, policy=2)
    chan("spsc_bus", fits, kind=3, flags=1)
    chan("endpoints0", fits, nendpoints=0)
    chan("endpoints4097", 1 << 30, nendpoints=4097)
    chan("endpoints_max", 1 << 40, nendpoints=0xFFFFFFFF)
    chan("ep_off0", fits, ep_off=0)
    chan("ep_off_far", fits, ep_off=1 << 63)
    chan("box_on_queue", fits, box_off=1536, box_stride=192)
    chan("rpc_box_off_wrong", 1 << 20, kind=5, box_off=1024)
    chan("rpc_box_stride_small", 1 << 20, kind=5, box_stride=64)
    chan("rpc_box_stride_huge", 1 << 40, kind=5, box_stride=0xFFFFFFC0)
    chan("size_huge", (1 << 64) - 1)


# ---- fuzz_ring: whole channel images (src/layout.h, channel layout version 3) ----
# Input: kind index (0 queue, 1 bus, 2 latest, 3 rpc), operations (a bit each), role,
# flags (bit 0: check with repair too; bit 1: the rest is patches, else an image of the data).
# The target's channels have 8 slots for messages of 48 bytes and 4 endpoints.
RING_KINDS = {0: 2, 1: 3, 2: 4, 3: 5}
EVENT_MAGIC = 0x544E5645
DEAD = 0x7FFFFFF0  # a pid above pid_max: never alive
RING_MAX = 48
RING_N = 8
RING_EP = 4


def ring_geometry(k):
    kind = RING_KINDS[k]
    overhead = 32 if kind == 4 else 24 if kind == 5 else 16
    stride = (overhead + RING_MAX + 63) // 64 * 64
    end = 1024 + RING_EP * 128
    box_off, box_stride = 0, 0
    if kind == 5:
        box_stride = (64 + RING_MAX + 63) // 64 * 64
        box_off = end
        end += RING_EP * box_stride
    slots_off = (end + 127) // 128 * 128
    return kind, stride, slots_off, box_off, box_stride


def ring_image(k, enq=0, deq=0, version=3, nslots=RING_N, policy=0, nendpoints=RING_EP,
               waiters=0):
    """A channel's data as src/layout.h lays it out: control block, endpoint table, mailboxes
    (rpc), slots. Returns (bytearray, slots_off, stride, box_off, box_stride)."""
    kind, stride, slots_off, box_off, box_stride = ring_geometry(k)
    img = bytearray(slots_off + RING_N * stride)
    struct.pack_into("<IIIIIIQQIIQQI", img, 0, 0x4E414843, version, kind, 0, nslots, stride,
                     RING_MAX, slots_off, policy, nendpoints, 1024, box_off, box_stride)
    struct.pack_into("<Q", img, 128, enq)
    struct.pack_into("<Q", img, 256, deq)
    for ev in (384, 512):
        struct.pack_into("<IIQII", img, ev, 0, 0, waiters, EVENT_MAGIC, 0)
    for e in range(RING_EP):
        if kind == 5:
            struct.pack_into("<IIQII", img, box_off + e * box_stride, 0, 0, 0, EVENT_MAGIC, 0)
    for i in range(RING_N):
        if kind == 2 or kind == 5:
            struct.pack_into("<Q", img, slots_off + i * stride, i << 32)  # free for p = i
        elif kind == 3:
            struct.pack_into("<Q", img, slots_off + i * stride, ((i + 1 - RING_N) & 0xFFFFFFFF) << 32)
    return img, slots_off, stride, box_off, box_stride


def holder(e, gen=1):
    """A slot, buffer or mailbox holder: endpoint entry e of generation gen (shml_holder() in src/layout.h)."""
    return ((gen & 0x1FFFF) << 13) | (e + 1)


def put_slot(img, slots_off, stride, i, state, payload, length=None, tag=None):
    off = slots_off + i * stride
    body = (struct.pack("<II", *tag) if tag else b"") + payload
    struct.pack_into("<QI", img, off, state, len(body) if length is None else length)
    img[off + 16:off + 16 + len(body)] = body[:stride - 16]


def put_ep(img, e, pid, role, used=1, gen=1, pin=0, cursor=0, start=0):
    struct.pack_into("<QQII", img, 1024 + e * 128, (gen << 32) | (pid << 1) | used, start,
                     role, pin)
    struct.pack_into("<Q", img, 1024 + e * 128 + 72, cursor)


def ring_seed(name, k, ops, role, flags, body):
    write("ring", name, bytes([k, ops, role, flags]) + bytes(body))


def patches(*items):
    out = b""
    for off, data in items:
        out += struct.pack("<HB", off, len(data)) + data
    return out


def ring_seeds():
    for k in range(4):
        for role in range(3):
            ring_seed("template_k%d_r%d" % (k, role), k, 0xFF, role, 1, b"")

    # Queue: messages ready; a dead producer's claim; a dead reader; wild indices; bad lengths.
    img, so, st, _, _ = ring_image(0, enq=3, deq=0)
    for p in range(3):
        put_slot(img, so, st, p, (p + 1) << 32, b"hello")
    ring_seed("queue_msgs", 0, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(0, enq=1, deq=0)
    put_slot(img, so, st, 0, (holder(0) << 1) | 1, b"half")
    put_ep(img, 0, DEAD, 1)
    ring_seed("queue_dead_claim", 0, 0x7F, 1, 1, img)
    img, so, st, _, _ = ring_image(0, enq=2, deq=1)
    put_slot(img, so, st, 0, (1 << 32) | (holder(1) << 1) | 1, b"reading")
    put_slot(img, so, st, 1, 2 << 32, b"next")
    put_ep(img, 1, DEAD, 2)
    ring_seed("queue_dead_reader", 0, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(0, enq=(1 << 64) - 3, deq=5)
    ring_seed("queue_wild_indices", 0, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(0, enq=2, deq=0)
    put_slot(img, so, st, 0, 1 << 32, b"x", length=0xFFFFFFFF)
    put_slot(img, so, st, 1, 2 << 32, b"y", length=49)
    ring_seed("queue_bad_lengths", 0, 0xFF, 2, 0, img)
    img, so, st, _, _ = ring_image(0, enq=4, deq=0, waiters=(1 << 64) - 1)
    ring_seed("queue_garbage_waiters", 0, 0xFF, 2, 1, img)

    # Bus: messages, subscribers (dead) with cursors behind, ahead and far; a hole.
    img, so, st, _, _ = ring_image(1, enq=3)
    for p in range(3):
        put_slot(img, so, st, p, (p + 1) << 32, b"news")
    put_ep(img, 0, DEAD, 2, cursor=0)
    put_ep(img, 1, DEAD, 2, cursor=1 << 63)
    put_ep(img, 2, 1, 2, cursor=2)  # pid 1: alive, never reads
    ring_seed("bus_msgs_subscribers", 1, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(1, enq=2)
    put_slot(img, so, st, 0, (1 << 32) | (0x7FFFFFFF << 1), b"")
    put_slot(img, so, st, 1, (1 << 32) | (holder(3) << 1) | 1, b"half")  # a free entry
    ring_seed("bus_hole_and_dead_publisher", 1, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(1, enq=100, policy=1)
    ring_seed("bus_overwrite_lapped", 1, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(1, enq=5, deq=1 << 40)
    ring_seed("bus_cached_min_ahead", 1, 0xFF, 0, 1, img)

    # Latest: a current value; a current index out of range; pins of dead readers.
    img, so, st, _, _ = ring_image(2, enq=(5 << 16) | 2)
    struct.pack_into("<QQI", img, so + 2 * st, 0, 5, 5)
    img[so + 2 * st + 32:so + 2 * st + 37] = b"value"
    ring_seed("latest_value", 2, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(2, enq=(5 << 16) | 0xFFFF)
    ring_seed("latest_bad_current", 2, 0xFF, 2, 1, img)
    img, so, st, _, _ = ring_image(2, enq=(9 << 16) | 1)
    struct.pack_into("<QQI", img, so + 1 * st, 0, 9, 1000)
    for b in (0, 2, 3):
        struct.pack_into("<Q", img, so + b * st, (0xFFFF << 32) | (holder(b % 2) << 1) | 1)
    put_ep(img, 0, DEAD, 2, pin=3)
    put_ep(img, 1, DEAD, 2, pin=200)
    ring_seed("latest_pins_and_bad_len", 2, 0xFF, 2, 1, img)

    # Rpc: a request from a dead client; bad tags; a mailbox replied with a bad length.
    img, so, st, bo, bs = ring_image(3, enq=1, deq=0)
    put_slot(img, so, st, 0, 1 << 32, b"question", tag=(1, 7))
    put_ep(img, 1, DEAD, 1, cursor=7)
    struct.pack_into("<Q", img, bo + 1 * bs + 32, 7 << 32)
    ring_seed("rpc_request_dead_client", 3, 0xFF, 1, 1, img)
    img, so, st, bo, bs = ring_image(3, enq=3, deq=0)
    put_slot(img, so, st, 0, 1 << 32, b"q", tag=(99, 1))
    put_slot(img, so, st, 1, 2 << 32, b"", length=3)
    put_slot(img, so, st, 2, 3 << 32, b"q", tag=(0xFFFFFFFF, 0xFFFFFFFF))
    ring_seed("rpc_bad_tags", 3, 0xFF, 1, 1, img)
    img, so, st, bo, bs = ring_image(3)
    for e in range(RING_EP):
        struct.pack_into("<QI", img, bo + e * bs + 32, (1 << 32) | (holder(e) << 2) | 1, 0xFFFFFFFE)
    ring_seed("rpc_boxes_replied_bad_len", 3, 0xFF, 0, 1, img)
    img, so, st, bo, bs = ring_image(3, enq=1)
    put_slot(img, so, st, 0, (holder(0) << 1) | 1, b"half", tag=(0, 1))
    put_ep(img, 0, DEAD, 2)
    ring_seed("rpc_dead_server_claim", 3, 0xFF, 0, 1, img)

    # Control blocks that must be refused: other version, other geometry, other tables.
    for k in range(4):
        img, _, _, _, _ = ring_image(k, version=1)
        ring_seed("k%d_version1" % k, k, 0xFF, 2, 1, img)
        img, _, _, _, _ = ring_image(k, nslots=16)
        ring_seed("k%d_nslots16" % k, k, 0xFF, 2, 1, img)
        img, _, _, _, _ = ring_image(k, nendpoints=5)
        ring_seed("k%d_endpoints5" % k, k, 0xFF, 2, 1, img)

    # Patches on the library's own channels: indices, states, endpoint table, events.
    for k in range(4):
        kind, stride, so, bo, bs = ring_geometry(k)
        ring_seed("k%d_patch_enq_far" % k, k, 0xFF, 2, 3, patches((128, struct.pack("<Q", 1000))))
        ring_seed("k%d_patch_deq_ahead" % k, k, 0xFF, 2, 3, patches((256, struct.pack("<Q", 5))))
        ring_seed("k%d_patch_slot_states" % k, k, 0xFF, 2, 3,
                  patches(*[(so + i * stride, bytes([0xA5, i, 0x3C, 0xFF, 0x01, 0, 0x80, i]))
                            for i in range(RING_N)]))
        ring_seed("k%d_patch_slot_lens" % k, k, 0xFF, 2, 3,
                  patches(*[(so + i * stride + (16 if kind == 4 else 8),
                             struct.pack("<I", 0xFFFFFF00 + i)) for i in range(RING_N)]))
        ring_seed("k%d_patch_ep_table" % k, k, 0xFF, 2, 3,
                  patches(*[(1024 + e * 128, b"\xff" * 80) for e in range(RING_EP)]))
        ring_seed("k%d_patch_events" % k, k, 0xFF, 2, 3,
                  patches((384, b"\xff" * 32), (512, b"\x00" * 32)))
        ring_seed("k%d_patch_lost_and_totals" % k, k, 0xFF, 2, 3,
                  patches((640, b"\xff" * 64)))
        if kind == 5:
            ring_seed("k3_patch_boxes", k, 0xFF, 0, 3,
                      patches(*[(bo + e * bs, b"\xee" * 64) for e in range(RING_EP)]))


# ---- the concurrent targets (fuzz/live.h): a peer's schedule of (offset, bytes) ----

LIVE_HDR = 4096  # the channel's data starts after the one-page header
THREADED, RESEAL, REPAIR = 1, 2, 4


def live_rec(off, data, initial=False):
    """One schedule record: u16 offset into the file, u8 ctl (length - 1, bit 3 initial)."""
    out = b""
    for i in range(0, len(data), 8):
        part = data[i:i + 8]
        out += struct.pack("<HB", off + i, (len(part) - 1) | (8 if initial else 0)) + part
    return out


def chan_live_seed(name, k, ops, handles, mode, rounds, *recs):
    write("channel_live", name,
          bytes([k, ops, handles, mode | ((rounds - 1) << 4)]) + b"".join(recs))


def chan_live_seeds():
    """One seed per field the library must read once, each in both modes: stepped (changed
    between calls: geometry kept from open) and threaded (changed during a call)."""
    q32 = lambda v: struct.pack("<I", v)
    q64 = lambda v: struct.pack("<Q", v)
    for k in range(4):
        kind, stride, so, bo, bs = ring_geometry(k)
        d = LIVE_HDR
        fields = [
            ("nslots", d + 16, q32(1 << 31)),
            ("stride", d + 20, q32(0xFFFFFFC0)),
            ("max_msg", d + 24, q64(1 << 30)),
            ("slots_off", d + 32, q64(1 << 40)),
            ("nendpoints", d + 44, q32(4096)),
            ("ep_off", d + 48, q64(0xFFFF0000)),
            ("kind", d + 8, q32(2 + (k + 1) % 4)),
            ("enq", d + 128, q64((1 << 64) - 3)),
            ("deq", d + 256, q64(1 << 40)),
            ("ep_table", d + 1024, b"\xff" * 16),
            ("type_ndim", d + 776, q32(0xFFFFFFFF)),
            ("type_format_len", d + 780, q32(0xFFFFFFFF)),
        ]
        lenoff = 16 if kind == 4 else 8
        fields += [("slot%d_len" % i, d + so + i * stride + lenoff, q32(v))
                   for i, v in ((0, 0xFFFFFFFF), (1, 49), (2, 33))]
        fields += [("slot_state", d + so, q64(0xA5A5A5A5A5A5A5A5))]
        if kind == 5:
            fields += [("box_off", d + 56, q64(0xFFFF0000)),
                       ("box_stride", d + 64, q32(0xFFFFFFC0)),
                       ("box_len", d + bo + 40, q32(0xFFFFFFFE)),
                       ("box_state", d + bo + 32, q64((1 << 32) | 1))]
        fields += [("hdr_size", 24, q64(1 << 36)), ("hdr_data_off", 12, q32(1 << 20))]
        for fname, off, val in fields:
            chan_live_seed("k%d_%s_stepped" % (k, fname), k, 0x7F, 2, 0, 4, live_rec(off, val))
            chan_live_seed("k%d_%s_threaded" % (k, fname), k, 0xFF, 2, THREADED | REPAIR, 8,
                           live_rec(off, val))
        # Several fields at once, the header resealed; a broken slot before open.
        chan_live_seed("k%d_geometry_all" % k, k, 0xFF, 2, THREADED | RESEAL, 16,
                       *[live_rec(off, val) for _, off, val in fields])
        chan_live_seed("k%d_initial_and_live" % k, k, 0x7F, 2, 0, 4,
                       live_rec(d + so + lenoff, q32(0xFFFFFFFF), initial=True),
                       live_rec(d + 48, q64(0)))


def hdr_live_seed(name, ops, mode, rounds, *recs):
    write("header_live", name, bytes([ops, mode | ((rounds - 1) << 4)]) + b"".join(recs))


def hdr_live_seeds():
    q32 = lambda v: struct.pack("<I", v)
    q64 = lambda v: struct.pack("<Q", v)
    fields = [
        ("header_size", 12, q32(1 << 20)),
        ("kind", 16, q32(2)),
        ("flags", 20, q32(0xFFFFFFFF)),
        ("size", 24, q64(1 << 36)),
        ("size_zero", 24, q64(0)),
        ("map_size", 32, q64(1 << 40)),
        ("creator_pid", 40, q32(0x7FFFFFF0)),
        ("created_ns", 56, q64(1 << 63)),
        ("label", 80, b"x" * 64),
        ("attach_off", 144, q32(0xFFFFF000)),
        ("attach_cap", 148, q32(0xFFFFFFFF)),
        ("attach_size", 152, q32(1)),
        ("untracked", 164, q32(0xFFFFFFFF)),
        ("decl_type", 256, q32(0xFFFFFFFF)),
        ("decl_offset", 264, q64(1 << 62)),
        ("decl_name", 272, b"y" * 24),
        ("attach_entry", 1024, q32(0x7FFFFFF0) + q32(1) + q64(1 << 63)),
    ]
    for fname, off, val in fields:
        hdr_live_seed(fname + "_stepped", 0x1F, 0, 4, live_rec(off, val))
        hdr_live_seed(fname + "_stepped_resealed", 0x1F, RESEAL, 4, live_rec(off, val))
        hdr_live_seed(fname + "_threaded", 0x1F, THREADED, 8, live_rec(off, val))
        hdr_live_seed(fname + "_threaded_resealed", 0x1F, THREADED | RESEAL, 8, live_rec(off, val))
    hdr_live_seed("all_resealed", 0x1F, THREADED | RESEAL, 16,
                  *[live_rec(off, val) for _, off, val in fields])


if __name__ == "__main__":
    main()
    ring_seeds()
    chan_live_seeds()
    hdr_live_seeds()
