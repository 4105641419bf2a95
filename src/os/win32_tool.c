/*
 * win32_tool.c - the tool's platform layer (cli/sys.h) on Windows: console control events as
 * stop requests, the console for top, serve's command through CreateProcess in a job.
 */
#include <windows.h> /* first: the other Windows headers need its types */

#include "sys.h"
#include "cmd_channel.h"

#include <conio.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIGTERM
#define SIGTERM 15
#endif

void cli_sys_init(void)
{
    /* Bytes in and out unchanged: no CR LF translation, no end at a Ctrl-Z byte; and the
       messages on stderr end their lines as on stdout. */
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
}

int64_t cli_now_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t t = (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
    return (t - 116444736000000000LL) * 100; /* from 100 ns units since 1601 */
}

int64_t cli_mono_ns(void)
{
    LARGE_INTEGER c, f;
    QueryPerformanceCounter(&c);
    QueryPerformanceFrequency(&f);
    return (int64_t)(c.QuadPart / f.QuadPart) * 1000000000 +
           (int64_t)(c.QuadPart % f.QuadPart) * 1000000000 / f.QuadPart;
}

static void (*stop_fn)(int sig);

/* Runs on a thread the system starts for the event. */
static BOOL WINAPI on_console_event(DWORD type)
{
    if (!stop_fn)
        return FALSE;
    stop_fn(type == CTRL_C_EVENT ? SIGINT : SIGTERM);
    /*
     * The tool ends by itself now. When the console closes (or the user logs off, or the
     * system shuts down), Windows ends the process as soon as this returns: wait here for
     * the main thread to finish instead (the system allows a few seconds).
     */
    if (type == CTRL_CLOSE_EVENT || type == CTRL_LOGOFF_EVENT || type == CTRL_SHUTDOWN_EVENT)
        Sleep(INFINITE);
    return TRUE;
}

