# Sourced by scripts/demo and scripts/test: make sure the Debian packages they need are there.
# As root, missing packages are installed; otherwise the one apt-get line is printed.
# Usage: shml_deps PACKAGE...
shml_deps() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "shmlink needs these Debian packages; install them with:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages every build needs; bc and xxd because the README's shell examples use them and
# docs.readme runs those.
SHML_BASE_PKGS=(cmake make gcc libc6-dev python3 pkgconf binutils valgrind tmux
    g++ python3-dev python3-numpy python3-pytest python3-setuptools python3-venv bc xxd)
# `shmlink bridge` (the NATS C client, and OpenSSL's libcrypto for NKeys) and its tests (a
# NATS server; openssl makes the tests' NKeys; iproute2's `ip netns` simulates two hosts).
SHML_BRIDGE_PKGS=(libnats-dev libssl-dev nats-server openssl iproute2)
# Sanitizer and fuzzing builds.
SHML_CLANG_PKGS=(clang-14 libclang-rt-14-dev)
# The Windows build: the mingw-w64 cross compiler, and Wine to run what it builds.
SHML_WIN_PKGS=(g++-mingw-w64-x86-64 wine wine64)
