/*
 * shmlink.h - shared memory between processes in C, C++ and Python: fast, crash-safe, visible.
 *
 * This umbrella header includes the whole public API:
 *   shmlink/common.h    return conventions, error codes, shml_strerror(), version
 *   shmlink/segment.h   named segments over POSIX, System V, file and memfd backends
 *   shmlink/sync.h      process-shared mutex (robust), event and semaphore
 *   shmlink/channel.h   message channels (the queue), copy and zero-copy
 *   shmlink/names.h     the words for kinds, roles, policies, backends, states
 *
 * Link with -lshmlink (pkg-config shmlink). Define SHML_STATIC when linking the static library
 * on platforms where that matters (Windows).
 */
#ifndef SHMLINK_H
#define SHMLINK_H

#include "shmlink/common.h"
#include "shmlink/segment.h"
#include "shmlink/sync.h"
#include "shmlink/channel.h"
#include "shmlink/names.h"

#endif /* SHMLINK_H */
