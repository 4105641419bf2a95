/*
 * cmd_channel.c - the channel verbs: mk, send, recv, and the channel section of info.
 *
 * Waits are cut into short slices so SIGINT and SIGTERM end a blocked send or recv between
 * two messages, never inside one: the library retries its own waits when a signal arrives, so
 * a flag set by the handler is looked at after each slice. A message is never lost to Ctrl-C.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest single wait inside the library before the stop flag is looked at again. */
#define WAIT_SLICE_NS ((int64_t)100 * 1000 * 1000)

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGINT and SIGTERM set the flag instead of killing the tool; reads from stdin see EINTR. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read blocked on stdin returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* shml_send or shml_recv, one signature for both (send never writes through buf). */
typedef ssize_t (*chan_op)(shml_channel *ch, void *buf, size_t len, int64_t timeout_ns);

static ssize_t op_send(shml_channel *ch, void *buf, size_t len, int64_t timeout_ns)
{
    return shml_send(ch, buf, len, timeout_ns);
}

/*
 * Run op in slices of WAIT_SLICE_NS, so that a stop signal (which the library's waits
 * resume after) ends the wait between two slices. -EINTR: a stop signal arrived;
 * -ETIMEDOUT: timeout_ns passed; else op's result.
 */
static ssize_t sliced(chan_op op, shml_channel *ch, void *buf, size_t len, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? 0 : mono_ns() + timeout_ns;
    for (;;) {
        if (stop_requested)
            return -EINTR;
        int64_t slice = WAIT_SLICE_NS;
        if (timeout_ns >= 0) {
            int64_t left = deadline - mono_ns();
            slice = left <= 0 ? 0 : left < slice ? left : slice;
        }
        ssize_t r = op(ch, buf, len, slice);
        if (r != -ETIMEDOUT || (timeout_ns >= 0 && slice < WAIT_SLICE_NS))
            return r;
    }
}

static ssize_t send_sliced(shml_channel *ch, const void *msg, size_t len, int64_t timeout_ns)
{
    return sliced(op_send, ch, (void *)msg, len, timeout_ns);
}

static ssize_t recv_sliced(shml_channel *ch, void *buf, size_t cap, int64_t timeout_ns)
{
    return sliced(shml_recv, ch, buf, cap, timeout_ns);
}

/* "3 messages", "1 message". */
static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* Parse --timeout; returns 0, or the exit status after reporting. */
static int parse_timeout(const char *verb, const char *addr, const char *text, int64_t *out)
{
    const char *why;
    char shown[256];
    if (text && cli_parse_duration(text, out, &why) < 0)
        return cli_fail(verb, addr, "invalid timeout %s: %s", cli_quote(text, shown, sizeof shown),
                        why);
    return 0;
}

/* The channel's canonical address for messages ("?" if out of memory). */
static char *channel_address(shml_channel *ch)
{
    char *shown = malloc(CLI_SHOW_CAP);
    if (shown)
        cli_display(shml_segment_address(shml_channel_segment(ch)), shown, CLI_SHOW_CAP);
    return shown;
}

/* ---- mk ---- */

