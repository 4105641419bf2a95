/*
 * harness_sys.h - what the portable part of the harness (harness.c: registry, assertions,
 * output, names, the cleanup registry, the line protocol, main()) asks of the platform file
 * the build picks: harness_unix.c (fork, pipes, /proc) or harness_win32.c (CreateProcess in a
 * job object, named pipes, a named file mapping). Not for tests: they include harness.h only.
 *
 * Every function here is called from one thread of the runner, the test process or a peer,
 * unless it says otherwise.
 */
#ifndef SHMT_HARNESS_SYS_H
#define SHMT_HARNESS_SYS_H

#include "harness.h"

#include <stdatomic.h>

/* ---- the registry (harness.c) ---- */

struct shmt_test {
    const char *name;
    shmt_test_fn fn;
    int timeout_s;
};

/* The test named exactly `name`, or NULL. */
const struct shmt_test *shmt__find_test(const char *name);
/*
 * Run test t in this process as a test process does (its name in the output, SIGPIPE
 * ignored), then exit(0): the platform's child entry point. Never returns.
 */
SHMT_NORETURN void shmt__run_test_here(const struct shmt_test *t);

/* ---- state shared between the runner and a test process (survives the test's death) ---- */

enum shmt_cleanup_kind {
    SHMT_CL_POSIX = 1, /* text: a POSIX shm name without the leading '/' */
    SHMT_CL_SYSV_KEY,  /* num: a System V key */
    SHMT_CL_SYSV_ID,   /* num: a System V id */
    SHMT_CL_PATH,      /* text: a file or a directory (removed with its contents) */
    SHMT_CL_WIN,       /* text: a win: address */
};

#define SHMT_MAX_CLEANUP 256
#define SHMT_TEXT_MAX 4096
struct shmt_cleanup_item {
    int kind;
    int32_t num;
    char text[SHMT_TEXT_MAX];
};
struct shmt_shared {
    atomic_uint n_cleanup; /* slots taken; may pass SHMT_MAX_CLEANUP (then ignored) */
    char skip_reason[512];
    struct shmt_cleanup_item items[SHMT_MAX_CLEANUP];
};

/* The runner's shared state: in the runner and in a test process; NULL in a peer. */
extern struct shmt_shared *shmt__shared;
/* Name of the running test or peer ("harness" in the runner). */
extern const char *shmt__current;
/* Whether this process is a peer. */
extern bool shmt__in_peer;
/* Path of this binary (shmt_sys_init() fills it). */
extern char shmt__self_exe[SHMT_TEXT_MAX];

/* Register an object for removal after the test (ignored in a peer, which has no registry). */
void shmt__add_cleanup(int kind, int32_t num, const char *text);
/* A fresh name "<prefix>shmt.PID.N" from the test's pool (valid until the test ends). */
const char *shmt__new_name(const char *prefix);

/* ---- the platform (harness_unix.c, harness_win32.c) ---- */

/*
 * First thing main() does: fill shmt__self_exe, and run whatever process kind the platform
 * starts with arguments of its own (harness_win32.c: "--child NAME", a test process). Returns
 * 1 with *rc set when main() must return *rc, 0 to go on.
 */
int shmt_sys_init(int argc, char **argv, int *rc);
/* In the runner, before the first test: set up what test processes share with it. 0 or -1. */
int shmt_sys_runner_init(void);
void shmt_sys_runner_fini(void);
/* In a peer, before its function runs: find the pipe to the test (see shmt_sys_link()). */
void shmt_sys_peer_init(void);

/* How a test process ended (shmt_sys_run_test()). */
enum shmt_end {
    SHMT_END_EXIT,      /* code: its exit code */
    SHMT_END_SIGNAL,    /* code: the signal that killed it */
    SHMT_END_EXCEPTION, /* code: the exception (an NTSTATUS) that ended it */
    SHMT_END_TIMEOUT,   /* it ran past its timeout and was killed with all its processes */
    SHMT_END_NOSTART,   /* it could not be started: `why` says why */
};
struct shmt_outcome {
    enum shmt_end end;
    int code;
    char why[256];
};
/*
 * Run test t in a process of its own with t's timeout, kill whatever of its processes is left
 * after it ends, and remove what it registered for cleanup (shmt_sys_cleanup()).
 */
void shmt_sys_run_test(const struct shmt_test *t, struct shmt_outcome *o);
/* Remove what the test process `pid` registered (and, where the platform can, named). */
void shmt_sys_cleanup(int pid);
/* What the runner says it killed on a timeout: "process group", "job". */
extern const char *const shmt_sys_group_word;

/* The calling process's id. */
int shmt_sys_pid(void);
/* Write len bytes to standard error in one call (so that lines of processes do not mix). */
void shmt_sys_write_err(const char *buf, size_t len);
/* End the process now with `code`: no atexit handlers, no leak report. */
SHMT_NORETURN void shmt_sys_exit(int code);
/* Name of errno value err > 0 ("ENOENT"), or NULL if unknown. */
const char *shmt_sys_errname(int err);
/* Name of a signal without "SIG" ("KILL"), or "?". */
const char *shmt_sys_signame(int sig);
/* Does `name` match the shell pattern `pattern` (fnmatch() with no flags)? */
bool shmt_sys_match(const char *pattern, const char *name);

/*
 * The line link between a test and a peer: in the test, the link to peer `pid`; in a peer,
 * pid 0 is the link to the test. NULL if there is none.
 */
struct shmt_link;
struct shmt_link *shmt_sys_link(pid_t pid);
/* Write all of buf: 0 or -errno (-EPIPE: the other side is gone). */
int shmt_sys_link_write(struct shmt_link *l, const char *buf, size_t len);
/* Read one byte into *c within timeout_ms: 0, -ETIMEDOUT, -EPIPE (closed), -errno. */
int shmt_sys_link_read(struct shmt_link *l, char *c, int timeout_ms);

/* A thread running fn(arg), for the toggler; join waits for its end. */
struct shmt_thread;
struct shmt_thread *shmt_sys_thread_start(void (*fn)(void *), void *arg);
void shmt_sys_thread_join(struct shmt_thread *t);

#endif /* SHMT_HARNESS_SYS_H */
