/*
 * fdpass_unix.c - file descriptors: duplicating and closing one the library owns, and
 * passing one over a Unix socket (SCM_RIGHTS).
 */
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int shml__os_fd_dup(int fd)
{
    int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return r < 0 ? -errno : r;
}

void shml__os_fd_close(int fd)
{
    close(fd);
}

int shml__os_fd_send(int sock, int fd, const void *payload, size_t len)
{
    if (len == 0)
        return -EINVAL; /* a message without data can't carry ancillary data reliably */
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == len ? 0 : -EMSGSIZE;
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t shml__os_fd_recv(int sock, int *fd, void *payload, size_t cap, int64_t timeout_ns)
{
    *fd = -1;
    int64_t deadline = timeout_ns < 0 ? -1 : shml__os_mono_ns() + timeout_ns;
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - shml__os_mono_ns();
            if (left < 0)
                left = 0;
            ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        break;
    }
    struct iovec iov = {.iov_base = payload, .iov_len = cap};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    int got = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            /* Take every fd that came so none leaks; keep the first. */
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (got < 0)
                    got = f;
                else
                    close(f);
            }
        }
    }
    if (n == 0 && got < 0)
        return -ECONNRESET;
    if (got < 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (got >= 0)
            close(got);
        return -EPROTO;
    }
    *fd = got;
    return n;
}
