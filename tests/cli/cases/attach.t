# The attach table: live and dead attachers, as info and ls show them.
$ shmlink create "$SEG.a" 4K --label attached
%hold one $SEG.a
%hold two $SEG.a
$ shmlink info "$SEG.a"
$ shmlink ls | grep "$SEG"
# The tool itself never attaches: reading leaves the table as it was.
$ shmlink cat "$SEG.a" | wc -c
$ shmlink info "$SEG.a" | grep -e ^attached -e '^attach table'
# A holder killed with SIGKILL leaves its entry behind, marked dead.
%kill one
$ shmlink info "$SEG.a" | grep -e ^attached -e '^attach' -e '^  pid'
$ shmlink ls | grep "$SEG"
$ shmlink info "$SEG.a" --json | shmltest json info
%release two
$ shmlink info "$SEG.a" | grep -e ^attached -e '^attach' -e '^  pid'
$ shmlink rm "$SEG.a"
