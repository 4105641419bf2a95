/*
 * atomic.h - the atomics vocabulary of shmlink.
 *
 * Plain C11 <stdatomic.h>, always through the _explicit calls with the memory order spelled
 * out at the call site, where a comment says what it orders and what it pairs with. Types that
 * live in shared memory must be lock-free (address-free), or two processes mapping the same
 * bytes would not synchronise: that is checked here once for the whole library.
 */
#ifndef SHML_ATOMIC_H
#define SHML_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint32_t shml_atomic_u32;
typedef _Atomic uint64_t shml_atomic_u64;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free for shared memory");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free for shared memory");
_Static_assert(sizeof(shml_atomic_u32) == 4, "atomic u32 has the size of u32");
_Static_assert(sizeof(shml_atomic_u64) == 8, "atomic u64 has the size of u64");

#endif /* SHML_ATOMIC_H */
