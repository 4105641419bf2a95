#!/usr/bin/python3
"""A `shmlink serve -- CMD` killed with SIGKILL takes its running CMD with it.

    tests/cli/serve_orphan.py --cli build/cli/shmlink

Makes an rpc channel (a new one for each case), runs `shmlink serve ADDR -- sleep 61.25` and sends it one request, so
the command is running; kills serve with SIGKILL and checks that the command is gone within
a bound (it would otherwise sleep for a minute, holding a request nobody answers). Then the
same with SIGTERM, which serve handles: the command is stopped and serve exits 0.

Exit 0 passed, 1 failed. Every wait is bounded; the channel and every process it starts are
removed whatever happens.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

WAIT = 10  # seconds for anything to happen
MARK = "61.25"  # the command's argument, to find it among the machine's processes


class Failed(Exception):
    pass


def children_of(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces: the fields after it start past the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def command_child(pid, leftovers):
    """The child of pid that runs the command, or None while it has not yet exec'd.

    Between fork and exec the child still carries serve's own command line, so a child
    seen early is looked at again until the exec shows. Every child seen is remembered in
    leftovers, to be killed whatever happens."""
    for child in children_of(pid):
        if child not in leftovers:
            leftovers.append(child)
        try:
            with open("/proc/%d/cmdline" % child) as f:
                argv = f.read().split("\0")
        except OSError:
            continue
        if MARK in argv:
            return child
    return None


def alive(pid):
    """True while pid runs (a zombie has finished running: its parent has not reaped it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(what, cond):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise Failed("%s: not within %ds" % (what, WAIT))


def run_case(cli, addr, sig, procs, leftovers):
    subprocess.run([cli, "mk", "rpc", addr, "--capacity", "4K", "--max-msg", "64"],
                   check=True, stdout=subprocess.DEVNULL, timeout=WAIT)
    serve = subprocess.Popen([cli, "serve", addr, "--", "sleep", MARK],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(serve)
    # --wait: serve may not have attached yet, and a request with no server fails at once.
    send = subprocess.Popen([cli, "send", addr, "x", "--wait", "--timeout", "20s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(send)
    cmd = wait_for("the command starts", lambda: command_child(serve.pid, leftovers))
    serve.send_signal(sig)
    serve.wait(timeout=WAIT)
    wait_for("the command %d ends after serve got %s" % (cmd, signal.Signals(sig).name),
             lambda: not alive(cmd))
    if sig == signal.SIGTERM and serve.returncode != 0:
        raise Failed("serve stopped by SIGTERM: exit %d, want 0" % serve.returncode)
    send.kill()
    send.wait()
    subprocess.run([cli, "rm", addr], stdout=subprocess.DEVNULL, timeout=WAIT)
    print("ok: %s: the command ended with serve" % signal.Signals(sig).name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True)
    args = ap.parse_args()
    cli = os.path.abspath(args.cli)
    addr = "shmlcli.%d.orphan" % os.getpid()
    procs, leftovers = [], []
    status = 0
    try:
        for sig in (signal.SIGKILL, signal.SIGTERM):
            run_case(cli, addr, sig, procs, leftovers)
    except (Failed, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
        status = 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for pid in leftovers:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        subprocess.run([cli, "rm", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=WAIT)
    return status


if __name__ == "__main__":
    sys.exit(main())