void cli_sys_catch_stop(void (*on_stop)(int sig))
{
    stop_fn = on_stop;
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

bool cli_sys_reader_gone(int err)
{
    /* The C library may leave errno alone; the system's own error says it. */
    DWORD e = GetLastError();
    return err == EPIPE || e == ERROR_NO_DATA || e == ERROR_BROKEN_PIPE ||
           e == ERROR_PIPE_NOT_CONNECTED;
}

/* The relative id (last sub-authority) of the calling user's SID: what the library records
   as a uid on Windows; 0 if unknown. */
static uint32_t my_rid(void)
{
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return 0;
    union {
        TOKEN_USER tu;
        unsigned char bytes[256];
    } u;
    DWORD len = 0;
    uint32_t rid = 0;
    if (GetTokenInformation(tok, TokenUser, &u, sizeof u, &len)) {
        UCHAR n = *GetSidSubAuthorityCount(u.tu.User.Sid);
        if (n > 0)
            rid = (uint32_t)*GetSidSubAuthority(u.tu.User.Sid, n - 1);
    }
    CloseHandle(tok);
    return rid;
}

void cli_sys_user_name(uint32_t uid, char *buf, size_t cap)
{
    /* A uid is only the relative id of a SID: its name is known for the caller alone. */
    char name[257];
    DWORD len = sizeof name;
    if (uid != 0 && uid == my_rid() && GetUserNameA(name, &len))
        snprintf(buf, cap, "%s", name);
    else
        snprintf(buf, cap, "%u", uid);
}

ssize_t cli_sys_getline(char **line, size_t *cap, FILE *f)
{
    size_t n = 0;
    int c;
    _lock_file(f);
    while ((c = _getc_nolock(f)) != EOF) {
        if (n + 2 > *cap) {
            size_t ncap = *cap < 128 ? 128 : *cap * 2;
            char *p = realloc(*line, ncap);
            if (!p) {
                _unlock_file(f);
                errno = ENOMEM;
                return -1;
            }
            *line = p;
            *cap = ncap;
        }
        (*line)[n++] = (char)c;
        if (c == '\n')
            break;
    }
    _unlock_file(f);
    if (n == 0)
        return -1; /* the end, or an error ferror() tells */
    (*line)[n] = '\0';
    return (ssize_t)n;
}

/* ---- keeping a win: segment: a holder process ---- */

static bool append_arg(char **line, size_t *len, size_t *cap, const char *s);

/*
 * The kernel names of a win: segment: its mapping (`Local\NAME` or `Global\NAME`) and the
 * event its holder waits on (`Local\shmlh-NAME`, docs/FORMAT.md "Windows"), which
 * shml_segment_unlink() sets. 0, or -1 if `addr` is no win: address (nothing to hold).
 */
static int hold_names(const char *addr, char *mapping, char *event, size_t cap)
{
    if (strncmp(addr, "win:", 4) != 0)
        return -1;
    const char *name = addr + 4, *ns = "Local";
    if (strncmp(name, "Global\\", 7) == 0) {
        ns = "Global";
        name += 7;
    } else if (strncmp(name, "Local\\", 6) == 0) {
        name += 6;
    }
    int a = snprintf(mapping, cap, "%s\\%s", ns, name);
    int b = snprintf(event, cap, "%s\\shmlh-%s", ns, name);
    return a > 0 && (size_t)a < cap && b > 0 && (size_t)b < cap ? 0 : -1;
}

/* How long create waits for its holder to hold the segment. */
#define HOLD_START_MS 10000

int cli_sys_keep(const char *addr, char *why, size_t cap)
{
    char mapping[600], event[600];
    if (hold_names(addr, mapping, event, sizeof mapping) < 0)
        return 0; /* file: segments persist by themselves; others cannot be made here */
    char exe[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, exe, sizeof exe);
    if (n == 0 || n >= sizeof exe) {
        snprintf(why, cap, "cannot find the tool's own program to hold the segment");
        return -1;
    }
    char *line = NULL;
    size_t len = 0, lcap = 0;
    if (!append_arg(&line, &len, &lcap, exe) || !append_arg(&line, &len, &lcap, "__hold") ||
        !append_arg(&line, &len, &lcap, addr)) {
        free(line);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    /*
     * Detached, in no job of ours where the job allows it, its standard handles on NUL: the
     * holder outlives the tool and its console, and keeps no pipe of whoever waits for the
     * tool's output (a script's $(...) would wait for the holder too). The NUL handle is the
     * only inheritable one made here.
     */
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE nul = CreateFileA("NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             &sa, OPEN_EXISTING, 0, NULL);
    if (nul == INVALID_HANDLE_VALUE) {
        free(line);
        snprintf(why, cap, "cannot open NUL for the segment's holder (error %lu)",
                 (unsigned long)GetLastError());
        return -1;
    }
    /* Only that handle is inherited: the tool's own standard handles may be inheritable
       too (a pipe the caller reads to its end would then stay open in the holder). */
    SIZE_T alen = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &alen);
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = malloc(alen);
    if (!attrs || !InitializeProcThreadAttributeList(attrs, 1, 0, &alen) ||
        !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, &nul, sizeof nul,
                                   NULL, NULL)) {
        free(attrs);
        CloseHandle(nul);
        free(line);
        snprintf(why, cap, "cannot prepare the segment's holder (error %lu)",
                 (unsigned long)GetLastError());
        return -1;
    }
    STARTUPINFOEXA si;
    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = si.StartupInfo.hStdOutput = si.StartupInfo.hStdError = nul;
    si.lpAttributeList = attrs;
    PROCESS_INFORMATION pi;
    DWORD flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | EXTENDED_STARTUPINFO_PRESENT;
    BOOL ok = CreateProcessA(NULL, line, NULL, NULL, TRUE, flags | CREATE_BREAKAWAY_FROM_JOB,
                             NULL, NULL, &si.StartupInfo, &pi);
    if (!ok && GetLastError() == ERROR_ACCESS_DENIED)
        ok = CreateProcessA(NULL, line, NULL, NULL, TRUE, flags, NULL, NULL, &si.StartupInfo,
                            &pi);
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
    CloseHandle(nul);
    free(line);
    if (!ok) {
        snprintf(why, cap, "cannot start a holder for the segment (error %lu)",
                 (unsigned long)GetLastError());
        return -1;
    }
    CloseHandle(pi.hThread);
    /* Held once its event exists (the holder makes it after opening the mapping). */
    int r = -1;
    for (DWORD waited = 0; waited < HOLD_START_MS; waited += 10) {
        HANDLE ev = OpenEventA(SYNCHRONIZE, FALSE, event);
        if (ev) {
            CloseHandle(ev);
            r = 0;
            break;
        }
        if (WaitForSingleObject(pi.hProcess, 10) == WAIT_OBJECT_0) {
            DWORD code = 0;
            GetExitCodeProcess(pi.hProcess, &code);
            snprintf(why, cap, "the segment's holder ended at once (status %lu)",
                     (unsigned long)code);
            break;
        }
    }
    if (r < 0 && WaitForSingleObject(pi.hProcess, 0) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        snprintf(why, cap, "the segment's holder did not start within %d s", HOLD_START_MS / 1000);
    }
    CloseHandle(pi.hProcess);
    return r;
}

int cli_sys_hold(const char *addr)
{
    char mapping[600], event[600];
    if (hold_names(addr, mapping, event, sizeof mapping) < 0) {
        fprintf(stderr, "shmlink: __hold: %s is no win: address\n", addr);
        return 2;
    }
    /* The handle is what keeps the mapping; it is never mapped here. */
    HANDLE m = OpenFileMappingA(FILE_MAP_READ, FALSE, mapping);
    if (!m)
        return 1;
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, event);
    if (!ev) {
        CloseHandle(m);
        return 1;
    }
    if (GetLastError() != ERROR_ALREADY_EXISTS)
        WaitForSingleObject(ev, INFINITE); /* until shml_segment_unlink() sets it */
    /* Else another holder holds it already: one is enough. */
    CloseHandle(ev);
    CloseHandle(m);
    return 0;
}

