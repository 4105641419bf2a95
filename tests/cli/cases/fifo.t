# A FIFO someone made at an address is not a segment: every command that reads it fails at
# once with one line naming it (opening a FIFO for reading would otherwise block until a
# writer came), and ls is not held up by it. The runner removes $SEG* and $TMP at the end.
$ mkfifo "/dev/shm/$SEG.fifo" "$TMP/fifo"
$ shmlink info "$SEG.fifo"
$ shmlink info --check "$SEG.fifo"
$ shmlink cat "$SEG.fifo"
$ shmlink top --once "$SEG.fifo"
$ shmlink info "file:$TMP/fifo"
$ shmlink cat "file:$TMP/fifo"
$ shmlink top --once "file:$TMP/fifo"
# Not a shared-memory object: not listed, even with --all.
$ shmlink ls --all | grep -c "$SEG.fifo"
# Creating over it is refused as over anything that exists; the FIFOs are left as they were.
$ shmlink create "$SEG.fifo" 4K
$ shmlink create "file:$TMP/fifo" 4K
$ stat -c %F "/dev/shm/$SEG.fifo" "$TMP/fifo"
