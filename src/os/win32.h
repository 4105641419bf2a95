/*
 * win32.h - what the Windows files of src/os/ share (never included by core files).
 */
#ifndef SHML_OS_WIN32_H
#define SHML_OS_WIN32_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* The errno value closest to a Windows error code (GetLastError()); EIO when none is. */
SHML_INTERNAL int shml__win_errno(unsigned long err);

#endif /* SHML_OS_WIN32_H */
