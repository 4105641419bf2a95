# Channels: mk, send, recv and info on a queue.
# A channel made by `shmlink mk` is abandoned once the tool exits, and a gc run by any other
# program on the machine would remove it: the holder keeps it attached meanwhile.

# mk: 2 slots of up to 100 bytes (stride 128, capacity 256).
$ shmlink mk queue "$SEG.q" --capacity 256 --max-msg 100 --mode 0640
%hold keep $SEG.q
$ stat -c '%a' "/dev/shm/$SEG.q"
$ shmlink info "$SEG.q" | grep -e '^kind' -e '^channel' -e '^messages'

# Arguments: one message each; recv without -n drains what is queued and exits.
$ shmlink send "$SEG.q" hello "two words"
$ shmlink info "$SEG.q" | grep -e '^channel' -e '^messages'
$ shmlink recv "$SEG.q"
$ shmlink recv "$SEG.q"
$ shmlink info "$SEG.q" | grep '^messages'

# Escaping: not printable, and backslash, are escaped; an empty message is an empty line.
$ shmlink send "$SEG.q" "$(printf 'tab\there\\back\001')" ""
$ shmlink recv "$SEG.q" | cat -A

# stdin lines, without their newline; the last line needs none.
$ printf 'l1\nl2' | shmlink send "$SEG.q"
$ shmlink recv "$SEG.q"
$ shmlink send "$SEG.q" < /dev/null

# -n N: stop after N; fewer than N in the timeout is a failure (exit 1).
$ shmlink send "$SEG.q" a b
$ shmlink recv "$SEG.q" -n 1
$ shmlink recv "$SEG.q" --count=2 --timeout 200ms
$ shmlink recv "$SEG.q" -n 1 --timeout 0
# Every duration takes a fraction, with or without a unit.
$ shmlink recv "$SEG.q" -n 1 --timeout 0.2
$ shmlink recv "$SEG.q" -n 1 --timeout 0.05s

# The queue is full after 2: --timeout 0 fails at once, 100ms after waiting.
$ shmlink send "$SEG.q" 1 2 3 --timeout 0
$ shmlink send "$SEG.q" 4 --timeout 100ms
$ shmlink recv "$SEG.q"

# --binary: 4-byte little-endian length, then the bytes, both ways; NUL and newline pass.
$ printf '\003\000\000\000a\000b\001\000\000\000\n' | shmlink send "$SEG.q" --binary
$ shmlink recv "$SEG.q" --binary | od -An -c
$ printf '\003\000\000\000a\000b' | shmlink send "$SEG.q" --binary
$ shmlink recv "$SEG.q"
$ printf '\005\000\000\000ab' | shmlink send "$SEG.q" --binary
$ printf '\005\000' | shmlink send "$SEG.q" --binary
$ printf '\145\000\000\000' | shmlink send "$SEG.q" --binary
$ shmlink recv "$SEG.q"

# --follow waits until SIGINT or SIGTERM, then ends cleanly: 130 or 143, 128 + the signal.
$ : > got; shmlink recv "$SEG.q" --follow > got & pid=$!
> shmlink send "$SEG.q" f1 f2
> until [ "$(wc -l < got)" = 2 ]; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "recv exit $?"; cat got
$ shmlink recv "$SEG.q" --follow > got2 & pid=$!
> shmlink send "$SEG.q" f3
> until [ -s got2 ]; do sleep 0.05; done
> kill -TERM $pid; wait $pid; echo "recv exit $?"; cat got2

# A wait is one sleep until a message, the timeout or a stop signal comes, not a poll in
# slices: the channel counts each time one of its endpoints went to sleep. (A sleeper also
# wakes once a second to look at the mapping: the second wait allows for that one.)
$ shmlink mk queue "$SEG.w" >/dev/null
$ shmlink recv "$SEG.w" --timeout 0.5s; shmlink info "$SEG.w" | grep '^sleeps'
$ shmlink recv "$SEG.w" --follow & pid=$!
> sleeps() { shmlink info "$SEG.w" | awk '/^sleeps:/ {print $2}'; }
> until [ "$(sleeps)" -ge 2 ]; do sleep 0.05; done
> sleep 0.5; kill -INT $pid; wait $pid; echo "recv exit $?"
> [ "$(sleeps)" -le 3 ] && echo "slept once"
$ shmlink rm "$SEG.w" >/dev/null

