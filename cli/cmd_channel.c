/*
 * cmd_channel.c - the channel verbs that move messages: mk, send, recv, and what they share
 * with the other verbs (cmd_channel.h: stop signals, opening an endpoint).
 *
 * A stop signal (SIGINT, SIGTERM) ends a blocked send, recv or open between two messages,
 * never inside one: the handler sets a flag and fires the cancellation token bound to the
 * main thread (sync.h), which ends the library wait in progress with -ECANCELED at once, and
 * makes every later wait a try. A message is never lost to Ctrl-C.
 */
#include "shmlink.h"

#include "cmd_channel.h"
#include "sys.h"
#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "typed.h"
#include "json.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cli_stop_requested;

/* Fired by a stop signal; bound to the main thread, it ends whatever library wait is on. */
static shml_cancel *stop_token;

static void on_stop(int sig)
{
    cli_stop_requested = sig;
    shml_cancel_fire(stop_token); /* async-signal-safe by contract */
}

void cli_catch_stop_signals(void)
{
    if (stop_token)
        return;
    /* Without the token a stop could not end a wait: refuse to start one. */
    if (shml_cancel_create(&stop_token, 0) < 0) {
        fprintf(stderr, "shmlink: out of memory\n");
        exit(CLI_EXIT_FAIL);
    }
    shml_cancel_bind(stop_token);
    cli_sys_catch_stop(on_stop);
}

shml_cancel *cli_stop_hold(void)
{
    return shml_cancel_bind(NULL);
}

void cli_stop_release(shml_cancel *held)
{
    shml_cancel_bind(held);
}

bool cli_is_channel_kind(uint32_t kind)
{
    return kind == SHML_QUEUE || kind == SHML_BUS || kind == SHML_LATEST || kind == SHML_RPC;
}

int cli_parse_timeout(const char *verb, const char *addr, const char *text, int64_t *out)
{
    const char *why;
    char shown[256];
    if (text && cli_parse_duration(text, out, &why) < 0)
        return cli_fail(verb, addr, "invalid timeout %s: %s", cli_quote(text, shown, sizeof shown),
                        why);
    return 0;
}

int cli_parse_count(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno || v == 0)
        return -1;
    *out = v;
    return 0;
}

char *cli_channel_address(shml_channel *ch)
{
    char *shown = malloc(CLI_SHOW_CAP);
    if (shown)
        cli_display(shml_segment_address(shml_channel_segment(ch)), shown, CLI_SHOW_CAP);
    return shown;
}

int cli_open_endpoint(const char *verb, const char *addr, unsigned role, const int64_t *wait,
                      shml_channel **ch, struct shml_channel_stats *st)
{
    return cli_open_endpoint_flags(verb, addr, role, 0, NULL, wait, ch, st);
}

int cli_open_endpoint_flags(const char *verb, const char *addr, unsigned role, uint32_t flags,
                            const char *durable, const int64_t *wait, shml_channel **ch,
                            struct shml_channel_stats *st)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.flags = flags;
    o.durable = durable;
    if (wait) {
        cli_catch_stop_signals();
        o.flags |= SHML_WAIT;
        o.timeout_ns = *wait;
    }
    int rc = shml_channel_open(addr, role, &o, ch);
    if (rc == -ECANCELED) {
        cli_fail(verb, addr, "interrupted while waiting for the channel to appear");
        return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    }
    if (rc == -ETIMEDOUT && wait)
        return cli_fail_lib(verb, addr, rc, "the channel did not appear in time", NULL);
    if (rc == -EUSERS)
        return cli_fail_lib(verb, addr, rc, shml_last_error(),
                            "stop a process that has it open, or make the channel again with a "
                            "larger --endpoints");
    if (rc < 0)
        return cli_fail_lib(verb, addr, rc, shml_last_error(), NULL);
    memset(st, 0, sizeof *st);
    shml_channel_get_stats(*ch, st);
    return 0;
}

/* ---- mk ---- */

/*
 * mk --type FORMAT [--shape N,...]: one of the formats the tool reads and writes as values
 * (typed.c), so that what mk makes, send and recv can use. Returns 0, or -1 after reporting.
 */
