/*
 * py_echo.c - the C peer of bench/bench_python.py.
 *
 *   py_echo echo IN OUT COUNT WAIT CPU PARENT    receive COUNT messages from the queue IN and
 *                                                send each back, unchanged, on the queue OUT
 *   py_echo stream OUT COUNT BATCH CPU PARENT    send COUNT 64-byte messages on OUT with
 *                                                shml_send_batch(), BATCH at a time; message i
 *                                                carries i (little-endian) in its first 8 bytes
 *
 * WAIT is spin, block or adaptive (this endpoint's SHML_WAIT_*; stream always spins). The
 * program pins itself to CPU, dies with PARENT (PR_SET_PDEATHSIG; it exits at once if PARENT
 * is already gone) and prints "ready" on stdout once its endpoints are open, so that the
 * parent can unlink the names. Every call waits at most 10 s and an alarm bounds the whole
 * run, so a lost message ends it with an error instead of a hang. Exit status 0, or 1 after
 * a message on stderr.
 */
#include <shmlink.h>

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#define TIMEOUT_NS  ((int64_t)10000000000) /* per call */
#define RUN_LIMIT_S 600u                   /* the whole run */
#define MSG         64

static int fail(const char *what, long rc)
{
    const char *detail = shml_last_error();
    fprintf(stderr, "py_echo: %s: %s%s%s%s\n", what, shml_strerror((int)rc), detail[0] ? " (" : "",
            detail, detail[0] ? ")" : "");
    return 1;
}

static shml_channel *open_end(const char *addr, unsigned role, uint32_t wait)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = wait;
    shml_channel *ch = NULL;
    int rc = shml_channel_open(addr, role, &o, &ch);
    if (rc < 0) {
        fail(addr, rc);
        return NULL;
    }
    return ch;
}

static int echo(const char *in_addr, const char *out_addr, long count, uint32_t wait)
{
    shml_channel *in = open_end(in_addr, SHML_CONSUMER, wait);
    shml_channel *out = in ? open_end(out_addr, SHML_PRODUCER, wait) : NULL;
    if (!out) {
        shml_channel_close(in);
        return 1;
    }
    puts("ready");
    fflush(stdout);
    char buf[4096];
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        ssize_t n = shml_recv(in, buf, sizeof buf, TIMEOUT_NS);
        if (n < 0)
            rc = fail("shml_recv", n);
        else if ((n = shml_send(out, buf, (size_t)n, TIMEOUT_NS)) < 0)
            rc = fail("shml_send", n);
    }
    shml_channel_close(in);
    shml_channel_close(out);
    return rc;
}

static int stream(const char *out_addr, long count, long batch)
{
    shml_channel *out = open_end(out_addr, SHML_PRODUCER, SHML_WAIT_SPIN);
    if (!out)
        return 1;
    puts("ready");
    fflush(stdout);
    char(*msg)[MSG] = calloc((size_t)batch, MSG);
    struct shml_iov *iov = calloc((size_t)batch, sizeof *iov);
    int rc = msg && iov ? 0 : fail("calloc", -12);
    for (long i = 0; i < count && rc == 0;) {
        size_t n = (size_t)(count - i < batch ? count - i : batch);
        for (size_t k = 0; k < n; k++) {
            uint64_t v = (uint64_t)i + k;
            for (int b = 0; b < 8; b++) /* little-endian, whatever this CPU is */
                msg[k][b] = (char)(v >> (8 * b));
            iov[k].base = msg[k];
            iov[k].len = MSG;
        }
        ssize_t sent = shml_send_batch(out, iov, n, TIMEOUT_NS);
        if (sent < 0)
            rc = fail("shml_send_batch", sent);
        else
            i += sent;
    }
    free(msg);
    free(iov);
    shml_channel_close(out);
    return rc;
}

static int pin(const char *cpu_arg, const char *parent_arg)
{
    /* Die with the benchmark, then make sure it had not died already before the prctl. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)atol(parent_arg))
        return -1;
    alarm(RUN_LIMIT_S);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(cpu_arg), &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        perror("py_echo: sched_setaffinity");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "echo") == 0) {
        uint32_t wait = strcmp(argv[5], "spin") == 0    ? SHML_WAIT_SPIN
                        : strcmp(argv[5], "block") == 0 ? SHML_WAIT_BLOCK
                                                        : SHML_WAIT_ADAPTIVE;
        if (pin(argv[6], argv[7]) < 0)
            return 1;
        return echo(argv[2], argv[3], atol(argv[4]), wait);
    }
    if (argc == 7 && strcmp(argv[1], "stream") == 0) {
        long batch = atol(argv[4]);
        if (batch < 1 || batch > 4096 || pin(argv[5], argv[6]) < 0)
            return 1;
        return stream(argv[2], atol(argv[3]), batch);
    }
    fprintf(stderr, "usage: py_echo echo IN OUT COUNT spin|block|adaptive CPU PARENT\n"
                    "       py_echo stream OUT COUNT BATCH CPU PARENT\n");
    return 2;
}