int cli_mk(const struct cli_verb *verb, int argc, char **argv)
{
    bool spsc = false;
    const char *cap_text = NULL, *max_text = NULL, *mode_text = NULL;
    const struct cli_opt opts[] = {
        {"capacity", "SIZE", NULL, &cap_text},
        {"max-msg", "SIZE", NULL, &max_text},
        {"mode", "MODE", NULL, &mode_text},
        {"spsc", NULL, &spsc, NULL},
    };
    const char *pos[2];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 4, pos, 2, 2, "KIND ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    static const struct {
        const char *name;
        uint32_t kind;
    } kinds[] = {
        {"queue", SHML_QUEUE}, {"bus", SHML_BUS}, {"latest", SHML_LATEST}, {"rpc", SHML_RPC}};
    uint32_t kind = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(pos[0], kinds[i].name) == 0)
            kind = kinds[i].kind;
    }
    char shown[256];
    if (!kind)
        return cli_usage_error(verb, "unknown channel kind %s (queue, bus, latest or rpc)",
                               cli_quote(pos[0], shown, sizeof shown));

    const char *addr = pos[1];
    const char *why;
    uint64_t capacity = (uint64_t)1 << 20, max_msg = 4096;
    if (cap_text && cli_parse_size(cap_text, false, &capacity, &why) < 0)
        return cli_fail(verb->name, addr, "invalid capacity %s: %s",
                        cli_quote(cap_text, shown, sizeof shown), why);
    if (max_text && cli_parse_size(max_text, false, &max_msg, &why) < 0)
        return cli_fail(verb->name, addr, "invalid max-msg %s: %s",
                        cli_quote(max_text, shown, sizeof shown), why);
    uint32_t mode = 0600;
    if (mode_text && cli_parse_mode(mode_text, &mode, &why) < 0)
        return cli_fail(verb->name, addr, "invalid mode %s: %s",
                        cli_quote(mode_text, shown, sizeof shown), why);

    struct shml_channel_opts o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.capacity = (size_t)capacity;
    o.max_msg = (size_t)max_msg;
    o.policy = SHML_BLOCK;
    o.mode = mode;
    o.flags = spsc ? SHML_SPSC : 0;
    shml_channel *ch = NULL;
    int rc = shml_channel_create(addr, &o, &ch);
    if (rc < 0)
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);

    struct shml_channel_stats st;
    memset(&st, 0, sizeof st);
    shml_channel_stats(ch, &st);
    char *canon = channel_address(ch);
    /* The channel persists: the segment stays until `shmlink rm`. */
    shml_channel_close(ch);
    char human[32];
    cli_fmt_size(st.max_msg, human, sizeof human);
    printf("created %s %s: %u slots, messages up to %llu bytes (%s), mode %04o%s\n", pos[0],
           canon ? canon : "?", st.slots, (unsigned long long)st.max_msg, human, mode,
           spsc ? ", spsc" : "");
    free(canon);
    return CLI_EXIT_OK;
}

/* ---- send ---- */

struct sender {
    const char *verb;
    const char *addr;
    shml_channel *ch;
    int64_t timeout;
    uint64_t sent;
};

/* Send one message; returns 0, or the exit status after reporting. */
static int send_one(struct sender *s, const void *msg, size_t len)
{
    if (stop_requested)
        return cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                        (unsigned long long)s->sent, plural(s->sent));
    ssize_t r = send_sliced(s->ch, msg, len, s->timeout);
    if (r >= 0) {
        s->sent++;
        return 0;
    }
    char hint[128];
    snprintf(hint, sizeof hint, "message %llu not sent, %llu sent before it",
             (unsigned long long)s->sent + 1, (unsigned long long)s->sent);
    if (r == -EINTR)
        return cli_fail(s->verb, s->addr, "interrupted; %s", hint);
    if (r == -ETIMEDOUT)
        return cli_fail_lib(s->verb, s->addr, (int)r, "the queue stayed full", hint);
    return cli_fail_lib(s->verb, s->addr, (int)r, shml_last_error(), hint);
}

/* Read exactly n bytes of stdin: 1 done, 0 clean end of input before any byte, -1 short/error. */
static int read_full(void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t k = fread((char *)buf + got, 1, n - got, stdin);
        got += k;
        if (k == 0) {
            if (ferror(stdin) && errno == EINTR && !stop_requested) {
                clearerr(stdin);
                continue;
            }
            return got == 0 ? 0 : -1;
        }
    }
    return 1;
}

