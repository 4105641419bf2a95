/*
 * bench_channel_evloop.c - bench_channel's round trips through an event loop
 * (bench_channel.h): each side waits in epoll, as a program built around an event loop does.
 *
 *   raw FIFO       two named FIFOs (mkfifo), one each way, opened read-write and non-blocking
 *                  by both processes (the library opens its descriptors' FIFOs so): each side
 *                  waits in epoll_wait for its FIFO, reads the 64-byte message, writes the
 *                  reply into the other
 *   queue + epoll  two SHML_SPSC queues, one each way; each receiver's descriptor
 *                  (shml_channel_fd()) in its own epoll instance: epoll_wait, then
 *                  shml_recv(..., 0) until -ETIMEDOUT (which arms the descriptor again), then
 *                  shml_send the reply on the other queue
 *   diag: waitset  the same with the library's wait set (shml_waitset_wait) instead of epoll
 *
 * Both make the same system calls per leg when nothing goes wrong: epoll_wait, one read (the
 * FIFO's message; the library's drain of its descriptor as it arms it), one write (the FIFO's
 * message; the library's signal to the armed peer). The FIFOs' names are unlinked once the
 * peer has opened them; the descriptors' FIFOs are the library's (removed at close, and by
 * the harness after a kill).
 */
#include "bench_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- waiting in epoll ---- */

/* An epoll instance watching fd for input: the descriptor, or -errno. */
static int epoll_for(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = errno;
        close(ep);
        return -err;
    }
    return ep;
}

/*
 * Wait in epoll instance ep for its descriptor, at most retry_ns when that is >= 0 (the
 * library's shml_channel_fd_timeout(): look again then even if nothing came), else at most
 * WAIT_LIMIT_NS. 1 when it is ready, 0 when retry_ns ran out, -ETIMEDOUT, -errno.
 */
static int ep_wait(int ep, int64_t retry_ns)
{
    int64_t ns = retry_ns >= 0 && retry_ns < WAIT_LIMIT_NS ? retry_ns : WAIT_LIMIT_NS;
    int ms = (int)((ns + 999999) / 1000000); /* rounded up: never before the bound */
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, ms);
    if (n < 0)
        return -errno;
    return n == 0 && retry_ns < 0 ? -ETIMEDOUT : n;
}

/* ---- raw FIFOs ---- */

