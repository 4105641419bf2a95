# Synchronisation objects a segment declares, as info shows them: a mutex free, held by a live
# process, left by a killed holder, then made unrecoverable; an event and two semaphores with
# their counts and sleeping waiters. (The holder's options are described in holder.c.)
$ shmlink create "$SEG.d" 4K --label declared
%hold init $SEG.d --mutex table:0 --event ready:64 --sem slots:128:3 --sem empty:192:0
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
# Threads asleep in an event wait and a semaphore wait are counted.
%hold sleepers $SEG.d --wait-event 64 --wait-sem 192
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
%release sleepers
# A holder locks the mutex, notifies the event, posts a semaphore.
%hold locker $SEG.d --lock 0 --notify 64 --post 128
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
$ shmlink info "$SEG.d" --json | shmltest json info
# Killed while holding it: the kernel releases the mutex and marks it for the next locker.
%kill locker
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
$ shmlink info "$SEG.d" --json | shmltest json info | sed -n '/^  "declared"/,/}/p'
# The next locker gets EOWNERDEAD and holds the lock.
%hold recoverer $SEG.d --lock 0
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
# It unlocks without shml_mutex_consistent(): nobody can lock the mutex from now on.
%release recoverer
$ shmlink info "$SEG.d" | sed -n '/^declared/,$p'
$ shmlink info "$SEG.d" --json | shmltest json info
# A segment that declares nothing shows no section, and an empty list in JSON.
$ shmlink create "$SEG.plain" 4K
%hold plain $SEG.plain
$ shmlink info "$SEG.plain" | grep ^declared || echo "no declared section"
$ shmlink info "$SEG.plain" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["declared"])'
%release plain
%release init
$ shmlink rm "$SEG.d" "$SEG.plain"
