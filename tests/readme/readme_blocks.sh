#!/usr/bin/env bash
# Every fenced block of README.md runs here as a reader would run it, in the README's order,
# except the ```python ones (tests/python runs those):
#   ```c        compiled against this build and run; the commands its comments quote
#                (`shmlink cat hello`) succeed and print what it wrote; the segments it leaves
#                (for another process, as the README says) are valid, then removed.
#   ```console  each `$ ` command in order, with this build's tool on PATH, in a directory
#                holding the README's first C block as hello.c and `build` as this build tree,
#                and HOME a fresh directory (so `~/.local` is a scratch prefix). Each must exit
#                0 with nothing on stderr; the lines a command is shown printing must be its
#                output exactly. A `&` command runs in the background until the block ends
#                (then SIGTERM, and it must exit as documented: `recv` 143, 128 + SIGTERM, so
#                a script tells it was stopped; `serve` 0); the next command waits until it has
#                attached to its channel, as a reader's typing would, and a background `recv`
#                must print what the block sends to its channel. `shmlink top` prints a
#                table per refresh until interrupted: it is interrupted after its first table,
#                which must list every channel the block made. An address of another program's
#                (`cat --raw sysv:0x4d2`) is created as a raw segment before the block.
#   ```sh       the Quick start's scripts: they exist and accept the options shown. They are not
#                run here: package.demo and package.demo_session run scripts/demo, and
#                scripts/test runs this test (it would recurse).
#   ```text     the Layout tree: every path it names exists, and every top-level directory
#                of the sources is in it.
# A block of any other language fails: a new kind of block needs a way to run here.
#
# The README uses fixed names (cam0, ticks, hello), so the test runs in private IPC, mount and
# pid namespaces with its own /dev/shm: it cannot touch this machine's segments, runs beside
# any other test, and leaves no segment or process behind whatever happens. Without
# namespaces (unshare) it is skipped rather than run on the machine's real segments.
# Usage: readme_blocks.sh SOURCE_DIR BUILD_DIR CC
set -euo pipefail
src=$1 build=$2 cc=$3

if [ -z "${SHML_README_ISOLATED:-}" ]; then
    # --kill-child: if ctest kills unshare (timeout), the namespace's first process and so
    # every process in it die too.
    ns=(--ipc --mount --pid --fork --mount-proc --kill-child)
    [ "$(id -u)" = 0 ] || ns+=(--map-root-user)
    if ! unshare "${ns[@]}" true 2>/dev/null; then
        echo "skipped: unshare cannot make private IPC, mount and pid namespaces here"
        exit 77
    fi
    SHML_README_ISOLATED=1 exec unshare "${ns[@]}" bash "$0" "$@"
fi
mount -t tmpfs -o mode=1777 shml-readme /dev/shm
[ "$(findmnt -n -o SOURCE /dev/shm | tail -n 1)" = shml-readme ] || { echo "no private /dev/shm"; exit 1; }

shmlink=$build/cli/shmlink
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
work=$tmp/work home=$tmp/home
mkdir "$work" "$home" "$tmp/blocks"
ln -s "$build" "$work/build"
unset LD_LIBRARY_PATH PKG_CONFIG_PATH
export HOME=$home PATH=$home/.local/bin:$build/cli:$PATH
failures=0
fail() {
    echo "FAIL: README.md:${start[$b]}: $*"
    failures=$((failures + 1))
}

# Private namespaces: between blocks, whatever a block left goes.
clean_shm() {
    rm -f /dev/shm/*
    ipcrm --all=shm 2>/dev/null || true
}

# ---- the blocks: lang[i], start[i] (the line of the opening fence), text in blocks/i ----
lang=() start=()
n=0 inside=0 lineno=0
while IFS= read -r line; do
    lineno=$((lineno + 1))
    if [ $inside = 0 ] && [[ $line =~ ^\`\`\`(.*)$ ]]; then
        n=$((n + 1)) inside=1
        lang[n]=${BASH_REMATCH[1]} start[n]=$lineno
        : >"$tmp/blocks/$n"
    elif [ $inside = 1 ] && [ "$line" = '```' ]; then
        inside=0
    elif [ $inside = 1 ]; then
        printf '%s\n' "$line" >>"$tmp/blocks/$n"
    fi
done <"$src/README.md"
[ $inside = 0 ] || { echo "README.md: a block is not closed"; exit 1; }

# ---- ```c ----
c_blocks=0
run_c() {
    local f=$tmp/blocks/$b name out cmd text
    c_blocks=$((c_blocks + 1))
    # The README calls its first C block hello.c (the console block after it builds that).
    if [ $c_blocks = 1 ]; then name=hello; else name=block$b; fi
    cp "$f" "$work/$name.c"
    if ! "$cc" -std=c11 -Wall -Wextra -Werror -I"$src/include" "$work/$name.c" \
        -L"$build" -lshmlink -Wl,-rpath,"$build" -o "$tmp/$name"; then
        fail "C block does not compile"
        return
    fi
    if ! (cd "$work" && timeout 60 "$tmp/$name"); then
        fail "C block exits non-zero"
        return
    fi
    text=$(sed -n 's/.*strcpy([^"]*"\([^"]*\)").*/\1/p' "$f")
    while IFS= read -r cmd; do
        echo "  \$ $cmd"
        if ! out=$(cd "$work" && timeout 30 bash -c "$cmd" | tr -d '\0'); then
            fail "\`$cmd\` (the C block's comment) fails"
        elif [ -n "$text" ] && [[ $out != *"$text"* ]]; then
            fail "\`$cmd\` prints '$out', not the '$text' the block wrote"
        fi
    done < <(grep -o '`shmlink [^`]*`' "$f" | tr -d '`')
    for seg in /dev/shm/*; do
        [ -e "$seg" ] || continue
        "$shmlink" info "${seg##*/}" >/dev/null || fail "C block leaves a bad segment ${seg##*/}"
    done
    clean_shm
}

