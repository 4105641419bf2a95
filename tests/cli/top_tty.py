#!/usr/bin/python3
"""`shmlink top` on a terminal, driven in a detached tmux session.

    tests/cli/top_tty.py --cli build/cli/shmlink

Makes a queue channel with steady traffic (a producer sending about 100 messages a second,
a consumer following), runs `shmlink top` in a tmux pane, and checks that the view shows the
channel with a message rate, is redrawn in place (one header, not one per refresh), quits on
'q' and on Ctrl-C with exit status 0, and leaves the terminal as it found it (canonical mode
and echo back on, normal screen).

Exit 0 passed, 1 failed, 77 skipped (tmux is not installed). Every wait is bounded, and the
channel, the processes and the tmux server it starts are removed whatever happens.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
WAIT = 15  # seconds for anything to show up


class Failed(Exception):
    pass


class Test:
    def __init__(self, cli):
        self.cli = cli
        self.seg = "shmlcli.%d.toptty" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="shmlcli.")
        self.sock = os.path.join(self.tmp, "tmux.sock")
        self.procs = []

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=WAIT,
                           text=True)
        if check and r.returncode != 0:
            raise Failed("tmux %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def shmlink(self, *args):
        r = subprocess.run([self.cli] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=WAIT, text=True)
        if r.returncode != 0:
            raise Failed("shmlink %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r.stdout

    def spawn(self, cmd):
        p = subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def capture(self, session):
        return self.tmux("capture-pane", "-p", "-t", session)

    def wait_for(self, session, what, predicate):
        deadline = time.monotonic() + WAIT
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture(session)
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise Failed("%s: not seen within %ds; the pane shows:\n%s" % (what, WAIT, screen))

    def start_top(self, session):
        # The shell outlives top: it reports top's exit status and the terminal modes after.
        # `trap : INT` keeps the shell alive through Ctrl-C without passing an ignored SIGINT
        # on to top (a caught signal is reset to the default across exec).
        script = ("trap : INT; %s top --interval 200ms %s; echo top-exit=$?; "
                  "stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo "
                  "| tr '\\n' ' '; echo; sleep 60") % (self.cli, self.seg)
        self.tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "30", "sh", "-c", script)

    def check_view(self, session):
        def has_rate(screen):
            for line in screen.splitlines():
                fields = line.split()
                # ADDRESS KIND MSG/S ...: a rate once two refreshes have been compared.
                if fields and fields[0].endswith(self.seg) and len(fields) > 2:
                    return fields[1] == "queue" and fields[2] not in ("-", "0")
            return False

        screen = self.wait_for(session, "the channel with a message rate", has_rate)
        if "shmlink top" not in screen or "q quits" not in screen:
            raise Failed("no title line:\n" + screen)
        # Redrawn in place on the alternate screen: a single header whatever the refreshes.
        time.sleep(0.5)
        screen = self.capture(session)
        headers = [l for l in screen.splitlines() if l.startswith("ADDRESS")]
        if len(headers) != 1:
            raise Failed("%d header lines, not 1 (not redrawn in place?):\n%s"
                         % (len(headers), screen))

    def check_exit(self, session, how):
        screen = self.wait_for(session, "top's exit after %s" % how,
                               lambda s: "top-exit=" in s and ("icanon" in s))
        if "top-exit=0" not in screen:
            raise Failed("top did not exit 0 after %s:\n%s" % (how, screen))
        modes = screen.split("top-exit=0", 1)[1].split()
        if "icanon" not in modes or "echo" not in modes:
            raise Failed("terminal not restored after %s (modes %s):\n%s" % (how, modes, screen))
        if "ADDRESS" in screen:
            raise Failed("the view stayed on the screen after %s (alternate screen not left):\n%s"
                         % (how, screen))

    def run(self):
        self.shmlink("mk", "queue", self.seg, "--capacity", "64K", "--max-msg", "64")
        self.spawn("%s recv %s --follow" % (self.cli, self.seg))
        self.spawn("while :; do echo m; sleep 0.01; done | %s send %s" % (self.cli, self.seg))

        self.start_top("q")
        self.check_view("q")
        self.tmux("send-keys", "-t", "q", "q")
        self.check_exit("q", "'q'")

        self.start_top("c")
        self.check_view("c")
        self.tmux("send-keys", "-t", "c", "C-c")
        self.check_exit("c", "Ctrl-C")

    def cleanup(self):
        self.tmux("kill-server", check=False)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        subprocess.run([self.cli, "rm", self.seg], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=WAIT)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if os.path.exists("/dev/shm/" + self.seg):
            raise Failed("/dev/shm/%s was left behind" % self.seg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True, help="the shmlink tool under test")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        print("skipped: tmux is not installed (scripts/deps.sh installs it)")
        return SKIP
    def stop(signum, frame):
        raise Failed("stopped by signal %d" % signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    t = Test(os.path.abspath(args.cli))
    try:
        try:
            t.run()
        finally:
            t.cleanup()
    except (Failed, subprocess.TimeoutExpired) as e:
        print("FAIL: top_tty: %s" % e)
        return 1
    print("ok: top_tty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
