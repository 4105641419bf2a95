/*
 * os.h - the platform mechanisms the core needs, one implementation file per platform
 * (linux.c now, win32.c later). Core files include this and never a platform header's
 * #ifdef. Every function is thread-safe.
 */
#ifndef SHML_OS_H
#define SHML_OS_H

#include "atomic.h"
#include "internal.h"
#include "shmlink/sync.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of a normal page, and of a default huge page (0 if the system has none). */
SHML_INTERNAL size_t shml__os_page_size(void);
SHML_INTERNAL size_t shml__os_hugepage_size(void);
/* Free huge pages of the default size reserved in the system (HugePages_Free), or -errno. */
SHML_INTERNAL long shml__os_hugepages_free(void);

/* Text of a system errno value: static, thread-safe, never NULL. */
SHML_INTERNAL const char *shml__os_strerror(int err);

/* Clocks, in nanoseconds. */
SHML_INTERNAL int64_t shml__os_mono_ns(void);
SHML_INTERNAL int64_t shml__os_real_ns(void);
/* Sleep for ns nanoseconds (restarted on EINTR). */
SHML_INTERNAL void shml__os_sleep_ns(int64_t ns);

/* The working directory, into buf; 0 or -errno (-ERANGE if it does not fit). */
SHML_INTERNAL int shml__os_cwd(char *buf, size_t cap);
/*
 * Does `path` name one file whatever the working directory is? Linux: it starts with '/'.
 * Windows: it starts with a drive ("C:"), a separator ('\' or '/': the current drive's root,
 * or a UNC path). A path that is not is joined to shml__os_cwd() with SHML_OS_PATH_SEP.
 */
SHML_INTERNAL bool shml__os_path_absolute(const char *path);
#ifdef _WIN32
#define SHML_OS_PATH_SEP '\\'
#else
#define SHML_OS_PATH_SEP '/'
#endif

/* Identity of the calling process (the pid is cached, and reset in fork()ed children). */
SHML_INTERNAL int32_t shml__os_pid(void);
SHML_INTERNAL uint32_t shml__os_euid(void);

/*
 * Start time of process `pid` in clock ticks since boot (immutable for the life of a process,
 * so pid + start time name one process even after the pid is reused). Returns 0, -ESRCH if no
 * such process, -errno otherwise.
 */
SHML_INTERNAL int shml__os_proc_start(int32_t pid, uint64_t *start);
/*
 * Is the process (pid, start) alive? start == 0 checks the pid alone. Returns 1 alive, 0 dead
 * (or the pid now belongs to another process), -1 unknown (among others: a process that
 * /proc hides, as hidepid does for other users', but that the kernel still finds).
 */
SHML_INTERNAL int shml__os_proc_alive(int32_t pid, uint64_t start);
/*
 * Start time of thread `tid` (of any process) in clock ticks since boot. Returns 0, -ESRCH if
 * no such thread or it is a zombie (it can never run again), -errno otherwise.
 */
SHML_INTERNAL int shml__os_thread_start(int32_t tid, uint64_t *start);
/*
 * A tag of the calling process's pid namespace (process and thread ids mean something only
 * inside one): equal tags, equal namespaces. 0 if it cannot be known. Cached; reset in fork()ed
 * children.
 */
SHML_INTERNAL uint32_t shml__os_pid_ns(void);
/*
 * Does the tag `ns` that another process recorded (shml__os_pid_ns()) name a pid namespace
 * other than the caller's? Its pids and start times then mean nothing here: "not in my /proc"
 * is no death. False when either tag is unknown (0).
 */
static inline bool shml__os_pid_ns_other(uint32_t ns)
{
    uint32_t mine = shml__os_pid_ns();
    return ns != 0 && mine != 0 && ns != mine;
}
/* Fill buf with len unpredictable bytes (the kernel's random source). 0 or -errno. */
SHML_INTERNAL int shml__os_random(void *buf, size_t len);
/* 16 bytes naming the current boot (the same for every process until reboot). */
SHML_INTERNAL int shml__os_boot_id(uint8_t id[16]);

