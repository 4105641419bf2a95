/*
 * error.c - error codes and their text, the per-thread detail of the last failure.
 */
#include "internal.h"
#include "os/os.h"
#include "shmlink/segment.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One sentence per thread: enough for a reason and a hint, short enough to print in one line. */
static _Thread_local char last_error[512];

SHML_PRINTF(1, 0) static void record(const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
}

int shml__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
    return -err;
}

int shml__fail_keep(int err, const char *fmt, ...)
{
    if (last_error[0] != '\0')
        return -err;
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
    return -err;
}

void shml__clear_error(void)
{
    last_error[0] = '\0';
}

const char *shml_last_error(void)
{
    return last_error;
}

const char *shml_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error"; /* -INT_MIN does not exist */
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case SHML_ENOTSHML:
        return "not a shmlink segment";
    case SHML_EVERSION:
        return "unsupported shmlink layout version";
    case SHML_ECORRUPT:
        return "corrupt or truncated shmlink segment";
    case SHML_EWRONGKIND:
        return "segment is of another kind";
    case SHML_ETRUNCATED:
        return "object was truncated by another process";
    case ENOENT:
        return "no such segment";
    case EEXIST:
        return "segment already exists";
    case ERANGE:
        return "offset or length past the end of the segment";
    case EINVAL:
        return "invalid argument";
    case EACCES:
        return "permission denied";
    case EPERM:
        return "operation not permitted";
    case ENOSPC:
        return "not enough shared memory space";
    case EFBIG:
        return "larger than the file size limit";
    case EOVERFLOW:
        return "size too large";
    case ETIMEDOUT:
        return "timed out";
    case ENOMEM:
        return "out of memory";
    case ENOTSUP:
        return "not supported";
    case EBADF:
        return "bad file descriptor or read-only handle";
    case EAGAIN:
        return "not ready yet";
    case EMSGSIZE:
        return "message too long";
    case EBUSY:
        return "busy";
    case EUSERS:
        return "too many endpoints";
    case ECONNRESET:
        return "the peer died or went away";
    case ENOTCONN:
        return "no peer is attached";
    case ECHILD:
        return "handle inherited through fork()";
    case EPROTO:
        return "call out of order";
    case ESTALE:
        return "message overwritten while read";
    case EINTR:
        return "interrupted";
    case ECANCELED:
        return "cancelled";
    case EOWNERDEAD:
        return "previous owner died";
    default:
        return shml__os_strerror(err);
    }
}

const char *shml_version(void)
{
    return SHML_VERSION_STRING;
}

void shml_free(void *p)
{
    free(p);
}
