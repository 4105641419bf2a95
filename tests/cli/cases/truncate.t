# An object truncated by another process: a clean error, never a SIGBUS death.

# Truncated while cat is streaming it (cat is blocked writing its first 1 MiB chunk when the
# object shrinks; its next read finds the bytes gone).
$ shmlink create "$SEG.t" 3M
%hold keep $SEG.t
$ shmltest cat-truncated "$SEG.t" "/dev/shm/$SEG.t" $((4096 + 1536 * 1024))
# Now the header promises more than the object has: open refuses, --raw still reads.
$ shmlink cat "$SEG.t" | wc -c
$ shmlink dump "$SEG.t"
$ shmlink info "$SEG.t" | grep -e ^status -e ^kind -e ^size
$ shmlink ls --all | grep "$SEG"
$ shmlink cat "$SEG.t" --raw | wc -c
$ printf 'x' | shmlink write "$SEG.t"

# The same with a foreign object and with the file backend.
$ shmltest foreign "$SEG.f" 'foreign'
$ shmltest truncate "/dev/shm/$SEG.f" $((3 * 1024 * 1024))
$ shmltest cat-truncated "$SEG.f" "/dev/shm/$SEG.f" 100
$ shmlink create "file:$TMP/t.bin" 3M
$ shmltest cat-truncated "file:$TMP/t.bin" "$TMP/t.bin" $((4096 + 1536 * 1024))

# A channel truncated under a waiting `recv`: it looks again within a second, and reports the
# channel lost instead of dying of SIGBUS (posix, and file with the header page kept).
$ shmlink mk queue "$SEG.q" --capacity 256 --max-msg 100
$ shmltest recv-truncated "$SEG.q" "/dev/shm/$SEG.q" 0
$ shmlink mk queue "file:$TMP/q.bin" --capacity 256 --max-msg 100
$ shmltest recv-truncated "file:$TMP/q.bin" "$TMP/q.bin" 4096
$ shmlink rm "$SEG.q" "file:$TMP/q.bin"

# A reader that goes away early is not an error.
$ shmltest truncate "/dev/shm/$SEG.f" $((3 * 1024 * 1024))
$ shmlink cat "$SEG.f" | head -c 7; echo
$ shmlink dump "$SEG.f" | head -n 1
$ shmlink rm "$SEG.t" "$SEG.f" "file:$TMP/t.bin"
%release keep
