/*
 * cmd_chinfo.c - what info shows of a channel: its kind, policy, geometry, totals and
 * endpoint table (shml_channel_inspect), and `info --check` / `info --repair`
 * (shml_channel_check).
 *
 * Both read the channel by address without opening an endpoint, so looking never changes
 * the table that is looked at.
 */
#include "shmlink.h"

#include "cmd_chinfo.h"
#include "verb.h"
#include "fmt.h"
#include "json.h"
#include "cmd_channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A first guess of the entries in use; a larger table is read again at its size. */
#define EPS_GUESS 64

int cli_channel_read(const char *addr, uint32_t seg_kind, struct cli_channel_info *ci)
{
    memset(ci, 0, sizeof *ci);
    if (!cli_is_channel_kind(seg_kind))
        return 0;
    ci->present = true;
    size_t cap = EPS_GUESS;
    for (int tries = 0; tries < 4; tries++) {
        struct shml_endpoint_stats *eps = calloc(cap, sizeof *eps);
        if (!eps) {
            ci->err = -ENOMEM;
            return ci->err;
        }
        size_t n = 0;
        int rc = shml_channel_inspect(addr, &ci->st, eps, cap, &n);
        if (rc < 0) {
            free(eps);
            ci->err = rc;
            snprintf(ci->detail, sizeof ci->detail, "%s", shml_last_error());
            return rc;
        }
        /* Entries come and go meanwhile: another try at the size just reported. */
        if (n <= cap || tries == 3) {
            ci->eps = eps;
            ci->n_eps = n < cap ? n : cap;
            ci->n_used = n;
            return 0;
        }
        free(eps);
        cap = n;
    }
    return 0;
}

void cli_channel_free(struct cli_channel_info *ci)
{
    free(ci->eps);
    ci->eps = NULL;
    ci->n_eps = 0;
}

/* A subscriber (bus) or reader (latest) has a cursor, and so a lag. */
static bool has_lag(uint32_t kind, uint32_t role)
{
    return (kind == SHML_BUS || kind == SHML_LATEST) && (role & SHML_CONSUMER);
}

/* ---- text ---- */

#define EP_COLS 11

