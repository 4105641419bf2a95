/*
 * harness_win32.c - the harness on Windows (built with mingw-w64, run under Wine in CI). See
 * harness_sys.h for what each function owes harness.c, and harness.h for the contract.
 *
 * Windows has no fork(), so a test process is this binary started again: the runner runs
 * "bin --child NAME", and the child finds test NAME in its own registry. The child starts in a
 * job object of its own (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE) and its peers land in the same
 * job, since a job holds every process its members start: terminating the job is the
 * Windows kill(-pgid, SIGKILL), and closing it kills whatever was left even if the runner
 * dies. The job allows breakaway, so that a process that must outlive the test on purpose (a
 * segment holder, which asks for CREATE_BREAKAWAY_FROM_JOB) can; the cleanup registry
 * removes those.
 *
 * The state the runner shares with a test process (cleanup registry, skip reason) is a named
 * file mapping Local\shmt-<runner pid>, whose name the child reads from SHMT_SHARED; the
 * runner holds it, so it outlives a child that crashed. Peers are "bin --peer NAME args..."
 * with one duplex named pipe for the line messages: the peer's end is inherited, and its
 * handle value travels in SHMT_PEER_PIPE (the peer keeps the test's stdin, stdout and stderr,
 * as on Linux). Both ends are overlapped, so that every read can time out.
 *
 * Handles are inheritable only between their creation and the CreateProcess() that hands them
 * over (under one lock), so that no other process inherits a pipe end and keeps it open.
 */
#include "harness_sys.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <fcntl.h>
#include <io.h>
#include <stdlib.h>

const char *const shmt_sys_group_word = "job";

/* Exit codes of a process ended by TerminateProcess() for "signal" sig: what Linux reports. */
#define KILLED_CODE(sig) (128u + (unsigned)(sig))

int shmt_sys_pid(void)
{
    return (int)GetCurrentProcessId();
}

void shmt_sys_write_err(const char *buf, size_t len)
{
    HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
    DWORD w;
    if (h && h != INVALID_HANDLE_VALUE)
        WriteFile(h, buf, (DWORD)len, &w, NULL);
}

void shmt_sys_exit(int code)
{
    /* Not ExitProcess(): no DLL detach routines, which could wait for a lock a thread holds. */
    TerminateProcess(GetCurrentProcess(), (UINT)code);
    ExitProcess((UINT)code);
}

const char *shmt_sys_errname(int err)
{
    /* An if-chain, not a switch: some names share a value (EDEADLOCK, EWOULDBLOCK, ...). */
#define NAME(e)                                                                                 \
    if (err == e)                                                                              \
        return #e;
    NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(E2BIG)
    NAME(ENOEXEC) NAME(EBADF) NAME(ECHILD) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EFAULT)
    NAME(EBUSY) NAME(EEXIST) NAME(EXDEV) NAME(ENODEV) NAME(ENOTDIR) NAME(EISDIR) NAME(ENFILE)
    NAME(EMFILE) NAME(ENOTTY) NAME(EFBIG) NAME(ENOSPC) NAME(ESPIPE) NAME(EROFS) NAME(EMLINK)
    NAME(EPIPE) NAME(EDOM) NAME(EDEADLK) NAME(ENAMETOOLONG) NAME(ENOLCK) NAME(ENOSYS)
    NAME(ENOTEMPTY) NAME(EINVAL) NAME(ERANGE) NAME(EILSEQ) NAME(ENOTSUP) NAME(EAFNOSUPPORT)
    NAME(EADDRINUSE) NAME(EADDRNOTAVAIL) NAME(EISCONN) NAME(ENOBUFS) NAME(ECONNABORTED)
    NAME(EALREADY) NAME(ECONNREFUSED) NAME(ECONNRESET) NAME(EDESTADDRREQ) NAME(EHOSTUNREACH)
    NAME(EMSGSIZE) NAME(ENETDOWN) NAME(ENETRESET) NAME(ENETUNREACH) NAME(ENOPROTOOPT)
    NAME(ENOTSOCK) NAME(ENOTCONN) NAME(ECANCELED) NAME(EINPROGRESS) NAME(EOPNOTSUPP)
    NAME(EWOULDBLOCK) NAME(EOWNERDEAD) NAME(EPROTO) NAME(EPROTONOSUPPORT) NAME(EBADMSG)
    NAME(EIDRM) NAME(ENODATA) NAME(ENOLINK) NAME(ENOMSG) NAME(ENOSR) NAME(ENOSTR)
    NAME(ENOTRECOVERABLE) NAME(ETIME) NAME(ETXTBSY) NAME(ETIMEDOUT) NAME(ELOOP) NAME(EPROTOTYPE)
    NAME(EOVERFLOW)
