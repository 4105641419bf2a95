/*
 * table_linux.c - the segment backends of the Linux build.
 */
#include "segment/backend.h"

const struct shml__backend *shml__backend_get(int backend)
{
    switch (backend) {
    case SHML_BACKEND_POSIX:
        return &shml__backend_posix;
    case SHML_BACKEND_SYSV:
        return &shml__backend_sysv;
    case SHML_BACKEND_FILE:
        return &shml__backend_file;
    case SHML_BACKEND_MEMFD:
        return &shml__backend_memfd;
    default:
        return NULL;
    }
}
