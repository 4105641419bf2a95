# Round trip on the System V backend, by key (hex and decimal) and by id.
# A segment made by `shmlink create` is abandoned once the tool exits, and a gc run by any
# other program on the machine would remove it: the holder keeps it attached meanwhile.
$ shmlink create "sysv:$KEY" 5000 --label sysv --mode 0600
%hold keep sysv:$KEY
$ shmlink ls | grep -e '^ADDRESS' -e "$KEY"
$ shmlink info "sysv:$KEY"
$ shmlink info "sysv:$KEY" --json | shmltest json info
$ printf 'system five' | shmlink write "sysv:$KEY" --offset 4990
$ printf 'system five' | shmlink write "sysv:$KEY" --offset 4989
$ shmlink cat "sysv:$((KEY))" --offset 4989; echo
$ shmlink dump "sysv:$KEY" --offset 4976
$ printf 'too long' | shmlink write "sysv:$KEY" --offset 4993
$ shmlink cat "sysv:$KEY" --offset 4990; echo
# The same segment by the id ipcs shows.
$ id=$(awk -v k=$((KEY)) '$1 == k { print $2 }' /proc/sysvipc/shm)
> shmlink info "sysv:id=$id" | head -n 4
> [ "$(shmlink ls | awk -v a="sysv:$KEY" '$1 == a { print $2 }')" = "$id" ] && echo "ls: the id ipcs shows"
> shmlink ls --all --json | grep -c "\"sysv_id\": $id,"
> shmlink cat "sysv:id=$id" --offset 4989; echo
$ shmlink create "sysv:$KEY" 4K
# Raw System V segment: no header, shown by ls --all only.
$ shmlink create "sysv:$KEY2" 3000 --raw
$ shmlink ls | grep -c "$KEY2"
$ shmlink ls --all | grep -e '^ADDRESS' -e "$KEY" -e "$KEY2"
$ shmlink info "sysv:$KEY2"
$ printf 'raw' | shmlink write "sysv:$KEY2" --raw --offset 2997
$ printf 'Raw' | shmlink write "sysv:$KEY2" --raw
$ shmlink dump "sysv:$KEY2"
$ printf 'x' | shmlink write "sysv:$KEY2"
$ shmlink rm "sysv:$KEY" "sysv:$KEY2"
%release keep
$ shmlink info "sysv:$KEY"
$ shmlink rm "sysv:$KEY"
$ grep -c -i -e "$((KEY))" -e "$((KEY2))" /proc/sysvipc/shm
# A key from ftok(): the address names it, whatever key it turns out to be.
%cleanup sysv:$TMP/keyfile#7
$ touch keyfile
$ shmlink create "sysv:$TMP/keyfile#7" 4K --label ftok
%hold keepftok sysv:$TMP/keyfile#7
$ shmlink info "sysv:$TMP/keyfile#7" | grep -e ^address -e ^label
# info shows the key ftok() resolved beside the id: (7 << 24) | (dev & 0xff) << 16 | inode & 0xffff.
$ set -- $(stat -c '%d %i' keyfile)
> want=$(printf '0x%08x' $(( (7 << 24) | (($1 & 0xff) << 16) | ($2 & 0xffff) )))
> shmlink info "sysv:$TMP/keyfile#7" | grep '^sysv id:' | sed "s/$want/FTOK-KEY/"
# The project id is what ftok() takes: only its low 8 bits count, so #0x107 is #7.
$ shmlink info "sysv:$TMP/keyfile#0x107" | grep -e ^address -e ^label
$ shmlink create "sysv:$TMP/keyfile#0" 4K
$ shmlink create "sysv:$TMP/keyfile#0x100" 4K
$ shmlink create "sysv:$TMP/missing#7" 4K
$ shmlink rm "sysv:$TMP/keyfile#7"
%release keepftok
$ shmlink info "sysv:$TMP/keyfile#7"

# A segment made by another program (ipcmk, from util-linux) reads as raw.
$ id=$(ipcmk -M 5000 -p 0640 | awk '{ print $NF }')
> echo "sysv:id=$id" >> .cleanup
> echo "$id" > ipcmk.id
$ shmlink info "sysv:id=$(cat ipcmk.id)" | sed 's/(key 0x[0-9a-f]*)/(key from ipcmk)/'
$ printf 'from the tool' | shmlink write "sysv:id=$(cat ipcmk.id)" --raw --offset 100
$ shmlink cat "sysv:id=$(cat ipcmk.id)" --raw --offset 100 --length 13; echo
# A foreign segment whose first bytes are zero and whose creator (ipcmk) has exited is
# foreign, not a header being written: cat falls back to raw by itself.
$ shmlink cat "sysv:id=$(cat ipcmk.id)" --offset 100 --length 13; echo
$ ipcs -m -i "$(cat ipcmk.id)" | grep -o 'bytes=[0-9]*'
$ shmlink rm "sysv:id=$(cat ipcmk.id)"
$ shmlink info "sysv:id=$(cat ipcmk.id)"
