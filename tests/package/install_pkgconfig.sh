#!/usr/bin/env bash
# The README's install story, from a fresh copy of the sources: build as `scripts/demo` does
# (its --session form, which builds the same installable targets and is quicker), install with
# `cmake --install build --prefix P` into a non-system prefix, build examples/hello.c there
# through pkg-config alone and run it, and the installed tool, with no LD_LIBRARY_PATH: the
# .pc's RPATH and the tool's $ORIGIN one find the library. A /usr install's .pc has no RPATH
# (the dynamic linker searches /usr/lib itself), a /usr/local one's has.
# Usage: install_pkgconfig.sh SOURCE_DIR EXAMPLE.c CC
set -euo pipefail
src=$1 example=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH

# The copy leaves out git's data and every build tree (a directory holding a CMakeCache.txt),
# so the demo configures and builds from nothing, as on a fresh clone.
excludes=(--exclude=./.git)
while IFS= read -r cache; do
    excludes+=(--exclude="${cache%/CMakeCache.txt}")
done < <(cd "$src" && find . -name CMakeCache.txt -not -path './.git/*')
mkdir "$tmp/src"
tar -C "$src" "${excludes[@]}" -cf - . | tar -C "$tmp/src" -xf -

echo "== scripts/demo --session"
(cd "$tmp/src" && scripts/demo --session >"$tmp/demo.log" 2>&1) || {
    cat "$tmp/demo.log"
    exit 1
}

prefix=$tmp/prefix
echo "== cmake --install build --prefix $prefix"
(cd "$tmp/src" && cmake --install build --prefix "$prefix" >"$tmp/install.log") || {
    cat "$tmp/install.log"
    exit 1
}
for f in lib/libshmlink.so.0 lib/libshmlink.so lib/libshmlink.a include/shmlink.h \
    include/shmlink/segment.h bin/shmlink lib/pkgconfig/shmlink.pc; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs shmlink)
echo "== $cc hello.c $flags"
"$cc" "$example" $flags -o "$tmp/hello"
"$tmp/hello" "posix:/shml-pkgtest-$$"
"$prefix/bin/shmlink" --version

# The static library links on its own too (with the threads library it uses).
"$cc" "$example" $(pkg-config --cflags shmlink) "$prefix/lib/libshmlink.a" -pthread \
    -o "$tmp/hello-static"
"$tmp/hello-static" "posix:/shml-pkgtest-static-$$"

# Only where the dynamic linker does not look by itself does the .pc add an RPATH.
DESTDIR=$tmp/staged cmake --install "$tmp/src/build" --prefix /usr >/dev/null
DESTDIR=$tmp/staged cmake --install "$tmp/src/build" --prefix /usr/local >/dev/null
if grep -n rpath "$tmp/staged/usr/lib/pkgconfig/shmlink.pc"; then
    echo "a /usr install's shmlink.pc sets an RPATH"
    exit 1
fi
grep -q -- '-Wl,-rpath,${libdir}' "$tmp/staged/usr/local/lib/pkgconfig/shmlink.pc" || {
    echo "a /usr/local install's shmlink.pc has no RPATH:"
    cat "$tmp/staged/usr/local/lib/pkgconfig/shmlink.pc"
    exit 1
}
echo "installed, built with pkg-config and run without LD_LIBRARY_PATH"
