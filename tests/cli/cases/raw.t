# Raw segments (no header) and foreign objects made by other programs.
$ shmlink create "$SEG.raw" 100 --raw --mode 0644
$ stat -c '%a %s' "/dev/shm/$SEG.raw"
$ shmlink info "$SEG.raw"
$ shmlink ls | grep -c "$SEG"
$ shmlink ls --all | grep -e '^ADDRESS' -e "$SEG"
# A fresh raw object is all zeros: cat must see at once that it is foreign and read it raw.
$ shmlink cat "$SEG.raw" | wc -c
# Writing a foreign object takes --raw: the tool will not guess.
$ printf 'raw bytes' | shmlink write "$SEG.raw" --raw
$ printf 'more' | shmlink write "$SEG.raw"
$ printf 'raw bytes' | shmlink write "$SEG.raw" --raw --offset 10
$ shmlink dump "$SEG.raw"
$ shmlink cat "$SEG.raw" --offset 10 --length 9; echo

# Objects made by Python: os.open in /dev/shm, and multiprocessing.shared_memory.
$ shmltest foreign "$SEG.py" 'made by python\n'
$ shmlink cat "$SEG.py"
$ shmlink info "$SEG.py"
$ shmltest foreign "$SEG.mp" 'multiprocessing.shared_memory\x00\x01\xff' --mp
$ shmlink dump "$SEG.mp"
$ shmlink cat "$SEG.mp" | od -An -c
$ shmlink ls --all --json | shmltest json ls

# Names no shmlink segment could have are shown escaped, in text and in JSON.
$ shmltest foreign "$SEG.nl\nesc\x1b\x07\xff" 'odd name'
$ shmlink ls --all | grep -a "$SEG.nl" | awk '{ print $1, $3, $4 }'
$ shmlink cat "$(printf "$SEG.nl\nesc\033\007\377")"
$ shmlink ls --all --json | shmltest json ls | grep '"address"'
$ shmlink ls --all --json | grep -a '"address": ".*nl'

# A managed segment can be read raw too, header included.
$ shmlink create "$SEG.managed" 16
%hold keep $SEG.managed
$ shmlink dump "$SEG.managed" --raw --length 16
$ shmlink cat "$SEG.managed" | wc -c
$ shmlink cat "$SEG.managed" --raw | wc -c

# The magic, then bytes that are not a header: corrupt, not a header of another version.
$ { printf 'SHMLINK\0'; shmltest pattern 8184; } > "/dev/shm/$SEG.garbage"
$ shmlink info "$SEG.garbage" | head -4
$ shmlink cat "$SEG.garbage" | wc -c
$ shmlink rm "$SEG.garbage"
# A hostile but well-sealed creation time, the most negative there is: shown, not overflowed
# (the ASan+UBSan build aborts on a signed overflow). The age in days grows with the date.
$ shmlink create "$SEG.stamp" 4K > /dev/null
$ shmltest stamp "/dev/shm/$SEG.stamp" -9223372036854775808
$ shmlink info "$SEG.stamp" | grep -e ^status -e ^created | sed 's/([0-9]*d ago)/(Nd ago)/'
$ shmlink ls | grep -c "$SEG.stamp"
$ shmlink ls --json | shmltest json ls | grep -c age_s
$ shmlink rm "$SEG.stamp"
$ shmlink rm "$SEG.raw" "$SEG.py" "$SEG.mp" "$SEG.managed"
%release keep
$ rm "/dev/shm/$SEG.nl"*
$ ls /dev/shm | grep -c "$SEG"