/* A duplicate of descriptor `fd`, closed on exec: the new fd, or -errno. */
SHML_INTERNAL int shml__os_fd_dup(int fd);
/* Close descriptor `fd` (one this process owns). */
SHML_INTERNAL void shml__os_fd_close(int fd);

/*
 * Send one fd with `len` bytes of payload over a connected Unix socket, and receive it.
 * recv waits up to timeout_ns (SHML_FOREVER, 0 = poll). Returns 0 / the payload length, or
 * -errno: -ETIMEDOUT, -ECONNRESET (peer closed), -EPROTO (no fd came with the payload).
 */
SHML_INTERNAL int shml__os_fd_send(int sock, int fd, const void *payload, size_t len);
SHML_INTERNAL ssize_t shml__os_fd_recv(int sock, int *fd, void *payload, size_t cap,
                                       int64_t timeout_ns);

/*
 * Describe what an open fd refers to as an address ("posix:/name", "memfd:name",
 * "file:/path") into buf. Returns the SHML_BACKEND_* it belongs to, or -errno.
 */
SHML_INTERNAL int shml__os_fd_address(int fd, char *buf, size_t cap);

/*
 * Does any process map the file at `path` (a /dev/shm object)? Scans /proc/PID/maps.
 * Returns 1 yes, 0 no, -errno if it cannot tell (-EACCES: a process whose maps a caller
 * other than root may not read, another user's, could be mapping it).
 */
SHML_INTERNAL int shml__os_path_mapped(const char *path);

/* ---- surviving an object that shrinks under its mapping (sigbus_unix.c) ---- */

/* A registered mapping: process-local, owned by whoever added it until it removes it. */
struct shml__os_guard;
/*
 * Register the mapping [base, base + len) of a shared object, and make sure the SIGBUS handler
 * is installed (again, if another handler replaced it since; the one found is chained to).
 * From then on a SIGBUS in the mapping (the object was truncated, or tmpfs could not back a
 * page) replaces the whole mapping with zero pages of the same protection and marks the entry
 * lost, instead of killing the process. Returns 0 with *out set, or -ENOMEM. Thread-safe.
 */
SHML_INTERNAL int shml__os_guard_add(void *base, size_t len, bool rdonly, const char *ident,
                                     struct shml__os_guard **out);
/*
 * `ident` names the mapped object the same way in every process that maps it (the segment's
 * canonical address). A platform whose waits across processes need named kernel objects
 * (Windows) names them after it and the word's offset in the mapping; Linux ignores it.
 */
/* Forget the entry; call it before the mapping is unmapped. NULL is fine. */
SHML_INTERNAL void shml__os_guard_remove(struct shml__os_guard *g);
/* Did a fault replace the mapping? (false for NULL) */
SHML_INTERNAL bool shml__os_guard_lost(const struct shml__os_guard *g);
/*
 * How many of the first `size` bytes of the object open as fd have no memory behind them
 * (a sparse object, whose missing pages fault when the file system is full), where the file
 * system tells reliably (tmpfs); 0 when all do, or when it cannot tell.
 */
SHML_INTERNAL uint64_t shml__os_fd_unbacked(int fd, uint64_t size);

/* ---- waiting on a word shared between processes ---- */

/* Tell the core it is in a spin loop (a pause instruction where the CPU has one). */
static inline void shml__os_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/*
 * Sleep while *word == expected, until woken or until deadline_ns on the monotonic clock
 * (negative: no deadline). Works across processes for a word in a mapping registered with
 * shml__os_guard_add() (Windows: only there; a word elsewhere is the process's own memory and
 * is woken only by its own threads). Returns 0 (woken, or spuriously), -EAGAIN (*word !=
 * expected on entry), -ETIMEDOUT, -EINTR (a signal handler ran; never on Windows).
 */