#undef NAME
    return NULL;
}

const char *shmt_sys_signame(int sig)
{
    switch (sig) {
    case 2:
        return "INT";
    case 4:
        return "ILL";
    case 5:
        return "TRAP";
    case 6:
        return "ABRT";
    case 7:
        return "BUS";
    case 8:
        return "FPE";
    case 9:
        return "KILL";
    case 11:
        return "SEGV";
    case 15:
        return "TERM";
    default:
        return "?";
    }
}

/* One [...] class at p (just after '['): sets *matched; returns the end, or NULL if unclosed. */
static const char *match_class(const char *p, char c, bool *matched)
{
    bool negate = *p == '!' || *p == '^';
    if (negate)
        p++;
    bool hit = false;
    bool first = true;
    while (*p && (*p != ']' || first)) {
        first = false;
        char lo = *p == '\\' && p[1] ? *++p : *p;
        p++;
        char hi = lo;
        if (*p == '-' && p[1] && p[1] != ']') {
            p++;
            hi = *p == '\\' && p[1] ? *++p : *p;
            p++;
        }
        if (c >= lo && c <= hi)
            hit = true;
    }
    if (*p != ']')
        return NULL;
    *matched = hit != negate;
    return p + 1;
}

/* fnmatch(pattern, s, 0): '*', '?', '[...]' (with '!' or '^'), '\' quotes the next byte. */
bool shmt_sys_match(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        bool ok = false;
        const char *next = NULL;
        if (*p == '?') {
            ok = true;
            next = p + 1;
        } else if (*p == '[') {
            next = match_class(p + 1, *s, &ok);
            if (!next) { /* an unclosed '[' is a plain character */
                ok = *s == '[';
                next = p + 1;
            }
        } else if (*p == '\\' && p[1]) {
            ok = p[1] == *s;
            next = p + 2;
        } else if (*p) {
            ok = *p == *s;
            next = p + 1;
        }
        if (ok) {
            p = next;
            s++;
        } else if (star_p) {
            p = star_p;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- names ---- */

const char *shmt_addr(void)
{
    const char *a = shmt__new_name("win:");
    shmt__add_cleanup(SHMT_CL_WIN, 0, a);
    return a;
}

void shmt_hold(const char *addr)
{
    /* Never closed: the handle goes when the process ends, as the test's objects do. */
    shml_segment *seg = NULL;
    int r = shml_segment_open(addr, NULL, &seg);
    if (r < 0)
        shmt_fail(__FILE__, __LINE__, "shmt_hold(%s): %s -- %s", addr, shml_strerror(r),
                  shml_last_error());
}

int32_t shmt_sysv_key(void)
{
    SKIP("System V shared memory does not exist on Windows");
}

const char *shmt_tmpdir(void)
{
    char tmp[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof tmp, tmp);
    if (n == 0 || n > sizeof tmp)
        shmt_fail(__FILE__, __LINE__, "GetTempPath: error %lu", GetLastError());
    const char *d = shmt_fmt("%s%s", tmp, shmt__new_name(""));
    shmt_cleanup_path(d);
    if (!CreateDirectoryA(d, NULL))
        shmt_fail(__FILE__, __LINE__, "CreateDirectory %s: error %lu", d, GetLastError());
    return d;
}

/* ---- cleanup ---- */

/* Remove the file or directory tree at path; what cannot be removed stays (bounded depth). */
static void remove_tree(const char *path, int depth)
{
    DWORD attr = GetFileAttributesA(path);
    if (attr == INVALID_FILE_ATTRIBUTES)
        return;
    if (attr & FILE_ATTRIBUTE_READONLY)
        SetFileAttributesA(path, attr & ~(DWORD)FILE_ATTRIBUTE_READONLY);
    if (!(attr & FILE_ATTRIBUTE_DIRECTORY) || (attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        if (!DeleteFileA(path))
            RemoveDirectoryA(path); /* a directory link */
        return;
    }
    if (depth < 32) {
        char pattern[MAX_PATH * 2];
        snprintf(pattern, sizeof pattern, "%s\\*", path);
        WIN32_FIND_DATAA fd;
        HANDLE f = FindFirstFileA(pattern, &fd);
        if (f != INVALID_HANDLE_VALUE) {
            do {
                if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0)
                    continue;
                char child[MAX_PATH * 2];
                snprintf(child, sizeof child, "%s\\%s", path, fd.cFileName);
                remove_tree(child, depth + 1);
            } while (FindNextFileA(f, &fd));
            FindClose(f);
        }
    }
    RemoveDirectoryA(path);
}

/*
 * Remove what the test process registered. A win: segment dies with the last handle to it, and
 * every process of the test is gone by now; what can be left is a segment something keeps on
 * purpose (a holder process outside the job), which shml_segment_unlink() lets go.
 */
void shmt_sys_cleanup(int pid)
{
    (void)pid;
    struct shmt_shared *shared = shmt__shared;
    unsigned n = atomic_load_explicit(&shared->n_cleanup, memory_order_relaxed);
    if (n > SHMT_MAX_CLEANUP)
        n = SHMT_MAX_CLEANUP;
    for (unsigned i = n; i-- > 0;) {
        struct shmt_cleanup_item *it = &shared->items[i];
        switch (it->kind) {
        case SHMT_CL_WIN:
            shml_segment_unlink(it->text); /* -ENOENT when it went with its handles */
            break;
        case SHMT_CL_PATH:
            remove_tree(it->text, 0);
            break;
        default: /* POSIX and System V objects do not exist here */
            break;
        }
    }
    memset(shared->items, 0, sizeof(shared->items[0]) * n);
    atomic_store_explicit(&shared->n_cleanup, 0, memory_order_relaxed);
}

/* ---- time ---- */

int64_t shmt_now_ms(void)
{
    static LARGE_INTEGER freq; /* a race writes the same value */
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / freq.QuadPart * 1000 + c.QuadPart % freq.QuadPart * 1000 /
                                                            freq.QuadPart);
}

void shmt_sleep_ms(int ms)
{
    if (ms > 0)
        Sleep((DWORD)ms);
}

/* ---- processes ---- */

/* Handles become inheritable only under this lock, up to the CreateProcess() they are for. */
static SRWLOCK spawn_lock = SRWLOCK_INIT;

/*
 * The exit code of an ended process as harness.h promises: its own code, or 128 + the signal
 * closest to the exception that ended it.
 */
static int code_of(DWORD code)
{
    switch (code) {
    case 0xC0000005: /* STATUS_ACCESS_VIOLATION */
    case 0xC00000FD: /* STATUS_STACK_OVERFLOW */
        return 128 + 11;
    case 0xC0000006: /* STATUS_IN_PAGE_ERROR: the mapped file could not be read */
        return 128 + 7;
    case 0xC000001D: /* STATUS_ILLEGAL_INSTRUCTION: __builtin_trap() */
    case 0xC0000096: /* STATUS_PRIVILEGED_INSTRUCTION */
        return 128 + 4;
    case 0xC0000094: /* STATUS_INTEGER_DIVIDE_BY_ZERO */
    case 0xC0000095: /* STATUS_INTEGER_OVERFLOW */
    case 0xC000008E: /* STATUS_FLOAT_DIVIDE_BY_ZERO */
        return 128 + 8;
    case 0xC0000409: /* STATUS_STACK_BUFFER_OVERRUN: __fastfail() */
        return 128 + 6;
    case 0x80000003: /* STATUS_BREAKPOINT */
        return 128 + 5;
    default:
        return (int)code;
    }
}

/*
 * CreateProcessA() with the lock held by the caller, tried again a few times: under load,
 * Wine's CreateProcess fails now and then with ERROR_INTERNAL_ERROR for a program it starts
 * fine a moment later. A missing program fails at once. Returns the last error, or 0.
 */
static DWORD create_process(const char *app, char *cmd, BOOL inherit, DWORD flags, void *env,
                            STARTUPINFOA *si, PROCESS_INFORMATION *pi)
{
    DWORD err = 0;
    for (int tries = 0; tries < 5; tries++) {
        if (CreateProcessA(app, cmd, NULL, NULL, inherit, flags, env, NULL, si, pi))
            return 0;
        err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND ||
            err == ERROR_BAD_EXE_FORMAT || err == ERROR_ACCESS_DENIED)
            break;
        Sleep(20u << tries);
    }
    return err;
}

