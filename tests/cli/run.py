#!/usr/bin/python3
"""Golden tests for the shmlink command-line tool.

Each case is a file cases/NAME.t of shell commands; the runner executes them in order and
compares a transcript of what they printed with golden/NAME.out. ctest runs one case per test
(cli.NAME); by hand:

    tests/cli/run.py --cli build/cli/shmlink --holder build/tests/cli/shml_cli_holder \
        --version 0.1.0 tests/cli/cases/posix.t

To regenerate the golden files after an intended change of output, run with
SHML_UPDATE_GOLDEN=1 (e.g. `SHML_UPDATE_GOLDEN=1 ctest -R 'cli\\.'`), then review the diff
with git before committing it.

Case file syntax:
    # comment                      not part of the transcript
    $ command                      run with bash -o pipefail; stdout, stderr and exit recorded
    > more                         continues the command above on a new line
    %hold NAME ADDR...             start a holder process attached to the segments
    %release NAME                  let the holder close its segments and exit
    %kill NAME                     SIGKILL the holder: its attach entries stay, dead
    %cleanup ADDR...               `shmlink rm` these at the end, whatever happened (for
                                   objects the automatic cleanup below cannot find); a
                                   command can do the same for an address it only learns
                                   when it runs by appending it to the file $TMP/.cleanup

Commands see: PATH starting with the tool's directory (so `shmlink` is the tool under test)
and a directory holding `shmltest` (helper.py); SEG, a name prefix unique to this run
(posix:$SEG.a ...); KEY and KEY2, System V keys unused on this machine; TMP, a private
directory (also the working directory); HOLDER, the holder program (tests/cli/holder.c).

The transcript lists each command, its stdout, its stderr with each line prefixed by "2> ",
and "[N]" when the exit status N is not 0. Volatile values are normalised before comparing:
the run's SEG, KEY, KEY2 and TMP become $SEG, $KEY, $KEY2 and $TMP; pids, uids, the user
name, thread ids ("thread N"), process start times, timestamps, ages, System V ids (also
in ls's ID column and info's "sysv id:" line) and the version become PID, UID, USER, TID, N, TIME, AGE, ID and VERSION; in the lines of ls tables,
runs of spaces shrink to two, so column widths that follow those values do not matter.

Everything the run creates is removed at the end, also when a command fails or the runner is
interrupted: every /dev/shm object named $SEG*, System V segments with keys KEY and KEY2, and
TMP. Objects left by an earlier runner that was killed are removed at the start.
"""

import argparse
import difflib
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

COMMAND_TIMEOUT = 30  # seconds; well below the ctest TIMEOUT so cleanup always runs
SEG_PREFIX = "shmlcli."


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale():
    """Remove /dev/shm objects of earlier runs whose runner is gone (killed by a timeout)."""
    pat = re.compile(re.escape(SEG_PREFIX) + r"(\d+)\.")
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return
    for name in names:
        m = pat.match(name)
        if m and not pid_alive(int(m.group(1))):
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass


def sysv_segments():
    """(key, id) of every System V segment on the machine."""
    out = []
    try:
        with open("/proc/sysvipc/shm") as f:
            next(f)
            for line in f:
                fields = line.split()
                out.append((int(fields[0]) & 0xFFFFFFFF, int(fields[1])))
    except OSError:
        pass
    return out


def pick_keys():
    """Two System V keys unused now, derived from the pid so parallel runs differ."""
    used = {k for k, _ in sysv_segments()}
    base = 0x53000000 | ((os.getpid() & 0x3FFFFF) << 2)
    for _ in range(100):
        if base not in used and base + 1 not in used:
            return base, base + 1
        base = 0x53000000 | (random.randrange(0x400000) << 2)
    raise RuntimeError("no free System V keys")


