/*
 * win32.c - the platform mechanisms of os.h on Windows: clocks, process identity, randomness.
 * Waits are in win32_futex.c, the robust mutex in win32_mutex.c, the mapping registry in
 * win32_region.c and the segment backends in win32_segment.c and win32_file.c.
 *
 * Process identity is the pid plus the process's creation time (a FILETIME: 100 ns units since
 * 1601), which no later process with the same pid can share.
 */
#include "os/os.h"
#include "os/win32.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <bcrypt.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *shml__os_strerror(int err)
{
    static _Thread_local char buf[96];
    if (strerror_s(buf, sizeof(buf), err) != 0 || buf[0] == '\0')
        return "unknown error";
    return buf;
}

size_t shml__os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize ? si.dwPageSize : 4096;
}

/* Large pages need the SeLockMemoryPrivilege, which shmlink does not ask for: none offered. */
size_t shml__os_hugepage_size(void)
{
    return 0;
}

long shml__os_hugepages_free(void)
{
    return -ENOTSUP;
}

int64_t shml__os_mono_ns(void)
{
    static int64_t freq; /* counts per second; a race writes the same value */
    LARGE_INTEGER c;
    if (freq == 0) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        freq = f.QuadPart > 0 ? f.QuadPart : 1;
    }
    QueryPerformanceCounter(&c);
    int64_t s = c.QuadPart / freq;
    return s * 1000000000 + (c.QuadPart % freq) * 1000000000 / freq;
}

/* 100 ns units from 1601-01-01 to 1970-01-01. */
#define EPOCH_DIFF_100NS 116444736000000000LL

int64_t shml__os_real_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t t = (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
    return (t - EPOCH_DIFF_100NS) * 100;
}

void shml__os_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    int64_t end = shml__os_mono_ns() + ns;
    /* Sleep() counts whole milliseconds; the last fraction yields instead. */
    for (int64_t left = ns; left > 0; left = end - shml__os_mono_ns()) {
        if (left >= 1000000)
            Sleep((DWORD)(left / 1000000));
        else
            SwitchToThread();
    }
}

/* In UTF-8, as every path and name shmlink takes (the ANSI code page would garble them). */
int shml__os_cwd(char *buf, size_t cap)
{
    const DWORD wcap = 32768; /* the longest path Windows has, in UTF-16 units */
    wchar_t *w = malloc(wcap * sizeof(wchar_t));
    if (!w)
        return -ENOMEM;
    DWORD n = GetCurrentDirectoryW(wcap, w);
    int r = 0;
    if (n == 0 || n >= wcap)
        r = n == 0 ? -shml__win_errno(GetLastError()) : -ERANGE;
    else if (WideCharToMultiByte(CP_UTF8, 0, w, (int)n + 1, buf,
                                 (int)(cap > INT_MAX ? INT_MAX : cap), NULL, NULL) <= 0)
        r = GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ERANGE : -EINVAL;
    free(w);
    return r;
}

bool shml__os_path_absolute(const char *path)
{
    bool drive = ((path[0] | 0x20) >= 'a' && (path[0] | 0x20) <= 'z') && path[1] == ':';
    return drive || path[0] == '\\' || path[0] == '/';
}

int32_t shml__os_pid(void)
{
    return (int32_t)GetCurrentProcessId();
}

/*
 * The calling user, as the relative id (the last sub-authority) of the token's user SID: what
 * a segment records as its creator's uid. Two users of different domains may share it, so
 * the segment's security descriptor, not this number, is what decides who may open.
 */
uint32_t shml__os_euid(void)
{
    static uint32_t cached; /* 0 until known; a race computes the same value */
    if (cached)
        return cached;
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return 0;
    union {
        TOKEN_USER tu;
        unsigned char bytes[256];
    } u;
    DWORD len = 0;
    uint32_t rid = 0;
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len)) {
        PSID sid = u.tu.User.Sid;
        UCHAR n = *GetSidSubAuthorityCount(sid);
        if (n > 0)
            rid = (uint32_t)*GetSidSubAuthority(sid, n - 1);
    }
    CloseHandle(tok);
    cached = rid;
    return rid;
}

static uint64_t filetime_u64(FILETIME ft)
{
    return ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

int shml__os_proc_start(int32_t pid, uint64_t *start)
{
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (!h) {
        DWORD e = GetLastError();
        return e == ERROR_INVALID_PARAMETER ? -ESRCH : -shml__win_errno(e);
    }
    FILETIME c, x, k, u;
    int r = 0;
    if (!GetProcessTimes(h, &c, &x, &k, &u))
        r = -shml__win_errno(GetLastError());
    else if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0)
        r = -ESRCH; /* exited; the object lives on only while handles to it are open */
    else
        *start = filetime_u64(c);
    CloseHandle(h);
    return r;
}

