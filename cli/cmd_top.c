/*
 * cmd_top.c - `shmlink top`: a live view of channels, refreshed every interval.
 *
 * Each refresh reads every channel with shml_channel_inspect() (no endpoint is opened) and
 * shows rates as the difference of the totals between two refreshes. On a terminal the view
 * is redrawn in place on the alternate screen with plain ANSI sequences (no curses), and 'q'
 * or Ctrl-C quits, leaving the terminal as it was; elsewhere each refresh is printed as plain
 * lines, so `shmlink top > log` records a history.
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "cmd_chinfo.h"
#include "cmd_channel.h"
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_COLS 11

/* One channel in one refresh. */
struct top_row {
    char *addr; /* as listed (canonical) or as given */
    int err;    /* < 0: could not be read */
    char detail[256];
    struct shml_channel_stats st;
    size_t live, dead;
    bool has_lag;
    uint64_t max_lag;
    size_t bridges;       /* endpoints opened SHML_BRIDGE, and what they counted */
    uint64_t reconnects, redelivered;
};

struct top_snap {
    int64_t t_ns; /* CLOCK_MONOTONIC when read */
    size_t n;
    struct top_row *rows;
};

static void snap_free(struct top_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->rows[i].addr);
    free(s->rows);
    s->rows = NULL;
    s->n = 0;
}

static int snap_add(struct top_snap *s, const char *addr)
{
    struct top_row *rows = realloc(s->rows, (s->n + 1) * sizeof *rows);
    if (!rows)
        return -1;
    s->rows = rows;
    struct top_row *r = &rows[s->n];
    memset(r, 0, sizeof *r);
    r->addr = strdup(addr);
    if (!r->addr)
        return -1;
    s->n++;

    struct cli_channel_info ci;
    cli_channel_read(addr, SHML_QUEUE /* any channel kind: read it */, &ci);
    if (ci.err) {
        r->err = ci.err;
        snprintf(r->detail, sizeof r->detail, "%s", ci.detail);
        return 0;
    }
    r->st = ci.st;
    for (size_t i = 0; i < ci.n_eps; i++) {
        const struct shml_endpoint_stats *e = &ci.eps[i];
        if (e->alive)
            r->live++;
        else
            r->dead++;
        if (e->flags & SHML_BRIDGE) {
            r->bridges++;
            r->reconnects += e->reconnects;
            r->redelivered += e->redelivered;
        }
        if ((ci.st.kind == SHML_BUS || ci.st.kind == SHML_LATEST) && (e->role & SHML_CONSUMER)) {
            r->has_lag = true;
            r->max_lag = e->lag > r->max_lag ? e->lag : r->max_lag;
        }
    }
    cli_channel_free(&ci);
    return 0;
}

/*
 * Read every channel: the addresses given, or every listed managed segment of a channel kind.
 * Returns 0, or the negative error of the list (reported by the caller).
 */
static int snap_take(struct top_snap *s, const char *const *addrs, size_t naddrs)
{
    memset(s, 0, sizeof *s);
    if (naddrs) {
        for (size_t i = 0; i < naddrs; i++) {
            if (snap_add(s, addrs[i]) < 0)
                return -ENOMEM;
        }
    } else {
        struct shml_segment_info *list = NULL;
        size_t count = 0;
        int rc = shml_segment_list(0, &list, &count);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < count; i++) {
            list[i].address[sizeof list[i].address - 1] = '\0';
            if (list[i].managed && list[i].status == 0 && cli_is_channel_kind(list[i].kind) &&
                snap_add(s, list[i].address) < 0) {
                shml_free(list);
                return -ENOMEM;
            }
        }
        shml_free(list);
    }
    s->t_ns = cli_mono_ns();
    return 0;
}

