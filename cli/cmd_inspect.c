/*
 * cmd_inspect.c - the verbs that look without touching: ls, info, and gc (which removes only
 * what the library judges abandoned). All three describe segments the same way, in text and
 * in JSON, through the helpers at the top of this file.
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "json.h"
#include "cmd_chinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what a segment_info means, shared by ls, info and gc ---- */

/*
 * The header could not be read or failed validation. A foreign object is not such a case: it
 * simply has no header (status 0, or -SHML_ENOTSHML depending on how it was found).
 */
static bool header_failed(const struct shml_segment_info *s)
{
    return !s->managed && s->status != 0 && s->status != -SHML_ENOTSHML;
}

/* A creator pid is known for managed segments (the header) and System V ones (shm_cpid). */
static bool has_creator(const struct shml_segment_info *s)
{
    return s->managed || (s->backend == SHML_BACKEND_SYSV && s->creator_pid > 0);
}

/* An attach count is known from the attach table (managed) or shm_nattch (System V). */
static bool has_attached(const struct shml_segment_info *s)
{
    return s->managed || s->backend == SHML_BACKEND_SYSV;
}

/*
 * The strings in an info are fixed arrays filled by the library; terminate them here so a
 * missing NUL (a library bug, or a hostile label copied verbatim) cannot make the tool read
 * past them.
 */
static void terminate_strings(struct shml_segment_info *s)
{
    s->address[sizeof s->address - 1] = '\0';
    s->label[sizeof s->label - 1] = '\0';
}

static void kind_text(const struct shml_segment_info *s, char *buf, size_t cap)
{
    if (s->managed)
        cli_fmt_kind(s->kind, buf, cap);
    else
        snprintf(buf, cap, "%s", header_failed(s) ? "?" : "raw");
}

static void creator_text(const struct shml_segment_info *s, char *buf, size_t cap)
{
    if (has_creator(s))
        snprintf(buf, cap, "%d (%s)", (int)s->creator_pid, cli_alive_name(s->creator_alive));
    else
        snprintf(buf, cap, "-");
}

/* "2", "2+1d" (one dead entry), "2+3u" (three untracked attaches), "-" when unknown. */
static void attached_text(const struct shml_segment_info *s, char *buf, size_t cap)
{
    if (!has_attached(s)) {
        snprintf(buf, cap, "-");
        return;
    }
    int n = snprintf(buf, cap, "%u", s->attached);
    if (s->managed && s->attach_dead && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "+%ud", s->attach_dead);
    if (s->managed && s->untracked && n >= 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "+%uu", s->untracked);
}

/* An attach entry's role in the words of the segment's kind ("subscriber"), or "role#N". */
static const char *role_name(uint32_t kind, uint32_t role, char *buf, size_t cap)
{
    return cli_name(shml_attach_role_name(kind, role), "role", role, buf, cap);
}

/* The header flags in hex, named: a header records SHML_HUGEPAGES and SHML_OWNED. */
static void flags_text(uint32_t flags, char *buf, size_t cap)
{
    bool huge = flags & SHML_HUGEPAGES, owned = flags & SHML_OWNED;
    snprintf(buf, cap, "0x%x%s%s%s%s", flags, huge || owned ? " (" : "", huge ? "hugepages" : "",
             huge && owned ? ", " : "", owned ? "owned)" : huge ? ")" : "");
}

/* What gc would do with the segment: the verdict's word, whether it removes it, and why. */
struct gc_view {
    const char *word;
    bool remove;
    const char *why;
};

static struct gc_view gc_view(const struct shml_segment_info *s)
{
    struct gc_view g = {"?", false, ""};
    int v = shml_gc_verdict(s, &g.why);
    if (v >= 0 && shml_gc_verdict_name(v))
        g.word = shml_gc_verdict_name(v);
    g.remove = v == SHML_GC_REMOVE_ORPHANED || v == SHML_GC_REMOVE_UNFINISHED;
    return g;
}

