# Latest-value channels: writers never wait; a reader gets the newest value.
$ shmlink mk latest "$SEG.l" --capacity 1K --max-msg 64
%hold keep $SEG.l
$ shmlink info "$SEG.l" | grep -e '^kind' -e '^channel'

# Nothing written yet: nothing to read.
$ shmlink recv "$SEG.l"

# The newest of three values; a reader's first read returns it at once.
$ shmlink send "$SEG.l" v1 v2 v3
$ shmlink recv "$SEG.l"
$ shmlink recv "$SEG.l" -n 1 --timeout 0
$ shmlink recv "$SEG.l" -n 2 --timeout 100ms

# --follow prints each newer value.
$ shmlink recv "$SEG.l" --follow > got & pid=$!
> until [ -s got ]; do sleep 0.05; done
> shmlink send "$SEG.l" v4
> until [ "$(wc -l < got)" = 2 ]; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "recv exit $?"; cat got

# A reader that falls behind skips to the newest value and says how many it skipped.
$ shmlink recv "$SEG.l" -n 2 > got2 2> err & pid=$!
> until [ -s got2 ]; do sleep 0.05; done
> kill -STOP $pid
> shmlink send "$SEG.l" a b c
> kill -CONT $pid; wait $pid; echo "recv exit $?"; cat got2 err

# A reader holder shows its lag.
%hold reader $SEG.l --endpoint reader
$ shmlink send "$SEG.l" d e
$ shmlink info "$SEG.l" | sed -n '/^messages/,$p' | grep -v '^sleeps'
%release reader

$ shmlink rm "$SEG.l"
%release keep
