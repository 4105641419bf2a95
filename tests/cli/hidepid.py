#!/usr/bin/python3
"""A process that /proc hides is not dead: the tool as nobody under /proc mounted hidepid=2.

    tests/cli/hidepid.py --cli build/cli/shmlink

As root, makes a bus channel (mode 0666) and keeps a subscriber on it (`shmlink recv
--follow`). Then, as nobody in a private mount namespace whose /proc is mounted with hidepid=2
(root's processes are invisible there, but kill() still finds them), `shmlink info` must not
call the subscriber or the creator dead, and `shmlink info --repair` must not take the
subscriber's entry: after it, a message root sends still reaches the subscriber.

Exit 0 passed, 1 failed, 77 skipped (not root, no unshare/setpriv, or hidepid not mountable).
Everything it makes is removed whatever happens.
"""

import os
import pwd
import shutil
import subprocess
import sys
import time

from driver import SKIP, WAIT, Failed, cleanup, cli_arg




def main():
    cli = cli_arg(__doc__)
    if os.geteuid() != 0:
        print("skipped: needs root, to mount a hidepid /proc and act as nobody")
        return SKIP
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        print("skipped: no user nobody")
        return SKIP
    if not shutil.which("setpriv") or not shutil.which("unshare"):
        print("skipped: setpriv and unshare (util-linux) are needed")
        return SKIP

    def hidden(*argv):
        """Run the tool as nobody, in a mount namespace whose /proc hides root's processes."""
        inner = " ".join("'%s'" % a for a in [cli] + list(argv))
        script = ("mount -t proc -o hidepid=2 proc /proc || exit 77; "
                  "exec setpriv --reuid=nobody --regid=nogroup --clear-groups " + inner)
        return subprocess.run(["unshare", "-m", "sh", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=WAIT, cwd="/")

    def run(*argv):
        r = subprocess.run([cli] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=WAIT)
        if r.returncode != 0:
            raise Failed("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
        return r.stdout

    addr = "shmlcli.%d.hidepid" % os.getpid()
    sub = None
    status = 0
    try:
        run("mk", "bus", addr, "--mode", "0666", "--capacity", "4K", "--max-msg", "64")
        sub = subprocess.Popen([cli, "recv", addr, "--follow"], stdout=subprocess.PIPE,
                               text=True)
        deadline = time.monotonic() + WAIT
        while " subscriber " not in run("info", addr):
            if time.monotonic() > deadline:
                raise Failed("the subscriber did not attach")
            time.sleep(0.05)
        r = hidden("info", addr)
        if r.returncode == 77:
            print("skipped: /proc cannot be mounted with hidepid=2 here")
            return SKIP
        if r.returncode != 0:
            raise Failed("info as nobody under hidepid: exit %d: %s" % (r.returncode, r.stderr))
        # The endpoint table's row and the attach table's line of the subscriber.
        rows = [l for l in r.stdout.splitlines() if " subscriber " in l]
        if len(rows) != 2 or any(" dead " in row for row in rows):
            raise Failed("info as nobody under hidepid calls the live subscriber dead:\n"
                         + r.stdout)
        r = hidden("info", "--repair", addr)
        if r.returncode not in (0, 3):
            raise Failed("info --repair as nobody: exit %d: %s" % (r.returncode, r.stderr))
        run("send", addr, "after-repair")
        line = sub.stdout.readline()
        if line != "after-repair\n":
            raise Failed("the subscriber got %r after nobody's repair, not the message" % line)
        print("ok: a process /proc hides is not judged dead")
    except (Failed, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
        status = 1
    finally:
        cleanup(cli, [addr], [sub])
    return status


if __name__ == "__main__":
    sys.exit(main())