class Run:
    def __init__(self, args, case):
        self.args = args
        self.case = case
        self.seg = "%s%d.%s" % (SEG_PREFIX, os.getpid(), case)
        self.key, self.key2 = pick_keys()
        self.tmp = tempfile.mkdtemp(prefix="shmlcli.")
        self.holders = {}
        self.to_remove = []
        bindir = os.path.join(self.tmp, ".bin")
        os.mkdir(bindir)
        helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper.py")
        with open(os.path.join(bindir, "shmltest"), "w") as f:
            f.write('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, helper))
        os.chmod(os.path.join(bindir, "shmltest"), 0o755)
        cli_dir = os.path.dirname(os.path.abspath(args.cli))
        if args.wine:
            # A Windows build: `shmlink` is a script that runs the program under Wine.
            cli_dir = os.path.join(self.tmp, ".tool")
            os.mkdir(cli_dir)
            # Wine gives its own stderr to every process the tool starts (the holder of a
            # win: segment lives on), so the tool's stderr goes through a file: a pipe would
            # stay open, and the runner wait, as long as the holder lives.
            with open(os.path.join(cli_dir, "shmlink"), "w") as f:
                f.write('#!/bin/sh\nerr=$(mktemp)\n%s %s "$@" 2>"$err"\nrc=$?\n'
                        'cat "$err" >&2\nrm -f "$err"\nexit $rc\n' % (args.wine, args.cli))
            os.chmod(os.path.join(cli_dir, "shmlink"), 0o755)
            self.tool = [os.path.join(cli_dir, "shmlink")]
        else:
            self.tool = [args.cli]
        self.env = dict(os.environ)
        self.env.update({
            "PATH": cli_dir + ":" + bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
            "SEG": self.seg,
            "KEY": "0x%08x" % self.key,
            "KEY2": "0x%08x" % self.key2,
            "TMP": self.tmp,
            "HOLDER": os.path.abspath(args.holder) if args.holder else "",
            "LC_ALL": "C",
            "TZ": "UTC",
        })
        self.env.pop("SHML_UPDATE_GOLDEN", None)
        # Under ASan, a leak report would change stderr; the sanitizer build still checks
        # memory errors, and leaks are the unit tests' business.
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.user = pwd.getpwuid(os.geteuid()).pw_name

    # ---- normalisation ----

    def normalise(self, text):
        text = text.replace(self.tmp, "$TMP")
        text = text.replace(self.seg, "$SEG")
        for key, name in ((self.key, "$KEY"), (self.key2, "$KEY2")):
            text = re.sub(r"0x0*%x\b" % key, name, text, flags=re.I)
            text = re.sub(r"\b%d\b" % key, name, text)
        text = re.sub(r"sysv:id=\d+", "sysv:id=ID", text)
        text = re.sub(r"\bwith id \d+", "with id ID", text)
        text = re.sub(r"^(sysv id: +)\d+", r"\1ID", text, flags=re.M)
        text = re.sub(r"\bshmlink %s\b" % re.escape(self.args.version), "shmlink VERSION", text)
        text = re.sub(r"\b%s\b" % re.escape(self.user), "USER", text)
        text = re.sub(r"\buid \d+", "uid UID", text)
        text = re.sub(r"\bpid \d+", "pid PID", text)
        text = re.sub(r"\bthread \d+", "thread TID", text)
        text = re.sub(r"\b\d+ \((alive|dead|\?)\)", r"PID (\1)", text)
        text = re.sub(r"\bstart \d+", "start N", text)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
        # Ages: "5s", "3m", "2h" (a test never runs for a day; "d" would hit hex dumps).
        text = re.sub(r"\b\d+[smh]\b", "AGE", text)
        # ls tables: column widths follow the values normalised above, so only the order of
        # the columns is compared. Other output (help, dump) keeps its exact spacing.
        text = re.sub(r"^(?:ADDRESS|posix:|sysv:|file:|memfd:|win:)\S* {2,}.*$",
                      lambda m: re.sub(r"(?<=\S) {2,}", "  ", m.group(0)), text, flags=re.M)
        # The ID column of a System V row: the kernel's id, different at every run.
        text = re.sub(r"^(sysv:\S+  )\d+(?=  )", r"\1ID", text, flags=re.M)
        text = re.sub(r" +$", "", text, flags=re.M)
        return text

    # ---- directives ----

    def hold(self, name, addrs):
        if not self.args.holder:
            return "holder %s: no holder program (--holder)" % name
        try:
            p = subprocess.Popen([self.args.holder] + addrs, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                 cwd=self.tmp)
        except OSError as e:
            return "holder %s cannot start: %s" % (name, e)
        self.holders[name] = p
        line = p.stdout.readline()
        if line != b"ready\n":
            err = p.stderr.read().decode(errors="backslashreplace")
            p.wait()
            return "holder %s failed: %s" % (name, err.strip())
        return None

    def release(self, name, kill):
        p = self.holders.pop(name)
        if kill:
            p.kill()
        else:
            p.stdin.close()
        try:
            p.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return "holder %s did not exit" % name
        return None

    def expand(self, word):
        """$VAR and ${VAR} from the commands' environment, for directive arguments."""
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                      lambda m: self.env.get(m.group(1), ""), word)

    # ---- running a case ----

    def command(self, cmd):
        p = subprocess.Popen(["/bin/bash", "-o", "pipefail", "-c", cmd], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                             cwd=self.tmp, start_new_session=True)
        try:
            out, err = p.communicate(timeout=COMMAND_TIMEOUT)
            status = "" if p.returncode == 0 else "[%d]\n" % p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            status = "[timeout after %ds]\n" % COMMAND_TIMEOUT
        text = self.normalise(self.as_text(out))
        errtext = self.normalise(self.as_text(err))
        errlines = "".join("2> " + line + "\n" for line in errtext.splitlines())
        return text + errlines + status

    @staticmethod
    def as_text(data):
        text = data.decode("utf-8", errors="backslashreplace")
        if text and not text.endswith("\n"):
            text += "\n\\ no newline at end\n"
        return text

    def run(self, lines):
        out = []
        cmd = None
        steps = []
        for line in lines:
            if line.startswith("> ") and cmd is not None:
                cmd.append(line[2:])
                continue
            if cmd is not None:
                steps.append(("$", "\n".join(cmd)))
                cmd = None
            if line.startswith("$ "):
                cmd = [line[2:]]
            elif line.startswith("%"):
                steps.append(("%", line))
            elif line.strip() and not line.startswith("#"):
                raise SyntaxError("%s: cannot read line: %r" % (self.case, line))
        if cmd is not None:
            steps.append(("$", "\n".join(cmd)))

        deadline = time.monotonic() + self.args.budget
        for kind, text in steps:
            if time.monotonic() > deadline:
                out.append("!! time budget of %ds used up; the rest was not run\n"
                           % self.args.budget)
                break
            if kind == "$":
                out.append("$ " + text.replace("\n", "\n> ") + "\n")
                out.append(self.command(text))
                continue
            out.append(text + "\n")
            words = text[1:].split()
            verb = words[0]
            expanded = [self.expand(w) for w in words[2:]]
            if verb == "hold":
                problem = self.hold(words[1], expanded)
            elif verb in ("release", "kill"):
                problem = self.release(words[1], verb == "kill")
            elif verb == "cleanup":
                self.to_remove.extend(self.expand(w) for w in words[1:])
                problem = None
            else:
                raise SyntaxError("%s: unknown directive %r" % (self.case, text))
            if problem:
                out.append("!! " + self.normalise(problem) + "\n")
        return "".join(out)

    def cleanup(self):
        for name in list(self.holders):
            p = self.holders.pop(name)
            p.kill()
            p.wait()
        try:
            with open(os.path.join(self.tmp, ".cleanup")) as f:
                self.to_remove.extend(line.strip() for line in f if line.strip())
        except OSError:
            pass
        for addr in self.to_remove:
            subprocess.run(self.tool + ["rm", addr], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self.env, cwd=self.tmp,
                           timeout=COMMAND_TIMEOUT)
        try:
            for name in os.listdir("/dev/shm"):
                if name.startswith(self.seg):
                    try:
                        os.unlink(os.path.join("/dev/shm", name))
                    except OSError:
                        pass
        except OSError:
            pass
        for key, shmid in sysv_segments():
            if key in (self.key, self.key2):
                subprocess.run(["ipcrm", "-m", str(shmid)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True, help="the shmlink tool under test")
    ap.add_argument("--holder", help="the holder helper program (for %hold)")
    ap.add_argument("--wine", help="run the tool, a Windows program, with this Wine")
    ap.add_argument("--version", required=True, help="the version the tool must report")
    ap.add_argument("--budget", type=int, default=90,
                    help="seconds for the whole case; set below the ctest TIMEOUT so that "
                         "cleanup always runs")
    ap.add_argument("case", help="cases/NAME.t")
    args = ap.parse_args()
    # Commands run in TMP: relative paths given on the command line must not depend on that.
    args.cli = os.path.abspath(args.cli)
    if args.holder:
        args.holder = os.path.abspath(args.holder)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    case_path = os.path.abspath(args.case)
    case = os.path.splitext(os.path.basename(case_path))[0]
    golden_path = os.path.join(os.path.dirname(os.path.dirname(case_path)), "golden",
                               case + ".out")
    with open(case_path) as f:
        lines = f.read().splitlines()

    sweep_stale()
    run = Run(args, case)
    try:
        actual = run.run(lines)
    finally:
        run.cleanup()

    if os.environ.get("SHML_UPDATE_GOLDEN"):
        with open(golden_path, "w") as f:
            f.write(actual)
        print("updated %s" % golden_path)
        return 0
    try:
        with open(golden_path) as f:
            expected = f.read()
    except FileNotFoundError:
        expected = ""
        print("no golden file %s (create it with SHML_UPDATE_GOLDEN=1)" % golden_path)
    if actual == expected:
        print("ok: %s" % case)
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        "golden/%s.out" % case, "actual"))
    print("FAIL: %s: output differs from the golden file (diff above)" % case)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Interrupted as e:
        print("interrupted: %s" % e, file=sys.stderr)
        sys.exit(1)
