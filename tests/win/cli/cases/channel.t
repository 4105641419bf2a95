# Channels on Windows: mk, send, recv, serve, top and info, across runs of the tool.
$ shmlink mk queue "win:$SEG.q" --max-msg 64
$ printf 'one\ntwo\nthree\n' | shmlink send "win:$SEG.q"
$ shmlink recv "win:$SEG.q" -n 3
# Nothing left: a bounded wait ends with its status.
$ shmlink recv "win:$SEG.q" --timeout 100ms
$ shmlink info "win:$SEG.q" | grep -e ^kind -e ^messages -e 'sent\|received' | head -4
$ shmlink top --once --interval 50ms "win:$SEG.q" | awk 'NR <= 2 { print $1, $2 }'

$ shmlink mk bus "win:$SEG.b" > /dev/null
$ shmlink mk latest "win:$SEG.l" > /dev/null
$ printf 'v1\nv2\n' | shmlink send "win:$SEG.l"
$ shmlink recv "win:$SEG.l" -n 1

# rpc: serve answers with the request itself.
$ shmlink mk rpc "win:$SEG.r" > /dev/null
$ (shmlink serve "win:$SEG.r" --echo -n 2 > "$TMP/serve.out" 2>&1 &)
> printf 'ping\npong\n' | shmlink send "win:$SEG.r" --wait --timeout 20s
> for i in $(seq 400); do grep -q served "$TMP/serve.out" && break; sleep 0.05; done; cat "$TMP/serve.out"
# serve -- CMD: the command runs (CreateProcess, in a job) with the request on its stdin, and
# what it prints is the reply. shmlink.exe itself is found beside the tool.
$ shmlink create "win:$SEG.d" 64 --raw > /dev/null
$ printf 'datum' | shmlink write --raw "win:$SEG.d" > /dev/null
$ (shmlink serve "win:$SEG.r" -n 1 -- shmlink.exe cat --raw "win:$SEG.d" --length 5 > "$TMP/serve2.out" 2>&1 &)
> shmlink send "win:$SEG.r" 'any request' --wait --timeout 20s
> for i in $(seq 400); do grep -q served "$TMP/serve2.out" && break; sleep 0.05; done; cat "$TMP/serve2.out"
# A command that cannot be run ends serve with the reason.
$ shmlink serve "win:$SEG.r" -n 1 --timeout 10s -- no-such-program.exe 2> err & pid=$!
> until shmlink info "win:$SEG.r" | grep -q ' server '; do sleep 0.05; done
> shmlink send "win:$SEG.r" 'request' --timeout 5s | od -An -c
> wait $pid; echo "serve exit $?"; cat err
$ shmlink rm "win:$SEG.q" "win:$SEG.b" "win:$SEG.l" "win:$SEG.r" "win:$SEG.d"