static int send_framed(struct sender *s, uint64_t max_msg)
{
    void *buf = NULL;
    size_t bufcap = 0;
    int status = CLI_EXIT_OK;
    for (;;) {
        unsigned char hdr[4];
        int r = read_full(hdr, 4);
        if (r == 0 && !stop_requested && !ferror(stdin))
            break;
        if (stop_requested) {
            status = cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                              (unsigned long long)s->sent, plural(s->sent));
            break;
        }
        if (r <= 0) {
            status = ferror(stdin)
                         ? cli_fail(s->verb, s->addr, "cannot read stdin: %s", strerror(errno))
                         : cli_fail(s->verb, s->addr, "truncated frame header after %llu message%s",
                                    (unsigned long long)s->sent, plural(s->sent));
            break;
        }
        size_t len =
            (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        if (len > max_msg) {
            /* Refused before its bytes are read: the length alone says it cannot fit. */
            char detail[128], hint[128];
            snprintf(detail, sizeof detail, "%zu bytes; this channel takes at most %llu", len,
                     (unsigned long long)max_msg);
            snprintf(hint, sizeof hint, "message %llu not sent, %llu sent before it",
                     (unsigned long long)s->sent + 1, (unsigned long long)s->sent);
            status = cli_fail_lib(s->verb, s->addr, -EMSGSIZE, detail, hint);
            break;
        }
        if (len > bufcap) {
            void *nb = realloc(buf, len);
            if (!nb) {
                status = cli_fail(s->verb, s->addr, "out of memory");
                break;
            }
            buf = nb;
            bufcap = len;
        }
        if (len && read_full(buf, len) != 1) {
            status = stop_requested
                         ? cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                                    (unsigned long long)s->sent, plural(s->sent))
                         : cli_fail(s->verb, s->addr,
                                    "truncated frame: message %llu is shorter than its length %zu",
                                    (unsigned long long)s->sent + 1, len);
            break;
        }
        status = send_one(s, buf, len);
        if (status != CLI_EXIT_OK)
            break;
    }
    free(buf);
    return status;
}

static int send_lines(struct sender *s)
{
    char *line = NULL;
    size_t cap = 0;
    int status = CLI_EXIT_OK;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (stop_requested) {
                status = cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                                  (unsigned long long)s->sent, plural(s->sent));
            } else if (ferror(stdin) && errno == EINTR) {
                clearerr(stdin);
                continue;
            } else if (ferror(stdin)) {
                status = cli_fail(s->verb, s->addr, "cannot read stdin: %s", strerror(errno));
            }
            break;
        }
        if (n > 0 && line[n - 1] == '\n')
            n--;
        status = send_one(s, line, (size_t)n);
        if (status != CLI_EXIT_OK)
            break;
    }
    free(line);
    return status;
}

int cli_send(const struct cli_verb *verb, int argc, char **argv)
{
    bool binary = false;
    const char *timeout_text = NULL;
    const struct cli_opt opts[] = {
        {"binary", NULL, &binary, NULL},
        {"timeout", "DURATION", NULL, &timeout_text},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos;
    if (!pos)
        return cli_fail(verb->name, NULL, "out of memory");
    int parsed = cli_parse(verb, argc, argv, opts, 2, pos, 1, SIZE_MAX, "ADDR MSG", &npos);
    if (parsed != CLI_RUN) {
        free(pos);
        return parsed;
    }
    if (binary && npos > 1) {
        free(pos);
        return cli_usage_error(verb, "--binary reads stdin, so it takes no MSG arguments");
    }
    const char *addr = pos[0];
    struct sender s = {verb->name, addr, NULL, SHML_FOREVER, 0};
    int status = parse_timeout(verb->name, addr, timeout_text, &s.timeout);
    if (status != CLI_EXIT_OK) {
        free(pos);
        return status;
    }
    int rc = shml_channel_open(addr, SHML_PRODUCER, NULL, &s.ch);
    if (rc < 0) {
        free(pos);
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);
    }
    struct shml_channel_stats st;
    memset(&st, 0, sizeof st);
    shml_channel_stats(s.ch, &st);

    catch_stop_signals();
    if (npos > 1) {
        for (size_t i = 1; i < npos && status == CLI_EXIT_OK; i++)
            status = send_one(&s, pos[i], strlen(pos[i]));
    } else if (binary) {
        status = send_framed(&s, st.max_msg);
    } else {
        status = send_lines(&s);
    }
    if (status == CLI_EXIT_OK) {
        char *canon = channel_address(s.ch);
        printf("sent %llu message%s to %s\n", (unsigned long long)s.sent, plural(s.sent),
               canon ? canon : "?");
        free(canon);
    }
    shml_channel_close(s.ch);
    free(pos);
    return status;
}

