# Round trip on the file backend: the segment is a regular file that persists.
$ shmlink create "file:$TMP/seg.bin" 10K --label "in a file"
$ stat -c '%a %s' "$TMP/seg.bin"
$ shmlink info "file:$TMP/seg.bin"
$ shmlink info "file:$TMP/seg.bin" --json | shmltest json info
$ printf 'persisted\n' | shmlink write "file:$TMP/seg.bin" --offset 1K
$ shmlink cat "file:$TMP/seg.bin" --offset 1K --length 10
# The bytes are in the file itself, after the header page.
$ head -c $((4096 + 1024 + 10)) "$TMP/seg.bin" | tail -c 10
$ shmlink dump "file:$TMP/seg.bin" --offset 1000 --length 64
$ shmltest pattern 10241 | shmlink write "file:$TMP/seg.bin"
$ shmlink cat "file:$TMP/seg.bin" --offset 1K --length 10
# Files are not listed: they cannot be enumerated.
$ shmlink ls --all | grep -c "$TMP"
# A plain file someone else wrote reads as raw.
$ printf 'plain file\n' > "$TMP/plain.txt"
$ shmlink cat "file:$TMP/plain.txt"
$ shmlink info "file:$TMP/plain.txt" | grep -e ^kind -e ^size
$ shmlink create "file:$TMP/nodir/x" 4K
$ shmlink create "file:relative.bin" 4K
$ shmlink rm "file:$TMP/seg.bin"
$ test -e "$TMP/seg.bin" || echo removed
$ shmlink rm "file:$TMP/seg.bin"
