/*
 * sys.h - what the tool needs from its platform, beyond the library: stop requests, the
 * terminal of `top`, the filter command of `serve`, user names. One implementation per
 * platform, picked by the build: src/os/tool_unix.c and src/os/win32_tool.c.
 */
#ifndef SHML_CLI_SYS_H
#define SHML_CLI_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* printf-like functions, checked in the dialect the C library's headers chose (mingw's C99
   printf where __USE_MINGW_ANSI_STDIO selects it). */
#ifdef __MINGW_PRINTF_FORMAT
#define CLI_PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#else
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

/*
 * Prepare the process (once, first thing in main()): a closed pipe must not kill the tool
 * mid-write (the write fails with EPIPE instead), and stdin and stdout carry bytes unchanged.
 */
void cli_sys_init(void);

/*
 * Call on_stop(sig) when the user asks the tool to stop: SIGINT or SIGTERM on POSIX systems;
 * Ctrl-C (as SIGINT), Ctrl-Break and closing the console (as SIGTERM) on Windows. On POSIX the
 * call comes from a signal handler (so on_stop must be async-signal-safe) and a blocked read
 * of stdin returns EINTR; on Windows it comes from another thread.
 */
void cli_sys_catch_stop(void (*on_stop)(int sig));

/* The wall clock (ns since 1970) and a monotonic clock (ns), now. */
int64_t cli_now_ns(void);
int64_t cli_mono_ns(void);

/*
 * Read a line of `f` as POSIX getline() does (the newline kept, NUL bytes allowed): its
 * length, or -1 at the end or on error (errno then says which, EINTR included).
 */
ssize_t cli_sys_getline(char **line, size_t *cap, FILE *f);

/*
 * Did a write to stdout that just failed with errno `err` fail because its reader went away
 * (a closed pipe)? Call it right after the failure.
 */
bool cli_sys_reader_gone(int err);

/* The name of user `uid` into buf, or its number when the system has no name for it. */
void cli_sys_user_name(uint32_t uid, char *buf, size_t cap);

/* ---- keeping a segment after the tool exits ---- */

/*
 * Make the segment at canonical address `addr`, just created by the tool, outlive the tool
 * where the system removes a segment with its last handle (Windows: a `win:` mapping). There a
 * holder process is started (`shmlink __hold ADDR`, detached), which keeps a handle until
 * shml_segment_unlink() (`shmlink rm`) tells it to let go; the call returns once it holds the
 * handle. Elsewhere segments persist by themselves and this returns 0 at once. Returns 0, or
 * -1 with the reason in why.
 */
int cli_sys_keep(const char *addr, char *why, size_t cap);

/*
 * The holder's side (the hidden verb `__hold ADDR`): hold the segment until released, then
 * exit. Returns the exit status. On systems without holders, a usage error.
 */
int cli_sys_hold(const char *addr);

/* ---- serve's command ---- */

/* Where running a command failed before it could run (cli_sys_run_filter()). */
enum cli_filter_failure {
    CLI_FILTER_RAN = 0,
    CLI_FILTER_PIPE,  /* no pipe could be made */
    CLI_FILTER_START, /* no process could be made */
    CLI_FILTER_EXEC,  /* the process could not run the command (not found, not executable) */
};

/* What running a command gave. */
struct cli_filter {
    enum cli_filter_failure failed; /* CLI_FILTER_RAN, or where it failed (errno in `err`) */
    int err;                        /* the errno of the failure */
    bool stopped;     /* a stop request ended the run: the command was stopped */
    size_t got;       /* bytes of its stdout kept (at most the cap) */
    size_t total;     /* bytes it wrote to stdout, kept or not */
    int exit_status;  /* its exit status, when it exited */
    int signal;       /* the signal that killed it (POSIX), else 0 */
};

/*
 * Run argv[0] (looked up in PATH) with argv, `in` (len bytes, then a newline when `newline`)
 * on its stdin and its stdout kept in out (the first cap bytes; the rest is read and counted,
 * so the command never blocks on a full pipe); stderr passes through. The command runs in
 * its own process group (a job on Windows), so that a stop ends it and what it started; it
 * dies with the tool even when the tool is killed outright. Returns when the command has
 * ended, or when cli_stop_requested becomes non-zero (then it is stopped). Never fails: where
 * something could not be done, f->failed says so.
 */
void cli_sys_run_filter(char **argv, const unsigned char *in, size_t len, bool newline,
                        unsigned char *out, size_t cap, struct cli_filter *f);

/* ---- top's terminal ---- */

/* Is descriptor fd (0 stdin, 1 stdout) a terminal? */
bool cli_sys_isatty(int fd);
/*
 * Take the terminal for a full-screen view: the alternate screen, the cursor hidden, keys
 * read one by one without echo when `keys`. Returns false, changing nothing, where the
 * terminal cannot (the view then prints plain lines).
 */
bool cli_sys_term_enter(bool keys);
/* Give the terminal back as cli_sys_term_enter() found it. */
void cli_sys_term_leave(void);
/* Its size, or 0 and 0 when unknown. */
void cli_sys_term_size(size_t *cols, size_t *rows);
/*
 * Wait until `deadline` (cli_mono_ns()), reading keys if `keys`. Returns 1 if the view should
 * end ('q', a stop request), 0 to refresh (the deadline, or the terminal was resized).
 */
int cli_sys_term_wait(int64_t deadline, bool keys);

#endif /* SHML_CLI_SYS_H */
