/*
 * tmpfile.h - the segments the fuzz targets make: POSIX objects /shml-fuzz-TAG.PID.N, which
 * are files in /dev/shm (tmpfs: a close costs no disk flush, as a file: segment on a disk
 * would, and the targets make and close thousands). A crash (what fuzzing looks for) leaves
 * its objects behind; each target removes those of processes that no longer exist when it
 * starts.
 */
#ifndef SHML_FUZZ_TMPFILE_H
#define SHML_FUZZ_TMPFILE_H

#include <stddef.h>

/* Write the path of this process's object number n of `tag` in /dev/shm, and its "posix:"
   address, having removed the stale objects of `tag` on the first call. */
void fuzz_tmpfile(const char *tag, int n, char *path, size_t path_cap, char *addr,
                  size_t addr_cap);

#endif
