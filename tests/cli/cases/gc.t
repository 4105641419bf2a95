# gc removes only what is provably abandoned: a segment owned by its creator (SHML_OWNED) once
# the creator and every attached process are gone, and what a creator left unfinished. A
# segment or channel made to outlive its creator (`shmlink create`, `shmlink mk`, the library's
# default) stays, although the tool that made it has exited: another program reads it later.
$ shmlink create "$SEG.kept" 4K --label "read me later"
$ shmlink create "sysv:$KEY" 4K
$ shmlink mk queue "$SEG.jobs"
$ shmlink send "$SEG.jobs" a b c
%hold o $SEG.dead --create-owned 4096
%hold c $SEG.held --create-owned 4096
%hold h $SEG.held
$ shmlink create "$SEG.raw" 4K --raw
$ shmltest foreign "$SEG.foreign" 'not shmlink'
$ shmltest foreign "$SEG.foreignmp" 'python' --mp
%kill o
%kill c
$ shmlink ls --all | grep -e "$SEG" -e "$KEY"

# A dry run says what would go and removes nothing.
$ shmlink gc --dry-run | grep -e "$SEG" -e "$KEY"
$ shmlink gc --dry-run --json | shmltest json gc
$ shmlink info "$SEG.dead" | head -n 1

$ shmlink gc | grep -e "$SEG" -e "$KEY"
$ shmlink info "$SEG.dead"
$ shmlink info "$SEG.held" | grep -e ^flags -e ^attached -e '^  pid' -e ^gc
$ for o in kept jobs raw foreign foreignmp; do test -e "/dev/shm/$SEG.$o" && echo "$o survived"; done
$ shmlink info "sysv:$KEY" | head -n 1
$ shmlink recv "$SEG.jobs"
$ shmlink cat "$SEG.foreign"; echo

# Once its only attacher has died, the owned segment is abandoned too.
%kill h
$ shmlink gc --json | shmltest json gc
$ shmlink ls --all | grep -e "$SEG" -e "$KEY"
$ shmlink gc | grep -c "$SEG"
$ shmlink rm "$SEG.kept" "sysv:$KEY" "$SEG.jobs" "$SEG.raw" "$SEG.foreign" "$SEG.foreignmp"
