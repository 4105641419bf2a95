# Bus channels: every subscriber gets every message sent after it joined.
# The holders keep the channels attached, so a gc run meanwhile leaves them alone.

$ shmlink mk bus "$SEG.b" --capacity 1K --max-msg 100 --endpoints 8
%hold keep $SEG.b
$ shmlink info "$SEG.b" | grep -e '^kind' -e '^channel' -e '^messages' -e '^endpoints'

# Without a subscriber, a message reaches nobody; recv subscribes from the next message, so
# without -n or --follow it gets nothing.
$ shmlink send "$SEG.b" before
$ shmlink recv "$SEG.b"

# Two subscribers each get both messages.
$ shmlink recv "$SEG.b" -n 2 > s1 & p1=$!
> shmlink recv "$SEG.b" -n 2 > s2 & p2=$!
> until [ "$(shmlink info "$SEG.b" | sed -n '/^endpoints/,$p' | grep -c ' subscriber ')" = 2 ]; do sleep 0.05; done
> shmlink send "$SEG.b" m1 m2
> wait $p1; echo "recv 1 exit $?"; wait $p2; echo "recv 2 exit $?"; cat s1 s2

# A subscriber that does not read: its lag grows; the table shows it (publishers closed).
%hold sub $SEG.b --endpoint subscriber
$ shmlink send "$SEG.b" x1 x2 x3
$ shmlink info "$SEG.b" | sed -n '/^messages/,$p' | grep -v '^sleeps'
$ shmlink info "$SEG.b" --json | shmltest json info | sed -n '/"channel"/,$p'
# The attach table names the subscriber's role in the bus's words, as the endpoint table does.
$ shmlink info "$SEG.b" | sed -n '/^attach table/,/^channel/p' | grep -v '^channel'
$ shmlink info "$SEG.b" --json | shmltest json info | grep '"role_name"'
%release sub

# Policy overwrite: the publisher never waits; a subscriber that fell behind (stopped here)
# skips ahead and recv says on stderr how many it missed.
$ shmlink mk bus "$SEG.o" --policy overwrite --capacity 256 --max-msg 100
%hold keepo $SEG.o
$ shmlink info "$SEG.o" | grep -e '^channel'
$ shmlink recv "$SEG.o" -n 2 > got 2> err & pid=$!
> until shmlink info "$SEG.o" | sed -n '/^endpoints/,$p' | grep -q ' subscriber '; do sleep 0.05; done
> kill -STOP $pid
> shmlink send "$SEG.o" 1 2 3 4 5 6 --timeout 0
> kill -CONT $pid
> until [ -s got ]; do sleep 0.05; done
> shmlink send "$SEG.o" 7
> wait $pid; echo "recv exit $?"; cat got err
$ shmlink info "$SEG.o" | grep -e '^messages'

# A blocking bus waits for its slowest live subscriber: --timeout bounds that.
%hold slow $SEG.b --endpoint subscriber
$ shmlink send "$SEG.b" 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 --timeout 100ms
%release slow

$ shmlink rm "$SEG.b" "$SEG.o"
%release keep
%release keepo