SHML_INTERNAL int shml__os_futex_wait(shml_atomic_u32 *word, uint32_t expected,
                                      int64_t deadline_ns);
/*
 * Wake up to n sleepers on word (n at most the number of sleepers; for all of them,
 * shml__os_futex_wake_all()). The caller changes the word first. Returns how many were woken,
 * 0 when nobody was asleep (Windows: when an earlier wake-up is still untaken), or -errno
 * (Linux only; a Windows wake never fails: sleepers it cannot reach see the change within
 * their wait slice).
 */
SHML_INTERNAL int shml__os_futex_wake(shml_atomic_u32 *word, int n);
/*
 * Wake every sleeper on word, where `sleepers` is how many the caller counted (INT_MAX: it
 * cannot tell). Linux wakes all, whatever the count: a futex queue is ordered by priority, so
 * waking `sleepers` could wake a later, real-time sleeper instead of an earlier one. A
 * platform that cannot wake "all" (Windows) wakes `sleepers`. Returns as shml__os_futex_wake().
 */
SHML_INTERNAL int shml__os_futex_wake_all(shml_atomic_u32 *word, int sleepers);
/*
 * Sleep while *word == expected (shared between processes, as above) and *mine ==
 * mine_expected (a word in this process's own memory), until either is woken or the deadline.
 * Returns as shml__os_futex_wait() (-EAGAIN if either word differs on entry), or -ENOSYS
 * when the system cannot (or will not: a sandbox's refusal counts) wait on two words at once:
 * then always, and the caller falls back. (Windows also says -ENOSYS for a `word` in no
 * registered mapping, and when it has no event left for `mine`: for that call only.)
 */
SHML_INTERNAL int shml__os_futex_wait2(shml_atomic_u32 *word, uint32_t expected,
                                       shml_atomic_u32 *mine, uint32_t mine_expected,
                                       int64_t deadline_ns);
/*
 * shml__os_futex_wait() and a wake-all for a word in this process's own memory. The wake is
 * safe in a signal handler (Linux) and in a console control handler's thread (Windows).
 */
SHML_INTERNAL int shml__os_futex_wait_private(shml_atomic_u32 *mine, uint32_t expected,
                                              int64_t deadline_ns);
SHML_INTERNAL int shml__os_futex_wake_private(shml_atomic_u32 *mine);

/* ---- the platform's robust process-shared mutex, in SHML_MUTEX_OS_BYTES bytes ---- */

/* As the shml_mutex_* calls of the same name (sync.h); `os` is the mutex's platform area. */
SHML_INTERNAL int shml__os_mutex_init(void *os);
SHML_INTERNAL int shml__os_mutex_lock(void *os, int64_t timeout_ns);
SHML_INTERNAL int shml__os_mutex_unlock(void *os);
SHML_INTERNAL int shml__os_mutex_consistent(void *os);
SHML_INTERNAL void shml__os_mutex_inspect(const void *os, struct shml_mutex_state *st);
/*
 * The thread that holds the lock according to the platform's lock word, or 0 if it is free
 * or was released by the platform when its holder died. A snapshot.
 */
SHML_INTERNAL int32_t shml__os_mutex_holder(const void *os);
/*
 * Release a lock whose holder `tid` is known to be gone without the platform having noticed
 * (it unmapped the lock before it exited, so the kernel's robust list could not reach it): the
 * lock becomes what a holder's death leaves, and the next locker gets -EOWNERDEAD. Does
 * nothing unless `tid` still holds it. Returns 1 released, 0 not (the lock word changed).
 */
SHML_INTERNAL int shml__os_mutex_abandon(void *os, int32_t tid);

/* ---- descriptors for event loops (notify_unix.c, win32_notify.c) ---- */

