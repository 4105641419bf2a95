# Request/reply channels: `send` asks and prints the reply, `serve` answers.
$ shmlink mk rpc "$SEG.r" --capacity 4K --max-msg 100
%hold keep $SEG.r
$ shmlink info "$SEG.r" | grep -e '^kind' -e '^channel'

# --echo: each request is its own reply; -n stops after N requests.
$ shmlink serve "$SEG.r" --echo -n 2 > served & pid=$!
> until shmlink info "$SEG.r" | sed -n '/^endpoints/,$p' | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" hello "two words"
> wait $pid; echo "serve exit $?"; cat served

# -- CMD: the reply is what CMD prints with the request on stdin (one trailing newline
# removed: the second frame, "\n", gets an empty reply); stdin lines and --binary frames
# are requests as for any channel.
$ shmlink serve "$SEG.r" -n 4 -- tr a-z A-Z > served & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> printf 'abc\nxyz\n' | shmlink send "$SEG.r"
> printf '\003\000\000\000a\000b\001\000\000\000\n' | shmlink send "$SEG.r" --binary | od -An -c
> wait $pid; echo "serve exit $?"; cat served
$ shmlink serve "$SEG.r" -n 1 -- sh -c 'cat; echo; echo line2' > served & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" multi
> wait $pid; echo "serve exit $?"

# A CMD that fails still answers with its output; one that prints too much is cut.
$ shmlink serve "$SEG.r" -n 1 -- sh -c 'echo partial; exit 3' > served 2> err & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" q1
> wait $pid; echo "serve exit $?"; cat served err
$ shmlink serve "$SEG.r" -n 1 -- sh -c 'head -c 150 /dev/zero | tr "\0" y' > served 2> err & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" q | wc -c
> wait $pid; echo "serve exit $?"; cat served err
# A CMD that cannot be run: the client gets an empty reply, serve exits 1.
$ shmlink serve "$SEG.r" -- /nonexistent/cmd 2> err & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" q | od -An -c
> wait $pid; echo "serve exit $?"; cat err

# SIGTERM and SIGINT end serve cleanly; --timeout ends it when no request comes.
$ shmlink serve "$SEG.r" --echo > s & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> kill -TERM $pid; wait $pid; echo "serve exit $?"; cat s
$ shmlink serve "$SEG.r" --echo > s & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "serve exit $?"; cat s
$ shmlink serve "$SEG.r" --echo --timeout 100ms
# A stop signal while CMD runs: CMD is stopped, and its request gets no reply (the client
# sees its server gone).
$ shmlink serve "$SEG.r" -- sleep 20 > s & pid=$!
> until shmlink info "$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "$SEG.r" slow --timeout 10s 2> cerr & cpid=$!
> until pgrep -P $pid -x sleep > /dev/null; do sleep 0.05; done
> kill -INT $pid; wait $pid; echo "serve exit $?"; wait $cpid; echo "send exit $?"; cat s cerr

# No server: a request fails at once, whatever the timeout; --wait waits for a server (within
# --timeout), and for a channel that does not exist yet.
$ shmlink send "$SEG.r" anyone
$ shmlink send "$SEG.r" anyone --wait --timeout 200ms
$ shmlink info "$SEG.r" | grep -e '^messages'
$ shmlink send "$SEG.r" waited --wait --timeout 20s > reply & pid=$!
> sleep 0.3; shmlink serve "$SEG.r" --echo -n 1; wait $pid; echo "send exit $?"; cat reply
$ shmlink send "$SEG.r2" early --wait --timeout 20s > reply & pid=$!
> sleep 0.3; shmlink mk rpc "$SEG.r2" > /dev/null
> shmlink serve "$SEG.r2" --echo -n 1; wait $pid; echo "send exit $?"; cat reply
> shmlink rm "$SEG.r2"
$ shmlink recv "$SEG.nothere" --wait --timeout 100ms

# Errors.
$ shmlink recv "$SEG.r"
$ shmlink mk queue "$SEG.q" --capacity 1K --max-msg 64
%hold keepq $SEG.q
$ shmlink serve "$SEG.q" --echo
$ shmlink serve "$SEG.none" --echo
$ shmlink serve "$SEG.r"
$ shmlink serve "$SEG.r" --echo -- cat
$ shmlink serve "$SEG.r" --
$ shmlink serve "$SEG.r" --echo -n 0
$ shmlink serve "$SEG.r" --echo --timeout soon
$ shmlink serve --echo
$ shmlink serve "$SEG.r" --bogus

$ shmlink rm "$SEG.r" "$SEG.q"
%release keep
%release keepq