static int parse_type(const char *verb, const char *addr, const char *format, const char *shape,
                      struct shml_channel_type *t)
{
    char shown[256];
    memset(t, 0, sizeof *t);
    if (strlen(format) >= sizeof t->format)
        return cli_fail(verb, addr, "invalid type %s: too long",
                        cli_quote(format, shown, sizeof shown));
    strcpy(t->format, format);
    /* The codec knows the element's size; try each size until it accepts the format. */
    struct cli_codec c;
    for (t->itemsize = 1; t->itemsize <= 8 && cli_codec_init(t, &c) < 0; t->itemsize++)
        ;
    if (t->itemsize > 8)
        return cli_fail(verb, addr,
                        "invalid type %s: mk makes channels of one scalar per element (b B h H "
                        "i I l L q Q f d ?, with an optional byte order @ = < > !); make other "
                        "types from C or Python",
                        cli_quote(format, shown, sizeof shown));
    for (const char *p = shape; p && *p;) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(p, &end, 10);
        if (*p < '0' || *p > '9' || errno || n == 0 || (*end && *end != ',') ||
            t->ndim == SHML_TYPE_NDIM_MAX)
            return cli_fail(verb, addr,
                            "invalid shape %s: expected up to %u whole numbers >= 1, separated "
                            "by commas",
                            cli_quote(shape, shown, sizeof shown), SHML_TYPE_NDIM_MAX);
        t->shape[t->ndim++] = n;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int run_mk(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_mk = {
    .name = "mk",
    .usage = "KIND ADDR [--capacity SIZE] [--max-msg SIZE] [--policy POLICY] [--endpoints N]\n"
             "          [--mode MODE] [--spsc] [--type FORMAT [--shape N[,N...]]]",
    .help =
        "Create a channel of KIND at ADDR; it persists until 'shmlink rm ADDR'.\n"
        "\n"
        "KIND is one of:\n"
        "  queue    each message goes to exactly one receiver\n"
        "  bus      each message goes to every subscriber (a receiver joins at the next message)\n"
        "  latest   one newest value: writers never wait, a reader gets the newest value\n"
        "  rpc      request/reply: 'shmlink send' asks, 'shmlink serve' answers\n"
        "Any other KIND is a usage error. The channel holds the largest power of two of slots\n"
        "of max-msg bytes (plus a slot header) that fits in the capacity, and at least 2 (a\n"
        "latest channel: at least 4 buffers).\n"
        "\n"
        "Options:\n"
        "  --capacity SIZE   bytes of message slots (default 1M; K/M/G/T suffixes as for create)\n"
        "  --max-msg SIZE    largest message in bytes (default 4K, at most 1G)\n"
        "  --policy POLICY   when the channel is full: block (the default: senders wait) or,\n"
        "                    for a bus only, overwrite (publishers never wait; a subscriber that\n"
        "                    falls behind skips ahead and is told how many messages it missed)\n"
        "  --endpoints N     entries in the endpoint table, 1 to 4096 (default 64): how many\n"
        "                    handles can have the channel open at once\n"
        "  --mode MODE       octal permission bits, 1 to 0777 (default 0600)\n"
        "  --spsc            queue: one producer and one consumer at a time (faster; not\n"
        "                    enforced)\n"
        "  --type FORMAT     typed messages: each is an array of elements of this PEP 3118\n"
        "                    format, one scalar: b B h H i I l L q Q (integers), f d (floats),\n"
        "                    ? (bool), with an optional byte order @ = < > ! ('<f': a\n"
        "                    little-endian float); send and recv then move values\n"
        "  --shape N[,N...]  the array's shape (default: one element); max-msg defaults to\n"
        "                    one message of the type\n",
    .run = run_mk,
};

static int run_mk(const struct cli_verb *verb, int argc, char **argv)
{
    bool spsc = false;
    const char *cap_text = NULL, *max_text = NULL, *mode_text = NULL, *policy_text = NULL,
               *ep_text = NULL, *type_text = NULL, *shape_text = NULL;
    const struct cli_opt opts[] = {
        {"capacity", "SIZE", NULL, &cap_text},    {"max-msg", "SIZE", NULL, &max_text},
        {"policy", "POLICY", NULL, &policy_text}, {"endpoints", "N", NULL, &ep_text},
        {"mode", "MODE", NULL, &mode_text},       {"spsc", NULL, &spsc, NULL},
        {"type", "FORMAT", NULL, &type_text},     {"shape", "N[,N...]", NULL, &shape_text},
    };
    const char *pos[2];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 8, pos, 2, 2, "KIND ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    static const uint32_t kinds[] = {SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC};
    uint32_t kind = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(pos[0], shml_kind_name(kinds[i])) == 0)
            kind = kinds[i];
    }
    char shown[256];
    if (!kind)
        return cli_usage_error(verb, "unknown channel kind %s (queue, bus, latest or rpc)",
                               cli_quote(pos[0], shown, sizeof shown));

    const char *addr = pos[1];
    const char *why;
    uint64_t capacity = (uint64_t)1 << 20, max_msg = 4096, endpoints = 64;
    if (cap_text && cli_parse_size(cap_text, false, &capacity, &why) < 0)
        return cli_fail(verb->name, addr, "invalid capacity %s: %s",
                        cli_quote(cap_text, shown, sizeof shown), why);
    if (max_text && cli_parse_size(max_text, false, &max_msg, &why) < 0)
        return cli_fail(verb->name, addr, "invalid max-msg %s: %s",
                        cli_quote(max_text, shown, sizeof shown), why);
    uint32_t policy = SHML_BLOCK;
    if (policy_text && strcmp(policy_text, shml_policy_name(SHML_BLOCK)) == 0) {
        policy = SHML_BLOCK;
    } else if (policy_text && strcmp(policy_text, shml_policy_name(SHML_OVERWRITE)) == 0) {
        if (kind != SHML_BUS)
            return cli_fail(verb->name, addr,
                            "policy 'overwrite' is for bus channels only (%s): use --policy "
                            "block, or mk bus",
                            kind == SHML_QUEUE    ? "a queue's producers wait for room"
                            : kind == SHML_LATEST ? "a latest channel's writers never wait"
                                                  : "an rpc channel's clients wait for room");
        policy = SHML_OVERWRITE;
    } else if (policy_text) {
        return cli_fail(verb->name, addr, "invalid policy %s: expected block or overwrite",
                        cli_quote(policy_text, shown, sizeof shown));
    }
    if (ep_text && (cli_parse_count(ep_text, &endpoints) < 0 || endpoints > 4096))
        return cli_fail(verb->name, addr,
                        "invalid endpoints %s: expected a whole number from 1 "
                        "to 4096",
                        cli_quote(ep_text, shown, sizeof shown));
    if (spsc && kind != SHML_QUEUE)
        return cli_fail(verb->name, addr,
                        "--spsc is for queue channels only (the fast path of one producer and "
                        "one consumer): leave it out, or mk queue");
    uint32_t mode = 0600;
    if (mode_text && cli_parse_mode(mode_text, &mode, &why) < 0)
        return cli_fail(verb->name, addr, "invalid mode %s: %s",
                        cli_quote(mode_text, shown, sizeof shown), why);

