/*
 * win32_file.c - the file: backend on Windows: a regular file mapped through a section. It
 * persists across reboots, and is flushed with FlushViewOfFile + FlushFileBuffers on demand
 * (shml_segment_sync) and on close.
 *
 * Every handle shmlink opens on the file shares read, write and delete, so that a managed
 * segment can be created under a temporary name and renamed to its own once READY (the rename
 * refuses to replace: the name appears atomically, or -EEXIST), and so that unlink works while
 * the file is open, as on Linux: on NTFS since Windows 10 1903 the name goes at once, before
 * (and under Wine) when the last handle and view close, new opens failing meanwhile. A program
 * that opened the file without FILE_SHARE_DELETE blocks the rename and the unlink (-EBUSY).
 *
 * Windows refuses to shrink a file while a view of it is mapped (ERROR_USER_MAPPED_FILE), so
 * no fault can come from a truncated file under a mapping; an I/O error on the file's device
 * (EXCEPTION_IN_PAGE_ERROR) is not handled. Copies go through ReadFile/WriteFile all the same,
 * which see the mapping's bytes (one cache).
 */
#include "os/os.h"
#include "os/win32.h"
#include "segment/backend.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <aclapi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Paths in UTF-16: PATH_MAX bytes of UTF-8 never need more units. */
#define WIDE_PATH_MAX PATH_MAX

/* What each permission class may do with the file. */
static const struct shml__win_rights file_rights = {
    .read = FILE_GENERIC_READ,
    .write = FILE_GENERIC_READ | FILE_GENERIC_WRITE,
    .read_any = FILE_READ_DATA,
    .write_any = FILE_WRITE_DATA | FILE_APPEND_DATA,
};

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

static int file_error(DWORD e, const struct shml__addr *a, const char *doing)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return shml__fail(ENOENT, "no file %s", a->path);
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        return shml__fail(EEXIST, "file %s already exists", a->path);
    case ERROR_ACCESS_DENIED:
        return shml__fail(EACCES, "permission denied on file %s", a->path);
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return shml__fail(EBUSY, "%s file %s: another program has it open without sharing it "
                                 "(FILE_SHARE_READ, _WRITE and _DELETE)",
                          doing, a->path);
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return shml__fail(ENOSPC, "%s file %s: the disk is full", doing, a->path);
    default: {
        int err = shml__win_errno(e);
        return shml__fail(err, "%s file %s: %s (Windows error %lu)", doing, a->path,
                          shml__os_strerror(err), (unsigned long)e);
    }
    }
}

static int wide_path(const char *path, wchar_t *out)
{
    int r = shml__win_wide(path, out, WIDE_PATH_MAX);
    return r < 0 ? shml__fail(-r, "%s cannot be a Windows path", path) : 0;
}

/* A fresh temporary name "PATH.shml-tmp-PID-RANDOM" (as the other platforms' backends). */
static int tmp_name(char *buf, size_t cap, const char *before)
{
    uint64_t n;
    int r = shml__os_random(&n, sizeof(n));
    if (r < 0)
        return shml__fail(-r, "no random bytes for a temporary name: %s", shml__os_strerror(-r));
    int len = snprintf(buf, cap, "%s%s-%d-%016llx", before, SHML_TMP_PREFIX, (int)shml__os_pid(),
                       (unsigned long long)n);
    if (len < 0 || (size_t)len >= cap)
        return shml__fail(ENAMETOOLONG, "no room for a temporary name beside %s", before);
    return 0;
}

/*
 * Size the new file and reserve its clusters, so that no page of the mapping lacks room: a file
 * is not sparse unless asked to be, so NTFS allocates every cluster up to the new end here,
 * and a full disk fails now (-ENOSPC), not at a page's first touch. (Wine sizes it with
 * ftruncate(), which on most Linux file systems reserves nothing.)
 */
static int file_reserve(HANDLE f, uint64_t size, const struct shml__addr *a)
{
    if (size > (uint64_t)INT64_MAX)
        return shml__fail(EOVERFLOW, "size %llu does not fit a file offset",
                          (unsigned long long)size);
    FILE_END_OF_FILE_INFO eof = {.EndOfFile.QuadPart = (LONGLONG)size};
    if (!SetFileInformationByHandle(f, FileEndOfFileInfo, &eof, sizeof(eof)))
        return file_error(GetLastError(), a, "sizing");
    return 0;
}

