/*
 * win32.h - what the Windows files of src/os/ share (never included by core files).
 */
#ifndef SHML_OS_WIN32_H
#define SHML_OS_WIN32_H

#include "atomic.h"
#include "internal.h"

#include <windows.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The errno value closest to a Windows error code (GetLastError()); EIO when none is. */
SHML_INTERNAL int shml__win_errno(unsigned long err);

/* ---- the registry of mappings (win32_region.c) ---- */

/*
 * A registered mapping (os.h calls it a guard): its range, the hash of the segment's canonical
 * address, its namespace, and this process's cache of the kernel objects named after its words.
 * Reached through the calls below, which count references: a region removed while a thread
 * still uses one of its handles lives on, handles open, until that thread puts it back.
 */
struct shml__os_guard;

/* Longest name of a word's kernel object, with its NUL ("Global\shmlw-<16>-<16>"). */
#define SHML__WIN_NAME_MAX 48

/*
 * The registered region that holds the 4-byte word at `addr`, with a reference the caller
 * gives back with shml__win_region_put(); NULL if the word lies in no registered mapping (the
 * process's own memory). *off receives the word's offset in the mapping and *cached the handle
 * this process keeps for that offset, or NULL if it has none yet. No kernel call: a shared
 * SRWLOCK and a hash lookup. Thread-safe.
 */
SHML_INTERNAL struct shml__os_guard *shml__win_region_get(const void *addr, uint64_t *off,
                                                          HANDLE *cached);
/* Give back a reference from shml__win_region_get(); NULL is fine. */
SHML_INTERNAL void shml__win_region_put(struct shml__os_guard *r);
/*
 * Keep `h`, a handle to the kernel object of offset `off` of r, for the life of r in this
 * process; r owns it from then on and closes it when the region goes. Returns the handle to
 * use: h, or the one another thread cached first (h is then closed). NULL if there is no memory
 * for the entry: h is closed and the caller fails with -ENOMEM.
 */
SHML_INTERNAL HANDLE shml__win_region_keep(struct shml__os_guard *r, uint64_t off, HANDLE h);
/*
 * The name of the kernel object of offset `off` of r: "<ns>\shmlw-<hash>-<off>", ns the
 * segment's namespace (Global for a "win:Global\..." segment, Local for all others), hash the
 * 16 hex digits of FNV-1a 64 of its canonical address, off in hex. The prefix keeps it apart
 * from the names of mappings, which a semaphore cannot share.
 */
SHML_INTERNAL void shml__win_region_name(const struct shml__os_guard *r, uint64_t off,
                                         char name[SHML__WIN_NAME_MAX]);
/* Has r been removed (its mapping is being unmapped)? Its words must not be read any more. */
SHML_INTERNAL bool shml__win_region_removed(const struct shml__os_guard *r);

/* ---- waits (win32_futex.c) ---- */

/*
 * shml__os_futex_wait() that also ends when `extra` (a waitable handle of this process, or
 * NULL) is signalled: returns 1 then, else as shml__os_futex_wait() (0, -EAGAIN, -ETIMEDOUT),
 * or -errno when no kernel object can be had for the word (-ENOMEM, -EACCES).
 */
SHML_INTERNAL int shml__win_futex_wait_handle(shml_atomic_u32 *word, uint32_t expected,
                                              HANDLE extra, int64_t deadline_ns);

#endif /* SHML_OS_WIN32_H */