    struct shml_channel_type type;
    if (shape_text && !type_text)
        return cli_usage_error(verb, "--shape goes with --type");
    int status = type_text ? parse_type(verb->name, addr, type_text, shape_text, &type) : 0;
    if (status != 0)
        return status;

    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.type = type_text ? &type : NULL;
    o.kind = kind;
    o.capacity = (size_t)capacity;
    /* Typed, without --max-msg: room for one message of the type, as the library's default. */
    o.max_msg = type_text && !max_text ? 0 : (size_t)max_msg;
    o.policy = policy;
    o.mode = mode;
    o.flags = spsc ? SHML_SPSC : 0;
    o.endpoints = (uint32_t)endpoints;
    shml_channel *ch = NULL;
    int rc = shml_channel_create(addr, &o, &ch);
    if (rc < 0)
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);

    struct shml_channel_stats st;
    memset(&st, 0, sizeof st);
    shml_channel_get_stats(ch, &st);
    char *canon = cli_channel_address(ch);
    /* The channel persists: the segment stays until `shmlink rm` (on Windows, held for it). */
    char held_why[256];
    if (cli_sys_keep(canon ? canon : addr, held_why, sizeof held_why) < 0) {
        shml_channel_close(ch);
        shml_segment_unlink(canon ? canon : addr);
        free(canon);
        return cli_fail(verb->name, addr, "%s", held_why);
    }
    shml_channel_close(ch);
    char human[32];
    cli_fmt_size(st.max_msg, human, sizeof human);
    unsigned eps = st.endpoints ? st.endpoints : (unsigned)endpoints;
    printf("created %s %s: %u %s, messages up to %llu bytes (%s), %u endpoint%s, mode %04o", pos[0],
           canon ? canon : "?", st.slots, kind == SHML_LATEST ? "buffers" : "slots",
           (unsigned long long)st.max_msg, human, eps, cli_plural(eps), mode);
    if (kind == SHML_BUS)
        printf(", policy %s", shml_policy_name(policy));
    if (type_text) {
        printf(", type %s, shape [", type.format);
        for (uint32_t d = 0; d < type.ndim; d++)
            printf("%s%llu", d ? ", " : "", (unsigned long long)type.shape[d]);
        printf("]");
    }
    printf("%s\n", spsc ? ", spsc" : "");
    free(canon);
    return CLI_EXIT_OK;
}

/* ---- printing a message (recv, and the replies of send to an rpc channel) ---- */

/*
 * Print one message: its values when `codec` decodes the channel's type (and the message is
 * one of the type), else its bytes. 0 go on, 1 stdout went away, -1 write error (reported).
 */
