/*
 * win32.h - what the Windows files of src/os/ share (never included by core files).
 */
#ifndef SHML_OS_WIN32_H
#define SHML_OS_WIN32_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

/* The errno value closest to a Windows error code (GetLastError()); EIO when none is. */
SHML_INTERNAL int shml__win_errno(unsigned long err);

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

/* A FILETIME (100 ns units since 1601) as CLOCK_REALTIME nanoseconds; 0 stays 0. */
SHML_INTERNAL int64_t shml__win_filetime_ns(uint64_t ft);

#endif /* SHML_OS_WIN32_H */
