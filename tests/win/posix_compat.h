/*
 * posix_compat.h - what the portable tests of tests/sync and tests/channel take from POSIX
 * and mingw-w64 does not have. tests/win/CMakeLists.txt force-includes it (-include) into
 * those sources in the Windows build only; the tests themselves stay as they are.
 */
#ifndef SHMT_POSIX_COMPAT_H
#define SHMT_POSIX_COMPAT_H

#include <stdlib.h>

/* ESTALE and EUSERS: the numbers shmlink gives them where the C library has none. */
#include "internal.h"

/*
 * rand_r(): POSIX's rand() with the caller's state, computed as glibc does, so that a seed
 * a test logs (SHMT_SEED) gives the same choices on Linux and on Windows. (mingw-w64's
 * stdlib.h makes rand_r() the shared rand() when _POSIX_C_SOURCE is set: that one ignores the
 * state, and seeds would repeat nothing.)
 */
#undef rand_r
static inline int rand_r(unsigned *seed)
{
    unsigned next = *seed;
    unsigned result;
    next = next * 1103515245u + 12345u;
    result = (next / 65536u) % 2048u;
    next = next * 1103515245u + 12345u;
    result = (result << 10) ^ ((next / 65536u) % 1024u);
    next = next * 1103515245u + 12345u;
    result = (result << 10) ^ ((next / 65536u) % 1024u);
    *seed = next;
    return (int)result;
}

#endif /* SHMT_POSIX_COMPAT_H */
