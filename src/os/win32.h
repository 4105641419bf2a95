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
#include <wchar.h>

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

/* ---- shared by the segment backends (win32_segment.c defines them) ---- */

/*
 * UTF-8 `s` as UTF-16 into out[cap]. Returns 0, -EINVAL (not UTF-8) or -ENAMETOOLONG (does not
 * fit). Thread-safe; touches nothing else.
 */
SHML_INTERNAL int shml__win_wide(const char *s, wchar_t *out, size_t cap);

/*
 * The access rights one permission class gets from the mode bits: `read` for r, `write` (a
 * superset of read: a Windows view that writes also reads) for w.
 */
struct shml__win_rights {
    uint32_t read;
    uint32_t write;
    uint32_t read_any;  /* any of these bits in an ACE reads back as r */
    uint32_t write_any; /* any of these bits in an ACE reads back as rw */
};

/*
 * A SECURITY_ATTRIBUTES (with its descriptor and DACL in the same block) for an object made
 * with permission bits `mode`:
 *   - the owner is the calling user's SID, and the DACL is protected (nothing is inherited);
 *   - owner rw: GENERIC_ALL; owner r: rights->read; owner none: no entry (an owner keeps
 *     READ_CONTROL and WRITE_DAC anyway);
 *   - group (0070) gives Authenticated Users (S-1-5-11), and other (0007) gives Everyone
 *     (S-1-1-0), rights->read for r and rights->write for w;
 *   - x and 07000 bits have no Windows meaning and are ignored.
 * So the default 0600 is one entry, the user's, and never a NULL DACL. Returns 0 with *out
 * (free() it after the create call), -ENOMEM, or -errno when the user's SID cannot be read.
 */
SHML_INTERNAL int shml__win_security(uint32_t mode, const struct shml__win_rights *rights,
                                     void **out);

/*
 * Read permission bits and an owner back from the security descriptor of `handle` (a
 * SE_OBJECT_TYPE `type`, SE_KERNEL_OBJECT or SE_FILE_OBJECT), the inverse of
 * shml__win_security(): entries for the owner, Authenticated Users and Everyone give the
 * owner, group and other bits; a NULL DACL gives 0666. `uid` is shml__os_euid() when the
 * owner is the calling user, else the owner SID's last sub-authority (UINT32_MAX when that
 * would equal the caller's, or the owner cannot be read). Without READ_CONTROL on the handle,
 * *mode = 0 and *uid = UINT32_MAX. Never fails.
 */
SHML_INTERNAL void shml__win_mode_of(void *handle, int type, const struct shml__win_rights *rights,
                                     uint32_t *mode, uint32_t *uid);

/* Touch every page of the view [p, p + len) by reading it (SHML_PREFAULT). */
SHML_INTERNAL void shml__win_prefault(const void *p, size_t len);
/* The unmap operation of both Windows backends: UnmapViewOfFile (NULL is fine). */
struct shml__obj;
SHML_INTERNAL void shml__win_unmap(const struct shml__obj *o, void *base, size_t len);

/* A FILETIME (100 ns units since 1601) as CLOCK_REALTIME nanoseconds; 0 stays 0. */
SHML_INTERNAL int64_t shml__win_filetime_ns(uint64_t ft);

#endif /* SHML_OS_WIN32_H */