static void json_segment_fields(struct cli_json *j, const struct shml_segment_info *s, int64_t now)
{
    char buf[64];
    bool m = s->managed;

    cli_json_key(j, "address");
    cli_json_string(j, s->address);
    cli_json_key(j, "backend");
    cli_json_string(j, cli_backend_name(s->backend));
    bool sysv = s->backend == SHML_BACKEND_SYSV && s->sysv_id >= 0;
    cli_json_key(j, "sysv_key");
    if (sysv)
        cli_json_uint(j, s->sysv_key);
    else
        cli_json_null(j);
    cli_json_key(j, "sysv_id");
    if (sysv)
        cli_json_int(j, s->sysv_id);
    else
        cli_json_null(j);
    cli_json_key(j, "status");
    cli_json_int(j, s->status);
    cli_json_key(j, "status_text");
    cli_json_string(j, s->status ? shml_strerror(s->status) : NULL);
    cli_json_key(j, "managed");
    cli_json_bool(j, m);
    cli_json_key(j, "kind");
    if (m)
        cli_json_uint(j, s->kind);
    else
        cli_json_null(j);
    cli_json_key(j, "kind_name");
    kind_text(s, buf, sizeof buf);
    cli_json_string(j, header_failed(s) ? NULL : buf);
    cli_json_key(j, "version");
    if (m)
        cli_json_uint(j, s->version);
    else
        cli_json_null(j);
    cli_json_key(j, "header_size");
    if (m)
        cli_json_uint(j, s->header_size);
    else
        cli_json_null(j);
    cli_json_key(j, "flags");
    if (m)
        cli_json_uint(j, s->hdr_flags);
    else
        cli_json_null(j);
    cli_json_key(j, "size");
    cli_json_uint(j, s->size);
    cli_json_key(j, "object_size");
    cli_json_uint(j, s->object_size);
    cli_json_key(j, "mode");
    snprintf(buf, sizeof buf, "%04o", s->mode & 07777u);
    cli_json_string(j, buf);
    cli_json_key(j, "uid");
    cli_json_uint(j, s->uid);
    cli_json_key(j, "user");
    cli_fmt_user(s->uid, buf, sizeof buf);
    cli_json_string(j, buf);
    cli_json_key(j, "creator_pid");
    if (has_creator(s))
        cli_json_int(j, s->creator_pid);
    else
        cli_json_null(j);
    cli_json_key(j, "creator_start");
    if (m)
        cli_json_uint(j, s->creator_start);
    else
        cli_json_null(j);
    cli_json_key(j, "creator_alive");
    if (has_creator(s) && s->creator_alive >= 0)
        cli_json_bool(j, s->creator_alive > 0);
    else
        cli_json_null(j);
    cli_json_key(j, "attached");
    if (has_attached(s))
        cli_json_uint(j, s->attached);
    else
        cli_json_null(j);
    cli_json_key(j, "attach_dead");
    if (m)
        cli_json_uint(j, s->attach_dead);
    else
        cli_json_null(j);
    cli_json_key(j, "untracked");
    if (m)
        cli_json_uint(j, s->untracked);
    else
        cli_json_null(j);
    cli_json_key(j, "created_ns");
    if (s->created_ns)
        cli_json_int(j, s->created_ns);
    else
        cli_json_null(j);
    cli_json_key(j, "created");
    cli_fmt_time(s->created_ns, buf, sizeof buf);
    cli_json_string(j, s->created_ns ? buf : NULL);
    cli_json_key(j, "age_s");
    if (s->created_ns)
        cli_json_int(j, cli_age_s(s->created_ns, now));
    else
        cli_json_null(j);
    cli_json_key(j, "other_boot");
    if (m)
        cli_json_bool(j, s->other_boot);
    else
        cli_json_null(j);
    cli_json_key(j, "label");
    cli_json_string(j, m ? s->label : NULL);
    struct gc_view g = gc_view(s);
    cli_json_key(j, "gc");
    cli_json_begin_object(j);
    cli_json_key(j, "verdict");
    cli_json_string(j, g.word);
    cli_json_key(j, "remove");
    cli_json_bool(j, g.remove);
    cli_json_key(j, "why");
    cli_json_string(j, g.why);
    cli_json_end_object(j);
}

static void json_segment(struct cli_json *j, const struct shml_segment_info *s, int64_t now)
{
    cli_json_begin_object(j);
    json_segment_fields(j, s, now);
    cli_json_end_object(j);
}

/* ---- a text table with columns sized to their contents ---- */

#define LS_COLS 12

struct table {
    size_t nrows;
    char **cells; /* nrows * LS_COLS strings, row-major */
};

