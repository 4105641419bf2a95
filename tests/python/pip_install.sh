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
# The commands of python/README.md's sh block, as written, with HOME here: the apt-get line is
# checked (every package it names is installed), the others run, pip kept off the network.
block=$(awk '/^```sh$/ { on = 1; next } /^```$/ { if (on) exit } on' "$src/python/README.md")
[ -n "$block" ] || { echo "no sh block in python/README.md" >&2; exit 1; }
cd "$tmp/tree"
while IFS= read -r line; do
    cmd=${line%%#*}
    case $cmd in
    "apt-get install -y "*)
        for pkg in ${cmd#apt-get install -y }; do
            dpkg -s "$pkg" >/dev/null 2>&1 || { echo "README's package $pkg is not installed" >&2; exit 1; }
        done ;;
    *pip\ install*) HOME=$tmp eval "$cmd --no-index --disable-pip-version-check -q" ;;
    *[![:space:]]*) HOME=$tmp eval "$cmd" ;;
    esac
done <<<"$block"
venv=$tmp/shml-venv
cd "$tmp"
"$venv/bin/python" - <<'PY'
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
