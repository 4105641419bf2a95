# top: one table per refresh when stdout is not a terminal; --once reads twice, an interval
# apart, and prints one table. (tests/cli/top_tty.py drives the terminal view in tmux.)
$ shmlink mk queue "$SEG.t1" --capacity 1K --max-msg 64
$ shmlink mk bus "$SEG.t2" --capacity 1K --max-msg 64
%hold keep $SEG.t1 $SEG.t2
%hold sub $SEG.t2 --endpoint subscriber
$ shmlink send "$SEG.t1" a b
$ shmlink send "$SEG.t2" x y z
$ shmlink top --once --interval 100ms "$SEG.t1" "$SEG.t2"
# Every channel on the machine (only ours are shown here); a plain segment is not a channel.
# (Not the header: another program's channel removed between the two reads gets a NOTE, and
# the NOTE column then appears.)
$ shmlink create "$SEG.p" 4K
%hold keepp $SEG.p
$ shmlink top --once --interval 0.1 | grep -e "$SEG"
# An address that cannot be read is an error, one line each (exit 1), with or without --once.
$ shmlink top --once --interval 100ms "$SEG.t1" "$SEG.none" "$SEG.p" | tr -s " "
$ shmlink top --once "$SEG.none"
$ shmlink top "$SEG.none"
# Without --once: a table per interval until SIGINT (exit 0).
$ : > out; shmlink top --interval 100ms "$SEG.t1" > out & pid=$!
> until [ "$(grep -c '^ADDRESS' out)" -ge 2 ]; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "top exit $?"; head -3 out
# Errors.
$ shmlink top --interval 0
$ shmlink top --interval 5ms
$ shmlink top --once --interval 0.05s "$SEG.t1" | head -1
$ shmlink top --interval forever
$ shmlink top --interval soon
$ shmlink top --interval
$ shmlink top --once=yes
$ shmlink rm "$SEG.t1" "$SEG.t2" "$SEG.p"
%release sub
%release keep
%release keepp