static void print_endpoint_table(const struct cli_channel_info *ci)
{
    static const char *const head[EP_COLS] = {
        "INDEX", "ROLE", "STATE", "MESSAGES", "BYTES",      "DROPS",
        "SLEEPS", "LAG", "RECONNECTS", "REDELIVERED", "PROCESS"};
    /* A bridge's two counters are columns only when a bridge is there. */
    bool bridges = false;
    for (size_t i = 0; i < ci->n_eps; i++)
        bridges = bridges || (ci->eps[i].flags & SHML_BRIDGE);
    size_t rows = ci->n_eps + 1;
    char(*cells)[EP_COLS][48] = calloc(rows, sizeof *cells);
    if (!cells) {
        printf("  (out of memory)\n");
        return;
    }
    for (size_t c = 0; c < EP_COLS; c++)
        snprintf(cells[0][c], sizeof cells[0][c], "%s", head[c]);
    for (size_t i = 0; i < ci->n_eps; i++) {
        const struct shml_endpoint_stats *e = &ci->eps[i];
        char(*row)[48] = cells[i + 1];
        char role[48];
        snprintf(row[0], 48, "%u", e->index);
        bool br = (e->flags & SHML_BRIDGE) != 0, du = (e->flags & SHML_DURABLE) != 0;
        snprintf(row[1], 48, "%s%s", cli_role_name(ci->st.kind, e->role, role, sizeof role),
                 br && du ? " (bridge, durable)"
                 : br     ? " (bridge)"
                 : du     ? " (durable)"
                          : "");
        snprintf(row[2], 48, "%s", cli_alive_name(e->alive ? 1 : 0));
        snprintf(row[3], 48, "%llu", (unsigned long long)e->messages);
        snprintf(row[4], 48, "%llu", (unsigned long long)e->bytes);
        snprintf(row[5], 48, "%llu", (unsigned long long)e->drops);
        snprintf(row[6], 48, "%llu", (unsigned long long)e->sleeps);
        if (has_lag(ci->st.kind, e->role))
            snprintf(row[7], 48, "%llu", (unsigned long long)e->lag);
        else
            snprintf(row[7], 48, "-");
        if (e->flags & SHML_BRIDGE) {
            snprintf(row[8], 48, "%u", e->reconnects);
            snprintf(row[9], 48, "%llu", (unsigned long long)e->redelivered);
        } else {
            snprintf(row[8], 48, "-");
            snprintf(row[9], 48, "-");
        }
        snprintf(row[10], 48, "pid %d", (int)e->pid);
    }
    size_t width[EP_COLS] = {0};
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < EP_COLS; c++) {
            size_t w = strlen(cells[r][c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t r = 0; r < rows; r++) {
        fputs(" ", stdout);
        for (size_t c = 0; c < EP_COLS; c++) {
            if (!bridges && (c == 8 || c == 9))
                continue;
            /* The last column (the pid) is not padded, so its width never shows. */
            if (c + 1 < EP_COLS)
                printf(" %-*s ", (int)width[c], cells[r][c]);
            else
                printf(" %s", cells[r][c]);
        }
        putchar('\n');
    }
    free(cells);
}

/* A typed channel's line: its element format, its shape and what one message weighs. */
static void print_type(const struct shml_channel_type *t)
{
    if (!t->format[0])
        return;
    char shown[4 * SHML_TYPE_FORMAT_MAX];
    uint64_t bytes = t->itemsize;
    printf("type:         %s, shape [", cli_display(t->format, shown, sizeof shown));
    for (uint32_t d = 0; d < t->ndim; d++) {
        printf("%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
        bytes *= t->shape[d];
    }
    printf("], items of %llu bytes, %llu bytes a message\n", (unsigned long long)t->itemsize,
           (unsigned long long)bytes);
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
    const struct shml_channel_stats *st = &ci->st;
    char kind[32], human[32], pol[32];
    cli_fmt_kind(st->kind, kind, sizeof kind);
    cli_fmt_size(st->max_msg, human, sizeof human);
    printf("channel:      %s%s", kind,
           (st->flags & SHML_SPSC) ? " (one producer, one consumer)" : "");
    if (st->kind == SHML_QUEUE || st->kind == SHML_BUS)
        printf(", policy %s", cli_policy_name(st->policy, pol, sizeof pol));
    printf(", %u %s of %u bytes, messages up to %llu bytes (%s)\n", st->slots,
           st->kind == SHML_LATEST ? "buffers" : "slots", st->slot_size,
           (unsigned long long)st->max_msg, human);
    print_type(&st->type);
    printf("messages:     %llu sent, %llu received, %llu queued, %llu lost, %llu dropped\n",
           (unsigned long long)st->sent, (unsigned long long)st->received,
           (unsigned long long)st->queued, (unsigned long long)st->lost,
           (unsigned long long)st->drops);
    printf("bytes:        %llu sent, %llu received\n", (unsigned long long)st->bytes_sent,
           (unsigned long long)st->bytes_received);
    printf("sleeps:       %llu\n", (unsigned long long)st->sleeps);
    size_t dead = 0;
    for (size_t i = 0; i < ci->n_eps; i++)
        dead += !ci->eps[i].alive;
    printf("endpoints:    %zu in use (%zu dead) of %u\n", ci->n_used, dead, st->endpoints);
    if (ci->n_eps)
        print_endpoint_table(ci);
    if (ci->n_eps < ci->n_used)
        printf("  (%zu more not shown)\n", ci->n_used - ci->n_eps);
}

/* ---- JSON ---- */

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
    const struct shml_channel_stats *st = &ci->st;
    char buf[48];
    cli_fmt_kind(st->kind, buf, sizeof buf);
    cli_json_key(j, "kind");
    cli_json_uint(j, st->kind);
    cli_json_key(j, "kind_name");
    cli_json_string(j, buf);
    cli_json_key(j, "spsc");
    cli_json_bool(j, (st->flags & SHML_SPSC) != 0);
    cli_json_key(j, "policy");
    cli_json_string(j, cli_policy_name(st->policy, buf, sizeof buf));
    cli_json_key(j, "slots");
    cli_json_uint(j, st->slots);
    cli_json_key(j, "slot_size");
    cli_json_uint(j, st->slot_size);
    cli_json_key(j, "max_msg");
    cli_json_uint(j, st->max_msg);
    cli_json_key(j, "type");
    if (st->type.format[0]) {
        cli_json_begin_object(j);
        cli_json_key(j, "format");
        cli_json_string(j, st->type.format);
        cli_json_key(j, "itemsize");
        cli_json_uint(j, st->type.itemsize);
        cli_json_key(j, "shape");
        cli_json_begin_array(j);
        for (uint32_t d = 0; d < st->type.ndim; d++)
            cli_json_uint(j, st->type.shape[d]);
        cli_json_end_array(j);
        cli_json_end_object(j);
    } else {
        cli_json_null(j);
    }
    cli_json_key(j, "endpoints");
    cli_json_uint(j, st->endpoints);
    cli_json_key(j, "attached");
    cli_json_uint(j, st->attached);
    static const char *const totals[] = {"sent",   "received", "bytes_sent", "bytes_received",
                                         "queued", "lost",     "drops",      "sleeps"};
    const uint64_t values[] = {st->sent,   st->received, st->bytes_sent, st->bytes_received,
                               st->queued, st->lost,     st->drops,      st->sleeps};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cli_json_key(j, totals[i]);
        cli_json_uint(j, values[i]);
    }
    cli_json_key(j, "endpoint_table");
    cli_json_begin_array(j);
    for (size_t i = 0; i < ci->n_eps; i++) {
        const struct shml_endpoint_stats *e = &ci->eps[i];
        cli_json_begin_object(j);
        cli_json_key(j, "index");
        cli_json_uint(j, e->index);
        cli_json_key(j, "pid");
        cli_json_int(j, e->pid);
        cli_json_key(j, "role");
        cli_json_uint(j, e->role);
        cli_json_key(j, "role_name");
        cli_json_string(j, cli_role_name(st->kind, e->role, buf, sizeof buf));
        cli_json_key(j, "alive");
        cli_json_bool(j, e->alive != 0);
        cli_json_key(j, "messages");
        cli_json_uint(j, e->messages);
        cli_json_key(j, "bytes");
        cli_json_uint(j, e->bytes);
        cli_json_key(j, "drops");
        cli_json_uint(j, e->drops);
        cli_json_key(j, "sleeps");
        cli_json_uint(j, e->sleeps);
        cli_json_key(j, "lag");
        if (has_lag(st->kind, e->role))
            cli_json_uint(j, e->lag);
        else
            cli_json_null(j);
        cli_json_key(j, "bridge");
        cli_json_bool(j, (e->flags & SHML_BRIDGE) != 0);
        cli_json_key(j, "durable");
        cli_json_bool(j, (e->flags & SHML_DURABLE) != 0);
        cli_json_key(j, "reconnects");
        cli_json_uint(j, e->reconnects);
        cli_json_key(j, "redelivered");
        cli_json_uint(j, e->redelivered);
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
    cli_json_end_object(j);
}

/* ---- check and repair ---- */

struct findings {
    bool repair;
    bool json;
    struct cli_json *j;
    size_t n, repaired, repairable;
};

static void on_finding(void *ctx, int repaired, const char *finding)
{
    struct findings *f = ctx;
    bool can = repaired == SHML_CHECK_REPAIRABLE; /* --check: what --repair would repair */
    bool did = repaired == 1;
    f->n++;
    f->repaired += did;
    f->repairable += can;
    if (f->json) {
        cli_json_begin_object(f->j);
        cli_json_key(f->j, "finding");
        cli_json_string(f->j, finding ? finding : "");
        cli_json_key(f->j, "repaired");
        cli_json_bool(f->j, did);
        cli_json_key(f->j, "repairable"); /* --check: --repair would; --repair: it did */
        cli_json_bool(f->j, can || did);
        cli_json_end_object(f->j);
        return;
    }
    /* The text comes from the library but describes shared memory: escape it all the same. */
    char *shown = malloc(CLI_SHOW_CAP);
    const char *tag = !f->repair ? can ? "problem:      " : "unrepairable: "
                      : did      ? "repaired:     "
                                 : "not repaired: ";
    printf("%s%s\n", tag, shown ? cli_display(finding ? finding : "", shown, CLI_SHOW_CAP) : "?");
    free(shown);
}

int cli_channel_check(const char *verb, const char *addr, bool repair, bool json)
{
    struct cli_json j;
    struct findings f = {repair, json, &j, 0, 0, 0};
    if (json) {
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j);
        cli_json_key(&j, "address");
        cli_json_string(&j, addr);
        cli_json_key(&j, "repair");
        cli_json_bool(&j, repair);
        cli_json_key(&j, "findings");
        cli_json_begin_array(&j);
    }
    int rc = shml_channel_check(addr, repair ? SHML_CHECK_REPAIR : 0, on_finding, &f);
    if (rc < 0) {
        /* Findings already printed stay: they are true, the check just could not finish. */
        char detail[256];
        snprintf(detail, sizeof detail, "%s", shml_last_error());
        if (json) {
            cli_json_end_array(&j);
            cli_json_end_object(&j);
            cli_json_finish(&j);
        }
        cli_flush_stdout(verb);
        const char *hint = NULL;
        if (rc == -EACCES || rc == -EPERM)
            hint = repair ? "--repair needs write access to the segment" : NULL;
        else if (rc == -SHML_EWRONGKIND)
            hint = "--check and --repair look at channels only";
        return cli_fail_lib(verb, addr, rc, detail, hint);
    }
    size_t left = (size_t)rc;
    if (json) {
        cli_json_end_array(&j);
        cli_json_key(&j, "repaired");
        cli_json_uint(&j, f.repaired);
        cli_json_key(&j, "left");
        cli_json_uint(&j, left);
        cli_json_key(&j, "healthy");
        cli_json_bool(&j, left == 0);
        cli_json_end_object(&j);
        cli_json_finish(&j);
        return left ? CLI_EXIT_FOUND : CLI_EXIT_OK;
    }
    char *shown = malloc(CLI_SHOW_CAP);
    const char *a = shown ? cli_display(addr, shown, CLI_SHOW_CAP) : "?";
    if (f.n == 0 && left == 0)
        printf("%s: healthy\n", a);
    else if (left == 0)
        printf("%s: %zu problem%s repaired; healthy now\n", a, f.repaired, cli_plural(f.repaired));
    else if (!repair && f.repairable == left)
        printf("%s: %zu problem%s; 'shmlink info --repair %s' repairs what dead processes left\n",
               a, left, cli_plural(left), a);
    else if (!repair && f.repairable)
        printf("%s: %zu problem%s; 'shmlink info --repair %s' repairs %zu (what dead processes "
               "left); shmlink cannot repair the others: remove the channel and make it again\n",
               a, left, cli_plural(left), a, f.repairable);
    else if (!repair)
        printf("%s: %zu problem%s; shmlink cannot repair %s: remove the channel and make it "
               "again\n",
               a, left, cli_plural(left), left == 1 ? "it" : "them");
    else
        printf("%s: %zu problem%s left unrepaired (%zu repaired); shmlink cannot repair %s: "
               "remove the channel and make it again\n",
               a, left, cli_plural(left), f.repaired, left == 1 ? "it" : "them");
    free(shown);
    return left ? CLI_EXIT_FOUND : CLI_EXIT_OK;
}
