/*
 * shmlink/common.h - conventions shared by every part of the shmlink API.
 *
 * Return values: functions returning `int` give >= 0 on success and a negative errno value
 * (-ENOENT, -EINVAL, ...) on failure; functions returning `ssize_t` give a size or a negative
 * errno value. The library never prints, never exits and never sets errno as its way of
 * reporting an error.
 *
 * Timeouts are int64_t nanoseconds on the monotonic clock: SHML_FOREVER waits without bound,
 * 0 never waits.
 */
#ifndef SHMLINK_COMMON_H
#define SHMLINK_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#if defined(_MSC_VER)
/* MSVC's C library has no ssize_t: the signed size its own headers name SSIZE_T. */
#include <basetsd.h>
#if !defined(_SSIZE_T_DEFINED)
typedef SSIZE_T ssize_t;
#define _SSIZE_T_DEFINED
#endif
#else
#include <sys/types.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHML_STATIC)
#define SHML_API
#elif defined(_WIN32)
#if defined(SHML_BUILDING)
#define SHML_API __declspec(dllexport)
#else
#define SHML_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SHML_API __attribute__((visibility("default")))
#else
#define SHML_API
#endif

/* Alignment of the fixed-size shared structs, spelled so that C11 and C++11 both accept the
   headers. */
#ifdef __cplusplus
#define SHML_ALIGNAS(n) alignas(n)
#else
#define SHML_ALIGNAS(n) _Alignas(n)
#endif

#define SHML_VERSION_MAJOR 0
#define SHML_VERSION_MINOR 1
#define SHML_VERSION_PATCH 0
#define SHML_VERSION_STRING "0.1.0"

/* Wait without bound. */
#define SHML_FOREVER ((int64_t)-1)

/*
 * Structs that can grow. New fields are added without breaking programs built against an
 * older header, in the manner of Linux's clone3() and openat2():
 *
 * Options the caller passes in (struct shml_segment_opts, struct shml_channel_opts) start
 * with `uint32_t size`, the struct's size as the caller's header had it, which the init macro
 * fills (SHML_SEGMENT_OPTS_INIT, SHML_CHANNEL_OPTS_INIT): always start from the macro, then
 * set fields, never from `= {0}` or memset. They end with `reserved` space, which stays zero.
 * The library reads only the fields that lie within `size`; those a newer header added and an
 * older caller's `size` does not reach take their defaults. A `size` smaller than the first
 * version's (0, from `= {0}`), larger than SHML_OPTS_SIZE_MAX, or larger than the library
 * knows with a non-zero byte past what it knows (in `reserved` or beyond: a field this library
 * is too old for) is refused with -EINVAL, and shml_last_error() names the macro. A NULL
 * options pointer means the defaults, which are what the init macro gives.
 *
 * Structs the library fills (stats, info and state structs) end with `reserved` space: room
 * for fields to come; zero today. The library zeroes it, so a field added there later reads
 * as zero to a program that looks before its library has it; their size does not change.
 */
#define SHML_OPTS_SIZE_MAX 4096u

/*
 * shmlink-specific meanings given to errno values. They are ordinary errno numbers, so
 * `-err` always fits the "-errno" convention, and shml_strerror() describes them in shmlink's
 * terms rather than the C library's.
 */
#ifdef EMEDIUMTYPE
#define SHML_ENOTSHML  EMEDIUMTYPE     /* not a shmlink segment (no header): open it raw */
#else
/* A C library without EMEDIUMTYPE (Windows): a number of shmlink's own, past the errno range. */
#define SHML_ENOTSHML  4101
#endif
#define SHML_EVERSION  EPROTONOSUPPORT /* header layout version this library does not know */
#define SHML_ECORRUPT  EBADMSG         /* header corrupt, truncated, or its creator died mid-init */
#define SHML_EWRONGKIND EPROTOTYPE     /* segment is of another kind than the caller asked for */
#define SHML_ETRUNCATED ENXIO          /* object shrank under us while reading or writing */

/*
 * Two more errno values shmlink returns (-ESTALE: a message overwritten while it was read;
 * -EUSERS: no free endpoint slot), defined here with numbers of shmlink's own where the C
 * library has no such value (Windows), so that callers compare against them everywhere.
 */
#ifndef ESTALE
#define ESTALE 4102
#endif
#ifndef EUSERS
#define EUSERS 4103
#endif

/*
 * Describe an error code returned by any shmlink function.
 *
 * Accepts either sign (`-ENOENT` or `ENOENT`). Returns a static string, never NULL; thread-safe.
 */
SHML_API const char *shml_strerror(int err);

/*
 * The detail of the most recent failure in the calling thread, or "" if none was recorded.
 *
 * Failing calls record one sentence here that says what was wrong and, where useful, what to
 * do ("name contains '/'", "/dev/shm is full: 64M free, 100M asked; a container's shm size
 * can be raised with --shm-size"). Returns a thread-local buffer that stays valid until the
 * thread's next shmlink call; the caller must not free it. Successful calls do not clear it:
 * read it only right after a call reported an error.
 */
SHML_API const char *shml_last_error(void);

/* The library's version string, e.g. "0.1.0". */
SHML_API const char *shml_version(void);

/* Free memory that a shmlink function returned to the caller (NULL is fine). */
SHML_API void shml_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_COMMON_H */