/* A section over the whole file (NULL for an empty one, which cannot be mapped). */
static int file_section(HANDLE f, bool rdonly, const struct shml__addr *a, HANDLE *out)
{
    LARGE_INTEGER size;
    *out = NULL;
    if (!GetFileSizeEx(f, &size))
        return file_error(GetLastError(), a, "sizing");
    if (size.QuadPart == 0)
        return 0;
    *out = CreateFileMappingW(f, NULL, rdonly ? PAGE_READONLY : PAGE_READWRITE, 0, 0, NULL);
    return *out ? 0 : file_error(GetLastError(), a, "mapping");
}

static int file_create(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                       bool hidden, struct shml__obj *o)
{
    if (flags & SHML_HUGEPAGES)
        return shml__fail(ENOTSUP, "the file backend cannot use large pages");
    wchar_t *wpath = malloc(WIDE_PATH_MAX * sizeof(wchar_t));
    if (!wpath)
        return -ENOMEM;
    int r = wide_path(a->path, wpath);
    if (r == 0 && hidden && GetFileAttributesW(wpath) != INVALID_FILE_ATTRIBUTES)
        r = file_error(ERROR_FILE_EXISTS, a, "creating"); /* before any byte is reserved */
    void *sa = NULL;
    if (r == 0)
        r = shml__win_security(mode, &file_rights, &sa);
    char tmp[PATH_MAX];
    HANDLE f = INVALID_HANDLE_VALUE;
    DWORD e = 0;
    /* A temporary name someone took already (it is random: a squatter's guess) is retried. */
    for (int tries = 0; r == 0 && f == INVALID_HANDLE_VALUE &&
                        tries < (hidden ? SHML_TMP_TRIES : 1);
         tries++) {
        if (hidden) {
            /* Beside the file, so that the rename stays within one volume. */
            r = tmp_name(tmp, sizeof(tmp), a->path);
            if (r == 0)
                r = wide_path(tmp, wpath);
            if (r < 0)
                break;
        }
        f = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE | DELETE, SHARE_ALL, sa, CREATE_NEW,
                        FILE_ATTRIBUTE_NORMAL, NULL);
        e = GetLastError();
        if (f == INVALID_HANDLE_VALUE && e != ERROR_FILE_EXISTS)
            break;
    }
    free(sa);
    if (r == 0 && f == INVALID_HANDLE_VALUE)
        r = file_error(e, a, "creating");
    HANDLE section = NULL;
    if (r == 0)
        r = file_reserve(f, size, a);
    if (r == 0)
        r = file_section(f, false, a, &section);
    if (r < 0) {
        if (f != INVALID_HANDLE_VALUE) {
            CloseHandle(f);
            DeleteFileW(wpath);
        }
        free(wpath);
        return r;
    }
    free(wpath);
    o->file = f;
    o->section = section;
    o->created = true;
    if (hidden)
        snprintf(o->tmp, sizeof(o->tmp), "%s", tmp);
    return 0;
}

static int file_publish(const struct shml__addr *a, struct shml__obj *o)
{
    wchar_t *from = malloc(2 * WIDE_PATH_MAX * sizeof(wchar_t));
    if (!from)
        return -ENOMEM;
    wchar_t *to = from + WIDE_PATH_MAX;
    int r = wide_path(o->tmp, from);
    if (r == 0)
        r = wide_path(a->path, to);
    /* Without MOVEFILE_REPLACE_EXISTING the rename never replaces: the name appears
       atomically, or ERROR_ALREADY_EXISTS. */
    if (r == 0 && !MoveFileExW(from, to, MOVEFILE_WRITE_THROUGH))
        r = file_error(GetLastError(), a, "publishing");
    free(from);
    if (r == 0)
        o->tmp[0] = '\0';
    return r;
}

