# info --check and --repair on channels: a process killed with an endpoint open leaves it in
# the endpoint table, dead; --check reports it (exit 3), --repair detaches it.
$ shmlink mk bus "$SEG.k" --capacity 1K --max-msg 64 --endpoints 4
%hold keep $SEG.k
$ shmlink info --check "$SEG.k"
$ shmlink info --check "$SEG.k" --json | shmltest json check

%hold victim $SEG.k --endpoint subscriber
%hold pub $SEG.k --endpoint publisher --send one --send two
%kill victim
%kill pub
$ shmlink info "$SEG.k" | sed -n '/^messages/,$p' | grep -v '^sleeps'
$ shmlink info --check "$SEG.k"
$ shmlink info --check "$SEG.k" --json | shmltest json check
$ shmlink info --repair "$SEG.k"
$ shmlink info "$SEG.k" | sed -n '/^messages/,$p' | grep -v '^sleeps'
$ shmlink info --check "$SEG.k"
$ shmlink info --repair "$SEG.k" --json | shmltest json check

# A queue with a dead consumer entry, the same way.
$ shmlink mk queue "$SEG.q" --capacity 1K --max-msg 64
%hold keepq $SEG.q
%hold victim2 $SEG.q --endpoint consumer
%kill victim2
$ shmlink info --check "$SEG.q"
$ shmlink info --repair "$SEG.q"
$ shmlink info --check "$SEG.q"

# --check tells which problems --repair repairs: a dead endpoint is, a message longer than
# max-msg (slot 0's len, at slots_off 1536 + 8 with 4 endpoints) is not.
$ shmlink mk queue "$SEG.c" --capacity 1K --max-msg 64 --endpoints 4
%hold keepc $SEG.c
$ shmlink send "$SEG.c" hello
$ printf '\x65\x00\x00\x00' | shmlink write "$SEG.c" --offset 1544
%hold victim3 $SEG.c --endpoint consumer
%kill victim3
$ shmlink info --check "$SEG.c"
$ shmlink info --check "$SEG.c" --json | shmltest json check
$ shmlink info --repair "$SEG.c"
$ shmlink info --check "$SEG.c"

# Errors: not a channel, missing.
$ shmlink create "$SEG.p" 4K
%hold keepp $SEG.p
$ shmlink info --check "$SEG.p"
$ shmlink info --check "$SEG.none"
$ shmlink info --check

$ shmlink rm "$SEG.k" "$SEG.q" "$SEG.p" "$SEG.c"
%release keep
%release keepq
%release keepc
%release keepp
