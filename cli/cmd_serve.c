/*
 * cmd_serve.c - `shmlink serve`: a server of an rpc channel that answers each request with
 * the request itself (--echo) or with what a command prints when given the request.
 *
 * One request at a time: take it, compute the reply, send it, take the next. A stop signal
 * ends serve between two requests, or while the command runs (the command is stopped and
 * that request gets no reply: its client learns that its server is gone).
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "cmd_channel.h"
#include "sys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest wait for room to send a reply (a reply goes to its client's own slot). */
#define REPLY_TIMEOUT_NS ((int64_t)5 * 1000 * 1000 * 1000)

struct server {
    const char *verb;
    const char *addr;
    shml_channel *ch;
    char **cmd;         /* NULL: --echo */
    unsigned char *out; /* the reply being built */
    size_t cap;         /* the channel's max_msg */
    uint64_t served;
};

/* Report "shmlink: serve ADDR: request N: ..." as a warning (serve goes on). */
CLI_PRINTF(2, 3) static void warn(const struct server *sv, const char *fmt,
                                                       ...)
{
    char *shown = malloc(CLI_SHOW_CAP);
    cli_flush_stdout(sv->verb);
    fprintf(stderr, "shmlink: %s %s: request %llu: ", sv->verb,
            shown ? cli_display(sv->addr, shown, CLI_SHOW_CAP) : "?",
            (unsigned long long)sv->served + 1);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    free(shown);
}

/*
 * Run the command with the request on its stdin (with a newline added if it has none) and its
 * stdout into sv->out (at most cap bytes; more is read and counted, so the command never
 * blocks on a full pipe). Returns the reply length; -1 after reporting a failure that ends
 * serve (the command cannot be run); -2 when a stop signal arrived meanwhile (the command is
 * stopped).
 */
static ssize_t run_command(struct server *sv, const unsigned char *req, size_t len)
{
    struct cli_filter f;
    bool nl = len > 0 && req[len - 1] != '\n';
    cli_sys_run_filter(sv->cmd, req, len, nl, sv->out, sv->cap, &f);
    char name[256];
    cli_quote(sv->cmd[0], name, sizeof name);
    switch (f.failed) {
    case CLI_FILTER_PIPE:
        cli_fail(sv->verb, sv->addr, "cannot make a pipe for the command: %s", strerror(f.err));
        return -1;
    case CLI_FILTER_START:
        cli_fail(sv->verb, sv->addr, "cannot start the command: %s", strerror(f.err));
        return -1;
    case CLI_FILTER_EXEC:
        cli_fail(sv->verb, sv->addr, "cannot run %s: %s", name, strerror(f.err));
        return -1;
    case CLI_FILTER_RAN:
        break;
    }
    if (f.stopped)
        return -2;
    if (f.signal)
        warn(sv, "%s was killed by signal %d; its output is the reply", name, f.signal);
    else if (f.exit_status != 0)
        warn(sv, "%s exited with status %d; its output is the reply", name, f.exit_status);
    /* Like the shell's $(...), but only one: a line-oriented command answers with a line. */
    size_t got = f.got, total = f.total;
    if (got > 0 && got == total && sv->out[got - 1] == '\n')
        got--, total--;
    if (total > got)
        warn(sv, "%s printed %zu bytes; the reply is cut to the channel's largest message, %zu",
             name, total, sv->cap);
    return (ssize_t)got;
}

/* Send the reply to the request just taken; 0, or the exit status after reporting. */
static int reply(struct server *sv, const void *msg, size_t len)
{
    /* A stop signal must not cost the reply the client is waiting for: the stop token is
       held off for it. */
    shml_cancel *held = cli_stop_hold();
    ssize_t r = shml_send(sv->ch, msg, len, REPLY_TIMEOUT_NS);
    cli_stop_release(held);
    if (r >= 0)
        return 0;
    char hint[96];
    snprintf(hint, sizeof hint, "the reply to request %llu was not sent",
             (unsigned long long)sv->served + 1);
    return cli_fail_lib(sv->verb, sv->addr, (int)r, shml_last_error(), hint);
}

