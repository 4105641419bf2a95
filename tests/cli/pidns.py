#!/usr/bin/python3
"""A live subscriber in another pid namespace is not dead to the tool.

    tests/cli/pidns.py --cli build/cli/shmlink

As root, makes a bus channel of two endpoint entries and keeps a subscriber on it in a new pid
namespace with its own /proc (`unshare --pid --fork --mount-proc shmlink recv --follow`), as a
container that shares /dev/shm would. Its pid means another process, or none, here. From the
first namespace, `shmlink info` must not call it dead, `info --check` must find nothing and
`info --repair` must take nothing; with a publisher holding the other entry, every further
`shmlink send` must find the table full (never free the subscriber's entry to take it), and
the subscriber must receive every message the publisher sends through a ring much smaller
than them all, in order.

Exit 0 passed, 1 failed, 77 skipped (not root, or no unshare). Everything it makes is removed
whatever happens.
"""

import os
import select
import shutil
import subprocess
import sys
import time

from driver import SKIP, WAIT, Failed, cleanup, cli_arg

MESSAGES = 40



class Lines:
    """The lines a process prints, each waited for at most WAIT seconds (unbuffered reads,
    so that select() tells the truth)."""

    def __init__(self, proc, what):
        self.fd, self.what, self.buf = proc.stdout.fileno(), what, b""

    def next(self):
        deadline = time.monotonic() + WAIT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise Failed("no line from the %s in %d s" % (self.what, WAIT))
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise Failed("the %s ended" % self.what)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode() + "\n"


def main():
    cli = cli_arg(__doc__)
    if os.geteuid() != 0:
        print("skipped: needs root, to make a pid namespace")
        return SKIP
    if not shutil.which("unshare"):
        print("skipped: unshare (util-linux) is needed")
        return SKIP

    def run(*argv, ok=(0,)):
        r = subprocess.run([cli] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=WAIT)
        if r.returncode not in ok:
            raise Failed("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
        return r

    addr = "shmlcli.%d.pidns" % os.getpid()
    sub = pub = None
    status = 0
    try:
        run("mk", "bus", addr, "--endpoints", "2", "--capacity", "512", "--max-msg", "64")
        sub = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", cli, "recv", addr,
                                "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        lines = Lines(sub, "subscriber")
        deadline = time.monotonic() + WAIT
        while " subscriber " not in run("info", addr).stdout:
            if sub.poll() is not None:
                err = sub.stderr.read()
                if sub.returncode != 0 and "unshare" in err:
                    print("skipped: cannot make a pid namespace here: %s" % err.strip())
                    return SKIP
                raise Failed("the subscriber ended: %s" % err.strip())
            if time.monotonic() > deadline:
                raise Failed("the subscriber did not attach")
            time.sleep(0.05)

        out = run("info", addr).stdout
        # The endpoint table's row and the attach table's line of the subscriber.
        rows = [l for l in out.splitlines() if " subscriber " in l]
        if len(rows) != 2 or any(" dead " in row for row in rows):
            raise Failed("info calls the subscriber of another pid namespace dead:\n" + out)
        run("info", "--check", addr)
        run("info", "--repair", addr)

        pub = subprocess.Popen([cli, "send", addr, "--timeout", str(WAIT)],
                               stdin=subprocess.PIPE, text=True)
        pub.stdin.write("m0\n")
        pub.stdin.flush()
        if lines.next() != "m0\n":
            raise Failed("the subscriber did not get the first message")
        # Both entries are taken: another opener must not free the subscriber's to get one.
        for i in range(10):
            r = run("send", addr, "intruder", "--timeout", "0", ok=(0, 1, 2, 3, 4, 5))
            if r.returncode == 0:
                raise Failed("send took the entry of the subscriber of another pid namespace")
        for i in range(1, MESSAGES):
            pub.stdin.write("m%d\n" % i)
        pub.stdin.close()
        if pub.wait(timeout=WAIT) != 0:
            raise Failed("the publisher failed: exit %d" % pub.returncode)
        for i in range(1, MESSAGES):
            line = lines.next()
            if line != "m%d\n" % i:
                raise Failed("the subscriber got %r, not message m%d" % (line, i))
        run("info", "--check", addr)
        print("ok: a subscriber of another pid namespace is not judged dead")
    except (Failed, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
        status = 1
    finally:
        cleanup(cli, [addr], [pub, sub])
    return status


if __name__ == "__main__":
    sys.exit(main())