/* "950", "12.3k", "4.5M": a count per second for people. */
static void fmt_rate(double v, char *buf, size_t cap)
{
    if (v < 10000)
        snprintf(buf, cap, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else if (v < 1e9)
        snprintf(buf, cap, "%.1fM", v / 1e6);
    else
        snprintf(buf, cap, "%.1fG", v / 1e9);
}

/* The same channel in the refresh before, if it was there and readable. */
static const struct top_row *find_prev(const struct top_snap *prev, const char *addr)
{
    for (size_t i = 0; prev && i < prev->n; i++) {
        if (prev->rows[i].err == 0 && strcmp(prev->rows[i].addr, addr) == 0)
            return &prev->rows[i];
    }
    return NULL;
}

/* The text of the table: rows of TOP_COLS cells, a header first. */
struct top_table {
    size_t nrows;
    char (*cells)[TOP_COLS][CLI_SHOW_CAP];
};

static int build_table(const struct top_snap *cur, const struct top_snap *prev, struct top_table *t)
{
    static const char *const head[TOP_COLS] = {"ADDRESS", "KIND",   "MSG/S",     "BYTES/S",
                                               "SENT",    "QUEUED", "ENDPOINTS", "LAG",
                                               "DROPS",   "LOST",   "NOTE"};
    t->nrows = cur->n + 1;
    t->cells = calloc(t->nrows, sizeof *t->cells);
    if (!t->cells)
        return -1;
    for (size_t c = 0; c < TOP_COLS; c++)
        snprintf(t->cells[0][c], CLI_SHOW_CAP, "%s", head[c]);
    double dt = prev ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
    for (size_t i = 0; i < cur->n; i++) {
        const struct top_row *r = &cur->rows[i];
        char(*row)[CLI_SHOW_CAP] = t->cells[i + 1];
        cli_display(r->addr, row[0], CLI_SHOW_CAP);
        if (r->err) {
            snprintf(row[1], CLI_SHOW_CAP, "?");
            for (size_t c = 2; c < TOP_COLS - 1; c++)
                snprintf(row[c], CLI_SHOW_CAP, "-");
            char shown[4 * sizeof r->detail];
            if (r->detail[0])
                snprintf(row[10], CLI_SHOW_CAP, "%s (%s)", shml_strerror(r->err),
                         cli_display(r->detail, shown, sizeof shown));
            else
                snprintf(row[10], CLI_SHOW_CAP, "%s", shml_strerror(r->err));
            continue;
        }
        const struct shml_channel_stats *st = &r->st;
        cli_fmt_kind(st->kind, row[1], CLI_SHOW_CAP);
        const struct top_row *p = find_prev(prev, r->addr);
        /* A channel made again under the same name counts from 0: no rate across that. */
        if (p && dt > 0 && st->sent >= p->st.sent && st->bytes_sent >= p->st.bytes_sent) {
            char b[32];
            fmt_rate((double)(st->sent - p->st.sent) / dt, row[2], CLI_SHOW_CAP);
            cli_fmt_size((uint64_t)((double)(st->bytes_sent - p->st.bytes_sent) / dt), b, sizeof b);
            snprintf(row[3], CLI_SHOW_CAP, "%s", b);
        } else {
            snprintf(row[2], CLI_SHOW_CAP, "-");
            snprintf(row[3], CLI_SHOW_CAP, "-");
        }
        snprintf(row[4], CLI_SHOW_CAP, "%llu", (unsigned long long)st->sent);
        snprintf(row[5], CLI_SHOW_CAP, "%llu", (unsigned long long)st->queued);
        if (r->dead)
            snprintf(row[6], CLI_SHOW_CAP, "%zu+%zud", r->live, r->dead);
        else
            snprintf(row[6], CLI_SHOW_CAP, "%zu", r->live);
        if (r->has_lag)
            snprintf(row[7], CLI_SHOW_CAP, "%llu", (unsigned long long)r->max_lag);
        else
            snprintf(row[7], CLI_SHOW_CAP, "-");
        snprintf(row[8], CLI_SHOW_CAP, "%llu", (unsigned long long)st->drops);
        snprintf(row[9], CLI_SHOW_CAP, "%llu", (unsigned long long)st->lost);
        row[10][0] = '\0';
        if (r->bridges)
            snprintf(row[10], CLI_SHOW_CAP, "%zu bridge%s: %llu reconnects, %llu redelivered",
                     r->bridges, r->bridges == 1 ? "" : "s", (unsigned long long)r->reconnects,
                     (unsigned long long)r->redelivered);
    }
    return 0;
}

/* Display width: one column per code point (cells are escaped, so no controls). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

/*
 * Print the table: columns two spaces apart, the NOTE column only when some row has one.
 * On a terminal (eol = "\033[K") each line clears what the previous frame left on it, and
 * lines are cut at `width` columns (0: no limit) and after `max_lines` lines.
 */
static void print_table(const struct top_table *t, const char *eol, size_t width, size_t max_lines)
{
    size_t w[TOP_COLS] = {0};
    bool notes = false;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < TOP_COLS; c++) {
            size_t cw = text_width(t->cells[r][c]);
            w[c] = cw > w[c] ? cw : w[c];
        }
        notes |= r > 0 && t->cells[r][TOP_COLS - 1][0] != '\0';
    }
    size_t ncols = notes ? TOP_COLS : TOP_COLS - 1;
    for (size_t r = 0; r < t->nrows && (!max_lines || r < max_lines); r++) {
        char line[TOP_COLS * (CLI_SHOW_CAP + 2)];
        size_t len = 0;
        size_t last = ncols;
        while (last > 1 && t->cells[r][last - 1][0] == '\0')
            last--;
        for (size_t c = 0; c < last; c++) {
            const char *cell = t->cells[r][c];
            int n = snprintf(line + len, sizeof line - len, "%s%*s", cell,
                             c + 1 < last ? (int)(w[c] - text_width(cell) + 2) : 0, "");
            if (n < 0 || (size_t)n >= sizeof line - len)
                break;
            len += (size_t)n;
        }
        line[len] = '\0';
        if (width) {
            /* Cut at `width` code points, so the terminal never wraps a line. */
            size_t cols = 0, i = 0;
            for (; line[i] && cols < width; i++)
                cols += ((unsigned char)line[i + 1] & 0xc0) != 0x80;
            line[i] = '\0';
        }
        printf("%s%s\n", line, eol);
    }
}

