# Round trip on the POSIX backend: create, ls, info, write, cat, dump, rm.
# A segment made by `shmlink create` is abandoned once the tool exits, and a gc run by any
# other program on the machine would remove it: the holder keeps it attached meanwhile.
$ shmlink create "$SEG.a" 4K --label "demo label" --mode 0640
%hold keep $SEG.a
$ stat -c '%a %s' "/dev/shm/$SEG.a"
$ shmlink ls | grep -e '^ADDRESS' -e "$SEG"
$ shmlink ls --json | shmltest json ls
$ shmlink info "$SEG.a"
$ shmlink info "posix:/$SEG.a" --json | shmltest json info

# Data starts zeroed; writes land at their offset; cat and dump read back.
$ shmlink cat "$SEG.a" | cmp - <(head -c 4096 /dev/zero) && echo zeroed
$ printf 'hello, shmlink\n' | shmlink write "$SEG.a"
$ shmlink cat "$SEG.a" --length 15
$ shmlink cat "$SEG.a" | wc -c
$ printf 'XY' | shmlink write "posix:$SEG.a" --offset 7
$ shmlink cat "posix:/$SEG.a" --offset 0 --length 15
$ shmlink cat "$SEG.a" --offset 7 --length 2; echo
$ shmlink dump "$SEG.a" --length 40
$ shmlink dump "$SEG.a" --offset 4088
$ shmlink dump "$SEG.a"

# The last byte fits; one byte more does not, and then nothing at all is written.
$ printf 'Z' | shmlink write "$SEG.a" --offset 4095
$ printf '12' | shmlink write "$SEG.a" --offset 4095
$ shmltest pattern 4097 | shmlink write "$SEG.a"
$ shmltest pattern 100000 | shmlink write "$SEG.a" --offset 10
$ shmlink dump "$SEG.a" --offset 4080
$ shmlink cat "$SEG.a" --length 15
# Exactly full is fine, and empty input writes nothing.
$ shmltest pattern 4096 | shmlink write "$SEG.a"
$ shmlink cat "$SEG.a" | cmp - <(shmltest pattern 4096) && echo same
$ shmlink write "$SEG.a" < /dev/null
$ shmlink cat "$SEG.a" | cmp - <(shmltest pattern 4096) && echo same
$ shmlink dump "$SEG.a" --length 100

# --raw reads the object whole: the header page, then the data.
$ shmlink dump "$SEG.a" --raw --length 32
$ shmlink cat "$SEG.a" --raw | wc -c
$ shmlink cat "$SEG.a" --raw --offset 4096 --length 16; echo

# A 64 MiB segment streams in chunks.
$ shmlink create "$SEG.big" 64M
%hold keepbig $SEG.big
$ shmlink cat "$SEG.big" | wc -c
$ shmlink dump "$SEG.big"

$ shmlink rm "$SEG.a" "$SEG.big"
%release keep
%release keepbig
$ shmlink info "$SEG.a"
$ shmlink rm "$SEG.a"
$ shmlink ls | grep -c "$SEG"

# --wait: a reader started before the segment exists waits for it to appear.
$ shmlink cat "$SEG.late" --wait | wc -c > n & pid=$!
> sleep 0.2; shmlink create "$SEG.late" 16 > /dev/null; wait $pid; echo "cat exit $?"; cat n
> shmlink rm "$SEG.late"
