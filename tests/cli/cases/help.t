# --help and --version print to stdout and exit 0; usage errors print a usage line to stderr
# and exit 2.
$ shmlink --version
$ shmlink --help
$ shmlink help
$ shmlink help cat
$ shmlink ls --help
$ shmlink info --help
$ shmlink create --help
$ shmlink rm --help
$ shmlink gc --help
$ shmlink cat --help
$ shmlink dump -h
$ shmlink write --help
$ shmlink mk --help
$ shmlink send --help
$ shmlink recv --help
$ shmlink serve --help
$ shmlink top --help
$ shmlink bridge --help
$ shmlink help serve
# Help wins over everything else on the line.
$ shmlink create --bogus --help
# Usage errors.
$ shmlink
$ shmlink frobnicate
$ shmlink --frobnicate
$ shmlink help frobnicate
$ shmlink help cat dump
$ shmlink --version extra
$ shmlink ls extra
$ shmlink ls --bogus
$ shmlink ls -l
$ shmlink ls --json=yes
$ shmlink gc --dry-run=no
