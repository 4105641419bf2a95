/*
 * notify_unix.c - notifiers and the poller for event loops (os.h): named FIFOs in /dev/shm
 * and epoll.
 *
 * A FIFO because it is found by path (unrelated processes need no handshake, and containers
 * that share /dev/shm but not a network namespace reach it), it coalesces (a byte waiting is
 * "signalled"; a full pipe still is), and epoll polls it. The owner opens it read-write: it
 * is then never at end-of-file (which would keep it readable for ever once a signaller
 * closed), and its own writes signal it. Signallers open it read-write too: a FIFO that has a
 * reader never raises SIGPIPE, so a signaller whose cached handle outlives the owner (killed)
 * only fills a pipe nobody reads, by the one byte each arming allows.
 */
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOTE_DIR "/dev/shm"

_Atomic uint64_t shml__note_calls;

/* Relaxed: a statistic for tests. */
#define COUNT() atomic_fetch_add_explicit(&shml__note_calls, 1, memory_order_relaxed)

static void note_path(char *buf, size_t cap, int32_t pid, uint64_t id)
{
    snprintf(buf, cap, NOTE_DIR "/" SHML_NOTE_PREFIX "-%" PRId32 "-%016" PRIx64, pid, id);
}

/* Open path read-write, non-blocking, refusing anything but a FIFO (a peer that can write
   the segment chooses pid and id: the name stays in our pattern, the kind is checked). */
static int open_fifo(const char *path, intptr_t *h)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        close(fd);
        return -EBADF;
    }
    *h = fd;
    return 0;
}

int shml__os_note_create(int32_t pid, uint64_t id, uint32_t mode, intptr_t *h)
{
    char path[96];
    note_path(path, sizeof(path), pid, id);
    if (mkfifo(path, 0600) != 0)
        return -errno;
    /* The mode asked, without the umask's say (as segments are made), and never executable. */
    if (chmod(path, (mode & 0666u) | 0600u) != 0) {
        int err = errno;
        unlink(path);
        return -err;
    }
    int r = open_fifo(path, h);
    if (r < 0)
        unlink(path);
    return r;
}

int shml__os_note_open(int32_t pid, uint64_t id, intptr_t *h)
{
    COUNT();
    char path[96];
    note_path(path, sizeof(path), pid, id);
    return open_fifo(path, h);
}

void shml__os_note_signal(intptr_t h)
{
    COUNT();
    /* EAGAIN: the pipe is full, so it is signalled already. */
    char b = 1;
    ssize_t n = write((int)h, &b, 1);
    (void)n;
}

void shml__os_note_drain(intptr_t h)
{
    COUNT();
    char buf[64];
    while (read((int)h, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
        ;
}

void shml__os_note_close(intptr_t h)
{
    COUNT();
    close((int)h);
}

void shml__os_note_remove(int32_t pid, uint64_t id)
{
    COUNT();
    char path[96];
    note_path(path, sizeof(path), pid, id);
    unlink(path);
}

int shml__os_note_fd(intptr_t h)
{
    return (int)h;
}

/* ---- wake-ups ---- */

int shml__os_wakeup_create(intptr_t *h)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    *h = fd;
    return 0;
}

void shml__os_wakeup_signal(intptr_t h)
{
    uint64_t one = 1;
    ssize_t n = write((int)h, &one, sizeof(one)); /* EAGAIN: at its maximum, still readable */
    (void)n;
}

void shml__os_wakeup_drain(intptr_t h)
{
    uint64_t v;
    ssize_t n = read((int)h, &v, sizeof(v));
    (void)n;
}

void shml__os_wakeup_close(intptr_t h)
{
    close((int)h);
}

/* ---- the poller ---- */

int shml__os_poller_create(intptr_t *p)
{
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return -errno;
    *p = fd;
    return 0;
}

static uint32_t to_epoll(uint32_t events)
{
    return ((events & SHML_POLL_IN) ? (uint32_t)EPOLLIN : 0u) |
           ((events & SHML_POLL_OUT) ? (uint32_t)EPOLLOUT : 0u);
}

int shml__os_poller_add(intptr_t p, intptr_t h, uint32_t events, uint64_t key)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.u64 = key};
    return epoll_ctl((int)p, EPOLL_CTL_ADD, (int)h, &ev) == 0 ? 0 : -errno;
}

int shml__os_poller_remove(intptr_t p, intptr_t h)
{
    struct epoll_event ev = {0};
    return epoll_ctl((int)p, EPOLL_CTL_DEL, (int)h, &ev) == 0 ? 0 : -errno;
}

int shml__os_poller_wait(intptr_t p, struct shml__os_poll_ready *out, int max,
                         int64_t deadline_ns)
{
    struct epoll_event evs[64];
    if (max > 64)
        max = 64;
    for (;;) {
        int ms = -1;
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - shml__os_mono_ns();
            if (left < 0)
                left = 0;
            /* Rounded up: never return before the deadline. */
            int64_t m = (left + 999999) / 1000000;
            ms = m > INT32_MAX ? INT32_MAX : (int)m;
        }
        int n = epoll_wait((int)p, evs, max, ms);
        if (n < 0)
            return -errno;
        if (n == 0 && deadline_ns >= 0 && shml__os_mono_ns() < deadline_ns)
            continue;
        for (int i = 0; i < n; i++) {
            out[i].key = evs[i].data.u64;
            out[i].events = ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? SHML_POLL_IN : 0u) |
                            ((evs[i].events & (EPOLLOUT | EPOLLERR)) ? SHML_POLL_OUT : 0u);
        }
        return n;
    }
}

void shml__os_poller_close(intptr_t p)
{
    close((int)p);
}