/* ---- recv ---- */

/* Print one message; 0 go on, 1 stdout went away, -1 write error (reported). */
static int print_message(const char *verb, const unsigned char *msg, size_t len, bool binary)
{
    int w;
    if (binary) {
        unsigned char hdr[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                                (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
        w = cli_stdout_write(verb, hdr, 4);
        return w ? w : cli_stdout_write(verb, msg, len);
    }
    char out[4096];
    size_t done = 0;
    while (done < len) {
        size_t o;
        done += cli_escape_bytes(msg + done, len - done, true, out, sizeof out, &o);
        w = cli_stdout_write(verb, out, o);
        if (w)
            return w;
    }
    return cli_stdout_write(verb, "\n", 1);
}

int cli_recv(const struct cli_verb *verb, int argc, char **argv)
{
    bool binary = false, follow = false;
    const char *timeout_text = NULL, *count_text = NULL;
    const struct cli_opt opts[] = {
        {"binary", NULL, &binary, NULL},
        {"follow", NULL, &follow, NULL},
        {"timeout", "DURATION", NULL, &timeout_text},
        {"n", "N", NULL, &count_text},
        {"count", "N", NULL, &count_text},
    };
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 5, pos, 1, 1, "ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    const char *addr = pos[0];
    char shown[256];
    uint64_t count = 0;
    if (count_text) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(count_text, &end, 10);
        if (count_text[0] < '0' || count_text[0] > '9' || *end || errno || v == 0)
            return cli_fail(verb->name, addr, "invalid count %s: expected a whole number >= 1",
                            cli_quote(count_text, shown, sizeof shown));
        count = v;
    }
    /* Draining waits for nothing; -n and --follow wait as long as it takes. */
    int64_t timeout = (count || follow) ? SHML_FOREVER : 0;
    int status = parse_timeout(verb->name, addr, timeout_text, &timeout);
    if (status != CLI_EXIT_OK)
        return status;

    shml_channel *ch = NULL;
    int rc = shml_channel_open(addr, SHML_CONSUMER, NULL, &ch);
    if (rc < 0)
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);
    struct shml_channel_stats st;
    memset(&st, 0, sizeof st);
    shml_channel_stats(ch, &st);
    size_t cap = st.max_msg ? (size_t)st.max_msg : 1;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        shml_channel_close(ch);
        return cli_fail(verb->name, addr, "out of memory for a %zu-byte message", cap);
    }

    catch_stop_signals();
    uint64_t got = 0;
    while ((!count || got < count) && !stop_requested) {
        /* Whatever is queued goes out at once; stdout is flushed before any wait. */
        ssize_t r = shml_recv(ch, buf, cap, 0);
        if (r == -ETIMEDOUT && timeout != 0) {
            if (!cli_flush_stdout(verb->name)) {
                if (!cli_stdout_closed())
                    status = CLI_EXIT_FAIL;
                break;
            }
            r = recv_sliced(ch, buf, cap, timeout);
        }
        if (r == -EINTR)
            break; /* SIGINT or SIGTERM: a clean end */
        if (r == -ETIMEDOUT) {
            if (count) {
                /* -n promised N messages: fewer is a failure, drain and --follow just end. */
                char hint[96];
                snprintf(hint, sizeof hint, "received %llu of %llu message%s",
                         (unsigned long long)got, (unsigned long long)count, plural(count));
                status = cli_fail_lib(verb->name, addr, (int)r, NULL, hint);
            }
            break;
        }
        if (r < 0) {
            status = cli_fail_lib(verb->name, addr, (int)r, shml_last_error(), NULL);
            break;
        }
        got++;
        int w = print_message(verb->name, buf, (size_t)r, binary);
        if (w < 0)
            status = CLI_EXIT_FAIL;
        if (w)
            break;
    }
    free(buf);
    shml_channel_close(ch);
    return status;
}