# Too long: exit 1 at once, whatever the timeout; what came before it was sent.
$ shmlink send "$SEG.q" ok "$(printf 'x%.0s' $(seq 101))"
$ shmlink recv "$SEG.q"
$ printf 'x%.0s' $(seq 100) | shmlink send "$SEG.q"

# info: the channel section and its counters, in text and JSON.
$ shmlink info "$SEG.q" | grep -e '^channel' -e '^messages'
$ shmlink info "$SEG.q" --json | shmltest json info

# Errors: a segment that is not a channel, a missing one, bad values, kinds.
$ shmlink create "$SEG.p" 4K
%hold keepp $SEG.p
$ shmlink send "$SEG.p" hi
$ shmlink recv "$SEG.p"
$ shmlink info "$SEG.p" | grep -c '^channel'
$ shmlink send "$SEG.none" hi
$ shmlink recv "$SEG.none"
$ shmlink send "$SEG.q" hi --timeout 5x
$ shmlink send "$SEG.q" hi --timeout -1
$ shmlink send "$SEG.q" hi --timeout .5
$ shmlink send "$SEG.q" hi --timeout 1.5.0
$ shmlink recv "$SEG.q" -n 0
$ shmlink recv "$SEG.q" -n x
$ shmlink send "$SEG.q" a --binary
$ shmlink recv "$SEG.q" -x
$ shmlink recv "$SEG.q" -n
$ shmlink send
$ shmlink recv
$ shmlink mk queue
$ shmlink mk queue "$SEG.bad" --capacity 0
$ shmlink mk queue "$SEG.bad" --capacity 1X
$ shmlink mk queue "$SEG.bad" --max-msg -1
$ shmlink mk queue "$SEG.bad" --max-msg 2G
$ shmlink mk queue "$SEG.bad" --mode 999
$ shmlink mk queue "$SEG.q"
$ shmlink mk pipe "$SEG.bad"
$ shmlink mk queue "$SEG.bad" --policy overwrite
$ shmlink mk latest "$SEG.bad" --policy overwrite
$ shmlink mk rpc "$SEG.bad" --policy overwrite
$ shmlink mk bus "$SEG.bad" --policy sometimes
$ shmlink mk bus "$SEG.bad" --policy
$ shmlink mk bus "$SEG.bad" --spsc
$ shmlink mk queue "$SEG.bad" --endpoints 0
$ shmlink mk queue "$SEG.bad" --endpoints 4097
$ shmlink mk queue "$SEG.bad" --endpoints x
$ ls /dev/shm | grep -c "$SEG.bad"

# Defaults, and --spsc.
$ shmlink mk queue "$SEG.d"
$ shmlink mk queue "$SEG.s" --spsc --capacity 64K --max-msg 1K
%hold keepd $SEG.d $SEG.s
$ shmlink send "$SEG.s" x && shmlink recv "$SEG.s"
$ shmlink info "$SEG.s" | grep ^channel

$ shmlink rm "$SEG.q" "$SEG.p" "$SEG.d" "$SEG.s"
%release keep
%release keepp
%release keepd

# The endpoint table is full of live endpoints: EUSERS, with what to do. A dead entry is
# reclaimed by the next opener.
$ shmlink mk queue "$SEG.u" --endpoints 1 --capacity 1K --max-msg 64
%hold full $SEG.u --endpoint consumer
$ shmlink send "$SEG.u" hi
$ shmlink recv "$SEG.u"
$ shmlink info "$SEG.u" | sed -n '/^endpoints/,$p'
%hold keepu $SEG.u
%kill full
$ shmlink info "$SEG.u" | sed -n '/^endpoints/,$p'
$ shmlink send "$SEG.u" hi
$ shmlink info "$SEG.u" | sed -n '/^endpoints/,$p'
$ shmlink rm "$SEG.u"
%release keepu
