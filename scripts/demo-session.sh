#!/usr/bin/env bash
# The demo's scripted session with the shmlink tool: create, write, list, read, remove.
# Usage: scripts/demo-session.sh PATH_TO_SHMLINK   (`scripts/demo --session` builds it and runs this;
# ctest runs it as demo.session so the README's first command cannot rot).
set -euo pipefail
shmlink=${1:?usage: demo-session.sh PATH_TO_SHMLINK}
seg="demo-$$"
trap '"$shmlink" rm "$seg" >/dev/null 2>&1 || true' EXIT

# Show each command as a user would type it, then run it.
run() {
    printf '\n$ shmlink'
    printf ' %q' "$@"
    printf '\n'
    "$shmlink" "$@"
}
run create "$seg" 64K --label "shmlink demo"
printf '\n$ echo "hello from shmlink" | shmlink write %s\n' "$seg"
echo "hello from shmlink" | "$shmlink" write "$seg"
run ls
run info "$seg"
run cat "$seg" --length 19
run dump "$seg" --length 48
run rm "$seg"
trap - EXIT
printf '\n$ shmlink ls   # the segment is gone\n'
"$shmlink" ls