/*
 * A notifier: a kernel object that an event loop waits on (readable, or signalled) and that
 * any process may signal knowing only its name, made of the owner's pid and a random id
 * (Linux: the FIFO /dev/shm/.shml-fd-PID-ID, ID in hex; Windows: a manual-reset
 * event "Local\\shmln-PID-ID"). A signal is sticky until the owner drains it; signalling a
 * signalled notifier changes nothing. Handles are intptr_t (an fd, or a HANDLE).
 *
 * create: make it (permission bits `mode`, owner read and write always) and open it for the
 * owner: 0 with *h set, or -errno. The owner's handle is what shml_channel_fd() returns.
 * open: open someone else's for signalling: 0, -ENOENT (gone), -errno. Never blocks, and a
 * handle opened so never raises SIGPIPE or fails when its owner dies.
 * signal, drain: never block, never fail visibly. close: the handle. remove: the name (the
 * owner's close, or the reclaimer of a dead owner's endpoint); the object itself goes with
 * its last handle.
 */
#define SHML_NOTE_PREFIX ".shml-fd"
/* System calls the notifier functions made in this process (open, signal, drain, close,
   remove): what the tests count to show that a waker makes none while nobody is armed. */
extern SHML_INTERNAL _Atomic uint64_t shml__note_calls;
SHML_INTERNAL int shml__os_note_create(int32_t pid, uint64_t id, uint32_t mode, intptr_t *h);
SHML_INTERNAL int shml__os_note_open(int32_t pid, uint64_t id, intptr_t *h);
SHML_INTERNAL void shml__os_note_signal(intptr_t h);
SHML_INTERNAL void shml__os_note_drain(intptr_t h);
SHML_INTERNAL void shml__os_note_close(intptr_t h);
SHML_INTERNAL void shml__os_note_remove(int32_t pid, uint64_t id);
/* The int an application waits on for the owner's handle h (Linux: the fd itself). */
SHML_INTERNAL int shml__os_note_fd(intptr_t h);

/*
 * A wake-up: an anonymous notifier private to the process (Linux: an eventfd; Windows: an
 * unnamed manual-reset event), which a poller can wait on. create: 0 or -errno. signal is
 * async-signal-safe; signal and drain never block; close frees it.
 */
SHML_INTERNAL int shml__os_wakeup_create(intptr_t *h);
SHML_INTERNAL void shml__os_wakeup_signal(intptr_t h);
SHML_INTERNAL void shml__os_wakeup_drain(intptr_t h);
SHML_INTERNAL void shml__os_wakeup_close(intptr_t h);

/*
 * A poller: waits for any of many handles (notifiers and the application's own descriptors)
 * at once (Linux: epoll; Windows: waiter threads of 63 handles each, thousands of them). Keys
 * are the caller's. Events: SHML_POLL_IN, SHML_POLL_OUT (Windows: SHML_POLL_IN alone, a handle
 * being signalled). add: 0, -EEXIST, -EPERM (the handle cannot be waited on for those
 * events), -EBADF, -errno. wait: fills up to max keys (and the events that fired) of ready
 * handles; returns their number, 0 at the deadline (monotonic ns; negative: none), -EINTR (a
 * signal handler ran; never on Windows), or -errno. Level-triggered: a handle still ready is
 * reported again. A poller is used by one thread at a time (its wait set's).
 */
#define SHML_POLL_IN  1u
#define SHML_POLL_OUT 2u
struct shml__os_poll_ready {
    uint64_t key;
    uint32_t events;
};
SHML_INTERNAL int shml__os_poller_create(intptr_t *p);
SHML_INTERNAL int shml__os_poller_add(intptr_t p, intptr_t h, uint32_t events, uint64_t key);
SHML_INTERNAL int shml__os_poller_remove(intptr_t p, intptr_t h);
SHML_INTERNAL int shml__os_poller_wait(intptr_t p, struct shml__os_poll_ready *out, int max,
                                       int64_t deadline_ns);
SHML_INTERNAL void shml__os_poller_close(intptr_t p);

#endif /* SHML_OS_H */