/* Display width: one column per code point (shown names are escaped, so no controls). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

static int table_add(struct table *t, const char *const cols[LS_COLS])
{
    char **cells = realloc(t->cells, (t->nrows + 1) * LS_COLS * sizeof *cells);
    if (!cells)
        return -1;
    t->cells = cells;
    for (size_t c = 0; c < LS_COLS; c++) {
        char *copy = strdup(cols[c]);
        if (!copy) {
            for (size_t k = 0; k < c; k++)
                free(cells[t->nrows * LS_COLS + k]);
            return -1;
        }
        cells[t->nrows * LS_COLS + c] = copy;
    }
    t->nrows++;
    return 0;
}

/* Columns are separated by two spaces; the last one is not padded. */
static void table_print(const struct table *t)
{
    size_t width[LS_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < LS_COLS; c++) {
            size_t w = text_width(t->cells[r * LS_COLS + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        /* The NOTE column is often empty: trim the padding that would trail it. */
        size_t last = LS_COLS;
        while (last > 1 && t->cells[r * LS_COLS + last - 1][0] == '\0')
            last--;
        for (size_t c = 0; c < last; c++) {
            const char *cell = t->cells[r * LS_COLS + c];
            fputs(cell, stdout);
            if (c + 1 < last)
                printf("%*s", (int)(width[c] - text_width(cell) + 2), "");
        }
        putchar('\n');
    }
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * LS_COLS; i++)
        free(t->cells[i]);
    free(t->cells);
}

static int ls_row(struct table *t, const struct shml_segment_info *s, int64_t now)
{
    char *addr = malloc(CLI_SHOW_CAP);
    char id[16], kind[32], size[32], mode[16], owner[64], creator[48], attached[48], age[16];
    char note[4 * SHML_LABEL_MAX + 16];
    if (!addr)
        return -1;
    cli_display(s->address, addr, CLI_SHOW_CAP);
    if (s->backend == SHML_BACKEND_SYSV && s->sysv_id >= 0)
        snprintf(id, sizeof id, "%d", (int)s->sysv_id);
    else
        snprintf(id, sizeof id, "-");
    kind_text(s, kind, sizeof kind);
    cli_fmt_size(s->size, size, sizeof size);
    snprintf(mode, sizeof mode, "%04o", s->mode & 07777u);
    cli_fmt_user(s->uid, owner, sizeof owner);
    creator_text(s, creator, sizeof creator);
    attached_text(s, attached, sizeof attached);
    cli_fmt_age(s->created_ns, now, age, sizeof age);
    if (header_failed(s))
        snprintf(note, sizeof note, "%s", shml_strerror(s->status));
    else if (s->managed && s->label[0])
        cli_display(s->label, note, sizeof note);
    else
        note[0] = '\0';
    const char *cols[LS_COLS] = {
        addr,    id,       cli_backend_name(s->backend), kind, size, mode, owner,
        creator, attached, age,                          gc_view(s).word, note};
    int rc = table_add(t, cols);
    free(addr);
    return rc;
}

/* ---- ls ---- */

static int run_ls(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_ls = {
    .name = "ls",
    .usage = "[--all] [--json]",
    .help =
        "List shmlink segments (POSIX and System V; file and memfd segments cannot be\n"
        "enumerated).\n"
        "\n"
        "Columns: ADDRESS, ID (a System V segment's id, as ipcs shows it), BACKEND, KIND\n"
        "(plain, raw for a foreign object, ? when the header could not be read), SIZE, MODE,\n"
        "OWNER, CREATOR (pid and (alive) or (dead)), ATTACHED (live attaches, +Nd dead entries,\n"
        "+Nu untracked), AGE, NOTE (the label, or why the header could not be read).\n"
        "Segments the caller may not open are listed too, marked permission denied, with what\n"
        "the system shows anyone (size, mode, owner; System V: creator, attaches, id).\n"
        "\n"
        "Options:\n"
        "  --all    also list foreign POSIX objects in /dev/shm and System V segments\n"
        "  --json   print a JSON object {\"segments\": [...]} instead of the table\n",
    .run = run_ls,
};

static int run_ls(const struct cli_verb *verb, int argc, char **argv)
{
    bool all = false, json = false;
    const struct cli_opt opts[] = {{"all", NULL, &all, NULL}, {"json", NULL, &json, NULL}};
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 2, pos, 0, 0, "", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    struct shml_segment_info *list = NULL;
    size_t count = 0;
    int rc = shml_segment_list(all ? SHML_LIST_ALL : 0, &list, &count);
    if (rc < 0)
        return cli_fail_lib(verb->name, NULL, rc, shml_last_error(), NULL);
    int64_t now = cli_now_ns();
    for (size_t i = 0; i < count; i++)
        terminate_strings(&list[i]);

    if (json) {
        struct cli_json j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j);
        cli_json_key(&j, "segments");
        cli_json_begin_array(&j);
        for (size_t i = 0; i < count; i++)
            json_segment(&j, &list[i], now);
        cli_json_end_array(&j);
        cli_json_end_object(&j);
        cli_json_finish(&j);
        shml_free(list);
        return CLI_EXIT_OK;
    }

    struct table t = {0, NULL};
    static const char *const head[LS_COLS] = {"ADDRESS", "ID",       "BACKEND", "KIND",
                                              "SIZE",    "MODE",     "OWNER",   "CREATOR",
                                              "ATTACHED", "AGE",     "GC",      "NOTE"};
    rc = table_add(&t, head);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = ls_row(&t, &list[i], now);
    shml_free(list);
    if (rc != 0) {
        table_free(&t);
        return cli_fail(verb->name, NULL, "out of memory");
    }
    table_print(&t);
    table_free(&t);
    return CLI_EXIT_OK;
}

/* ---- declared objects (shml_segment_declared) ---- */

/*
 * What info shows of the synchronisation objects a segment declares. A segment that cannot
 * declare anything (raw, header failed) has no list at all (`ok` false, `err` 0); a read that
 * failed has `err` set.
 */
struct declared {
    bool ok;
    int err;
    size_t n;
    struct shml_decl_info d[SHML_DECL_MAX];
};

static void read_declared(const struct shml_segment_info *s, struct declared *out)
{
    memset(out, 0, sizeof *out);
    if (!s->managed)
        return;
    size_t n = 0;
    int rc = shml_segment_declared(s->address, out->d, SHML_DECL_MAX, &n);
    if (rc < 0) {
        out->err = rc;
        return;
    }
    out->ok = true;
    out->n = n < SHML_DECL_MAX ? n : SHML_DECL_MAX;
    /* Names come from shared memory: terminate them here, as terminate_strings() does. */
    for (size_t i = 0; i < out->n; i++)
        out->d[i].name[sizeof out->d[i].name - 1] = '\0';
}

static const char *decl_type_name(uint32_t type, char *buf, size_t cap)
{
    return cli_name(shml_decl_type_name(type), "type", type, buf, cap);
}

/* "pid 4242 (alive)", "pid 4242 (alive), thread 4250", "thread 4250 (?)", or "". */
static void mutex_holder_text(const struct shml_mutex_state *m, char *buf, size_t cap)
{
    if (m->pid > 0 && m->owner > 0 && m->owner != m->pid)
        snprintf(buf, cap, "pid %d (%s), thread %d", (int)m->pid, cli_alive_name(m->alive),
                 (int)m->owner);
    else if (m->pid > 0)
        snprintf(buf, cap, "pid %d (%s)", (int)m->pid, cli_alive_name(m->alive));
    else if (m->owner > 0)
        snprintf(buf, cap, "thread %d (%s)", (int)m->owner, cli_alive_name(m->alive));
    else
        buf[0] = '\0';
}

/*
 * One line of state: "free", "held by pid N (alive)", "owner died (pid N): next locker
 * recovers", "held by pid N (alive), repairing after a holder died", "not recoverable"; "generation G, W waiters"; "value V, W waiters"; or why the
 * state is unknown.
 */
static void decl_state_text(const struct shml_decl_info *d, char *buf, size_t cap)
{
    if (d->status == -EINVAL) {
        snprintf(buf, cap, "unknown: not initialised");
        return;
    }
    if (d->status == -ERANGE) {
        snprintf(buf, cap, "unknown: past the end of the data");
        return;
    }
    if (d->status < 0) {
        snprintf(buf, cap, "unknown: %s", shml_strerror(d->status));
        return;
    }
    char who[96];
    const struct shml_mutex_state *m = &d->mutex;
    int n;
    switch (d->type) {
    case SHML_DECL_MUTEX:
        mutex_holder_text(m, who, sizeof who);
        if (m->state == SHML_MUTEX_FREE)
            n = snprintf(buf, cap, "free");
        else if (m->state == SHML_MUTEX_HELD)
            n = snprintf(buf, cap, "held%s%s", who[0] ? " by " : "", who);
        else if (m->state == SHML_MUTEX_OWNER_DEAD && m->pid > 0)
            n = snprintf(buf, cap, "owner died (pid %d): next locker recovers", (int)m->pid);
        else if (m->state == SHML_MUTEX_OWNER_DEAD && m->owner > 0)
            /* A dead thread's process cannot be looked up; its id is the pid of a
               single-threaded program. */
            n = snprintf(buf, cap, "owner died (thread %d): next locker recovers",
                         (int)m->owner);
        else if (m->state == SHML_MUTEX_OWNER_DEAD)
            n = snprintf(buf, cap, "owner died: next locker recovers");
        else if (m->state == SHML_MUTEX_REPAIRING)
            n = snprintf(buf, cap, "held%s%s, repairing after a holder died", who[0] ? " by " : "",
                         who);
        else if (m->state == SHML_MUTEX_NOT_RECOVERABLE)
            n = snprintf(buf, cap, "not recoverable");
        else
            n = snprintf(buf, cap, "state#%d", m->state);
        if (m->waiters && n >= 0 && (size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, ", with waiters");
        break;
    case SHML_DECL_EVENT:
        snprintf(buf, cap, "generation %u, %u %s", d->generation, d->waiters,
                 d->waiters == 1 ? "waiter" : "waiters");
        break;
    case SHML_DECL_SEM:
        snprintf(buf, cap, "value %u, %u %s", d->value, d->waiters,
                 d->waiters == 1 ? "waiter" : "waiters");
        break;
    default:
        snprintf(buf, cap, "unknown type");
        break;
    }
}

/* The section after the attach table; nothing when the segment declares nothing. */
static void declared_text(const struct declared *dl)
{
    if (dl->err) {
        printf("declared:     ? (%s)\n", shml_strerror(dl->err));
        return;
    }
    if (!dl->ok || dl->n == 0)
        return;
    char names[SHML_DECL_MAX][4 * SHML_DECL_NAME_MAX + 8];
    char offs[SHML_DECL_MAX][24];
    int name_w = 0, off_w = 0;
    for (size_t i = 0; i < dl->n; i++) {
        cli_display(dl->d[i].name, names[i], sizeof names[i]);
        snprintf(offs[i], sizeof offs[i], "%llu", (unsigned long long)dl->d[i].offset);
        int w = (int)text_width(names[i]), o = (int)strlen(offs[i]);
        name_w = w > name_w ? w : name_w;
        off_w = o > off_w ? o : off_w;
    }
    printf("declared:     %zu %s\n", dl->n, dl->n == 1 ? "object" : "objects");
    for (size_t i = 0; i < dl->n; i++) {
        char tbuf[32], state[256];
        const char *type = decl_type_name(dl->d[i].type, tbuf, sizeof tbuf);
        decl_state_text(&dl->d[i], state, sizeof state);
        printf("  %s%*s  %-5s  offset %-*s  %s\n", names[i],
               name_w - (int)text_width(names[i]), "", type, off_w, offs[i], state);
    }
}

static void declared_json(struct cli_json *j, const struct declared *dl)
{
    char buf[256];
    cli_json_key(j, "declared");
    if (!dl->ok) {
        cli_json_null(j);
        return;
    }
    cli_json_begin_array(j);
    for (size_t i = 0; i < dl->n; i++) {
        const struct shml_decl_info *d = &dl->d[i];
        bool known = d->status == 0;
        bool mutex = known && d->type == SHML_DECL_MUTEX;
        bool held = mutex && d->mutex.state != SHML_MUTEX_FREE &&
                    d->mutex.state != SHML_MUTEX_NOT_RECOVERABLE;
        cli_json_begin_object(j);
        cli_json_key(j, "name");
        cli_json_string(j, d->name);
        cli_json_key(j, "type");
        cli_json_string(j, decl_type_name(d->type, buf, sizeof buf));
        cli_json_key(j, "offset");
        cli_json_uint(j, d->offset);
        cli_json_key(j, "status");
        cli_json_int(j, d->status);
        cli_json_key(j, "status_text");
        cli_json_string(j, d->status ? shml_strerror(d->status) : NULL);
        cli_json_key(j, "state");
        cli_json_string(j, mutex ? shml_mutex_state_name(d->mutex.state) : NULL);
        cli_json_key(j, "state_text");
        decl_state_text(d, buf, sizeof buf);
        cli_json_string(j, buf);
        cli_json_key(j, "owner_tid");
        if (held && d->mutex.owner > 0)
            cli_json_int(j, d->mutex.owner);
        else
            cli_json_null(j);
        cli_json_key(j, "owner_pid");
        if (held && d->mutex.pid > 0)
            cli_json_int(j, d->mutex.pid);
        else
            cli_json_null(j);
        cli_json_key(j, "owner_alive");
        if (held && (d->mutex.pid > 0 || d->mutex.owner > 0) && d->mutex.alive >= 0)
            cli_json_bool(j, d->mutex.alive > 0);
        else
            cli_json_null(j);
        cli_json_key(j, "waiters");
        if (mutex)
            cli_json_uint(j, d->mutex.waiters ? 1 : 0);
        else if (known && (d->type == SHML_DECL_EVENT || d->type == SHML_DECL_SEM))
            cli_json_uint(j, d->waiters);
        else
            cli_json_null(j);
        cli_json_key(j, "generation");
        if (known && d->type == SHML_DECL_EVENT)
            cli_json_uint(j, d->generation);
        else
            cli_json_null(j);
        cli_json_key(j, "value");
        if (known && d->type == SHML_DECL_SEM)
            cli_json_uint(j, d->value);
        else
            cli_json_null(j);
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
}

/* ---- info ---- */

/*
 * stat with the whole attach table: the header does not say how large the table is, so ask
 * with a guess and again with the count the first call reports if that was too small.
 */
static int stat_all(const char *addr, struct shml_segment_info *info, struct shml_attach_info **att,
                    size_t *n_att, size_t *n_table)
{
    size_t cap = 128;
    for (int tries = 0; tries < 4; tries++) {
        struct shml_attach_info *a = calloc(cap, sizeof *a);
        if (!a)
            return -ENOMEM;
        size_t n = 0;
        int rc = shml_segment_stat(addr, info, a, cap, &n);
        if (rc < 0) {
            free(a);
            return rc;
        }
        if (n <= cap || tries == 3) {
            *att = a;
            *n_att = n < cap ? n : cap;
            *n_table = n;
            return 0;
        }
        free(a);
        cap = n;
    }
    return -ENOMEM; /* not reached */
}

static void info_text(const struct shml_segment_info *s, const struct shml_attach_info *att,
                      size_t n_att, size_t n_table, const struct declared *dl,
                      const struct cli_channel_info *ci, int64_t now)
{
    char *addr = malloc(CLI_SHOW_CAP);
    char a[64], b[64], c[4 * SHML_LABEL_MAX + 16];
    bool m = s->managed;

    printf("address:      %s\n", addr ? cli_display(s->address, addr, CLI_SHOW_CAP) : "?");
    free(addr);
    printf("backend:      %s\n", cli_backend_name(s->backend));
    if (s->backend == SHML_BACKEND_SYSV && s->sysv_id >= 0)
        printf("sysv id:      %d (key 0x%08x)\n", (int)s->sysv_id, s->sysv_key);
    if (s->status == 0 || s->status == -SHML_ENOTSHML)
        printf("status:       ok\n");
    else
        printf("status:       %s\n", shml_strerror(s->status));
    kind_text(s, a, sizeof a);
    if (m)
        printf("kind:         %s (%u)\n", a, s->kind);
    else
        printf("kind:         %s\n", a);
    if (m) {
        printf("version:      %u\n", s->version);
        printf("header size:  %u\n", s->header_size);
        flags_text(s->hdr_flags, b, sizeof b);
        printf("flags:        %s\n", b);
    }
    cli_fmt_size(s->size, a, sizeof a);
    printf("size:         %llu (%s)\n", (unsigned long long)s->size, a);
    cli_fmt_size(s->object_size, a, sizeof a);
    printf("object size:  %llu (%s)\n", (unsigned long long)s->object_size, a);
    printf("mode:         %04o\n", s->mode & 07777u);
    cli_fmt_user(s->uid, a, sizeof a);
    printf("owner:        %s (uid %u)\n", a, s->uid);
    if (m)
        printf("creator:      pid %d (%s), start %llu\n", (int)s->creator_pid,
               cli_alive_name(s->creator_alive), (unsigned long long)s->creator_start);
    else if (has_creator(s))
        printf("creator:      pid %d (%s)\n", (int)s->creator_pid,
               cli_alive_name(s->creator_alive));
    cli_fmt_time(s->created_ns, a, sizeof a);
    cli_fmt_age(s->created_ns, now, b, sizeof b);
    if (s->created_ns)
        printf("%s %s (%s ago)\n", m ? "created:     " : "changed:     ", a, b);
    if (m) {
        printf("boot:         %s\n", s->other_boot ? "an earlier boot" : "this boot");
        printf("label:        %s\n", cli_display(s->label, c, sizeof c));
        printf("attached:     %u live, %u dead, %u untracked\n", s->attached, s->attach_dead,
               s->untracked);
        printf("attach table: %zu %s\n", n_table, n_table == 1 ? "entry" : "entries");
        for (size_t i = 0; i < n_att; i++) {
            cli_fmt_time(att[i].since_ns, a, sizeof a);
            cli_fmt_age(att[i].since_ns, now, b, sizeof b);
            char role[32];
            printf("  pid %d  %s  %s  since %s (%s ago)  start %llu\n", (int)att[i].pid,
                   role_name(s->kind, att[i].role, role, sizeof role), cli_alive_name(att[i].alive), a, b,
                   (unsigned long long)att[i].start_time);
        }
        if (n_att < n_table)
            printf("  (%zu more not shown)\n", n_table - n_att);
        declared_text(dl);
        cli_channel_text(ci);
    } else if (has_attached(s)) {
        printf("attached:     %u\n", s->attached);
    }
    struct gc_view g = gc_view(s);
    printf("gc:           %s (%s)\n", g.remove ? "would remove it" : "keeps it", g.why);
}

static void info_json(const struct shml_segment_info *s, const struct shml_attach_info *att,
                      size_t n_att, const struct declared *dl, const struct cli_channel_info *ci,
                      int64_t now)
{
    struct cli_json j;
    char buf[64];
    cli_json_init(&j, stdout);
    cli_json_begin_object(&j);
    json_segment_fields(&j, s, now);
    cli_json_key(&j, "attach");
    cli_json_begin_array(&j);
    for (size_t i = 0; i < n_att; i++) {
        cli_json_begin_object(&j);
        cli_json_key(&j, "pid");
        cli_json_int(&j, att[i].pid);
        cli_json_key(&j, "role");
        cli_json_uint(&j, att[i].role);
        cli_json_key(&j, "role_name");
        cli_json_string(&j, role_name(s->kind, att[i].role, buf, sizeof buf));
        cli_json_key(&j, "start_time");
        cli_json_uint(&j, att[i].start_time);
        cli_json_key(&j, "since_ns");
        cli_json_int(&j, att[i].since_ns);
        cli_json_key(&j, "since");
        cli_fmt_time(att[i].since_ns, buf, sizeof buf);
        cli_json_string(&j, att[i].since_ns ? buf : NULL);
        cli_json_key(&j, "alive");
        if (att[i].alive >= 0)
            cli_json_bool(&j, att[i].alive > 0);
        else
            cli_json_null(&j);
        cli_json_end_object(&j);
    }
    cli_json_end_array(&j);
    declared_json(&j, dl);
    cli_channel_json(&j, ci);
    cli_json_end_object(&j);
    cli_json_finish(&j);
}

static int run_info(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_info = {
    .name = "info",
    .usage = "ADDR [--json] [--check | --repair]",
    .help =
        "Show everything a segment's header records and its attach table, without attaching,\n"
        "then the synchronisation objects it declares and their state: a mutex free, held by\n"
        "pid N (alive or dead), owner died, or not recoverable; an event's generation and\n"
        "waiters; a semaphore's value and waiters. Foreign objects are shown as raw.\n"
        "A channel adds its kind, policy, geometry, totals and endpoint table (each endpoint's\n"
        "pid, role, alive or dead, messages, bytes, drops, sleeps and lag), read without\n"
        "opening an endpoint.\n"
        "\n"
        "Options:\n"
        "  --json     print a JSON object instead of text\n"
        "  --check    check a channel instead: print each problem found (slots held by dead\n"
        "             processes, dead endpoints, a corrupt control block), marking what\n"
        "             --repair cannot repair\n"
        "  --repair   check, and repair what dead processes left (needs write access)\n"
        "\n"
        "Exit status of --check and --repair: 0 healthy (or all repaired), 3 problems left,\n"
        "1 the check could not run.\n",
    .run = run_info,
};

static int run_info(const struct cli_verb *verb, int argc, char **argv)
{
    bool json = false, check = false, repair = false;
    const struct cli_opt opts[] = {
        {"json", NULL, &json, NULL},
        {"check", NULL, &check, NULL},
        {"repair", NULL, &repair, NULL},
    };
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 3, pos, 1, 1, "ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    const char *addr = pos[0];
    if (check || repair)
        return cli_channel_check(verb->name, addr, repair, json);
    struct shml_segment_info *info = calloc(1, sizeof *info);
    struct shml_attach_info *att = NULL;
    size_t n_att = 0, n_table = 0;
    if (!info)
        return cli_fail(verb->name, addr, "out of memory");
    int rc = stat_all(addr, info, &att, &n_att, &n_table);
    if (rc < 0) {
        free(info);
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);
    }
    int64_t now = cli_now_ns();
    terminate_strings(info);
    struct declared *dl = calloc(1, sizeof *dl);
    if (!dl) {
        free(att);
        free(info);
        return cli_fail(verb->name, addr, "out of memory");
    }
    read_declared(info, dl);
    struct cli_channel_info ci;
    if (info->managed && info->status == 0)
        cli_channel_read(addr, info->kind, &ci);
    else
        memset(&ci, 0, sizeof ci);
    if (json)
        info_json(info, att, n_att, dl, &ci, now);
    else
        info_text(info, att, n_att, n_table, dl, &ci, now);
    cli_channel_free(&ci);
    free(dl);
    free(att);
    free(info);
    return CLI_EXIT_OK;
}

/* ---- gc ---- */

static int run_gc(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_gc = {
    .name = "gc",
    .usage = "[--dry-run] [--json]",
    .help =
        "Remove abandoned shmlink segments: managed POSIX and System V segments whose creator\n"
        "is dead and that no live process is attached to. Foreign objects are never touched.\n"
        "\n"
        "Options:\n"
        "  --dry-run   only say what would be removed\n"
        "  --json      print a JSON object {\"dry_run\": ..., \"removed\": [...]}\n",
    .run = run_gc,
};

static int run_gc(const struct cli_verb *verb, int argc, char **argv)
{
    bool dry_run = false, json = false;
    const struct cli_opt opts[] = {{"dry-run", NULL, &dry_run, NULL}, {"json", NULL, &json, NULL}};
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 2, pos, 0, 0, "", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    struct shml_segment_info *removed = NULL;
    size_t n = 0;
    int rc = shml_gc(dry_run, &removed, &n);
    if (rc < 0)
        return cli_fail_lib(verb->name, NULL, rc, shml_last_error(), NULL);
    int64_t now = cli_now_ns();
    for (size_t i = 0; i < n; i++)
        terminate_strings(&removed[i]);

    if (json) {
        struct cli_json j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j);
        cli_json_key(&j, "dry_run");
        cli_json_bool(&j, dry_run);
        cli_json_key(&j, "removed");
        cli_json_begin_array(&j);
        for (size_t i = 0; i < n; i++)
            json_segment(&j, &removed[i], now);
        cli_json_end_array(&j);
        cli_json_end_object(&j);
        cli_json_finish(&j);
    } else {
        char *addr = malloc(CLI_SHOW_CAP);
        for (size_t i = 0; i < n && addr; i++) {
            const struct shml_segment_info *s = &removed[i];
            char size[32], age[16];
            cli_fmt_size(s->size, size, sizeof size);
            cli_fmt_age(s->created_ns, now, age, sizeof age);
            printf("%s %s  %s, creator pid %d (%s), age %s: %s\n",
                   dry_run ? "would remove" : "removed",
                   cli_display(s->address, addr, CLI_SHOW_CAP), size, (int)s->creator_pid,
                   cli_alive_name(s->creator_alive), age, gc_view(s).why);
        }
        free(addr);
        if (n == 0)
            printf("gc: nothing to remove\n");
        else
            printf("gc: %zu %s %s\n", n, n == 1 ? "segment" : "segments",
                   dry_run ? "would be removed" : "removed");
    }
    shml_free(removed);
    return CLI_EXIT_OK;
}
