# Typed channels: send reads each message as values, recv prints them; a size that is not one
# message of the type is refused (by the library), so no reader gets bytes it cannot view.
$ shmlink mk queue "$SEG.f" --type '<f' --shape 2 --capacity 1K
%hold keep $SEG.f
$ shmlink info "$SEG.f" | grep -e '^type' -e '^channel'
$ shmlink send "$SEG.f" hello
$ shmlink send "$SEG.f" "1.5 2.5" "0.1, -3" "1e40 2"
$ shmlink send "$SEG.f" "1"
$ shmlink send "$SEG.f" "1 2 3"
$ printf '7 8\ninf -0\n' | shmlink send "$SEG.f"
$ shmlink recv "$SEG.f"
# --binary moves the bytes: one message of the type (8) passes, 5 bytes are refused.
$ printf '\010\000\000\000\000\000\300\077\000\000\040\100' | shmlink send "$SEG.f" --binary
$ printf '\005\000\000\000hello' | shmlink send "$SEG.f" --binary
$ shmlink recv "$SEG.f" --binary | od -An -tx1
$ shmlink info "$SEG.f" | grep '^messages'

# Integers in big-endian order, two dimensions: values in C order, range checked.
$ shmlink mk queue "$SEG.i" --type '>h' --shape 2,3 --capacity 1K
%hold keepi $SEG.i
$ shmlink send "$SEG.i" "1 2 3 4 5 -32768" "0x7fff 0 0 0 0 -1"
$ shmlink send "$SEG.i" "32768 0 0 0 0 0"
$ shmlink send "$SEG.i" "1.5 0 0 0 0 0"
$ shmlink recv "$SEG.i" -n 1 --binary | od -An -tx1
$ shmlink recv "$SEG.i"

# Unsigned 64-bit and bool, one element a message (no shape).
$ shmlink mk latest "$SEG.q" --type '<Q'
$ shmlink mk queue "$SEG.b" --type '?' --capacity 1K
%hold keepqb $SEG.q $SEG.b
$ shmlink send "$SEG.q" 18446744073709551615 && shmlink recv "$SEG.q"
$ shmlink send "$SEG.q" -1
$ shmlink send "$SEG.b" true 0 false 1 && shmlink recv "$SEG.b"
$ shmlink send "$SEG.b" yes

# A type the tool does not decode (a structure, as numpy makes): bytes both ways, and recv
# says so on stderr.
$ "$HOLDER" --make-typed "$SEG.s" 'T{<i:a:<h:b:}' 6
%hold keeps $SEG.s
$ shmlink send "$SEG.s" abcdef abc
$ shmlink recv "$SEG.s"

# mk --type takes the simple formats only; --shape needs --type.
$ shmlink mk queue "$SEG.bad" --type 'T{<i:a:}'
$ shmlink mk queue "$SEG.bad" --type '<e'
$ shmlink mk queue "$SEG.bad" --type '<f' --shape 0
$ shmlink mk queue "$SEG.bad" --type '<f' --shape 2,x
$ shmlink mk queue "$SEG.bad" --shape 2
$ ls /dev/shm | grep -c "$SEG.bad"

$ shmlink rm "$SEG.f" "$SEG.i" "$SEG.q" "$SEG.b" "$SEG.s"
%release keep
%release keepi
%release keepqb
%release keeps