/* Append arg to the command line *cmd as the C runtime's argv parser will read it back. */
static void append_arg(char **cmd, size_t *len, size_t *cap, const char *arg)
{
    size_t need = *len + 2 * strlen(arg) + 4;
    if (need > *cap) {
        size_t ncap = need * 2;
        char *n = realloc(*cmd, ncap);
        if (!n)
            shmt_fail(__FILE__, __LINE__, "harness: out of memory for a command line");
        *cmd = n;
        *cap = ncap;
    }
    char *c = *cmd;
    if (*len > 0)
        c[(*len)++] = ' ';
    if (arg[0] != '\0' && strpbrk(arg, " \t\n\v\"") == NULL) {
        memcpy(c + *len, arg, strlen(arg));
        *len += strlen(arg);
        c[*len] = '\0';
        return;
    }
    c[(*len)++] = '"';
    for (const char *p = arg;; p++) {
        size_t slashes = 0;
        while (*p == '\\') {
            slashes++;
            p++;
        }
        if (*p == '\0') { /* backslashes before the closing quote are doubled */
            for (size_t i = 0; i < 2 * slashes; i++)
                c[(*len)++] = '\\';
            break;
        }
        if (*p == '"') { /* and those before a quote, which is escaped */
            for (size_t i = 0; i < 2 * slashes + 1; i++)
                c[(*len)++] = '\\';
        } else {
            for (size_t i = 0; i < slashes; i++)
                c[(*len)++] = '\\';
        }
        c[(*len)++] = *p;
    }
    c[(*len)++] = '"';
    c[*len] = '\0';
}

