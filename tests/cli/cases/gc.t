# gc removes shmlink segments whose creator is dead and that nobody is attached to, and never
# touches anything else. `shmlink create` is the creator here: it has exited by the time gc
# runs, so what it made is abandoned unless someone attaches.
$ shmlink create "$SEG.dead" 4K --label "left behind"
$ shmlink create "sysv:$KEY" 4K
$ shmlink create "$SEG.held" 4K
%hold h $SEG.held
$ shmlink create "$SEG.raw" 4K --raw
$ shmltest foreign "$SEG.foreign" 'not shmlink'
$ shmltest foreign "$SEG.foreignmp" 'python' --mp
$ shmlink ls --all | grep -e "$SEG" -e "$KEY"

# A dry run says what would go and removes nothing.
$ shmlink gc --dry-run | grep -e "$SEG" -e "$KEY"
$ shmlink gc --dry-run --json | shmltest json gc
$ shmlink info "$SEG.dead" | head -n 1

$ shmlink gc | grep -e "$SEG" -e "$KEY"
$ shmlink info "$SEG.dead"
$ shmlink info "sysv:$KEY"
$ shmlink info "$SEG.held" | grep -e ^attached -e '^  pid'
$ for o in raw foreign foreignmp; do test -e "/dev/shm/$SEG.$o" && echo "$o survived"; done
$ shmlink cat "$SEG.foreign"; echo

# Once its only attacher has died, the held segment is abandoned too.
%kill h
$ shmlink gc --json | shmltest json gc
$ shmlink ls --all | grep -e "$SEG" -e "$KEY"
$ shmlink gc | grep -c "$SEG"
$ shmlink rm "$SEG.raw" "$SEG.foreign" "$SEG.foreignmp"
