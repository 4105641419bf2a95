/*
 * common.h - what the fuzz targets share. The segments they make: POSIX objects /shml-fuzz-TAG.PID.N, which
 * are files in /dev/shm (tmpfs: a close costs no disk flush, as a file: segment on a disk
 * would, and the targets make and close thousands). A crash (what fuzzing looks for) leaves
 * its objects behind; each target removes those of processes that no longer exist when it
 * starts.
 */
#ifndef SHML_FUZZ_COMMON_H
#define SHML_FUZZ_COMMON_H

#include <stddef.h>

/* Write the path of this process's object number n of `tag` in /dev/shm, and its "posix:"
   address, having removed the stale objects of `tag` on the first call. */
void fuzz_tmpfile(const char *tag, int n, char *path, size_t path_cap, char *addr,
                  size_t addr_cap);

/* A shml_check_fn for shml_channel_check(): every finding must be text. */
void fuzz_on_finding(void *ctx, int repaired, const char *finding);

/* Stop on a failure of the environment, not of the input (a segment the target could not
   create): say so loudly. */
void fuzz_env_fail(const char *what, const char *addr);

#endif
