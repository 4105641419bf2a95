#!/usr/bin/python3
"""What another user sees of segments it may not open: `ls`, `ls --all`, `info` as nobody.

    tests/cli/other_user.py --cli build/cli/shmlink

As root, makes a POSIX segment and a System V segment (mode 0600), then runs the tool as
nobody (setpriv --reuid=nobody --regid=nogroup --clear-groups) and checks that each is listed
and described from what the system shows anyone (/dev/shm's entry, /proc/sysvipc/shm): size,
mode, owner, for System V the creator and its id, and `permission denied` where the header
could not be read; `info` exits 0 with `status: permission denied`.

Exit 0 passed, 1 failed, 77 skipped (not root, or no setpriv or nobody user). The segments are
removed whatever happens.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys

from driver import SKIP, WAIT, Failed, cleanup, cli_arg




def main():
    cli = cli_arg(__doc__)
    if os.geteuid() != 0:
        print("skipped: needs root, to make segments another user cannot open")
        return SKIP
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        print("skipped: no user nobody")
        return SKIP
    setpriv = shutil.which("setpriv")
    if not setpriv:
        print("skipped: setpriv (util-linux) is not installed")
        return SKIP

    name = "shmlcli.%d.other" % os.getpid()
    key = 0x53400000 | (os.getpid() & 0xFFFFF)
    posix, sysv = "posix:/" + name, "sysv:0x%08x" % key

    def run(*argv, as_nobody=True, ok=True):
        cmd = ([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
               if as_nobody else []) + [cli] + list(argv)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=WAIT, cwd="/")
        if ok and r.returncode != 0:
            raise Failed("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
        return r

    def row(text, addr):
        for line in text.splitlines():
            if line.split()[:1] == [addr]:
                return line.split()
        raise Failed("%s not listed:\n%s" % (addr, text))

    status = 0
    try:
        run("create", name, "4K", as_nobody=False)
        run("create", sysv, "8K", as_nobody=False)
        shmid = None
        with open("/proc/sysvipc/shm") as f:
            for line in f:
                fields = line.split()
                if fields[0].lstrip("-").isdigit() and int(fields[0]) & 0xFFFFFFFF == key:
                    shmid = int(fields[1])
        if shmid is None:
            raise Failed("the System V segment is not in /proc/sysvipc/shm")

        # ls: columns ADDRESS ID BACKEND KIND SIZE MODE OWNER CREATOR(2 words) ATTACHED AGE GC
        # NOTE; gc cannot judge what it cannot read: "unknown".
        for argv in (("ls",), ("ls", "--all")):
            out = run(*argv).stdout
            p, s = row(out, posix), row(out, sysv)
            want_p = ["-", "posix", "?", "8K", "0600", "root"]
            want_s = [str(shmid), "sysv", "?", "12K", "0600", "root"]
            if p[1:7] != want_p or " ".join(p[-3:]) != "unknown permission denied":
                raise Failed("%s: posix row %s, want %s ... permission denied" % (argv, p, want_p))
            if s[1:7] != want_s or " ".join(s[-3:]) != "unknown permission denied":
                raise Failed("%s: sysv row %s, want %s ... permission denied" % (argv, s, want_s))
        doc = json.loads(run("ls", "--all", "--json").stdout)
        seg = [d for d in doc["segments"] if d["address"] == sysv]
        if len(seg) != 1:
            raise Failed("ls --all --json lists %s %d times" % (sysv, len(seg)))
        got = {k: seg[0][k] for k in ("sysv_key", "sysv_id", "size", "mode", "status",
                                       "user", "attached")}
        want = {"sysv_key": key, "sysv_id": shmid, "size": 12288, "mode": "0600",
                "status": -13, "user": "root", "attached": 0}
        if got != want:
            raise Failed("ls --all --json: %s, want %s" % (got, want))

        gc_line = "gc:           keeps it (unreadable here: permission denied)"
        for addr, lines in ((posix, [gc_line, "status:       permission denied", "mode:         0600",
                                     "size:         8192 (8K)", "owner:        root (uid 0)"]),
                            (sysv, [gc_line, "status:       permission denied", "mode:         0600",
                                    "size:         12288 (12K)",
                                    "sysv id:      %d (key 0x%08x)" % (shmid, key)])):
            r = run("info", addr, ok=False)
            if r.returncode != 0:
                raise Failed("info %s as nobody: exit %d: %s" % (addr, r.returncode,
                                                                 r.stderr.strip()))
            for want_line in lines:
                if want_line not in r.stdout.splitlines():
                    raise Failed("info %s as nobody lacks %r:\n%s" % (addr, want_line, r.stdout))
        print("ok: nobody sees root's segments, marked permission denied")
    except (Failed, subprocess.SubprocessError, OSError, ValueError) as e:
        print("FAIL: %s" % e)
        status = 1
    finally:
        cleanup(cli, [posix, sysv])
    return status


if __name__ == "__main__":
    sys.exit(main())