/* ---- info ---- */

void cli_channel_read(const char *addr, uint32_t seg_kind, struct cli_channel_info *ci)
{
    memset(ci, 0, sizeof *ci);
    if (seg_kind != SHML_QUEUE && seg_kind != SHML_BUS && seg_kind != SHML_LATEST &&
        seg_kind != SHML_RPC)
        return;
    ci->present = true;
    shml_channel *ch = NULL;
    int rc = shml_channel_open(addr, SHML_CONSUMER, NULL, &ch);
    if (rc < 0) {
        ci->err = rc;
        snprintf(ci->detail, sizeof ci->detail, "%s", shml_last_error());
        return;
    }
    rc = shml_channel_stats(ch, &ci->st);
    if (rc < 0) {
        ci->err = rc;
        snprintf(ci->detail, sizeof ci->detail, "%s", shml_last_error());
    }
    shml_channel_close(ch);
}

void cli_channel_text(const struct cli_channel_info *ci)
{
    if (!ci->present)
        return;
    if (ci->err) {
        char shown[4 * sizeof ci->detail];
        if (ci->detail[0])
            printf("channel:      ? (%s (%s))\n", shml_strerror(ci->err),
                   cli_display(ci->detail, shown, sizeof shown));
        else
            printf("channel:      ? (%s)\n", shml_strerror(ci->err));
        return;
    }
    char kind[32], human[32];
    cli_fmt_kind(ci->st.kind, kind, sizeof kind);
    cli_fmt_size(ci->st.max_msg, human, sizeof human);
    printf("channel:      %s%s, %u slots of %u bytes, messages up to %llu bytes (%s)\n", kind,
           (ci->st.flags & SHML_SPSC) ? " (one producer, one consumer)" : "", ci->st.slots,
           ci->st.slot_size, (unsigned long long)ci->st.max_msg, human);
    printf("messages:     %llu sent, %llu received, %llu queued, %llu lost\n",
           (unsigned long long)ci->st.sent, (unsigned long long)ci->st.received,
           (unsigned long long)ci->st.queued, (unsigned long long)ci->st.lost);
}

void cli_channel_json(struct cli_json *j, const struct cli_channel_info *ci)
{
    if (!ci->present)
        return;
    cli_json_key(j, "channel");
    cli_json_begin_object(j);
    if (ci->err) {
        cli_json_key(j, "error");
        cli_json_string(j, shml_strerror(ci->err));
        cli_json_key(j, "detail");
        cli_json_string(j, ci->detail[0] ? ci->detail : NULL);
        cli_json_end_object(j);
        return;
    }
    char kind[32];
    cli_fmt_kind(ci->st.kind, kind, sizeof kind);
    cli_json_key(j, "kind");
    cli_json_uint(j, ci->st.kind);
    cli_json_key(j, "kind_name");
    cli_json_string(j, kind);
    cli_json_key(j, "spsc");
    cli_json_bool(j, (ci->st.flags & SHML_SPSC) != 0);
    cli_json_key(j, "slots");
    cli_json_uint(j, ci->st.slots);
    cli_json_key(j, "slot_size");
    cli_json_uint(j, ci->st.slot_size);
    cli_json_key(j, "max_msg");
    cli_json_uint(j, ci->st.max_msg);
    cli_json_key(j, "sent");
    cli_json_uint(j, ci->st.sent);
    cli_json_key(j, "received");
    cli_json_uint(j, ci->st.received);
    cli_json_key(j, "queued");
    cli_json_uint(j, ci->st.queued);
    cli_json_key(j, "lost");
    cli_json_uint(j, ci->st.lost);
    cli_json_end_object(j);
}