# ---- ```console ----
# The address a shmlink command works on: the first argument after the verb that is not an
# option.
address_of() {
    local w verb=
    set -- $1
    while [ $# -gt 0 ] && [ "$1" != shmlink ]; do shift; done
    [ $# -gt 0 ] && shift
    for w in "$@"; do
        [[ $w == -* ]] && continue
        [ -z "$verb" ] && { verb=$w; continue; }
        echo "$w"
        return
    done
}

# wait_attached PID ADDR: until the background command PID holds an endpoint of the channel
# ADDR (a subscriber subscribed, a server serving), 10 s at most.
wait_attached() {
    local i
    for i in $(seq 100); do
        "$shmlink" info "$2" --json 2>/dev/null | sed -n '/"endpoint_table"/,$p' |
            grep -q "\"pid\": $1," && return 0
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    fail "background command (pid $1) never attached to $2"
}

# wait_printed FILE TEXT: until FILE holds TEXT (10 s at most).
wait_printed() {
    local i
    for i in $(seq 100); do
        [[ $(cat "$1") == *"$2"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# run_fg CMD: CMD in the work directory, 60 s at most; its output in $tmp/out and $tmp/err.
run_fg() {
    (cd "$work" && exec timeout 60 bash -c "$1") >"$tmp/out" 2>"$tmp/err"
}

# run_top CMD: until its first table, then SIGINT (top ends cleanly on it).
run_top() {
    local p i
    (cd "$work" && exec bash -c "exec $1") </dev/null >"$tmp/out" 2>"$tmp/err" &
    p=$!
    for i in $(seq 100); do
        grep -q '^$' "$tmp/out" && break
        sleep 0.1
    done
    kill -INT "$p" 2>/dev/null || true
    timeout 10 tail --pid="$p" -f /dev/null || kill -KILL "$p"
    wait "$p"
}

run_console() {
    local f=$tmp/blocks/$b cmds=() outs=() i=-1 line cmd bare p rc addr a
    local bg=() bg_addr=() bg_recv=() made=() sent=()
    while IFS= read -r line; do
        if [[ $line == '$ '* ]]; then
            i=$((i + 1))
            cmds[i]=${line#'$ '} outs[i]=
        elif [ $i -ge 0 ]; then
            outs[i]+="$line"$'\n'
        fi
    done <"$f"
    # Another program's segments the block reads: made here, as raw segments.
    for a in $(grep -o 'sysv:0x[0-9a-fA-F]*' "$f" | sort -u); do
        grep -q "create $a" "$f" || "$shmlink" create "$a" 4K --raw >/dev/null
    done
    for i in "${!cmds[@]}"; do
        cmd=${cmds[i]}
        echo "  \$ $cmd"
        bare=$(sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//' <<<"$cmd")
        case $bare in
        export\ * | cd\ *)
            eval "$bare"
            continue
            ;;
        *'&')
            (cd "$work" && exec bash -c "exec ${bare%&}") >"$tmp/bg.${#bg[@]}" 2>&1 &
            p=$!
            addr=$(address_of "$bare")
            bg+=("$p") bg_addr+=("$addr") bg_recv+=("")
            [[ $bare != 'shmlink recv '* ]] || bg_recv[-1]=1
            [ -n "$addr" ] && wait_attached "$p" "$addr"
            continue
            ;;
        'shmlink top'*)
            rc=0
            run_top "$bare" || rc=$?
            for a in "${made[@]}"; do
                grep -q "posix:/$a " "$tmp/out" || fail "\`$cmd\` does not list $a"
            done
            ;;
        *)
            [[ $bare =~ ^shmlink\ mk\ [a-z]+\ ([^ ]+) ]] && made+=("${BASH_REMATCH[1]}")
            # What is sent to a channel a background `recv` follows, that recv prints.
            if [[ $bare == 'shmlink send '* ]]; then
                eval "set -- $bare"
                sent+=("$3" "$(shift 3; printf '%s\n' "$@")")
            fi
            rc=0
            run_fg "$bare" || rc=$?
            ;;
        esac
        [ $rc = 0 ] || fail "\`$cmd\` exits $rc"
        [ -s "$tmp/err" ] && fail "\`$cmd\` prints on stderr: $(cat "$tmp/err")"
        if [ -n "${outs[i]}" ] && [ "$(cat "$tmp/out")" != "${outs[i]%$'\n'}" ]; then
            fail "\`$cmd\` prints:"$'\n'"$(cat "$tmp/out")"$'\n'"the README shows:"$'\n'"${outs[i]}"
        fi
    done
    for i in "${!bg[@]}"; do
        for ((a = 0; a < ${#sent[@]}; a += 2)); do
            [ "${sent[a]}" = "${bg_addr[i]}" ] && [ -n "${bg_recv[i]}" ] || continue
            wait_printed "$tmp/bg.$i" "${sent[a + 1]}" ||
                fail "a background recv of ${bg_addr[i]} printed '$(cat "$tmp/bg.$i")'," \
                    "not what was sent: '${sent[a + 1]}'"
        done
        kill -TERM "${bg[i]}" 2>/dev/null || true
        timeout 10 tail --pid="${bg[i]}" -f /dev/null || kill -KILL "${bg[i]}"
        rc=0
        wait "${bg[i]}" || rc=$?
        want=0
        [ -n "${bg_recv[i]}" ] && want=143 # docs/CLI.md: recv stopped by SIGTERM
        [ $rc = $want ] ||
            fail "a background command exits $rc on SIGTERM, not $want: $(cat "$tmp/bg.$i")"
    done
    clean_shm
}

# ---- ```sh ----
run_sh() {
    local line cmd opt
    while IFS= read -r line; do
        line=$(sed -E 's/[[:space:]]*#.*$//' <<<"$line")
        [ -n "$line" ] || continue
        set -- $line
        cmd=$1
        shift
        if [[ $cmd != scripts/* ]] || [ ! -x "$src/$cmd" ]; then
            fail "\`$line\`: not an executable script of the sources (teach this test to run it)"
            continue
        fi
        for opt in "$@"; do
            grep -q -- "Usage:.*$opt\|^#  *$cmd.*$opt" "$src/$cmd" ||
                fail "\`$line\`: $cmd's usage has no $opt"
        done
        echo "  $line: present"
    done <"$tmp/blocks/$b"
}

# ---- ```text: the Layout ----
run_text() {
    local line path rest word dir listed=() d
    path=
    while IFS= read -r line; do
        # "dir/   what it holds", or a continuation line of the one above.
        if [[ $line =~ ^([^[:space:]]+)[[:space:]]+(.*)$ ]]; then
            path=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
            listed+=("${path%%/*}")
            [ -e "$src/$path" ] || fail "Layout names $path, which does not exist"
        else
            rest=$line
        fi
        [ -n "$path" ] || continue
        dir=.
        [ -d "$src/$path" ] && dir=$path
        # File names in the description, in the line's directory or from the top; "x.c/.py"
        # names x.c and x.py.
        rest=$(sed -E 's#([A-Za-z0-9_]+)\.([a-z]+)/\.([a-z]+)#\1.\2 \1.\3#g' <<<"$rest")
        for word in $(grep -oE '[A-Za-z0-9_./*-]+\.(c|h|py|md|sh)\b' <<<"$rest"); do
            word=${word#/}
            compgen -G "$src/$dir/$word" >/dev/null || compgen -G "$src/$word" >/dev/null ||
                fail "Layout's $path line names $word, which does not exist"
        done
    done <"$tmp/blocks/$b"
    for d in "$src"/*/; do
        d=${d%/}
        d=${d##*/}
        [ -e "$src/$d/CMakeCache.txt" ] && continue # a build tree
        printf '%s\n' "${listed[@]}" | grep -qx "$d" || fail "Layout does not list $d/"
    done
}

clean_shm
for b in $(seq "$n"); do
    echo "== README.md:${start[$b]}: \`\`\`${lang[$b]}"
    case ${lang[$b]} in
    python) echo "  (tests/python runs it)" ;;
    c) run_c ;;
    console) run_console ;;
    sh) run_sh ;;
    text) run_text ;;
    *) fail "a \`\`\`${lang[$b]} block: this test does not know how to run it" ;;
    esac
done
echo "$n blocks, $failures failures"
[ $failures = 0 ]