static int run_serve(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_serve = {
    .name = "serve",
    .usage = "ADDR (--echo | -- CMD [ARGS...]) [-n N] [--timeout DURATION] [--wait]",
    .help =
        "Answer the requests of the rpc channel at ADDR, one at a time, until interrupted:\n"
        "with the request itself (--echo), or with what CMD prints on stdout when run with the\n"
        "request on its stdin (one trailing newline removed, as the shell's $(...) does; cut\n"
        "to the channel's largest message). CMD's stderr passes through; a CMD that fails is\n"
        "reported on stderr and its output is still the reply. At the end, prints\n"
        "'served N requests on ADDR'. SIGINT or SIGTERM ends serve cleanly (exit 0); a\n"
        "request whose CMD was still running gets no reply.\n"
        "\n"
        "Options:\n"
        "  --echo               reply with the request\n"
        "  -- CMD [ARGS...]     reply with CMD's output (everything after -- is the command)\n"
        "  -n N, --count N      stop after N requests\n"
        "  --timeout DURATION   stop when no request came for this long (default forever)\n"
        "  --wait               if ADDR does not exist yet, wait for it to appear (within\n"
        "                       --timeout)\n",
    .run = run_serve,
};

static int run_serve(const struct cli_verb *verb, int argc, char **argv)
{
    /* Everything after "--" is the command, whatever it looks like. */
    int own = 0;
    while (own < argc && strcmp(argv[own], "--") != 0)
        own++;
    char **cmd = own < argc ? argv + own + 1 : NULL;
    int ncmd = own < argc ? argc - own - 1 : 0;

    bool echo = false, wait = false;
    const char *timeout_text = NULL, *count_text = NULL;
    const struct cli_opt opts[] = {
        {"echo", NULL, &echo, NULL},
        {"timeout", "DURATION", NULL, &timeout_text},
        {"n", "N", NULL, &count_text},
        {"count", "N", NULL, &count_text},
        {"wait", NULL, &wait, NULL},
    };
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, own, argv, opts, 5, pos, 1, 1, "ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;
    if (echo && ncmd > 0)
        return cli_usage_error(verb, "--echo and a command exclude each other");
    if (!echo && ncmd == 0)
        return cli_usage_error(verb, cmd ? "missing CMD after '--'"
                                         : "say how to answer: --echo, or -- CMD [ARGS...]");

    const char *addr = pos[0];
    char shown[256];
    uint64_t count = 0;
    if (count_text && cli_parse_count(count_text, &count) < 0)
        return cli_fail(verb->name, addr, "invalid count %s: expected a whole number >= 1",
                        cli_quote(count_text, shown, sizeof shown));
    int64_t timeout = SHML_FOREVER;
    int status = cli_parse_timeout(verb->name, addr, timeout_text, &timeout);
    if (status != CLI_EXIT_OK)
        return status;

    struct server sv = {verb->name, addr, NULL, echo ? NULL : cmd, NULL, 0, 0};
    struct shml_channel_stats st;
    status = cli_open_endpoint(verb->name, addr, SHML_SERVER, wait ? &timeout : NULL, &sv.ch,
                               &st);
    if (status != CLI_EXIT_OK)
        return status;
    if (st.kind != SHML_RPC) {
        char kind[32];
        cli_fmt_kind(st.kind, kind, sizeof kind);
        shml_channel_close(sv.ch);
        return cli_fail(verb->name, addr,
                        "is a %s channel, not rpc: serve answers the requests of an rpc channel "
                        "(make one with 'shmlink mk rpc ADDR')",
                        kind);
    }
    sv.cap = st.max_msg ? (size_t)st.max_msg : 1;
    unsigned char *req = malloc(sv.cap);
    sv.out = malloc(sv.cap);
    if (!req || !sv.out) {
        free(req);
        free(sv.out);
        shml_channel_close(sv.ch);
        return cli_fail(verb->name, addr, "out of memory for %zu-byte messages", sv.cap);
    }

    cli_catch_stop_signals();
    while ((!count || sv.served < count) && !cli_stop_requested) {
        if (!cli_flush_stdout(verb->name) && !cli_stdout_closed()) {
            status = CLI_EXIT_FAIL;
            break;
        }
        ssize_t r = shml_recv(sv.ch, req, sv.cap, timeout);
        if (r == -ECANCELED || r == -ETIMEDOUT)
            break; /* a stop signal, or --timeout passed without a request: a clean end */
        if (r < 0) {
            status = cli_fail_lib(verb->name, addr, (int)r, shml_last_error(), NULL);
            break;
        }
        if (echo) {
            status = reply(&sv, req, (size_t)r);
        } else {
            ssize_t n = run_command(&sv, req, (size_t)r);
            if (n == -2)
                break;
            if (n == -1) {
                /* The client must not wait for ever: it gets an empty reply. */
                reply(&sv, "", 0);
                status = CLI_EXIT_FAIL;
                break;
            }
            status = reply(&sv, sv.out, (size_t)n);
        }
        if (status != CLI_EXIT_OK)
            break;
        sv.served++;
    }
    if (status == CLI_EXIT_OK) {
        char *canon = cli_channel_address(sv.ch);
        printf("served %llu request%s on %s\n", (unsigned long long)sv.served,
               cli_plural(sv.served), canon ? canon : "?");
        free(canon);
    }
    free(req);
    free(sv.out);
    shml_channel_close(sv.ch);
    return status;
}