/* The command line of argv[0..] (NULL-terminated); malloc'd. */
static char *command_line(const char *const *argv)
{
    char *cmd = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; argv[i]; i++)
        append_arg(&cmd, &len, &cap, argv[i]);
    return cmd;
}

/* errno of a failed pipe operation. */
static int pipe_errno(DWORD e)
{
    switch (e) {
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return EPIPE;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/*
 * A connected pipe: *server (this process's end: duplex, overlapped, not inheritable) and
 * *client (for the other process: overlapped if asked, not inheritable yet). 0 or -errno.
 */
static int pipe_pair(HANDLE *server, HANDLE *client, bool client_overlapped)
{
    static LONG counter;
    char name[128];
    snprintf(name, sizeof name, "\\\\.\\pipe\\shmt-%lu-%ld-%llu", GetCurrentProcessId(),
             InterlockedIncrement(&counter), (unsigned long long)GetTickCount64());
    *server = CreateNamedPipeA(name,
                               PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                                   FILE_FLAG_FIRST_PIPE_INSTANCE,
                               PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                   PIPE_REJECT_REMOTE_CLIENTS,
                               1, 65536, 65536,
                               0, NULL);
    if (*server == INVALID_HANDLE_VALUE)
        return -pipe_errno(GetLastError());
    *client = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                          client_overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);
    if (*client == INVALID_HANDLE_VALUE) {
        int r = -pipe_errno(GetLastError());
        CloseHandle(*server);
        return r;
    }
    /* The client is there already: connecting reports ERROR_PIPE_CONNECTED at once. */
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!ConnectNamedPipe(*server, &ov)) {
        DWORD e = GetLastError();
        DWORD n;
        if (e == ERROR_IO_PENDING)
            GetOverlappedResult(*server, &ov, &n, TRUE);
    }
    CloseHandle(ov.hEvent);
    return 0;
}

/* One end of a line link (duplex, overlapped) with what was read past the last line. */
struct shmt_link {
    HANDLE h;
    HANDLE rd_ev; /* manual-reset events of the overlapped read and write */
    HANDLE wr_ev;
    char buf[512];
    size_t pos, len;
};

static void link_open(struct shmt_link *l, HANDLE h)
{
    memset(l, 0, sizeof *l);
    l->h = h;
    l->rd_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    l->wr_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!l->rd_ev || !l->wr_ev)
        shmt_fail(__FILE__, __LINE__, "CreateEvent: error %lu", GetLastError());
}

static void link_close(struct shmt_link *l)
{
    if (l->h)
        CloseHandle(l->h);
    if (l->rd_ev)
        CloseHandle(l->rd_ev);
    if (l->wr_ev)
        CloseHandle(l->wr_ev);
    memset(l, 0, sizeof *l);
}

