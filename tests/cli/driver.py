"""What the tool's driver scripts (hidepid.py, other_user.py, pidns.py, toggle_geo.py) share:
their exit codes, their failure, the --cli argument, and the cleanup that runs whatever
happened."""

import argparse
import os
import subprocess

SKIP = 77  # ctest's SKIP_RETURN_CODE
WAIT = 30  # seconds for anything a driver waits for


class Failed(Exception):
    pass


def cli_arg(doc):
    """The absolute path of the tool given as --cli (the driver's docstring is its help)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--cli", required=True)
    return os.path.abspath(ap.parse_args().cli)


def cleanup(cli, addrs, procs=()):
    """Kill and reap the processes still running (None entries are skipped), then remove the
    channels and segments at addrs with the tool, quietly (they may be gone already)."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
        if p is not None:
            p.wait()
    for addr in addrs:
        subprocess.run([cli, "rm", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=WAIT)