/* ---- serve's command ---- */

/* Append `s` to the command line as one argument, quoted as the C runtime's parser reads it. */
static bool append_arg(char **line, size_t *len, size_t *cap, const char *s)
{
    size_t need = *len + 2 * strlen(s) + 4;
    if (need > *cap) {
        size_t ncap = need * 2;
        char *n = realloc(*line, ncap);
        if (!n)
            return false;
        *line = n;
        *cap = ncap;
    }
    char *p = *line + *len;
    if (*len > 0)
        *p++ = ' ';
    bool plain = s[0] != '\0' && strpbrk(s, " \t\n\v\"") == NULL;
    if (plain) {
        size_t n = strlen(s);
        memcpy(p, s, n);
        p += n;
    } else {
        *p++ = '"';
        for (const char *c = s;; c++) {
            size_t slashes = 0;
            while (*c == '\\') {
                slashes++;
                c++;
            }
            if (*c == '\0') {
                /* Backslashes before the closing quote are doubled. */
                for (size_t i = 0; i < 2 * slashes; i++)
                    *p++ = '\\';
                break;
            }
            if (*c == '"') {
                for (size_t i = 0; i < 2 * slashes + 1; i++)
                    *p++ = '\\';
            } else {
                for (size_t i = 0; i < slashes; i++)
                    *p++ = '\\';
            }
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p = '\0';
    *len = (size_t)(p - *line);
    return true;
}

static int errno_of(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
        return EACCES;
    case ERROR_BAD_EXE_FORMAT:
        return ENOEXEC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/* The stdin writer: the request, then the newline, then EOF. */
struct feeder {
    HANDLE pipe;
    const unsigned char *data;
    size_t len;
    bool newline;
};

static DWORD WINAPI feed(void *arg)
{
    struct feeder *fd = arg;
    size_t off = 0;
    while (off < fd->len) {
        DWORD chunk = fd->len - off > 65536 ? 65536 : (DWORD)(fd->len - off), w = 0;
        if (!WriteFile(fd->pipe, fd->data + off, chunk, &w, NULL))
            break; /* a command that stops reading does not get the rest */
        off += w;
    }
    DWORD w = 0;
    if (off == fd->len && fd->newline)
        WriteFile(fd->pipe, "\n", 1, &w, NULL);
    CloseHandle(fd->pipe);
    fd->pipe = NULL;
    return 0;
}

void cli_sys_run_filter(char **argv, const unsigned char *req, size_t len, bool newline,
                        unsigned char *out_buf, size_t cap, struct cli_filter *f)
{
    memset(f, 0, sizeof *f);
    char *line = NULL;
    size_t llen = 0, lcap = 0;
    for (char **a = argv; *a; a++) {
        if (!append_arg(&line, &llen, &lcap, *a)) {
            free(line);
            f->failed = CLI_FILTER_START;
            f->err = ENOMEM;
            return;
        }
    }
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE in_r = NULL, in_w = NULL, out_r = NULL, out_w = NULL;
    if (!CreatePipe(&in_r, &in_w, &sa, 0) || !CreatePipe(&out_r, &out_w, &sa, 0)) {
        f->failed = CLI_FILTER_PIPE;
        f->err = errno_of(GetLastError());
        goto out;
    }
    /* Our ends stay ours: the command inherits only its own. */
    SetHandleInformation(in_w, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(out_r, HANDLE_FLAG_INHERIT, 0);

    /*
     * The job ends the command and whatever it started when serve stops it, and when serve
     * dies in any way: the job's only handle is serve's, closed by the system at its end.
     */
    HANDLE job = CreateJobObjectA(NULL, NULL);
    if (job) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
        memset(&li, 0, sizeof li);
        li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li);
    }
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = in_r;
    si.hStdOutput = out_w;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    /* Its own process group: a Ctrl-C meant for serve reaches the command only through
       serve, which decides what becomes of the request (the group ignores Ctrl-C). */
    if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, CREATE_SUSPENDED | CREATE_NEW_PROCESS_GROUP,
                        NULL, NULL, &si, &pi)) {
        DWORD e = GetLastError();
        f->failed = e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ||
                            e == ERROR_BAD_EXE_FORMAT || e == ERROR_ACCESS_DENIED
                        ? CLI_FILTER_EXEC
                        : CLI_FILTER_START;
        f->err = errno_of(e);
        if (job)
            CloseHandle(job);
        goto out;
    }
    /* Without the job (none could be made, or serve's own job forbids one), a stop ends the
       command alone, with TerminateProcess. */
    if (job && !AssignProcessToJobObject(job, pi.hProcess)) {
        CloseHandle(job);
        job = NULL;
    }
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    CloseHandle(in_r);
    CloseHandle(out_w);
    in_r = out_w = NULL;

    struct feeder fd = {in_w, req, len, newline};
    in_w = NULL; /* the feeder closes it */
    HANDLE feeder = CreateThread(NULL, 0, feed, &fd, 0, NULL);
    if (!feeder) {
        CloseHandle(fd.pipe); /* the command reads EOF */
        fd.pipe = NULL;
    }
    for (;;) {
        if (cli_stop_requested) {
            f->stopped = true;
            break;
        }
        DWORD avail = 0;
        if (!PeekNamedPipe(out_r, NULL, 0, NULL, &avail, NULL))
            break; /* every writer closed it: the command is done with its stdout */
        if (avail == 0) {
            Sleep(10);
            continue;
        }
        unsigned char scratch[4096];
        unsigned char *dst = f->got < cap ? out_buf + f->got : scratch;
        size_t room = f->got < cap ? cap - f->got : sizeof scratch;
        DWORD want = room < avail ? (DWORD)room : avail, r = 0;
        if (!ReadFile(out_r, dst, want, &r, NULL) || r == 0)
            break;
        f->total += r;
        if (f->got < cap)
            f->got += r;
    }
    if (f->stopped) {
        if (!job || !TerminateJobObject(job, 1))
            TerminateProcess(pi.hProcess, 1);
    }
    CloseHandle(out_r);
    out_r = NULL;
    if (feeder) {
        /* A feeder still blocked on a full pipe once the command is gone (a process it
           started may hold its stdin unread) is cancelled: the rest of the request has no
           reader. */
        WaitForSingleObject(pi.hProcess, INFINITE);
        if (WaitForSingleObject(feeder, 100) != WAIT_OBJECT_0)
            CancelSynchronousIo(feeder);
        WaitForSingleObject(feeder, INFINITE);
        CloseHandle(feeder);
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    f->exit_status = (int)code;
    CloseHandle(pi.hProcess);
    if (job)
        CloseHandle(job);
out:
    if (in_r)
        CloseHandle(in_r);
    if (in_w)
        CloseHandle(in_w);
    if (out_r)
        CloseHandle(out_r);
    if (out_w)
        CloseHandle(out_w);
    free(line);
}

/* ---- top's console ---- */

static HANDLE con_out;
static DWORD saved_out_mode;
static bool entered;

static const char enter_seq[] = "\033[?1049h\033[?25l"; /* alternate screen, cursor hidden */
static const char leave_seq[] = "\033[?25h\033[?1049l";

bool cli_sys_isatty(int fd)
{
    return _isatty(fd) != 0;
}

bool cli_sys_term_enter(bool keys)
{
    (void)keys; /* _kbhit() reads keys without echo whatever the mode */
    con_out = GetStdHandle(STD_OUTPUT_HANDLE);
    if (!GetConsoleMode(con_out, &saved_out_mode))
        return false;
    /* The view is drawn with ANSI sequences: a console that cannot read them gets lines. */
    if (!SetConsoleMode(con_out, saved_out_mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING))
        return false;
    entered = true;
    fputs(enter_seq, stdout);
    fflush(stdout);
    return true;
}

void cli_sys_term_leave(void)
{
    if (!entered)
        return;
    fputs(leave_seq, stdout);
    fflush(stdout);
    SetConsoleMode(con_out, saved_out_mode);
    entered = false;
}

void cli_sys_term_size(size_t *cols, size_t *rows)
{
    CONSOLE_SCREEN_BUFFER_INFO bi;
    *cols = 0;
    *rows = 0;
    if (GetConsoleScreenBufferInfo(GetStdHandle(STD_OUTPUT_HANDLE), &bi)) {
        *cols = (size_t)(bi.srWindow.Right - bi.srWindow.Left + 1);
        *rows = (size_t)(bi.srWindow.Bottom - bi.srWindow.Top + 1);
    }
}

int cli_sys_term_wait(int64_t deadline, bool keys)
{
    for (;;) {
        if (cli_stop_requested)
            return 1;
        int64_t left = deadline - cli_mono_ns();
        if (left <= 0)
            return 0;
        while (keys && _kbhit()) {
            int c = _getch();
            if (c == 'q' || c == 'Q' || c == 3)
                return 1;
        }
        /* Short naps, so that a key and a stop are seen within 20 ms. */
        int64_t ms = (left + 999999) / 1000000;
        Sleep((DWORD)(ms > 20 ? 20 : ms));
    }
}
