# The classic Windows tutorial's programs (CreateFileMapping of 2048 bytes named as given,
# MapViewOfFile, memcpy) and the tool read each other's mappings. Between the tool's runs a
# holder keeps the segment, until rm.
$ shmlink create "win:$SEG.tut" 2048 --raw
$ printf 'written by shmlink.exe!!' | shmlink write --raw "win:$SEG.tut"
$ $WINE "$TUTORIAL_READER" "$SEG.tut" 24 | tr -d '\r'; echo
$ shmlink cat --raw "win:$SEG.tut" --length 24; echo
$ shmlink ls | grep -c "$SEG.tut"
$ shmlink ls --all | grep "$SEG.tut" | awk '{ print $1, $3, $4, $5, $6 }'
$ shmlink rm "win:$SEG.tut"
# Once removed, the name is gone: the holder let go and nobody else held it.
$ $WINE "$TUTORIAL_READER" "$SEG.tut" 24 | tr -d '\r'
$ shmlink cat --raw "win:$SEG.tut"

# The tutorial's writer holds its mapping; the tool reads it raw (sized by the system, to a
# page) and sees it is no shmlink segment. (The tutorial programs print in text mode, lines
# ending in CR LF: the CRs are dropped.)
# (It holds the mapping for 8 s: the runner ends what a command leaves running when the
# command ends, but a Wine program lives on.)
$ ($WINE "$TUTORIAL_WRITER" "$SEG.tw" 'Hello from the tutorial!' 8000 > "$TMP/w.out" 2>&1
>  echo "exit $?" >> "$TMP/w.out") > /dev/null 2>&1 &
> for i in $(seq 400); do grep -q ready "$TMP/w.out" 2>/dev/null && break; sleep 0.05; done
> tr -d '\r' < "$TMP/w.out"
$ shmlink cat "win:$SEG.tw" --length 24; echo
$ shmlink info "win:$SEG.tw" | grep -e ^kind -e ^size -e ^gc
$ shmlink dump "win:$SEG.tw" --length 32
$ printf 'changed by shmlink.exe!!' | shmlink write --raw "win:$SEG.tw"
$ $WINE "$TUTORIAL_READER" "$SEG.tw" 24 | tr -d '\r'; echo
# rm cannot take a name another program holds: it says so.
$ shmlink rm "win:$SEG.tw"
# The writer ends: the mapping goes with its last handle.
$ for i in $(seq 400); do grep -q exit "$TMP/w.out" && break; sleep 0.05; done; tr -d '\r' < "$TMP/w.out"
$ shmlink cat --raw "win:$SEG.tw"
