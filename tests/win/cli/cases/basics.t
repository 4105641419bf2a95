# The tool's verbs on win: segments, with the exit statuses they have on Linux.
$ shmlink create "win:$SEG.m" 4K --label 'made on windows'
$ shmlink info "win:$SEG.m" | grep -e ^address -e ^backend -e ^status -e ^kind -e ^size -e ^label -e ^mode -e ^gc
$ printf 'managed bytes' | shmlink write "win:$SEG.m" --offset 100
$ shmlink cat "win:$SEG.m" --offset 100 --length 13; echo
$ shmlink dump "win:$SEG.m" --offset 96 --length 32
$ shmlink ls | grep "$SEG.m" | awk '{ print $1, $3, $4, $5, $6 }'
$ shmlink ls --json | grep -c "$SEG.m"
# Exists already; a size of 0; past the end.
$ shmlink create "win:$SEG.m" 4K
$ shmlink create "win:$SEG.z" 0
$ printf 'x' | shmlink write "win:$SEG.m" --offset 4096
# Mode bits become the mapping's DACL, and read back from it.
$ shmlink create "win:$SEG.shared" 1K --mode 0644 > /dev/null
$ shmlink info "win:$SEG.shared" | grep ^mode
# What Windows builds cannot do, said plainly.
$ shmlink create "posix:/$SEG.p" 4K
$ shmlink create "sysv:0x1234" 4K
$ shmlink create "memfd:$SEG.f" 4K
# gc never takes a win: segment: one that exists is held by somebody.
$ shmlink gc --dry-run | grep -c "$SEG" || true
$ shmlink rm "win:$SEG.m" "win:$SEG.shared" "win:$SEG.none"
$ shmlink info "win:$SEG.m"

# file: segments persist by themselves.
$ shmlink create "file:$TMP/seg.bin" 8K > /dev/null
$ printf 'on disk' | shmlink write "file:$TMP/seg.bin"
$ shmlink cat "file:$TMP/seg.bin" --length 7; echo
$ shmlink rm "file:$TMP/seg.bin"
$ ls "$TMP"
