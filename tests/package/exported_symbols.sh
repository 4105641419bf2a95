#!/usr/bin/env bash
# The shared library exports exactly the functions the public headers declare: no internal
# shml__ symbol leaks (hidden visibility works) and no public one is missing.
# Usage: exported_symbols.sh LIBSHMLINK.so INCLUDE_DIR
set -euo pipefail
lib=$1 inc=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u)
declared=$(grep -rhoE 'SHML_API [^(]*\b(shml_[a-z0-9_]+)\(' "$inc" |
    grep -oE 'shml_[a-z0-9_]+\($' | tr -d '(' | sort -u)
status=0
leaked=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -n "$leaked" ]; then
    echo "exported but not declared in the public headers:"; echo "$leaked" | sed 's/^/  /'
    status=1
fi
if [ -n "$missing" ]; then
    echo "declared in the public headers but not exported:"; echo "$missing" | sed 's/^/  /'
    status=1
fi
echo "$(echo "$declared" | wc -l) public functions, $(echo "$exported" | wc -l) exported"
exit $status
