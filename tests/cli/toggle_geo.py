#!/usr/bin/python3
"""A peer toggling a channel's geometry crashes none of the tool's verbs.

    tests/cli/toggle_geo.py --cli build/cli/shmlink

Makes a queue with a receiver following it (`shmlink recv --follow`), then, for each of the
control block's ep_off, box_off, slots_off, stride, nslots, nendpoints and max_msg, starts a
peer process that flips the field between its valid value and hostile ones in a tight loop
(writing the mapped object as any process allowed to write it could), and meanwhile runs
`shmlink send`, `info`, `info --check`, `info --repair`, `top --once` and `recv`. Each must
exit normally (0, or a failure with its message: the geometry it copied was refused), never
die of a signal or a sanitizer report; `info` shows the true geometry or says it is corrupt. The
follower, which keeps the geometry it copied at open, must live through all of it and print
every message a `send` reported sent, and one sent after the toggling.

Exit 0 passed, 1 failed. Everything it makes is removed whatever happens.
"""

import argparse
import ctypes
import mmap
import os
import signal
import subprocess
import sys
import time

from driver import WAIT, Failed, cleanup

RUN = 1.5          # seconds of toggling per field
TOGGLE_MAX = 120   # a toggler left behind stops by itself after this

# (name, offset in struct shml_chan_hdr, bytes, hostile values): src/layout.h. Each value is
# written with one store (ctypes): struct.pack_into writes piecemeal, and a torn value can be
# a valid, smaller geometry, which info would then rightly show.
FIELDS = [
    ("ep_off", 48, 8, [1 << 40, 2**64 - 4096, 1 << 30]),
    ("box_off", 56, 8, [1 << 40, 2**64 - 4096, 1 << 30]),
    ("slots_off", 32, 8, [1 << 40, 2**64 - 4096, 1 << 30]),
    ("stride", 20, 4, [0xffffffc0, 1 << 30, 1 << 24]),
    ("nslots", 16, 4, [1 << 30, 1 << 31, 0xffffffff]),
    ("nendpoints", 44, 4, [4096, 0xffffffff, 1 << 20]),
    ("max_msg", 24, 8, [1 << 30, 2**64 - 1, 1 << 40]),
]
CHAN_MAGIC = 0x4E414843  # "CHAN", at the start of the data



def toggle(path, off, width, values):
    """The peer: flip the `width`-byte field at byte `off` of the object at `path` between its
    value and each of `values` (one store each) until SIGTERM, then put its value back. Says
    "ready" on stdout once it flips. tests/python/test_toggle_geo.py runs it too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
    word = (ctypes.c_uint64 if width == 8 else ctypes.c_uint32).from_buffer(m, off)
    valid = word.value
    end = time.monotonic() + TOGGLE_MAX
    print("ready", flush=True)
    try:
        while time.monotonic() < end:
            for v in values:
                word.value = v
                word.value = valid
    finally:
        word.value = valid


def data_offset(path):
    """Where a channel's data (its control block) starts in the object at `path`."""
    with open(path, "rb") as f:
        data = 4096
        while True:
            f.seek(data)
            if int.from_bytes(f.read(4), "little") == CHAN_MAGIC:
                return data
            data += 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli")
    ap.add_argument("--toggle", nargs="+", metavar="PATH OFFSET BYTES VALUE",
                    help="be the toggling peer (see toggle())")
    args = ap.parse_args()
    if args.toggle:
        path, off, width, *values = args.toggle
        toggle(path, int(off), int(width), [int(v) for v in values])
        return 0
    cli = os.path.abspath(args.cli)
    addr = "shmlcli.%d.geo" % os.getpid()
    path = "/dev/shm/" + addr

    def run(*argv):
        return subprocess.run([cli] + list(argv), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=WAIT)

    def survived(r, what):
        """An exit of its own: 0, or an error it said; never a signal or a sanitizer."""
        if r.returncode < 0 or r.returncode >= 128 or "Sanitizer" in r.stderr or \
                "runtime error" in r.stderr:
            raise Failed("%s: exit %d under a toggled geometry: %s"
                         % (what, r.returncode, r.stderr.strip()[-2000:]))
        if r.returncode != 0 and not (r.stderr.strip() or r.stdout.strip()):
            raise Failed("%s: exit %d without a message" % (what, r.returncode))

    follower = toggler = None
    status = 0
    try:
        r = run("mk", "queue", addr, "--capacity", "1K", "--max-msg", "64")
        if r.returncode != 0:
            raise Failed("mk: %s" % r.stderr)
        channel_line = [l for l in run("info", addr).stdout.splitlines()
                        if l.startswith("channel:")]
        follower = subprocess.Popen([cli, "recv", addr, "--follow"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + WAIT
        while " consumer " not in run("info", addr).stdout:
            if time.monotonic() > deadline:
                raise Failed("the follower did not attach")
            time.sleep(0.05)
        data = data_offset(path)
        sent = []
        rounds = 0
        for name, off, width, values in FIELDS:
            toggler = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--toggle",
                                        path, str(data + off), str(width)] +
                                       [str(v) for v in values], stdout=subprocess.PIPE,
                                       text=True)
            if toggler.stdout.readline() != "ready\n":
                raise Failed("the %s toggler did not start" % name)
            end = time.monotonic() + RUN
            while time.monotonic() < end:
                msg = "%s-%d" % (name, rounds)
                r = run("send", addr, msg, "--timeout", "1s")
                survived(r, "send (%s toggled)" % name)
                if r.returncode == 0:
                    sent.append(msg)
                r = run("info", addr)
                survived(r, "info (%s toggled)" % name)
                if r.returncode == 0:
                    # The true geometry, or the copy refused (info still describes the
                    # segment, and says why there is no channel to show).
                    got = [l for l in r.stdout.splitlines() if l.startswith("channel:")]
                    refused = len(got) == 1 and "corrupt" in got[0]
                    if got != channel_line and not refused:
                        raise Failed("info (%s toggled) shows %s, not %s"
                                     % (name, got, channel_line))
                survived(run("info", "--check", addr), "info --check (%s toggled)" % name)
                survived(run("info", "--repair", addr), "info --repair (%s toggled)" % name)
                survived(run("top", "--once", "--interval", "10ms", addr),
                         "top (%s toggled)" % name)
                survived(run("recv", addr, "--timeout", "0"), "recv (%s toggled)" % name)
                rounds += 1
            toggler.terminate()
            if toggler.wait(timeout=WAIT) != 0:
                raise Failed("the %s toggler did not restore the field" % name)
            toggler = None
            if follower.poll() is not None:
                raise Failed("the follower died (%s toggled): exit %d: %s"
                             % (name, follower.returncode, follower.stderr.read()[-2000:]))
        if run("send", addr, "after").returncode != 0:
            raise Failed("send after the toggling failed")
        # What the follower printed, up to "after"; a message the short-lived recv took
        # instead is not the follower's to print.
        lines = []
        while True:
            line = follower.stdout.readline()
            if not line:
                raise Failed("the follower ended before 'after': %s"
                             % follower.stderr.read()[-2000:])
            if line == "after\n":
                break
            lines.append(line.rstrip("\n"))
        if not set(lines) <= set(sent) or lines != [m for m in sent if m in set(lines)]:
            raise Failed("the follower printed %r, not messages sent in order" % lines[:20])
        print("ok: %d rounds, %d messages sent, %d to the follower, no verb crashed"
              % (rounds, len(sent), len(lines)))
    except (Failed, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
        status = 1
    finally:
        cleanup(cli, [addr], [toggler, follower])
    return status


if __name__ == "__main__":
    sys.exit(main())