int shmt_sys_link_write(struct shmt_link *l, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        OVERLAPPED ov;
        memset(&ov, 0, sizeof ov);
        ov.hEvent = l->wr_ev;
        ResetEvent(l->wr_ev);
        DWORD n = 0;
        if (!WriteFile(l->h, buf + off, (DWORD)(len - off), NULL, &ov) &&
            GetLastError() != ERROR_IO_PENDING)
            return -pipe_errno(GetLastError());
        /* As write() to a full pipe: blocks until the reader takes the bytes, or dies. */
        if (!GetOverlappedResult(l->h, &ov, &n, TRUE))
            return -pipe_errno(GetLastError());
        off += n;
    }
    return 0;
}

int shmt_sys_link_read(struct shmt_link *l, char *c, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    while (l->pos == l->len) {
        int64_t left = deadline - shmt_now_ms();
        if (left < 0)
            left = 0;
        OVERLAPPED ov;
        memset(&ov, 0, sizeof ov);
        ov.hEvent = l->rd_ev;
        ResetEvent(l->rd_ev);
        DWORD n = 0;
        if (!ReadFile(l->h, l->buf, sizeof l->buf, NULL, &ov)) {
            DWORD e = GetLastError();
            if (e != ERROR_IO_PENDING)
                return -pipe_errno(e);
            if (WaitForSingleObject(l->rd_ev, (DWORD)left) != WAIT_OBJECT_0)
                CancelIoEx(l->h, &ov);
        }
        /* Also after a cancel: the read may have completed first, and its bytes count. */
        if (!GetOverlappedResult(l->h, &ov, &n, TRUE)) {
            DWORD e = GetLastError();
            return e == ERROR_OPERATION_ABORTED ? -ETIMEDOUT : -pipe_errno(e);
        }
        l->pos = 0;
        l->len = n;
        if (n == 0 && shmt_now_ms() >= deadline)
            return -ETIMEDOUT;
    }
    *c = l->buf[l->pos++];
    return 0;
}

#define MAX_PEER_PROCS 64
struct peer_proc {
    pid_t pid;
    HANDLE proc;
    struct shmt_link link;
};
static struct peer_proc procs[MAX_PEER_PROCS];
/* In a peer: the link to the test. */
static struct shmt_link parent_link;

static struct peer_proc *find_proc(pid_t pid)
{
    for (int i = 0; i < MAX_PEER_PROCS; i++)
        if (procs[i].pid == pid && pid > 0)
            return &procs[i];
    return NULL;
}

struct shmt_link *shmt_sys_link(pid_t pid)
{
    if (pid == 0)
        return parent_link.h ? &parent_link : NULL;
    struct peer_proc *p = find_proc(pid);
    return p ? &p->link : NULL;
}

/* This process's environment with name=value added (replacing one of that name); malloc'd. */
static char *env_with(const char *name, const char *value)
{
    char *env = GetEnvironmentStringsA();
    size_t total = 0;
    if (env)
        for (const char *e = env; *e; e += strlen(e) + 1)
            total += strlen(e) + 1;
    size_t nlen = strlen(name);
    char *out = malloc(total + nlen + strlen(value) + 3);
    if (!out)
        shmt_fail(__FILE__, __LINE__, "harness: out of memory for an environment");
    char *o = out;
    if (env) {
        for (const char *e = env; *e; e += strlen(e) + 1) {
            if (_strnicmp(e, name, nlen) == 0 && e[nlen] == '=')
                continue;
            memcpy(o, e, strlen(e) + 1);
            o += strlen(e) + 1;
        }
        FreeEnvironmentStringsA(env);
    }
    o += sprintf(o, "%s=%s", name, value) + 1;
    *o = '\0';
    return out;
}