static int print_message(const char *verb, const unsigned char *msg, size_t len, bool binary,
                         const struct cli_codec *codec)
{
    int w;
    if (!binary && codec && len == codec->size * codec->count)
        return cli_codec_print(verb, codec, msg, len);
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

/* ---- send ---- */

struct sender {
    const char *verb;
    const char *addr;
    shml_channel *ch;
    int64_t timeout;
    uint64_t sent;
    bool binary;
    uint32_t kind;
    /* rpc: send each message as a request and print its reply. */
    bool rpc;
    unsigned char *reply;
    size_t reply_cap;
    /* typed channel the tool decodes: each MSG or line is values, encoded into `encoded` */
    const struct cli_codec *codec;
    unsigned char *encoded;
    uint64_t type_bytes; /* typed channel: the one size of a message; 0 when untyped */
    uint64_t max_msg;
    bool wait; /* --wait: rpc requests wait for a server */
};

/* rpc: the reply to the request just sent; returns 0, or the exit status after reporting. */
static int await_reply(struct sender *s, int64_t deadline)
{
    int64_t left = SHML_FOREVER;
    if (s->timeout >= 0) {
        left = deadline - cli_mono_ns();
        if (left < 0)
            left = 0;
    }
    ssize_t r = shml_recv(s->ch, s->reply, s->reply_cap, left);
    char hint[128];
    snprintf(hint, sizeof hint, "request %llu got no reply, %llu answered before it",
             (unsigned long long)s->sent, (unsigned long long)s->sent - 1);
    if (r == -ECANCELED)
        return cli_fail(s->verb, s->addr, "interrupted; %s", hint);
    if (r == -ETIMEDOUT)
        return cli_fail_lib(s->verb, s->addr, (int)r, "no reply came; is 'shmlink serve' running?",
                            hint);
    if (r == -ECONNRESET)
        return cli_fail_lib(s->verb, s->addr, (int)r,
                            "the server that took the request died, or every server did", hint);
    if (r == -ENOTCONN)
        return cli_fail_lib(s->verb, s->addr, (int)r,
                            "every server closed before taking the request (--wait waits for "
                            "another)",
                            hint);
    if (r < 0)
        return cli_fail_lib(s->verb, s->addr, (int)r, shml_last_error(), hint);
    int w = print_message(s->verb, s->reply, (size_t)r, s->binary, s->codec);
    if (w < 0)
        return CLI_EXIT_FAIL;
    /* The next request may wait: show this reply first (a reader on a pipe sees it now). */
    if (w == 0 && !cli_flush_stdout(s->verb) && !cli_stdout_closed())
        return CLI_EXIT_FAIL;
    return 0;
}

/* Send one message (rpc: and print its reply); returns 0, or the exit status after reporting. */
static int send_one(struct sender *s, const void *msg, size_t len)
{
    if (cli_stop_requested)
        return cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                        (unsigned long long)s->sent, cli_plural(s->sent));
    if (s->codec && !s->binary) {
        char why[160];
        if (cli_codec_parse(s->codec, msg, len, s->encoded, why, sizeof why) < 0)
            return cli_fail(s->verb, s->addr,
                            "%s %llu is not a message of the channel's type: %s; %llu sent "
                            "before it",
                            s->rpc ? "request" : "message", (unsigned long long)s->sent + 1, why,
                            (unsigned long long)s->sent);
        msg = s->encoded;
        len = s->codec->size * s->codec->count;
    }
    int64_t deadline = s->timeout >= 0 ? cli_mono_ns() + s->timeout : 0;
    ssize_t r = shml_send(s->ch, msg, len, s->timeout);
    if (r >= 0) {
        s->sent++;
        return s->rpc ? await_reply(s, deadline) : 0;
    }
    char hint[128];
    snprintf(hint, sizeof hint, "%s %llu not sent, %llu sent before it",
             s->rpc ? "request" : "message", (unsigned long long)s->sent + 1,
             (unsigned long long)s->sent);
    if (r == -ECANCELED)
        return cli_fail(s->verb, s->addr, "interrupted; %s", hint);
    if (r == -EMSGSIZE && s->type_bytes && len != s->type_bytes && len <= s->max_msg)
        /* The library's "message too long" would mislead about a message too short. */
        return cli_fail(s->verb, s->addr,
                        "%s of %zu bytes; a message of this typed channel is one array of its "
                        "type, %llu bytes; %s",
                        s->rpc ? "request" : "message", len, (unsigned long long)s->type_bytes,
                        hint);
    if (r == -ENOTCONN)
        return cli_fail_lib(s->verb, s->addr, (int)r,
                            "no server is attached: start one ('shmlink serve ADDR'), or give "
                            "--wait to wait for one",
                            hint);
    if (r == -ETIMEDOUT && s->rpc && s->wait)
        return cli_fail_lib(s->verb, s->addr, (int)r,
                            "no server came, or the request queue stayed full", hint);
    if (r == -ETIMEDOUT)
        return cli_fail_lib(s->verb, s->addr, (int)r,
                            s->kind == SHML_BUS   ? "the bus stayed full: a subscriber is behind"
                            : s->kind == SHML_RPC ? "the request queue stayed full"
                                                  : "the queue stayed full",
                            hint);
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
            if (ferror(stdin) && errno == EINTR && !cli_stop_requested) {
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
        if (r == 0 && !cli_stop_requested && !ferror(stdin))
            break;
        if (cli_stop_requested) {
            status = cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                              (unsigned long long)s->sent, cli_plural(s->sent));
            break;
        }
        if (r <= 0) {
            status = ferror(stdin)
                         ? cli_fail(s->verb, s->addr, "cannot read stdin: %s", strerror(errno))
                         : cli_fail(s->verb, s->addr, "truncated frame header after %llu message%s",
                                    (unsigned long long)s->sent, cli_plural(s->sent));
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
            status = cli_stop_requested
                         ? cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                                    (unsigned long long)s->sent, cli_plural(s->sent))
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
        ssize_t n = cli_sys_getline(&line, &cap, stdin);
        if (n < 0) {
            if (cli_stop_requested) {
                status = cli_fail(s->verb, s->addr, "interrupted after %llu message%s",
                                  (unsigned long long)s->sent, cli_plural(s->sent));
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

static int run_send(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_send = {
    .name = "send",
    .usage = "ADDR [MSG...] [--binary] [--timeout DURATION] [--wait]",
    .help =
        "Send messages to the channel at ADDR: each MSG argument is one message; without MSG,\n"
        "each line of stdin is one (without its newline). Stops at the first failure.\n"
        "A queue or bus gets each message once; a latest channel takes each as its new value.\n"
        "To an rpc channel, each message is a request: send waits for its reply and prints it\n"
        "(escaped as recv prints messages; length-framed with --binary), then sends the next.\n"
        "With no server attached, a request fails at once (exit 1), unless --wait is given.\n"
        "To a typed channel whose type recv decodes, each MSG or line is the message's values,\n"
        "separated by spaces or commas ('1.5 2.5'); other typed channels take bytes. A message\n"
        "that is not exactly one message of the type is refused.\n"
        "\n"
        "Options:\n"
        "  --binary             stdin is length-framed: per message a 4-byte little-endian\n"
        "                       length, then that many bytes\n"
        "  --timeout DURATION   how long to wait for room in a full channel (rpc: and for the\n"
        "                       reply), per message: a number, with an optional fraction, and\n"
        "                       a unit ns, us, ms, s, m or h (none: seconds): 0.5, 250ms;\n"
        "                       0 (fail at once) or forever (the default)\n"
        "  --wait               wait for what is missing: for ADDR to appear, and (rpc) for a\n"
        "                       server to attach; each wait within --timeout\n",
    .run = run_send,
};

static int run_send(const struct cli_verb *verb, int argc, char **argv)
{
    bool binary = false, wait = false;
    const char *timeout_text = NULL;
    const struct cli_opt opts[] = {
        {"binary", NULL, &binary, NULL},
        {"timeout", "DURATION", NULL, &timeout_text},
        {"wait", NULL, &wait, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos;
    if (!pos)
        return cli_fail(verb->name, NULL, "out of memory");
    int parsed = cli_parse(verb, argc, argv, opts, 3, pos, 1, SIZE_MAX, "ADDR MSG", &npos);
    if (parsed != CLI_RUN) {
        free(pos);
        return parsed;
    }
    if (binary && npos > 1) {
        free(pos);
        return cli_usage_error(verb, "--binary reads stdin, so it takes no MSG arguments");
    }
    const char *addr = pos[0];
    struct sender s = {verb->name, addr, NULL, SHML_FOREVER, 0, binary, 0, false, NULL, 0,
                       NULL, NULL, 0, 0, wait};
    int status = cli_parse_timeout(verb->name, addr, timeout_text, &s.timeout);
    if (status != CLI_EXIT_OK) {
        free(pos);
        return status;
    }
    /* SHML_PRODUCER is also SHML_CLIENT: one open serves every kind. */
    struct shml_channel_stats st;
    status = cli_open_endpoint(verb->name, addr, SHML_PRODUCER, wait ? &s.timeout : NULL, &s.ch,
                               &st);
    if (status != CLI_EXIT_OK) {
        free(pos);
        return status;
    }
    s.kind = st.kind;
    s.max_msg = st.max_msg;
    if (st.type.format[0]) {
        s.type_bytes = st.type.itemsize;
        for (uint32_t d = 0; d < st.type.ndim && d < SHML_TYPE_NDIM_MAX; d++)
            s.type_bytes *= st.type.shape[d];
    }
    struct cli_codec codec;
    if (st.type.format[0] && cli_codec_init(&st.type, &codec) == 0) {
        s.codec = &codec;
        s.encoded = malloc(codec.size * codec.count); /* both > 0: validated at create */
        if (!s.encoded) {
            shml_channel_close(s.ch);
            free(pos);
            return cli_fail(verb->name, addr, "out of memory for a typed message");
        }
    }
    if (st.kind == SHML_RPC) {
        s.rpc = true;
        s.reply_cap = st.max_msg ? (size_t)st.max_msg : 1;
        s.reply = malloc(s.reply_cap);
        if (!s.reply) {
            shml_channel_close(s.ch);
            free(pos);
            return cli_fail(verb->name, addr, "out of memory for a %zu-byte reply", s.reply_cap);
        }
    }

    cli_catch_stop_signals();
    if (npos > 1) {
        for (size_t i = 1; i < npos && status == CLI_EXIT_OK && !cli_stdout_closed(); i++)
            status = send_one(&s, pos[i], strlen(pos[i]));
    } else if (binary) {
        status = send_framed(&s, st.max_msg);
    } else {
        status = send_lines(&s);
    }
    /* rpc: stdout holds the replies, and nothing else. */
    if (status == CLI_EXIT_OK && !s.rpc) {
        char *canon = cli_channel_address(s.ch);
        printf("sent %llu message%s to %s\n", (unsigned long long)s.sent, cli_plural(s.sent),
               canon ? canon : "?");
        free(canon);
    }
    shml_channel_close(s.ch);
    free(s.reply);
    free(s.encoded);
    free(pos);
    return status;
}

/* ---- recv ---- */

/*
 * Say on stderr what the subscriber (bus) or reader (latest) skipped before the message it
 * just received. stdout is flushed first, so on a terminal the line sits where the gap is.
 */
static void report_gap(const char *verb, const char *addr, uint32_t kind, uint64_t gap)
{
    if (gap == 0)
        return;
    cli_flush_stdout(verb);
    char *shown = malloc(CLI_SHOW_CAP);
    if (kind == SHML_LATEST)
        fprintf(stderr, "shmlink: %s %s: skipped %llu value%s (newer ones replaced them)\n", verb,
                shown ? cli_display(addr, shown, CLI_SHOW_CAP) : "?", (unsigned long long)gap,
                cli_plural(gap));
    else
        fprintf(stderr,
                "shmlink: %s %s: missed %llu message%s (the publisher overwrote them before "
                "they were read)\n",
                verb, shown ? cli_display(addr, shown, CLI_SHOW_CAP) : "?", (unsigned long long)gap,
                cli_plural(gap));
    free(shown);
}

/* One channel recv receives from. */
struct source {
    const char *addr; /* as given: its name in errors, line prefixes and JSON */
    char *shown;      /* addr escaped for a terminal (malloc'ed) */
    shml_channel *ch;
    struct shml_channel_stats st; /* kind, max_msg, type */
    bool decoded;                 /* the tool decodes its type: messages are values */
    struct cli_codec codec;       /* points into st.type */
};

/* recv's state: its channels, its output format and how far it got. */
struct receiver {
    const char *verb;
    struct source *src;
    size_t n;
    unsigned char *buf; /* one message, the largest any of the channels takes */
    size_t cap;
    bool binary, json;
    struct cli_json j; /* --json: the line being made */
    uint64_t count;    /* -n; 0: no limit */
    uint64_t got;
    int64_t timeout; /* per message */
};

/*
 * --json: one line per message, its keys always all there, in this order:
 *   channel  the address it came from, as given
 *   size     its length in bytes
 *   text     the message, when it is well-formed UTF-8 (and not values), else null
 *   base64   the message in base64, when it is neither UTF-8 text nor values, else null
 *   values   a typed channel's values (the tool decodes its type), else null
 *   missed   messages (bus) or values (latest) skipped just before it; 0 for other kinds
 * Returns as print_message().
 */
static int print_json(struct receiver *r, const struct source *s, size_t len, uint64_t gap)
{
    struct cli_json *j = &r->j;
    const unsigned char *msg = r->buf;
    bool values = s->decoded && len == s->codec.size * s->codec.count;
    bool text = !values;
    for (size_t i = 0; text && i < len;) {
        uint32_t cp;
        size_t seq = cli_utf8_seq(msg + i, len - i, &cp);
        text = seq != 0;
        i += seq;
    }
    cli_json_begin_object(j);
    cli_json_key(j, "channel");
    cli_json_string(j, s->addr);
    cli_json_key(j, "size");
    cli_json_uint(j, len);
    cli_json_key(j, "text");
    if (text)
        cli_json_string_n(j, msg, len);
    else
        cli_json_null(j);
    cli_json_key(j, "base64");
    if (!text && !values)
        cli_json_base64(j, msg, len);
    else
        cli_json_null(j);
    cli_json_key(j, "values");
    if (values)
        cli_codec_json(j, &s->codec, msg);
    else
        cli_json_null(j);
    cli_json_key(j, "missed");
    cli_json_uint(j, gap);
    cli_json_end_object(j);
    cli_json_finish(j);
    size_t n;
    const char *line = cli_json_line(j, &n);
    if (!line) {
        cli_fail(r->verb, s->addr, "out of memory for the JSON of a %zu-byte message", len);
        return -1;
    }
    return cli_stdout_write(r->verb, line, n);
}

/*
 * Print the message just received from s (len bytes in r->buf), after saying what its
 * subscriber or reader skipped before it. Returns as print_message().
 */
static int deliver(struct receiver *r, const struct source *s, size_t len)
{
    uint64_t gap = shml_recv_gap(s->ch);
    report_gap(r->verb, s->addr, s->st.kind, gap);
    if (r->json)
        return print_json(r, s, len, gap);
    /* Several channels: each line says which one its message came from. */
    if (r->n > 1) {
        int w = cli_stdout_write(r->verb, s->shown, strlen(s->shown));
        if (!w)
            w = cli_stdout_write(r->verb, ": ", 2);
        if (w)
            return w;
    }
    return print_message(r->verb, r->buf, len, r->binary, s->decoded ? &s->codec : NULL);
}

/* -n N, and the timeout ran out before the Nth message: a failure. addr NULL: several. */
static int fail_short(const struct receiver *r, const char *addr)
{
    char hint[96];
    snprintf(hint, sizeof hint, "received %llu of %llu message%s", (unsigned long long)r->got,
             (unsigned long long)r->count, cli_plural(r->count));
    return cli_fail_lib(r->verb, addr, -ETIMEDOUT, NULL, hint);
}

/* One channel: its own waits (shml_recv with a timeout), which spin before they sleep. */
static int recv_one(struct receiver *r)
{
    struct source *s = &r->src[0];
    int status = CLI_EXIT_OK;
    while ((!r->count || r->got < r->count) && !cli_stop_requested) {
        /* Whatever is queued goes out at once; stdout is flushed before any wait. */
        ssize_t n = shml_recv(s->ch, r->buf, r->cap, 0);
        if (n == -ETIMEDOUT && r->timeout != 0) {
            if (!cli_flush_stdout(r->verb)) {
                if (!cli_stdout_closed())
                    status = CLI_EXIT_FAIL;
                break;
            }
            n = shml_recv(s->ch, r->buf, r->cap, r->timeout);
        }
        if (n == -ECANCELED)
            break; /* SIGINT or SIGTERM: a clean end */
        if (n == -ETIMEDOUT) {
            /* -n promised N messages: fewer is a failure, drain and --follow just end. */
            if (r->count)
                status = fail_short(r, s->addr);
            break;
        }
        if (n < 0) {
            status = cli_fail_lib(r->verb, s->addr, (int)n, shml_last_error(), NULL);
            break;
        }
        r->got++;
        int w = deliver(r, s, (size_t)n);
        if (w < 0)
            status = CLI_EXIT_FAIL;
        if (w)
            break;
    }
    return status;
}

/* Ready channels in the order of the command line (the sources are one array). */
static int by_source(const void *a, const void *b)
{
    const struct source *x = ((const struct shml_waitset_event *)a)->user;
    const struct source *y = ((const struct shml_waitset_event *)b)->user;
    return x < y ? -1 : x > y;
}

/* What is left of a wait for the next message that ends at deadline (-1: none). */
static int64_t time_left(int64_t deadline)
{
    if (deadline < 0)
        return SHML_FOREVER;
    int64_t left = deadline - cli_mono_ns();
    return left > 0 ? left : 0;
}

/*
 * Several channels: one wait set. A channel it reports is read with shml_recv(..., 0) until
 * that returns -ETIMEDOUT, which arms its descriptor again (channel.h, "event loops"), or for
 * RECV_TURN messages, so that a channel that never runs dry does not starve the others (its
 * descriptor stays readable, and the next wait reports it again); -n, a stop or an error end
 * the reading, and recv. A stop signal
 * fires the token bound to this thread, which ends the wait in progress (-ECANCELED; -EINTR
 * when the signal's handler ran during the wait): recv then ends between two messages, as
 * with one channel.
 */
#define RECV_TURN 64

static int recv_many(struct receiver *r)
{
    int status = CLI_EXIT_OK;
    shml_waitset *ws = NULL;
    struct shml_waitset_event *ready = calloc(r->n, sizeof *ready);
    int rc = ready ? shml_waitset_create(&ws) : -ENOMEM;
    if (rc < 0) {
        free(ready);
        return cli_fail_lib(r->verb, NULL, rc, rc == -ENOMEM ? NULL : shml_last_error(), NULL);
    }
    for (size_t i = 0; i < r->n; i++) {
        rc = shml_waitset_add(ws, r->src[i].ch, &r->src[i]);
        if (rc < 0) {
            status = cli_fail_lib(r->verb, r->src[i].addr, rc, shml_last_error(), NULL);
            goto out;
        }
    }
    /* --timeout bounds the wait for each message: it starts again after every one. */
    int64_t deadline = r->timeout < 0 ? -1 : cli_mono_ns() + r->timeout;
    bool done = false;
    while (!done && (!r->count || r->got < r->count) && !cli_stop_requested) {
        /* What is there goes out at once; stdout is flushed before any wait. */
        int k = shml_waitset_wait(ws, ready, r->n, 0);
        if (k == -ETIMEDOUT && r->timeout != 0) {
            if (!cli_flush_stdout(r->verb)) {
                if (!cli_stdout_closed())
                    status = CLI_EXIT_FAIL;
                break;
            }
            k = shml_waitset_wait(ws, ready, r->n, time_left(deadline));
        }
        if (k == -EINTR && !cli_stop_requested)
            continue; /* a handler other than the stop's ran: nothing to do but wait again */
        if (k == -ECANCELED || k == -EINTR)
            break; /* SIGINT or SIGTERM: a clean end */
        if (k == -ETIMEDOUT) {
            if (r->count)
                status = fail_short(r, NULL);
            break;
        }
        if (k < 0) {
            status = cli_fail_lib(r->verb, NULL, k, shml_last_error(), NULL);
            break;
        }
        qsort(ready, (size_t)k, sizeof *ready, by_source);
        for (int e = 0; e < k && !done; e++) {
            const struct source *s = ready[e].user;
            for (int turn = 0; turn < RECV_TURN; turn++) {
                if ((r->count && r->got >= r->count) || cli_stop_requested) {
                    done = true;
                    break;
                }
                ssize_t n = shml_recv(s->ch, r->buf, r->cap, 0);
                if (n == -ETIMEDOUT)
                    break; /* none left: armed, the wait set reports the next */
                if (n == -ECANCELED) {
                    done = true; /* a stop, seen by the try */
                    break;
                }
                if (n < 0) {
                    status = cli_fail_lib(r->verb, s->addr, (int)n, shml_last_error(), NULL);
                    done = true;
                    break;
                }
                r->got++;
                if (r->timeout >= 0)
                    deadline = cli_mono_ns() + r->timeout;
                int w = deliver(r, s, (size_t)n);
                if (w < 0)
                    status = CLI_EXIT_FAIL;
                if (w) {
                    done = true;
                    break;
                }
            }
        }
    }
out:
    shml_waitset_destroy(ws);
    free(ready);
    return status;
}

/*
 * Open each address as a consumer, all of them before anything is received: one that fails
 * is reported and ends recv. `wait` (--wait): each may be waited for, all within *wait ns
 * from now (negative: no limit). Returns 0, or the exit status after reporting.
 */
static int open_sources(struct receiver *r, const char *const *addrs, const int64_t *wait)
{
    int64_t deadline = wait && *wait >= 0 ? cli_mono_ns() + *wait : -1;
    for (size_t i = 0; i < r->n; i++) {
        struct source *s = &r->src[i];
        s->addr = addrs[i];
        int64_t left = time_left(deadline);
        int status =
            cli_open_endpoint(r->verb, s->addr, SHML_CONSUMER, wait ? &left : NULL, &s->ch, &s->st);
        if (status != CLI_EXIT_OK)
            return status;
        if (s->st.kind == SHML_RPC) {
            /* A request taken here would never be answered: its client would wait in vain. */
            return cli_fail(r->verb, s->addr,
                            "is an rpc channel: answer its requests with 'shmlink serve', send "
                            "requests with 'shmlink send'");
        }
        /* One channel twice would split its messages between two endpoints of one recv. */
        const char *canon = shml_segment_address(shml_channel_segment(s->ch));
        for (size_t k = 0; k < i; k++) {
            if (strcmp(canon, shml_segment_address(shml_channel_segment(r->src[k].ch))) == 0) {
                char shown[256];
                return cli_fail(r->verb, s->addr,
                                "is the same channel as %s, given before it: give each channel "
                                "once",
                                cli_quote(r->src[k].addr, shown, sizeof shown));
            }
        }
        s->shown = malloc(CLI_SHOW_CAP);
        if (!s->shown)
            return cli_fail(r->verb, s->addr, "out of memory");
        cli_display(s->addr, s->shown, CLI_SHOW_CAP);
        size_t cap = s->st.max_msg ? (size_t)s->st.max_msg : 1;
        if (cap > r->cap)
            r->cap = cap;
    }
    r->buf = malloc(r->cap);
    if (!r->buf)
        return cli_fail(r->verb, r->n == 1 ? r->src[0].addr : NULL,
                        "out of memory for a %zu-byte message", r->cap);
    for (size_t i = 0; i < r->n; i++) {
        struct source *s = &r->src[i];
        const struct shml_channel_type *t = &s->st.type;
        s->decoded = t->format[0] && cli_codec_init(t, &s->codec) == 0;
        if (t->format[0] && !s->decoded && !r->binary) {
            char fmt[4 * SHML_TYPE_FORMAT_MAX];
            cli_quote(t->format, fmt, sizeof fmt);
            fprintf(stderr,
                    "shmlink: %s %s: messages of type %s are printed as bytes (recv decodes one "
                    "scalar per element: b B h H i I l L q Q f d ?, with an optional byte "
                    "order @ = < > !)\n",
                    r->verb, s->shown, fmt);
        }
    }
    return CLI_EXIT_OK;
}

static int run_recv(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_recv = {
    .name = "recv",
    .usage = "ADDR... [-n N] [--follow] [--binary | --json] [--timeout DURATION] [--wait]",
    .help =
        "Receive messages from the channel at ADDR and print each on its own line; bytes that\n"
        "are not printable UTF-8, and backslash, are escaped (\\n, \\t, \\xNN, \\\\).\n"
        "From a queue, received messages are consumed: no other receiver gets them.\n"
        "A typed channel's messages are printed as values, separated by spaces, in C order,\n"
        "when the type is one scalar per element (b B h H i I l L q Q f d ?, with an optional\n"
        "byte order @ = < > !); other types are printed as bytes, and recv says so on stderr.\n"
        "\n"
        "By default, receive what is queued now and exit (exit 0 also when nothing was).\n"
        "On a bus, recv subscribes from the next message sent, so it needs -n or --follow;\n"
        "on a latest channel it prints the newest value (and with -n or --follow, each newer\n"
        "one). What a bus subscriber missed (policy overwrite) or a latest reader skipped is\n"
        "said on stderr: 'shmlink: recv ADDR: missed N messages ...'.\n"
        "SIGINT or SIGTERM ends recv cleanly between two messages, with exit status 130\n"
        "(SIGINT) or 143 (SIGTERM), 128 + the signal, as a shell reports it.\n"
        "\n"
        "Several ADDR: recv opens each (all must open, or nothing is received), waits for all\n"
        "at once, and starts each line with the address the message came from, as given, and\n"
        "': ' ('cam0: hello'). Messages waiting in several channels come out channel by\n"
        "channel, in the order given. -n counts the messages of all of them, --timeout is the\n"
        "wait for the next message from any, and by default recv receives what each holds now.\n"
        "--binary takes one ADDR. A channel given twice is an error.\n"
        "\n"
        "Options:\n"
        "  -n N, --count N      stop after N messages, waiting for them (fewer: exit 1)\n"
        "  --follow             keep waiting for messages until interrupted\n"
        "  --binary             print messages as-is, length-framed as send --binary reads them\n"
        "  --json               print each message as a line of JSON: {\"channel\": ADDR as\n"
        "                       given, \"size\", \"text\" (UTF-8), \"base64\" (other bytes),\n"
        "                       \"values\" (a typed channel's), \"missed\"}\n"
        "  --timeout DURATION   wait at most this long for each message (as for send); when it\n"
        "                       passes, recv ends: exit 1 with -n, else exit 0. Default 0\n"
        "                       (drain), forever with -n or --follow\n"
        "  --wait               if ADDR does not exist yet, wait for it to appear (within\n"
        "                       --timeout, if given, for all ADDR together): a consumer\n"
        "                       started before its producer\n",
    .run = run_recv,
};

static int run_recv(const struct cli_verb *verb, int argc, char **argv)
{
    bool binary = false, follow = false, wait = false, json = false;
    const char *timeout_text = NULL, *count_text = NULL;
    const struct cli_opt opts[] = {
        {"binary", NULL, &binary, NULL},
        {"follow", NULL, &follow, NULL},
        {"timeout", "DURATION", NULL, &timeout_text},
        {"n", "N", NULL, &count_text},
        {"count", "N", NULL, &count_text},
        {"wait", NULL, &wait, NULL},
        {"json", NULL, &json, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos;
    if (!pos)
        return cli_fail(verb->name, NULL, "out of memory");
    int parsed = cli_parse(verb, argc, argv, opts, 7, pos, 1, SIZE_MAX, "ADDR", &npos);
    if (parsed != CLI_RUN) {
        free(pos);
        return parsed;
    }
    int status = CLI_EXIT_OK;
    if (binary && json)
        status = cli_usage_error(verb, "--binary and --json are two output formats: give one");
    else if (binary && npos > 1)
        status = cli_usage_error(verb, "--binary frames cannot say which channel a message came "
                                       "from: give one ADDR, or use --json");
    if (status != CLI_EXIT_OK) {
        free(pos);
        return status;
    }

    /* Values are a problem of the command, not of one channel, when there are several. */
    const char *addr = npos == 1 ? pos[0] : NULL;
    char shown[256];
    struct receiver r = {.verb = verb->name, .n = npos, .binary = binary, .json = json};
    if (count_text && cli_parse_count(count_text, &r.count) < 0) {
        free(pos);
        return cli_fail(verb->name, addr, "invalid count %s: expected a whole number >= 1",
                        cli_quote(count_text, shown, sizeof shown));
    }
    /* Draining waits for nothing; -n and --follow wait as long as it takes. */
    r.timeout = (r.count || follow) ? SHML_FOREVER : 0;
    status = cli_parse_timeout(verb->name, addr, timeout_text, &r.timeout);
    r.src = status == CLI_EXIT_OK ? calloc(npos, sizeof *r.src) : NULL;
    if (status == CLI_EXIT_OK && !r.src)
        status = cli_fail(verb->name, addr, "out of memory");
    if (status == CLI_EXIT_OK) {
        cli_json_init_line(&r.j);
        /* --wait: for the channels to appear, within --timeout when one is given. */
        int64_t open_wait = timeout_text ? r.timeout : SHML_FOREVER;
        status = open_sources(&r, pos, wait ? &open_wait : NULL);
    }
    if (status == CLI_EXIT_OK) {
        cli_catch_stop_signals();
        status = npos == 1 ? recv_one(&r) : recv_many(&r);
    }
    for (size_t i = 0; r.src && i < npos; i++) {
        shml_channel_close(r.src[i].ch);
        free(r.src[i].shown);
    }
    free(r.src);
    free(r.buf);
    cli_json_free(&r.j);
    free(pos);
    /* Stopped, not finished: a script can tell the two apart, as with any command a shell
       sees killed by the signal. */
    if (status == CLI_EXIT_OK && cli_stop_requested)
        status = CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    return status;
}
