/*
 * bench_channel_kernel.c - the kernel's mechanisms that bench_channel measures the channels
 * against (bench_channel.h): two pipes, a Unix stream socket pair and two POSIX message queues
 * for the round trips; one of each for the streams. Their calls have no timeout that costs
 * nothing, so the alarm of each repetition bounds them (bench_channel.c).
 */
#include "bench_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t write_full(int fd, const void *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t read_full(int fd, void *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, (char *)p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE; /* EOF: the other side is gone */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* ---- kernel round trips: pipes, a socket pair, message queues ---- */

int setup_pipes(struct chan_run *c)
{
    if (pipe(c->fd) != 0 || pipe(c->fd + 2) != 0)
        return -errno;
    return 0;
}

int setup_socketpair(struct chan_run *c)
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd) == 0 ? 0 : -errno;
}

/* Two message queues of c->size messages, unlinked at once: the descriptors outlive the
   names, and the fork hands them to the peer. */
int setup_mqs(struct chan_run *c)
{
    static unsigned serial;
    struct mq_attr at = {.mq_maxmsg = 10, .mq_msgsize = (long)c->size};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "/shml-bench-mq-%d-%u", (int)getpid(), serial++);
        c->mq[k] = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
        if (c->mq[k] == (mqd_t)-1)
            return -errno;
        mq_unlink(name);
    }
    return 0;
}

/* Descriptors of the three mechanisms: where this process and the peer send and receive. */
enum { K_PIPE, K_SOCK, K_MQ };

static ssize_t k_send(struct chan_run *c, int kind, bool peer, const void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return write_full(peer ? c->fd[3] : c->fd[1], p, len);
    case K_SOCK:
        return write_full(peer ? c->fd[1] : c->fd[0], p, len);
    default:
        return mq_send(c->mq[peer ? 1 : 0], p, len, 0) == 0 ? (ssize_t)len : -errno;
    }
}

static ssize_t k_recv(struct chan_run *c, int kind, bool peer, void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return read_full(peer ? c->fd[0] : c->fd[2], p, len);
    case K_SOCK:
        return read_full(peer ? c->fd[1] : c->fd[0], p, len);
    default:
        return mq_receive(c->mq[peer ? 0 : 1], p, len, NULL);
    }
}

static void peer_kernel_rt(struct chan_run *c, int kind)
{
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        ssize_t n = k_recv(c, kind, true, c->buf, c->size);
        if (n < 0)
            peer_fail(c, "receive", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        n = k_send(c, kind, true, c->buf, c->size);
        if (n < 0)
            peer_fail(c, "send", n);
    }
}

static int round_kernel(struct chan_run *c, int kind, uint32_t i)
{
    stamp(c->msg, i);
    ssize_t n = k_send(c, kind, false, c->msg, c->size);
    if (n < 0)
        return (int)n;
    n = k_recv(c, kind, false, c->buf, c->size);
    if (n < 0)
        return (int)n;
    return check_stamp(c->buf, (size_t)n, c->size, i);
}

void peer_pipe_rt(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_PIPE);
}

void peer_sock_rt(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_SOCK);
}

void peer_mq_rt(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_MQ);
}

int round_pipe(struct chan_run *c, uint32_t i)
{
    return round_kernel(c, K_PIPE, i);
}

int round_sock(struct chan_run *c, uint32_t i)
{
    return round_kernel(c, K_SOCK, i);
}

int round_mq(struct chan_run *c, uint32_t i)
{
    return round_kernel(c, K_MQ, i);
}

/* ---- kernel streams: a pipe, a socket pair, a message queue (this process receives) ---- */

int setup_pipe1(struct chan_run *c)
{
    return pipe(c->fd) == 0 ? 0 : -errno;
}

int setup_mq1(struct chan_run *c)
{
    int rc = setup_mqs(c);
    if (rc >= 0) {
        mq_close(c->mq[1]);
        c->mq[1] = (mqd_t)-1;
    }
    return rc;
}

static ssize_t stream_send(struct chan_run *c, int kind, const void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return write_full(c->fd[1], p, len);
    case K_SOCK:
        return write_full(c->fd[1], p, len);
    default:
        return mq_send(c->mq[0], p, len, 0) == 0 ? (ssize_t)len : -errno;
    }
}

static ssize_t stream_recv(struct chan_run *c, int kind, void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return read_full(c->fd[0], p, len);
    case K_SOCK:
        return read_full(c->fd[0], p, len);
    default:
        return mq_receive(c->mq[0], p, len, NULL);
    }
}

static void peer_kernel_stream(struct chan_run *c, int kind)
{
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        ssize_t n = stream_send(c, kind, c->msg, c->size);
        if (n < 0)
            peer_fail(c, "send", n);
    }
}

static long recv_kernel(struct chan_run *c, int kind, uint64_t next)
{
    ssize_t n = stream_recv(c, kind, c->buf, c->size);
    if (n < 0)
        return n;
    int rc = check_stamp(c->buf, (size_t)n, c->size, next);
    return rc < 0 ? rc : 1;
}

void peer_pipe_stream(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_PIPE);
}

void peer_sock_stream(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_SOCK);
}

void peer_mq_stream(struct chan_run *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_MQ);
}

long recv_pipe(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_PIPE, next);
}

long recv_sock(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_SOCK, next);
}

long recv_mq(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_MQ, next);
}