pid_t shmt_spawn_peer(const char *const *args)
{
    struct peer_proc *slot = NULL;
    for (int i = 0; i < MAX_PEER_PROCS && !slot; i++)
        if (procs[i].pid == 0)
            slot = &procs[i];
    if (!slot)
        shmt_fail(__FILE__, __LINE__, "too many peers at once");
    size_t n = 0;
    while (args[n])
        n++;
    const char **argv = calloc(n + 3, sizeof *argv);
    if (!argv)
        shmt_fail(__FILE__, __LINE__, "harness: out of memory");
    argv[0] = shmt__self_exe;
    argv[1] = "--peer";
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = args[i];
    char *cmd = command_line(argv);
    free(argv);

    HANDLE server, client;
    int r = pipe_pair(&server, &client, true);
    if (r < 0)
        shmt_fail(__FILE__, __LINE__, "pipe: %s", strerror(-r));
    char hv[32];
    snprintf(hv, sizeof hv, "%llu", (unsigned long long)(uintptr_t)client);
    char *env = env_with("SHMT_PEER_PIPE", hv);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    fflush(stdout);
    fflush(stderr);
    AcquireSRWLockExclusive(&spawn_lock);
    SetHandleInformation(client, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    DWORD err = create_process(shmt__self_exe, cmd, TRUE, 0, env, &si, &pi);
    CloseHandle(client);
    ReleaseSRWLockExclusive(&spawn_lock);
    free(env);
    free(cmd);
    if (err) {
        CloseHandle(server);
        shmt_fail(__FILE__, __LINE__, "CreateProcess %s: error %lu", shmt__self_exe, err);
    }
    CloseHandle(pi.hThread);
    slot->pid = (pid_t)pi.dwProcessId;
    slot->proc = pi.hProcess;
    link_open(&slot->link, server);
    return slot->pid;
}

static void forget_proc(struct peer_proc *p)
{
    link_close(&p->link);
    CloseHandle(p->proc);
    p->proc = NULL;
    p->pid = 0;
}

int wait_peer(pid_t pid, int timeout_ms)
{
    struct peer_proc *p = find_proc(pid);
    HANDLE h = p ? p->proc
                 : OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION,
                               FALSE, (DWORD)pid);
    if (!h)
        return -1;
    int rc = -1;
    if (WaitForSingleObject(h, timeout_ms < 0 ? 0 : (DWORD)timeout_ms) != WAIT_OBJECT_0) {
        shmt_log("peer %d did not end within %d ms: killing it", (int)pid, timeout_ms);
        TerminateProcess(h, KILLED_CODE(SIGKILL));
        WaitForSingleObject(h, 5000);
    } else {
        DWORD code;
        if (GetExitCodeProcess(h, &code))
            rc = code_of(code);
    }
    if (p)
        forget_proc(p);
    else
        CloseHandle(h);
    return rc;
}

int kill_peer(pid_t pid, int sig)
{
    struct peer_proc *p = find_proc(pid);
    HANDLE h = p ? p->proc : OpenProcess(PROCESS_TERMINATE, FALSE, (DWORD)pid);
    if (h) {
        TerminateProcess(h, KILLED_CODE(sig));
        if (!p)
            CloseHandle(h);
    }
    return wait_peer(pid, 10000);
}