int shml__os_proc_alive(int32_t pid, uint64_t start)
{
    if (pid <= 0)
        return 0;
    if ((DWORD)pid == GetCurrentProcessId()) {
        uint64_t mine;
        if (start == 0)
            return 1;
        return shml__os_proc_start(pid, &mine) == 0 && mine == start ? 1 : 0;
    }
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
    if (!h) {
        DWORD e = GetLastError();
        return e == ERROR_INVALID_PARAMETER ? 0 : -1; /* no such pid; or not ours to look at */
    }
    int alive = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
    if (alive && start != 0) {
        FILETIME c, x, k, u;
        if (!GetProcessTimes(h, &c, &x, &k, &u))
            alive = -1;
        else if (filetime_u64(c) != start)
            alive = 0; /* the pid was reused */
    }
    CloseHandle(h);
    return alive;
}

int shml__os_thread_start(int32_t tid, uint64_t *start)
{
    HANDLE h = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)tid);
    if (!h) {
        DWORD e = GetLastError();
        return e == ERROR_INVALID_PARAMETER ? -ESRCH : -shml__win_errno(e);
    }
    FILETIME c, x, k, u;
    DWORD code = 0;
    int r = 0;
    if (!GetThreadTimes(h, &c, &x, &k, &u) || !GetExitCodeThread(h, &code))
        r = -shml__win_errno(GetLastError());
    else if (code != STILL_ACTIVE)
        r = -ESRCH;
    else
        *start = filetime_u64(c);
    CloseHandle(h);
    return r;
}

/* Windows has one process id space per machine. */
uint32_t shml__os_pid_ns(void)
{
    return 1;
}

int shml__os_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ULONG n = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return -EIO;
        p += n;
        len -= n;
    }
    return 0;
}

/* NtQuerySystemInformation(SystemTimeOfDayInformation): the boot time, exact and constant. */
struct time_of_day {
    LARGE_INTEGER boot_time;
    LARGE_INTEGER current_time;
    LARGE_INTEGER time_zone_bias;
    ULONG time_zone_id;
    ULONG reserved;
    ULONGLONG boot_time_bias;
    ULONGLONG sleep_time_bias;
};
#define SYSTEM_TIME_OF_DAY_INFORMATION 3
__declspec(dllimport) LONG __stdcall NtQuerySystemInformation(int cls, void *info, ULONG len,
                                                              ULONG *ret);

int shml__os_boot_id(uint8_t id[16])
{
    struct time_of_day t;
    memset(id, 0, 16);
    memset(&t, 0, sizeof(t));
    if (NtQuerySystemInformation(SYSTEM_TIME_OF_DAY_INFORMATION, &t, sizeof(t), NULL) < 0)
        return -EIO;
    /* The boot time, spread over 16 bytes by two rounds of FNV-1a so that ids look random. */
    uint64_t v = (uint64_t)t.boot_time.QuadPart;
    for (int half = 0; half < 2; half++) {
        uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)half;
        for (int i = 0; i < 8; i++) {
            h ^= (v >> (8 * i)) & 0xffu;
            h *= 0x100000001b3ull;
        }
        memcpy(id + 8 * half, &h, 8);
    }
    return 0;
}

/* ---- descriptors: Windows segments are handles, never C runtime descriptors ---- */

int shml__os_fd_dup(int fd)
{
    (void)fd;
    return -ENOTSUP;
}

void shml__os_fd_close(int fd)
{
    (void)fd;
}

int shml__os_fd_send(int sock, int fd, const void *payload, size_t len)
{
    (void)sock, (void)fd, (void)payload, (void)len;
    return -ENOTSUP;
}

ssize_t shml__os_fd_recv(int sock, int *fd, void *payload, size_t cap, int64_t timeout_ns)
{
    (void)sock, (void)fd, (void)payload, (void)cap, (void)timeout_ns;
    return -ENOTSUP;
}

int shml__os_fd_address(int fd, char *buf, size_t cap)
{
    (void)fd, (void)buf, (void)cap;
    return -ENOTSUP;
}

int shml__os_path_mapped(const char *path)
{
    (void)path;
    return -ENOTSUP;
}

uint64_t shml__os_fd_unbacked(int fd, uint64_t size)
{
    (void)fd, (void)size;
    return 0;
}

/* ---- Windows error codes (win32.h) ---- */

int shml__win_errno(unsigned long err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
        return ENOENT;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return EEXIST;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_NO_SYSTEM_RESOURCES:
        return ENOMEM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_INVALID_HANDLE:
        return EBADF;
    case ERROR_INVALID_PARAMETER:
        return EINVAL;
    case ERROR_FILENAME_EXCED_RANGE:
        return ENAMETOOLONG;
    case ERROR_USER_MAPPED_FILE:
        return EBUSY;
    case ERROR_NOT_SUPPORTED:
    case ERROR_CALL_NOT_IMPLEMENTED:
        return ENOTSUP;
    case ERROR_TIMEOUT:
        return ETIMEDOUT;
    default:
        return EIO;
    }
}
