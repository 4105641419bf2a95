# Usage errors exit 2 with a usage line; failures exit 1 with one line
# "shmlink: VERB ADDR: reason".

# Missing or extra arguments, bad options: exit 2.
$ shmlink create
$ shmlink create "$SEG.x"
$ shmlink info
$ shmlink cat
$ shmlink dump
$ shmlink write
$ shmlink rm
$ shmlink cat "$SEG.x" "$SEG.y"
$ shmlink create "$SEG.x" 4K extra
$ shmlink create "$SEG.x" 4K --mode
$ shmlink cat "$SEG.x" --offset
$ shmlink create "$SEG.x" 4K --raw --label x
$ shmlink write "$SEG.x" --length 5

# Bad addresses: the library's reason, exit 1, nothing created.
$ shmlink create "" 4K
$ shmlink create posix: 4K
$ shmlink create posix:/ 4K
$ shmlink create "posix:/$SEG/x" 4K
$ shmlink create "$SEG..x" 4K
$ shmlink create ".." 4K
$ shmlink create "$SEG.$(printf 'a\001b')" 4K
$ shmlink create "$SEG.$(printf 'tab\there')" 4K
$ shmlink create "$SEG.back\\slash" 4K
$ shmlink create "$(printf 'x%.0s' $(seq 256))" 4K
$ shmlink create sysv:nokey 4K
$ shmlink create sysv:0 4K
$ shmlink create sysv:0x100000000 4K
$ shmlink create file: 4K
$ shmlink create "weird:$SEG" 4K
$ shmlink create "memfd:$SEG" 4K
$ shmlink cat "posix:/$SEG/x"
$ shmlink rm "$SEG..x"
$ ls /dev/shm | grep -c "$SEG"

# Sizes: zero, negative, garbage and overflow are refused with exit 1.
$ shmlink create "$SEG.s" 0
$ shmlink create "$SEG.s" 0K
$ shmlink create "$SEG.s" -1
$ shmlink create "$SEG.s" -5K
$ shmlink create "$SEG.s" ""
$ shmlink create "$SEG.s" abc
$ shmlink create "$SEG.s" 12x
$ shmlink create "$SEG.s" 4KB
$ shmlink create "$SEG.s" 4K4
$ shmlink create "$SEG.s" 1.5M
$ shmlink create "$SEG.s" 0x100
$ shmlink create "$SEG.s" " 5"
$ shmlink create "$SEG.s" +5
$ shmlink create "$SEG.s" 18446744073709551616
$ shmlink create "$SEG.s" 99999999999999999999999
$ shmlink create "$SEG.s" 16777216T
$ shmlink create "$SEG.s" 17179869184G
# Representable in size_t, but no system can hold it: the library says so.
$ shmlink create "$SEG.s" 18446744073709551615
$ shmlink create "$SEG.s" 16777215T
$ shmlink info "$SEG.s"

# Every spelling of a suffix, and the size that results. (Each segment is held attached
# until rm, so that a gc run elsewhere on the machine cannot take it first.)
$ shmlink create "$SEG.k" 1k
$ shmlink create "$SEG.kib" 2KiB
$ shmlink create "$SEG.kib2" 3kib
$ shmlink create "$SEG.m" 1M
$ shmlink create "$SEG.mib" 1MiB
$ shmlink create "$SEG.b" 4097
%hold sizes $SEG.k $SEG.kib $SEG.kib2 $SEG.m $SEG.mib $SEG.b
$ shmlink rm "$SEG.k" "$SEG.kib" "$SEG.kib2" "$SEG.m" "$SEG.mib" "$SEG.b"
%release sizes

# Modes and labels.
$ shmlink create "$SEG.mode" 4K --mode 999
$ shmlink create "$SEG.mode" 4K --mode 0
$ shmlink create "$SEG.mode" 4K --mode 01777
$ shmlink create "$SEG.mode" 4K --mode rw
$ shmlink create "$SEG.mode" 4K --mode ""
$ shmlink create "$SEG.label" 4K --label "$(printf 'L%.0s' $(seq 64))"
$ shmlink create "$SEG.mode" 4K --mode 644 --label "$(printf 'L%.0s' $(seq 63))"
%hold mode $SEG.mode
$ stat -c '%a %s' "/dev/shm/$SEG.mode"
$ shmlink info "$SEG.mode" | grep -e ^mode -e ^label
$ shmlink create "$SEG.mode" 4K
$ shmlink rm "$SEG.mode"
%release mode

# A segment that does not exist.
$ shmlink cat "$SEG.none"
$ shmlink dump "$SEG.none"
$ shmlink info "$SEG.none"
$ shmlink info "$SEG.none" --json
$ shmlink write "$SEG.none" < /dev/null
$ shmlink rm "$SEG.none"

# rm tries every address, reports each failure, and exits 1 if any failed.
$ shmlink create "$SEG.r1" 1K
$ shmlink create "$SEG.r2" 1K
%hold r $SEG.r1 $SEG.r2
$ shmlink rm "$SEG.none" "$SEG.r1" "bad/name" "$SEG.r2"
%release r
$ ls /dev/shm | grep -c "$SEG"

# Offsets and lengths.
$ shmlink create "$SEG.o" 100
%hold o $SEG.o
$ shmlink cat "$SEG.o" --offset 101
$ shmlink cat "$SEG.o" --offset 50 --length 51
$ shmlink cat "$SEG.o" --length 101
$ shmlink dump "$SEG.o" --offset 1G
$ shmlink cat "$SEG.o" --offset 100 | wc -c
$ shmlink cat "$SEG.o" --length 0 | wc -c
$ shmlink dump "$SEG.o" --length 0 | wc -c
$ shmlink cat "$SEG.o" --offset x
$ shmlink cat "$SEG.o" --length -1
$ shmlink cat "$SEG.o" --offset 18446744073709551616
$ printf abc | shmlink write "$SEG.o" --offset 101
$ printf abc | shmlink write "$SEG.o" --offset 98
$ printf abc | shmlink write "$SEG.o" --offset=97
$ printf abc | shmlink write "$SEG.o" --offset nope
$ shmlink dump "$SEG.o" --offset=96
$ shmlink rm "$SEG.o"
%release o