static int file_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    wchar_t *wpath = malloc(WIDE_PATH_MAX * sizeof(wchar_t));
    if (!wpath)
        return -ENOMEM;
    int r = wide_path(a->path, wpath);
    DWORD attr = r == 0 ? GetFileAttributesW(wpath) : 0;
    if (r == 0 && attr == INVALID_FILE_ATTRIBUTES)
        r = file_error(GetLastError(), a, "opening");
    if (r == 0 && (attr & FILE_ATTRIBUTE_DIRECTORY))
        r = shml__fail(EINVAL, "%s is a directory, not a regular file", a->path);
    HANDLE f = INVALID_HANDLE_VALUE;
    if (r == 0) {
        f = CreateFileW(wpath, GENERIC_READ | (rdonly ? 0 : GENERIC_WRITE), SHARE_ALL, NULL,
                        OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (f == INVALID_HANDLE_VALUE)
            r = file_error(GetLastError(), a, "opening");
    }
    free(wpath);
    if (r == 0 && GetFileType(f) != FILE_TYPE_DISK)
        r = shml__fail(EINVAL, "%s is a device or a pipe, not a regular file", a->path);
    HANDLE section = NULL;
    if (r == 0)
        r = file_section(f, rdonly, a, &section);
    if (r < 0) {
        if (f != INVALID_HANDLE_VALUE)
            CloseHandle(f);
        return r;
    }
    o->file = f;
    o->section = section;
    return 0;
}

static int file_stat(const struct shml__obj *o, struct shml__objstat *st)
{
    LARGE_INTEGER size;
    FILE_BASIC_INFO basic;
    if (!GetFileSizeEx(o->file, &size))
        return -shml__win_errno(GetLastError());
    st->size = (uint64_t)size.QuadPart;
    shml__win_mode_of(o->file, SE_FILE_OBJECT, &file_rights, &st->mode, &st->uid);
    st->ctime_ns = 0;
    if (GetFileInformationByHandleEx(o->file, FileBasicInfo, &basic, sizeof(basic)))
        st->ctime_ns = shml__win_filetime_ns((uint64_t)basic.ChangeTime.QuadPart);
    st->cpid = 0;
    st->nattch = -1;
    st->unbacked = 0; /* create reserves the clusters; another program's sparse file: unknown */
    st->sysv_id = -1;
    st->sysv_key = 0;
    return 0;
}

static int file_map(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags,
                    void **base)
{
    if (!o->section)
        return shml__fail(EINVAL, "the file was empty when opened: nothing to map");
    void *p = MapViewOfFile(o->section, rdonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE,
                            0, 0, len);
    if (!p) {
        int err = shml__win_errno(GetLastError());
        return shml__fail(err, "MapViewOfFile of %zu bytes: %s", len, shml__os_strerror(err));
    }
    if (flags & SHML_PREFAULT)
        shml__win_prefault(p, len);
    *base = p;
    return 0;
}

/* The OVERLAPPED of a synchronous transfer at `off`. */
static OVERLAPPED at(uint64_t off)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    return ov;
}

static ssize_t file_pread(const struct shml__obj *o, void *base, uint64_t off, void *buf,
                          size_t len)
{
    (void)base;
    size_t done = 0;
    while (done < len) {
        DWORD want = len - done > 0x40000000u ? 0x40000000u : (DWORD)(len - done), got = 0;
        OVERLAPPED ov = at(off + done);
        if (!ReadFile(o->file, (char *)buf + done, want, &got, &ov)) {
            DWORD e = GetLastError();
            if (e != ERROR_HANDLE_EOF)
                return -shml__win_errno(e);
            got = 0;
        }
        if (got == 0)
            return shml__fail(SHML_ETRUNCATED, "file ends at %llu bytes: another process "
                                               "truncated it",
                              (unsigned long long)(off + done));
        done += got;
    }
    return (ssize_t)done;
}