int shmt_run(const char *const *argv, char **out, size_t *out_len, int timeout_ms)
{
    char *cmd = command_line(argv);
    HANDLE server, client;
    if (pipe_pair(&server, &client, false) < 0) {
        free(cmd);
        return -1;
    }
    HANDLE nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                             OPEN_EXISTING, 0, NULL);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = nul;
    si.hStdOutput = client;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    fflush(stdout);
    fflush(stderr);
    AcquireSRWLockExclusive(&spawn_lock);
    SetHandleInformation(client, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    if (nul != INVALID_HANDLE_VALUE)
        SetHandleInformation(nul, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    if (si.hStdError && si.hStdError != INVALID_HANDLE_VALUE)
        SetHandleInformation(si.hStdError, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    /* No application name: the search for argv[0] adds ".exe" as a shell would. */
    DWORD err = create_process(NULL, cmd, TRUE, 0, NULL, &si, &pi);
    CloseHandle(client);
    if (nul != INVALID_HANDLE_VALUE)
        CloseHandle(nul);
    ReleaseSRWLockExclusive(&spawn_lock);
    free(cmd);
    if (err) {
        shmt_log("CreateProcess %s: error %lu", argv[0], err);
        CloseHandle(server);
        return -1;
    }
    CloseHandle(pi.hThread);

    struct shmt_link l;
    link_open(&l, server);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = shmt_now_ms() + timeout_ms;
    bool timed_out = false;
    for (;;) {
        int64_t left = deadline - shmt_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        char c;
        int r = shmt_sys_link_read(&l, &c, (int)left);
        if (r == -ETIMEDOUT) {
            timed_out = true;
            break;
        }
        if (r < 0)
            break; /* the end of its output */
        buf[len++] = c;
        /* Take the rest of what one read brought at once. */
        size_t more = l.len - l.pos;
        if (more > cap - len)
            more = cap - len;
        memcpy(buf + len, l.buf + l.pos, more);
        l.pos += more;
        len += more;
    }
    link_close(&l);
    if (timed_out) {
        shmt_log("%s did not finish within %d ms: killing it", argv[0], timeout_ms);
        TerminateProcess(pi.hProcess, KILLED_CODE(SIGKILL));
    }
    int64_t left = deadline - shmt_now_ms();
    DWORD wait = timed_out ? 5000 : (DWORD)(left > 1000 ? left : 1000);
    if (WaitForSingleObject(pi.hProcess, wait) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, KILLED_CODE(SIGKILL));
        WaitForSingleObject(pi.hProcess, 5000);
        timed_out = true;
    }
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    if (buf)
        buf[len] = '\0';
    if (out)
        *out = buf;
    else
        free(buf);
    if (out_len)
        *out_len = len;
    return timed_out ? -1 : code_of(code);
}

/* The creation time, as src/os/win32.c's shml__os_proc_start() reports it; 0 once it ended. */
uint64_t shmt_proc_start(pid_t pid)
{
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
    if (!h)
        return 0;
    FILETIME c, x, k, u;
    uint64_t start = 0;
    if (GetProcessTimes(h, &c, &x, &k, &u) && WaitForSingleObject(h, 0) == WAIT_TIMEOUT)
        start = ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
    CloseHandle(h);
    return start;
}

/* ---- the runner ---- */

static HANDLE shared_map;

/* Wait (bounded) until no process of `job` is left. */
static void job_drain(HANDLE job)
{
    int64_t deadline = shmt_now_ms() + 5000;
    for (;;) {
        JOBOBJECT_BASIC_ACCOUNTING_INFORMATION ai;
        if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &ai, sizeof ai,
                                       NULL) ||
            ai.ActiveProcesses == 0)
            return;
        if (shmt_now_ms() >= deadline) {
            fprintf(stderr, "harness: processes of the test did not go away\n");
            return;
        }
        shmt_sleep_ms(2);
    }
}

void shmt_sys_run_test(const struct shmt_test *t, struct shmt_outcome *o)
{
    HANDLE job = CreateJobObjectA(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
    memset(&li, 0, sizeof li);
    li.BasicLimitInformation.LimitFlags =
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_BREAKAWAY_OK;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li)) {
        o->end = SHMT_END_NOSTART;
        snprintf(o->why, sizeof o->why, "job object: error %lu", GetLastError());
        if (job)
            CloseHandle(job);
        return;
    }
    const char *argv[] = {shmt__self_exe, "--child", t->name, NULL};
    char *cmd = command_line(argv);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    fflush(stdout);
    fflush(stderr);
    /* Suspended until it is in the job, so that every process it starts is in the job too. */
    AcquireSRWLockExclusive(&spawn_lock);
    DWORD err = create_process(shmt__self_exe, cmd, TRUE, CREATE_SUSPENDED, NULL, &si, &pi);
    ReleaseSRWLockExclusive(&spawn_lock);
    free(cmd);
    if (err) {
        o->end = SHMT_END_NOSTART;
        snprintf(o->why, sizeof o->why, "CreateProcess %s: error %lu", shmt__self_exe, err);
        CloseHandle(job);
        return;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        err = GetLastError();
        TerminateProcess(pi.hProcess, KILLED_CODE(SIGKILL));
        o->end = SHMT_END_NOSTART;
        snprintf(o->why, sizeof o->why, "AssignProcessToJobObject: error %lu", err);
    } else {
        ResumeThread(pi.hThread);
        DWORD w = WaitForSingleObject(pi.hProcess, (DWORD)t->timeout_s * 1000u);
        if (w != WAIT_OBJECT_0) {
            TerminateJobObject(job, KILLED_CODE(SIGKILL));
            WaitForSingleObject(pi.hProcess, 10000);
            o->end = SHMT_END_TIMEOUT;
        } else {
            DWORD code = 0;
            GetExitCodeProcess(pi.hProcess, &code);
            if ((code & 0xC0000000u) == 0xC0000000u || code == 0x80000003u) {
                o->end = SHMT_END_EXCEPTION;
                o->code = (int)code;
            } else {
                o->end = SHMT_END_EXIT;
                o->code = (int)code;
            }
        }
    }
    /* What the test left running: its peers, and their peers. */
    TerminateJobObject(job, KILLED_CODE(SIGKILL));
    job_drain(job);
    CloseHandle(job);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    shmt_sys_cleanup((int)pi.dwProcessId);
}