/* Parse --interval: a duration, at least 10ms and not forever. */
static int parse_interval(const char *text, int64_t *out, const char **why)
{
    if (cli_parse_duration(text, out, why) < 0)
        return -1;
    if (*out < 0) {
        *why = "must be a length of time, not forever";
        return -1;
    }
    if (*out < 10 * 1000 * 1000) {
        *why = "must be at least 10ms";
        return -1;
    }
    return 0;
}

/* The addresses top was given and their canonical copies. */
static void free_addrs(char **canon, size_t n, const char **pos)
{
    for (size_t i = 0; i < n; i++)
        free(canon[i]);
    free(canon);
    free(pos);
}

static int run_top(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_top = {
    .name = "top",
    .usage = "[ADDR...] [--interval DURATION] [--once]",
    .help =
        "Show every channel (or the channels at ADDR...) live: per channel the messages and\n"
        "bytes sent per second since the last refresh, messages sent and queued, endpoints\n"
        "(live, +Nd dead), the largest lag of a subscriber or reader, drops and lost messages;\n"
        "a note says how many endpoints are bridges (shmlink bridge), and their reconnections\n"
        "and redeliveries.\n"
        "An ADDR that cannot be read when top starts is an error (exit 1).\n"
        "On a terminal the view is redrawn in place; q or Ctrl-C quits. Otherwise each refresh\n"
        "is printed as a table followed by an empty line, until interrupted.\n"
        "\n"
        "Options:\n"
        "  --interval DURATION  time between refreshes, a duration as for send --timeout\n"
        "                       (0.5, 2, 250ms); at least 10ms, default 1s\n"
        "  --once               read twice, an interval apart, print one table and exit\n",
    .run = run_top,
};

static int run_top(const struct cli_verb *verb, int argc, char **argv)
{
    bool once = false;
    const char *interval_text = NULL;
    const struct cli_opt opts[] = {
        {"interval", "DURATION", NULL, &interval_text},
        {"once", NULL, &once, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos;
    if (!pos)
        return cli_fail(verb->name, NULL, "out of memory");
    int parsed = cli_parse(verb, argc, argv, opts, 2, pos, 0, SIZE_MAX, "ADDR", &npos);
    if (parsed != CLI_RUN) {
        free(pos);
        return parsed;
    }
    /* Show given addresses as listed ones are, canonical, when the segment is there now. */
    char **canon = calloc(npos + 1, sizeof *canon);
    if (!canon) {
        free(pos);
        return cli_fail(verb->name, NULL, "out of memory");
    }
    for (size_t i = 0; i < npos; i++) {
        struct shml_segment_info info;
        if (shml_segment_stat(pos[i], &info, NULL, 0, NULL) == 0) {
            info.address[sizeof info.address - 1] = '\0';
            canon[i] = strdup(info.address);
        }
        if (canon[i])
            pos[i] = canon[i];
    }
    int64_t interval = (int64_t)1000 * 1000 * 1000;
    const char *why;
    char shown[256];
    if (interval_text && parse_interval(interval_text, &interval, &why) < 0) {
        free_addrs(canon, npos, pos);
        return cli_fail(verb->name, NULL, "invalid interval %s: %s",
                        cli_quote(interval_text, shown, sizeof shown), why);
    }

    bool unreadable = false;
    /*
     * A given address that cannot be read now is a mistake to report, not a row to watch (a
     * channel that goes away later gets a NOTE instead): each one gets its error line.
     */
    for (size_t i = 0; i < npos; i++) {
        struct cli_channel_info ci;
        if (cli_channel_read(pos[i], SHML_QUEUE /* any channel kind: read it */, &ci) < 0) {
            cli_fail_lib(verb->name, pos[i], ci.err, ci.detail,
                         ci.err == -SHML_EWRONGKIND ? "top shows channels only" : NULL);
            unreadable = true;
        }
        cli_channel_free(&ci);
    }
    if (unreadable) {
        free_addrs(canon, npos, pos);
        return CLI_EXIT_FAIL;
    }

    cli_catch_stop_signals();
    bool tty = !once && cli_sys_isatty(1);
    bool keys = tty && cli_sys_isatty(0);
    struct top_snap prev = {0, 0, NULL}, cur;
    bool have_prev = false;
    int status = CLI_EXIT_OK;
    if (tty)
        tty = cli_sys_term_enter(keys); /* else plain lines */
    for (bool first = true;; first = false) {
        int64_t started = cli_mono_ns();
        int rc = snap_take(&cur, pos, npos);
        if (rc < 0) {
            snap_free(&cur);
            if (tty)
                cli_sys_term_leave();
            status = cli_fail_lib(verb->name, NULL, rc, shml_last_error(), NULL);
            break;
        }
        /* --once: the rates need two readings, an interval apart. */
        if (once && first) {
            prev = cur;
            have_prev = true;
            if (cli_sys_term_wait(started + interval, false) == 0)
                continue;
            break; /* stopped before the second reading: nothing to show */
        }
        struct top_table t;
        if (build_table(&cur, have_prev ? &prev : NULL, &t) < 0) {
            snap_free(&cur);
            if (tty)
                cli_sys_term_leave();
            status = cli_fail(verb->name, NULL, "out of memory");
            break;
        }
        if (tty) {
            size_t cols, rows;
            cli_sys_term_size(&cols, &rows);
            char when[64];
            cli_fmt_time(cli_now_ns(), when, sizeof when);
            /* Home, then each line overwrites the last frame's; \033[J clears what is left. */
            fputs("\033[H", stdout);
            char title[160];
            snprintf(title, sizeof title, "shmlink top  %s  %zu channel%s  every %.3gs  q quits",
                     when, cur.n, cli_plural(cur.n), (double)interval / 1e9);
            if (cols && strlen(title) > cols)
                title[cols] = '\0';
            printf("%s\033[K\n\033[K\n", title);
            print_table(&t, "\033[K", cols, rows > 3 ? rows - 3 : 1);
            fputs("\033[J", stdout);
        } else {
            print_table(&t, "", 0, 0);
            if (!once)
                putchar('\n');
        }
        free(t.cells);
        if (have_prev)
            snap_free(&prev);
        prev = cur;
        have_prev = true;
        if (!cli_flush_stdout(verb->name)) {
            if (!cli_stdout_closed())
                status = CLI_EXIT_FAIL;
            break;
        }
        if (once || cli_sys_term_wait(started + interval, keys))
            break;
    }
    if (have_prev)
        snap_free(&prev);
    if (tty && status == CLI_EXIT_OK)
        cli_sys_term_leave();
    free_addrs(canon, npos, pos);
    return status;
}
