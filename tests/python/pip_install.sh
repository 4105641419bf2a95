#!/usr/bin/env bash
# The documented install: pip into a venv that sees Debian's numpy, from a copy of the tree (so
# the source tree gets no build litter), then import and use the installed module from
# elsewhere. No package index is used.
# Usage: pip_install.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tree"
cp -r "$src/python" "$src/src" "$src/include" "$tmp/tree/"
rm -rf "$tmp/tree/python/build" "$tmp/tree/python/"*.egg-info
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/pip" install --no-index --no-build-isolation --disable-pip-version-check -q \
    "$tmp/tree/python"
cd "$tmp"
"$tmp/venv/bin/python" - <<'PY'
import os
import numpy as np
import shmlink
assert shmlink.__file__.startswith(os.path.realpath(os.getcwd())), shmlink.__file__
a = f"shml-piptest-{os.getpid()}"
try:
    with shmlink.Queue(a, create=True, dtype=np.float32, shape=(2, 3)) as q:
        q.send_array(np.arange(6, dtype=np.float32).reshape(2, 3))
        got = q.recv_array(timeout=5)
        assert got.tolist() == [[0, 1, 2], [3, 4, 5]], got
finally:
    shmlink.unlink(a)
print("installed shmlink", shmlink.__version__, "works")
PY
