#!/usr/bin/env bash
# Install the build into a fresh prefix, build the README's example against it through
# pkg-config alone, and run it.
# Usage: install_pkgconfig.sh BUILD_DIR EXAMPLE.c CC
set -euo pipefail
build=$1 example=$2 cc=$3
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(dirname "$(find "$prefix" -name shmlink.pc | head -1)")
flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs shmlink)
libdir=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir shmlink)
"$cc" "$example" $flags -Wl,-rpath,"$libdir" -o "$prefix/hello"
"$prefix/hello" "posix:/shml-pkgtest-$$"
"$prefix/bin/shmlink" --version
