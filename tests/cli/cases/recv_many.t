# recv from several channels at once: one wait set, each line marked with its channel.
# The holder keeps the channels attached, so a gc run meanwhile leaves them alone.

$ shmlink mk queue "$SEG.q" --capacity 1K --max-msg 100 >/dev/null
$ shmlink mk queue "$SEG.r" --capacity 1K --max-msg 100 >/dev/null
$ shmlink mk bus "$SEG.b" --capacity 1K --max-msg 100 >/dev/null
$ shmlink mk latest "$SEG.l" --type '<f' --shape 2 >/dev/null
%hold keep $SEG.q $SEG.r $SEG.b $SEG.l

# One address: output exactly as ever, with no prefix.
$ shmlink send "$SEG.q" one >/dev/null; shmlink recv "$SEG.q"

# Several: what every channel holds now, channel by channel in the order given, each line
# starting with the address as given; a typed channel's values; a bus subscribes from now.
$ shmlink send "$SEG.q" q1 "$(printf 'q2\there\\')" "" >/dev/null
> shmlink send "$SEG.r" r1 >/dev/null; shmlink send "$SEG.l" "1.5 -2" >/dev/null
$ shmlink recv "$SEG.r" "$SEG.b" "posix:/$SEG.q" "$SEG.l"
$ shmlink recv "$SEG.q" "$SEG.r"

# -n counts the messages of all the channels; fewer within --timeout is a failure.
$ shmlink send "$SEG.q" a b >/dev/null; shmlink send "$SEG.r" c >/dev/null
$ shmlink recv "$SEG.q" "$SEG.r" -n 2
$ shmlink recv "$SEG.q" "$SEG.r" -n 2 --timeout 100ms
$ shmlink recv "$SEG.q" "$SEG.r" -n 1 --timeout 0

# --follow: messages as they come, from whichever channel; a bus subscriber gets what is
# sent once it has joined. --timeout ends it once no channel had a message for that long.
$ : > got; shmlink recv "$SEG.b" "$SEG.q" --follow > got & pid=$!
> until [ "$(shmlink info "$SEG.b" | sed -n '/^endpoints/,$p' | grep -c ' subscriber ')" = 1 ]; do sleep 0.05; done
> shmlink send "$SEG.b" b1 >/dev/null
> until [ "$(wc -l < got)" = 1 ]; do sleep 0.05; done
> shmlink send "$SEG.q" q3 >/dev/null
> until [ "$(wc -l < got)" = 2 ]; do sleep 0.05; done
> shmlink send "$SEG.b" b2 >/dev/null
> until [ "$(wc -l < got)" = 3 ]; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "recv exit $?"; cat got
$ shmlink recv "$SEG.q" "$SEG.r" --follow --timeout 100ms; echo "recv exit $?"

# --json: a line per message, with the channel it came from (as given): UTF-8 as text,
# other bytes in base64, a typed channel's values. One address too.
$ shmlink send "$SEG.q" hi "$(printf 'a\001"b')" "" >/dev/null; printf '\002\000\000\000\377\000' |
> shmlink send "$SEG.r" --binary >/dev/null; shmlink send "$SEG.l" "inf 0.25" >/dev/null
$ shmlink recv "$SEG.q" "$SEG.r" "$SEG.l" --json
$ shmlink recv "$SEG.l" --json
$ shmlink send "$SEG.q" hi "$(printf 'a\001"b')" "" >/dev/null; printf '\002\000\000\000\377\000' |
> shmlink send "$SEG.r" --binary >/dev/null; shmlink send "$SEG.l" "inf 0.25" >/dev/null
$ shmlink recv "$SEG.q" "$SEG.r" "$SEG.l" --json | shmltest json recv

# What a latest reader skipped: said on stderr, naming the channel, and in "missed".
$ : > got; shmlink recv "$SEG.l" "$SEG.q" -n 2 --json > got 2> err & pid=$!
> until [ -s got ]; do sleep 0.05; done
> kill -STOP $pid
> shmlink send "$SEG.l" "1 1" "2 2" "3 3" >/dev/null
> kill -CONT $pid; wait $pid; echo "recv exit $?"; cat got err