/* Open a FIFO as the library opens its descriptors' FIFOs: read-write, non-blocking. */
static int open_fifo(const char *path)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Wait in ep, then read one message of `size` bytes from fd (<= PIPE_BUF: written whole). */
static int fifo_recv(int ep, int fd, unsigned char *buf, size_t size)
{
    for (;;) {
        int r = ep_wait(ep, -1);
        if (r < 0)
            return r;
        ssize_t n = read(fd, buf, size);
        if (n == (ssize_t)size)
            return 0;
        if (n >= 0)
            return -EMSGSIZE;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
}

static int fifo_send(int fd, const unsigned char *msg, size_t size)
{
    ssize_t n = write(fd, msg, size);
    if (n == (ssize_t)size)
        return 0;
    return n < 0 ? -errno : -EMSGSIZE;
}

/* FIFO 0 carries the ping, FIFO 1 the pong; this process writes fd[1], reads fd[2]. */
int setup_fifos(struct chan_run *c)
{
    int rc = create_fifo(c, 0);
    if (rc >= 0)
        rc = create_fifo(c, 1);
    if (rc >= 0)
        rc = c->fd[1] = open_fifo(c->fifo[0]);
    if (rc >= 0)
        rc = c->fd[2] = open_fifo(c->fifo[1]);
    if (rc >= 0)
        rc = c->fd[0] = epoll_for(c->fd[2]);
    return rc < 0 ? rc : 0;
}

void peer_fifo_rt(struct chan_run *c, int k)
{
    (void)k;
    /* Its own opens by name and its own epoll instance (the inherited ones are the parent's). */
    int in = open_fifo(c->fifo[0]), out = open_fifo(c->fifo[1]);
    if (in < 0 || out < 0)
        peer_fail(c, "open a FIFO", in < 0 ? in : out);
    int ep = epoll_for(in);
    if (ep < 0)
        peer_fail(c, "epoll", ep);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        int rc = fifo_recv(ep, in, c->buf, c->size);
        if (rc == 0)
            rc = check_stamp(c->buf, c->size, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        rc = fifo_send(out, c->buf, c->size);
        if (rc < 0)
            peer_fail(c, "write", rc);
    }
    close(ep);
    close(in);
    close(out);
}

int round_fifo(struct chan_run *c, uint32_t i)
{
    stamp(c->msg, i);
    int rc = fifo_send(c->fd[1], c->msg, c->size);
    if (rc == 0)
        rc = fifo_recv(c->fd[0], c->fd[2], c->buf, c->size);
    return rc < 0 ? rc : check_stamp(c->buf, c->size, c->size, i);
}

/* ---- queues waited for in an event loop ---- */

/*
 * Receive the one message of a round trip on ch as an event loop does: wait for ch's
 * descriptor (in the epoll instance ep, or in the wait set ws when that is not NULL), then
 * shml_recv(..., 0) until -ETIMEDOUT, which arms the descriptor again. Returns the message's
 * length, or -errno (-EPROTO: a second message, which a ping-pong never has).
 */
static ssize_t ev_recv(int ep, shml_waitset *ws, shml_channel *ch, unsigned char *buf, size_t cap)
{
    ssize_t got = -1;
    for (;;) {
        int r;
        if (ws) {
            struct shml_waitset_event ev;
            r = shml_waitset_wait(ws, &ev, 1, WAIT_LIMIT_NS);
        } else {
            r = ep_wait(ep, shml_channel_fd_timeout(ch));
        }
        if (r < 0)
            return r;
        for (;;) {
            ssize_t n = shml_recv(ch, buf, cap, 0);
            if (n == -ETIMEDOUT)
                break;
            if (n < 0)
                return n;
            if (got >= 0)
                return -EPROTO;
            got = n;
        }
        if (got >= 0)
            return got;
    }
}

/* Queue 0 carries the ping, queue 1 the pong; this process waits for queue 1's descriptor. */
int setup_evloop_queues(struct chan_run *c)
{
    int rc = setup_queues(c);
    int fd = rc < 0 ? rc : channel_fd(c, 1);
    if (fd < 0)
        return fd;
    c->fd[0] = epoll_for(fd);
    return c->fd[0] < 0 ? c->fd[0] : 0;
}

int setup_waitset_queues(struct chan_run *c)
{
    int rc = setup_queues(c);
    if (rc >= 0)
        rc = channel_fd(c, 1);
    if (rc >= 0)
        rc = shml_waitset_create(&c->ws);
    if (rc >= 0)
        rc = shml_waitset_add(c->ws, c->ch[1], NULL);
    return rc < 0 ? rc : 0;
}

/* The peer of both: it waits in a wait set of its own when the case has one (c->ws), else in
   an epoll instance of its own. */
void peer_evloop_rt(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER), *out = peer_open(c, 1, SHML_PRODUCER);
    int fd = shml_channel_fd(in);
    if (fd < 0)
        peer_fail(c, "shml_channel_fd", fd);
    peer_publish_fd(c, 0, fd);
    int ep = -1;
    shml_waitset *ws = NULL;
    int rc = c->ws ? shml_waitset_create(&ws) : (ep = epoll_for(fd));
    if (rc >= 0 && ws)
        rc = shml_waitset_add(ws, in, NULL);
    if (rc < 0)
        peer_fail(c, c->ws ? "the wait set" : "epoll", rc);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        ssize_t n = ev_recv(ep, ws, in, c->buf, c->size);
        if (n < 0)
            peer_fail(c, "receive", n);
        rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        n = shml_send(out, c->buf, (size_t)n, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send", n);
    }
    shml_waitset_destroy(ws);
    if (ep >= 0)
        close(ep);
    shml_channel_close(in);
    shml_channel_close(out);
}

int round_evloop(struct chan_run *c, uint32_t i)
{
    stamp(c->msg, i);
    ssize_t n = shml_send(c->ch[0], c->msg, c->size, c->timeout);
    if (n < 0)
        return (int)n;
    n = ev_recv(c->fd[0], c->ws, c->ch[1], c->buf, c->size);
    if (n < 0)
        return (int)n;
    return check_stamp(c->buf, (size_t)n, c->size, i);
}
