/*
 * internal.h - helpers shared by every core file of the library (not installed).
 */
#ifndef SHML_INTERNAL_H
#define SHML_INTERNAL_H

#include "shmlink/common.h"

#include <stdarg.h>
#include <stdio.h> /* on mingw, says which printf dialect (SHML_PRINTF) */

/*
 * Non-static internal functions use the shml__ prefix and stay hidden from the shared library.
 * An ELF library needs the attribute; a DLL exports only what SHML_API marks dllexport.
 */
#if defined(__ELF__) || defined(__APPLE__)
#define SHML_INTERNAL __attribute__((visibility("hidden")))
#else
#define SHML_INTERNAL
#endif

/*
 * printf-like functions. Where the C library's headers choose their own printf dialect (mingw's
 * __USE_MINGW_ANSI_STDIO gives C99's %zu and %lld), the check follows that dialect.
 */
#ifdef __MINGW_PRINTF_FORMAT
#define SHML_PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#else
#define SHML_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

/*
 * Record why the current call fails (see shml_last_error()) and return -err, so error paths
 * read `return shml__fail(EINVAL, "name contains '/'");`. `err` is a positive errno value.
 */
SHML_INTERNAL int shml__fail(int err, const char *fmt, ...) SHML_PRINTF(2, 3);
/* Same, keeping the detail already recorded when there is one (for errors passed up). */
SHML_INTERNAL int shml__fail_keep(int err, const char *fmt, ...) SHML_PRINTF(2, 3);
/* Forget the recorded detail (at the start of a public call that records its own). */
SHML_INTERNAL void shml__clear_error(void);

/*
 * Read the caller's options struct `in` into `out` (`known` bytes: this library's sizeof) by
 * the rule for structs that can grow (shmlink/common.h). `in` NULL gives `defaults`. The
 * library reads its first `used` bytes (the fields before `reserved`); `first` is the first
 * version's size, the smallest accepted. Fields past the caller's size keep their defaults.
 * Returns 0, or -EINVAL with a message naming struct `name` and its init `macro`.
 */
SHML_INTERNAL int shml__opts_copy(void *out, const void *defaults, size_t known, size_t used,
                                  size_t first, const void *in, const char *name,
                                  const char *macro);

#define SHML_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* SHML_INTERNAL_H */