static ssize_t file_pwrite(const struct shml__obj *o, void *base, uint64_t off, const void *buf,
                           size_t len)
{
    (void)base;
    /* Writing past the end would grow a truncated file again: check first. */
    LARGE_INTEGER size;
    if (!GetFileSizeEx(o->file, &size))
        return -shml__win_errno(GetLastError());
    if (off + len > (uint64_t)size.QuadPart)
        return shml__fail(SHML_ETRUNCATED, "file is %lld bytes: another process truncated it",
                          (long long)size.QuadPart);
    size_t done = 0;
    while (done < len) {
        DWORD want = len - done > 0x40000000u ? 0x40000000u : (DWORD)(len - done), put = 0;
        OVERLAPPED ov = at(off + done);
        if (!WriteFile(o->file, (const char *)buf + done, want, &put, &ov))
            return -shml__win_errno(GetLastError());
        done += put;
    }
    return (ssize_t)done;
}

static int file_sync(const struct shml__obj *o, void *base, size_t len)
{
    /* FlushViewOfFile starts writing the view's dirty pages; FlushFileBuffers waits for them
       and for the file's metadata to reach the disk. */
    if (base && !FlushViewOfFile(base, len)) {
        int err = shml__win_errno(GetLastError());
        return shml__fail(err, "FlushViewOfFile: %s", shml__os_strerror(err));
    }
    if (o->file && !FlushFileBuffers(o->file)) {
        DWORD e = GetLastError();
        if (e != ERROR_ACCESS_DENIED) { /* a read-only handle has nothing to flush */
            int err = shml__win_errno(e);
            return shml__fail(err, "FlushFileBuffers: %s", shml__os_strerror(err));
        }
    }
    return 0;
}

static int file_unlink(const struct shml__addr *a)
{
    wchar_t *wpath = malloc(WIDE_PATH_MAX * sizeof(wchar_t));
    if (!wpath)
        return -ENOMEM;
    int r = wide_path(a->path, wpath);
    DWORD attr = r == 0 ? GetFileAttributesW(wpath) : 0;
    if (r == 0 && attr == INVALID_FILE_ATTRIBUTES)
        r = file_error(GetLastError(), a, "removing");
    if (r == 0 && (attr & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)))
        r = shml__fail(EINVAL, "%s is not a regular file: not removed", a->path);
    if (r == 0 && !DeleteFileW(wpath))
        r = file_error(GetLastError(), a, "removing");
    free(wpath);
    return r;
}

static void file_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    wchar_t *wpath = malloc(WIDE_PATH_MAX * sizeof(wchar_t));
    /* Every handle shares delete: the file goes once release closes ours. */
    if (wpath && shml__win_wide(o->tmp[0] ? o->tmp : a->path, wpath, WIDE_PATH_MAX) == 0)
        DeleteFileW(wpath);
    free(wpath);
}

static void file_release(struct shml__obj *o)
{
    if (o->section)
        CloseHandle(o->section);
    if (o->file)
        CloseHandle(o->file);
    o->section = NULL;
    o->file = NULL;
}

/* What the directory entry shows of a file the caller may not open: size and time. */
static int file_describe_unopened(const struct shml__addr *a, int32_t id,
                                  struct shml_segment_info *info, int err)
{
    (void)id;
    wchar_t *wpath = malloc(WIDE_PATH_MAX * sizeof(wchar_t));
    WIN32_FILE_ATTRIBUTE_DATA d;
    bool ok = wpath && shml__win_wide(a->path, wpath, WIDE_PATH_MAX) == 0 &&
              GetFileAttributesExW(wpath, GetFileExInfoStandard, &d);
    free(wpath);
    info->status = err;
    if (!ok)
        return err;
    info->object_size = ((uint64_t)d.nFileSizeHigh << 32) | d.nFileSizeLow;
    info->size = info->object_size;
    /* The entry has no change time (what stat gives): the last write is the nearest. */
    info->created_ns = shml__win_filetime_ns(((uint64_t)d.ftLastWriteTime.dwHighDateTime << 32) |
                                             d.ftLastWriteTime.dwLowDateTime);
    return 0;
}

const struct shml__backend shml__backend_file = {
    .name = "file",
    .create = file_create,
    .publish = file_publish,
    .open = file_open,
    .stat = file_stat,
    .map = file_map,
    .unmap = shml__win_unmap,
    .pread = file_pread,
    .pwrite = file_pwrite,
    .sync = file_sync,
    .unlink = file_unlink,
    .discard = file_discard,
    .release = file_release,
    .describe_unopened = file_describe_unopened,
};