# A type the tool does not decode: bytes, and recv says so for that channel.
$ "$HOLDER" --make-typed "$SEG.s" 'T{<i:a:<h:b:}' 6
$ printf '\006\000\000\000\001\000\000\000\002\000' | shmlink send "$SEG.s" --binary >/dev/null
$ shmlink recv "$SEG.q" "$SEG.s"
$ shmlink rm "$SEG.s" >/dev/null

# Errors: nothing is received unless every address opens (a missing one, one that is not a
# channel, an rpc channel); the messages stay queued.
$ shmlink send "$SEG.q" kept >/dev/null
$ shmlink recv "$SEG.q" "$SEG.none"
$ shmlink create "$SEG.p" 4K >/dev/null
$ shmlink recv "$SEG.q" "$SEG.p"
$ shmlink rm "$SEG.p" >/dev/null
$ shmlink mk rpc "$SEG.c" >/dev/null
$ shmlink recv "$SEG.q" "$SEG.c"
$ shmlink rm "$SEG.c" >/dev/null
# One channel twice, under the same or another address.
$ shmlink recv "$SEG.q" "$SEG.r" "$SEG.q"
$ shmlink recv "$SEG.q" "posix:/$SEG.q"
$ shmlink recv "$SEG.q"
# --binary frames have no room for the channel; --binary and --json are two formats.
$ shmlink recv "$SEG.q" "$SEG.r" --binary
$ shmlink recv "$SEG.q" --binary --json
# Values wrong for all the channels are named without an address.
$ shmlink recv "$SEG.q" "$SEG.r" -n 0
$ shmlink recv "$SEG.q" "$SEG.r" --timeout soon

# --wait: each missing channel is waited for, all within --timeout; nothing is received
# before every one is open.
$ shmlink send "$SEG.q" w1 >/dev/null
$ shmlink recv "$SEG.q" "$SEG.late" --wait --timeout 100ms
$ (sleep 0.2; shmlink mk queue "$SEG.late" >/dev/null; shmlink send "$SEG.late" w2 >/dev/null) &
> shmlink recv "$SEG.q" "$SEG.late" --wait -n 2 --timeout 10s; wait
$ shmlink rm "$SEG.late" >/dev/null

# A stop signal ends recv of several channels promptly, between two messages, with what it
# received printed: while it waits for messages (SIGINT: 130; SIGTERM: 143), and while it
# waits for a channel to appear. Each end is bounded: a recv still running 2 seconds after
# the signal is reported and killed. Its descriptors (/dev/shm/.shml-fd-PID-*) go with it.
$ ended() { for i in $(seq 40); do kill -0 $1 2>/dev/null || { echo "ended within 2 seconds"; return; }
>   sleep 0.05; done; echo "still running 2 seconds after the signal"; kill -KILL $1; }
> fds() { ls -a /dev/shm | grep -c "^\.shml-fd-$1-"; }
> : > got; shmlink recv "$SEG.q" "$SEG.r" --follow > got & pid=$!
> shmlink send "$SEG.q" s1 >/dev/null; shmlink send "$SEG.r" s2 >/dev/null
> for i in $(seq 200); do [ "$(wc -l < got)" = 2 ] && break; sleep 0.05; done
> kill -INT $pid; ended $pid; wait $pid; echo "recv exit $?, $(fds $pid) descriptors left"; cat got
> : > got; shmlink recv "$SEG.q" "$SEG.r" --follow --json > got & pid=$!
> shmlink send "$SEG.r" s3 >/dev/null
> for i in $(seq 200); do [ -s got ] && break; sleep 0.05; done
> kill -TERM $pid; ended $pid; wait $pid; echo "recv exit $?, $(fds $pid) descriptors left"; cat got
> shmlink recv "$SEG.q" "$SEG.gone" --wait 2> err & pid=$!
> for i in $(seq 200); do shmlink info "$SEG.q" | grep -q ' consumer ' && break; sleep 0.05; done
> sleep 0.2; kill -INT $pid; ended $pid; wait $pid; echo "recv exit $?"; cat err
# Nothing was lost: the queues are empty, and no endpoint is left.
$ shmlink recv "$SEG.q" "$SEG.r"
$ shmlink info "$SEG.q" | grep -e '^messages' -e '^endpoints'

$ shmlink rm "$SEG.q" "$SEG.r" "$SEG.b" "$SEG.l"
%release keep