void shmt_sys_peer_init(void)
{
    char hv[32];
    DWORD n = GetEnvironmentVariableA("SHMT_PEER_PIPE", hv, sizeof hv);
    if (n == 0 || n >= sizeof hv)
        return;
    SetEnvironmentVariableA("SHMT_PEER_PIPE", NULL);
    HANDLE h = (HANDLE)(uintptr_t)strtoull(hv, NULL, 10);
    /* Not for the peers of this peer: the test sees the pipe close when this process ends. */
    if (!SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0))
        return;
    link_open(&parent_link, h);
}

/*
 * The last word on an exception nothing handled: end the process with the exception's code
 * at once. Windows would show a dialog, and Wine starts its debugger (which prints a long
 * report and takes seconds): the runner and wait_peer() read the code instead.
 */
static LONG WINAPI on_crash(EXCEPTION_POINTERS *ep)
{
    TerminateProcess(GetCurrentProcess(), (UINT)ep->ExceptionRecord->ExceptionCode);
    return EXCEPTION_EXECUTE_HANDLER;
}

int shmt_sys_init(int argc, char **argv, int *rc)
{
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    SetUnhandledExceptionFilter(on_crash);
    /* "\n" stays "\n", as on Linux: the runner's output is the same bytes on both. */
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
    DWORD n = GetModuleFileNameA(NULL, shmt__self_exe, sizeof shmt__self_exe);
    if (n == 0 || n >= sizeof shmt__self_exe)
        snprintf(shmt__self_exe, sizeof shmt__self_exe, "%s", argv[0]);
    if (argc < 3 || strcmp(argv[1], "--child") != 0)
        return 0;

    /* A test process: run test argv[2] with the runner's shared state. */
    *rc = 127;
    char name[128];
    n = GetEnvironmentVariableA("SHMT_SHARED", name, sizeof name);
    HANDLE m = n > 0 && n < sizeof name ? OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, name)
                                        : NULL;
    void *view = m ? MapViewOfFile(m, FILE_MAP_ALL_ACCESS, 0, 0, sizeof *shmt__shared) : NULL;
    if (!view) {
        fprintf(stderr, "harness: --child is for the runner (no shared state: error %lu)\n",
                GetLastError());
        return 1;
    }
    shmt__shared = view;
    const struct shmt_test *t = shmt__find_test(argv[2]);
    if (!t) {
        fprintf(stderr, "harness: no test named %s\n", argv[2]);
        return 1;
    }
    shmt__run_test_here(t);
}

int shmt_sys_runner_init(void)
{
    /* msvcrt has no line buffering: unbuffered keeps the runner's lines in order. */
    setvbuf(stdout, NULL, _IONBF, 0);
    char name[64];
    snprintf(name, sizeof name, "Local\\shmt-%lu", GetCurrentProcessId());
    shared_map = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                                    (DWORD)sizeof *shmt__shared, name);
    void *view = shared_map ? MapViewOfFile(shared_map, FILE_MAP_ALL_ACCESS, 0, 0, 0) : NULL;
    if (!view) {
        fprintf(stderr, "harness: shared state %s: error %lu\n", name, GetLastError());
        return -1;
    }
    shmt__shared = view;
    /* Test processes find it through their environment (inherited from here). */
    SetEnvironmentVariableA("SHMT_SHARED", name);
    return 0;
}

void shmt_sys_runner_fini(void)
{
    UnmapViewOfFile(shmt__shared);
    CloseHandle(shared_map);
}

/* ---- threads ---- */

struct shmt_thread {
    HANDLE h;
    void (*fn)(void *);
    void *arg;
};

static DWORD WINAPI thread_main(LPVOID arg)
{
    struct shmt_thread *t = arg;
    t->fn(t->arg);
    return 0;
}

struct shmt_thread *shmt_sys_thread_start(void (*fn)(void *), void *arg)
{
    struct shmt_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    t->h = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    if (!t->h) {
        free(t);
        return NULL;
    }
    return t;
}

void shmt_sys_thread_join(struct shmt_thread *t)
{
    WaitForSingleObject(t->h, INFINITE);
    CloseHandle(t->h);
    free(t);
}
