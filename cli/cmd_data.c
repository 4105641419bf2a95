/*
 * cmd_data.c - the verbs that move bytes: cat, dump, write.
 *
 * Bytes always go through shml_segment_read()/shml_segment_write(), never through the mapping:
 * another process may truncate the object at any moment, and the library turns that into
 * -SHML_ETRUNCATED where a load from the mapping would kill the tool with SIGBUS. Reads go in
 * chunks so a 1 GiB segment costs 1 MiB of memory.
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "cmd_channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes moved per shml_segment_read() call by cat, so memory stays bounded. */
#define CAT_CHUNK ((size_t)1 << 20)
/* Bytes per dump chunk: a multiple of 16 so every chunk but the last holds whole lines. */
#define DUMP_CHUNK ((size_t)64 << 10)
/* Longest dump line: 16-digit offset, 16 hex pairs, the ASCII column, newline. */
#define DUMP_LINE_MAX 96

/*
 * Header failures that --raw gets past: the bytes are there, only the header is not usable.
 * -ETIMEDOUT is among them because a header that never becomes ready may be no header at
 * all: an object whose first bytes are zero looks like a segment still being initialised.
 */
static const char *raw_hint(int err, const char *what)
{
    if (err == -SHML_ENOTSHML || err == -SHML_ECORRUPT || err == -SHML_EVERSION ||
        err == -ETIMEDOUT)
        return what;
    return NULL;
}

/*
 * Open for cat and dump: as a shmlink segment (data only) if it is one, else as raw bytes;
 * --raw goes straight to raw. NOATTACH: looking at a segment must not change its attach table.
 * --wait: a segment that does not exist yet is waited for (until a stop signal).
 */
static int open_for_read(const char *verb, const char *addr, bool raw, bool wait,
                         shml_segment **seg)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_RDONLY | SHML_NOATTACH | (raw ? SHML_RAW : 0);
    if (wait) {
        cli_catch_stop_signals();
        o.flags |= SHML_WAIT;
        o.timeout_ns = SHML_FOREVER;
    }
    int rc = shml_segment_open(addr, &o, seg);
    o.flags &= ~SHML_WAIT;
    if (rc == -ECANCELED) {
        cli_fail(verb, addr, "interrupted while waiting for the segment to appear");
        return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    }
    if (rc == -SHML_ENOTSHML && !raw) {
        o.flags = SHML_RDONLY | SHML_NOATTACH | SHML_RAW;
        rc = shml_segment_open(addr, &o, seg);
    }
    if (rc < 0)
        return cli_fail_lib(verb, addr, rc, shml_last_error(),
                            raw_hint(rc, "use --raw to read it as plain bytes"));
    return 0;
}

/* Parse --offset/--length against a segment of `size` bytes. */
static int select_range(const char *verb, const char *addr, size_t size, const char *off_text,
                        const char *len_text, size_t *off, size_t *len)
{
    uint64_t o = 0, l = 0;
    const char *why;
    char shown[256], detail[160];

    if (off_text && cli_parse_size(off_text, true, &o, &why) < 0)
        return cli_fail(verb, addr, "invalid offset %s: %s",
                        cli_quote(off_text, shown, sizeof shown), why);
    if (len_text && cli_parse_size(len_text, true, &l, &why) < 0)
        return cli_fail(verb, addr, "invalid length %s: %s",
                        cli_quote(len_text, shown, sizeof shown), why);
    if (o > size) {
        snprintf(detail, sizeof detail, "offset %llu, segment size %zu", (unsigned long long)o,
                 size);
        return cli_fail_lib(verb, addr, -ERANGE, detail, NULL);
    }
    if (!len_text)
        l = size - o;
    if (l > size - o) {
        snprintf(detail, sizeof detail, "offset %llu + length %llu, segment size %zu",
                 (unsigned long long)o, (unsigned long long)l, size);
        return cli_fail_lib(verb, addr, -ERANGE, detail, NULL);
    }
    *off = (size_t)o;
    *len = (size_t)l;
    return 0;
}

/*
 * Receives the bytes read, `pos` being their offset in the segment. Returns 0 to go on, 1 to
 * stop quietly (stdout closed), -1 after reporting an error.
 */
typedef int (*sink_fn)(void *ctx, size_t pos, const unsigned char *p, size_t n);

static int copy_range(const char *verb, const char *addr, const shml_segment *seg, size_t off,
                      size_t len, size_t chunk, sink_fn sink, void *ctx)
{
    size_t cap = len < chunk ? len : chunk;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return cli_fail(verb, addr, "out of memory");
    int status = CLI_EXIT_OK;
    while (len > 0) {
        size_t n = len < cap ? len : cap;
        ssize_t r = shml_segment_read(seg, off, buf, n);
        if (r < 0) {
            status = cli_fail_lib(verb, addr, (int)r, shml_last_error(), NULL);
            break;
        }
        int s = sink(ctx, off, buf, n);
        if (s != 0) {
            status = s > 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
            break;
        }
        off += n;
        len -= n;
    }
    free(buf);
    return status;
}

/* cat and dump share everything but what they do with the bytes. */
struct read_args {
    const char *addr;
    bool raw, wait;
    const char *offset, *length;
};

static int parse_read_args(const struct cli_verb *verb, int argc, char **argv,
                           struct read_args *a)
{
    const struct cli_opt opts[] = {
        {"offset", "N", NULL, &a->offset},
        {"length", "N", NULL, &a->length},
        {"raw", NULL, &a->raw, NULL},
        {"wait", NULL, &a->wait, NULL},
    };
    const char *pos[1];
    size_t npos;
    memset(a, 0, sizeof *a);
    int parsed = cli_parse(verb, argc, argv, opts, 4, pos, 1, 1, "ADDR", &npos);
    if (parsed == CLI_RUN)
        a->addr = pos[0];
    return parsed;
}

static int run_read_verb(const struct cli_verb *verb, int argc, char **argv, size_t chunk,
                         sink_fn sink, int (*finish)(void *ctx, size_t end), void *ctx)
{
    struct read_args a;
    int parsed = parse_read_args(verb, argc, argv, &a);
    if (parsed != CLI_RUN)
        return parsed;
    shml_segment *seg = NULL;
    int opened = open_for_read(verb->name, a.addr, a.raw, a.wait, &seg);
    if (opened != 0)
        return opened;
    size_t off = 0, len = 0;
    int status =
        select_range(verb->name, a.addr, shml_segment_size(seg), a.offset, a.length, &off, &len);
    if (status == CLI_EXIT_OK)
        status = copy_range(verb->name, a.addr, seg, off, len, chunk, sink, ctx);
    if (status == CLI_EXIT_OK && finish && !cli_stdout_closed() && finish(ctx, off + len) < 0)
        status = CLI_EXIT_FAIL;
    shml_segment_close(seg);
    return status;
}

/* ---- cat ---- */

static int cat_sink(void *ctx, size_t pos, const unsigned char *p, size_t n)
{
    (void)pos;
    return cli_stdout_write((const char *)ctx, p, n);
}

static int run_cat(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_cat = {
    .name = "cat",
    .usage = "ADDR [--offset N] [--length N] [--raw] [--wait]",
    .help =
        "Copy a segment's bytes to stdout: a shmlink segment's data, or a foreign object whole.\n"
        "A segment truncated by another process while it is read is an error, not a crash.\n"
        "\n"
        "Options:\n"
        "  --offset N   start N bytes in (default 0; K/M/G/T suffixes as for create)\n"
        "  --length N   copy N bytes (default: to the end)\n"
        "  --raw        read the whole object, header included\n"
        "  --wait       if ADDR does not exist yet, wait for it to appear (until interrupted)\n",
    .run = run_cat,
};

static int run_cat(const struct cli_verb *verb, int argc, char **argv)
{
    return run_read_verb(verb, argc, argv, CAT_CHUNK, cat_sink, NULL, (void *)verb->name);
}

/* ---- dump ---- */

struct dump_state {
    const char *verb;
    char *out;              /* text of one chunk */
    unsigned char prev[16]; /* the last full line shown or skipped */
    bool have_prev;
    bool starred; /* a '*' stands for the lines since the last one shown */
    bool any;     /* some bytes were shown */
};

static size_t dump_line(char *o, size_t pos, const unsigned char *p, size_t n)
{
    size_t k = (size_t)sprintf(o, "%08zx ", pos);
    for (size_t i = 0; i < 16; i++) {
        if (i == 8)
            o[k++] = ' ';
        if (i < n)
            k += (size_t)sprintf(o + k, " %02x", p[i]);
        else
            k += (size_t)sprintf(o + k, "   ");
    }
    k += (size_t)sprintf(o + k, "  |");
    for (size_t i = 0; i < n; i++)
        o[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
    k += (size_t)sprintf(o + k, "|\n");
    return k;
}

static int dump_sink(void *ctx, size_t pos, const unsigned char *p, size_t n)
{
    struct dump_state *d = ctx;
    size_t k = 0;
    d->any = true;
    for (size_t i = 0; i < n; i += 16) {
        size_t m = n - i < 16 ? n - i : 16;
        /* Like hexdump -C: a run of full lines equal to the one before shows as one '*'. */
        if (m == 16 && d->have_prev && memcmp(d->prev, p + i, 16) == 0) {
            if (!d->starred) {
                memcpy(d->out + k, "*\n", 2);
                k += 2;
                d->starred = true;
            }
            continue;
        }
        k += dump_line(d->out + k, pos + i, p + i, m);
        d->starred = false;
        d->have_prev = m == 16;
        if (m == 16)
            memcpy(d->prev, p + i, 16);
    }
    return cli_stdout_write(d->verb, d->out, k);
}

/* The closing line names the offset just past the end, as hexdump does. */
static int dump_finish(void *ctx, size_t end)
{
    struct dump_state *d = ctx;
    if (!d->any)
        return 0; /* nothing dumped, nothing to close (hexdump prints nothing either) */
    int n = snprintf(d->out, DUMP_LINE_MAX, "%08zx\n", end);
    return cli_stdout_write(d->verb, d->out, (size_t)n) < 0 ? -1 : 0;
}

static int run_dump(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_dump = {
    .name = "dump",
    .usage = "ADDR [--offset N] [--length N] [--raw] [--wait]",
    .help =
        "Show a segment's bytes in hex and ASCII, 16 per line, like hexdump -C: the offset\n"
        "column counts from the start of the data (or object with --raw), and a '*' line stands\n"
        "for lines equal to the one before.\n"
        "\n"
        "Options:\n"
        "  --offset N   start N bytes in (default 0)\n"
        "  --length N   show N bytes (default: to the end)\n"
        "  --raw        show the whole object, header included\n"
        "  --wait       if ADDR does not exist yet, wait for it to appear (until interrupted)\n",
    .run = run_dump,
};

static int run_dump(const struct cli_verb *verb, int argc, char **argv)
{
    struct dump_state d = {verb->name, NULL, {0}, false, false, false};
    d.out = malloc(DUMP_CHUNK / 16 * DUMP_LINE_MAX + DUMP_LINE_MAX);
    if (!d.out)
        return cli_fail(verb->name, NULL, "out of memory");
    int status = run_read_verb(verb, argc, argv, DUMP_CHUNK, dump_sink, dump_finish, &d);
    free(d.out);
    return status;
}

/* ---- write ---- */

/*
 * Read stdin until EOF or `limit` bytes, whichever comes first. The buffer grows with the
 * input, so a short input into a large segment costs only its own size.
 */
static int read_stdin(size_t limit, unsigned char **out, size_t *out_len)
{
    size_t cap = limit < 65536 ? limit : 65536, len = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return -ENOMEM;
    while (len < limit) {
        if (len == cap) {
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                return -ENOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = read(STDIN_FILENO, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            free(buf);
            return -err;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static int run_write(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_write = {
    .name = "write",
    .usage = "ADDR [--offset N] [--raw]",
    .help =
        "Copy stdin into a segment at offset N. All of stdin is read first: if it does not fit\n"
        "between the offset and the end of the segment, nothing is written.\n"
        "\n"
        "Options:\n"
        "  --offset N   write N bytes in (default 0)\n"
        "  --raw        write into the object as plain bytes (a foreign object, or a shmlink\n"
        "               segment's header)\n",
    .run = run_write,
};

static int run_write(const struct cli_verb *verb, int argc, char **argv)
{
    bool raw = false;
    const char *off_text = NULL;
    const struct cli_opt opts[] = {
        {"offset", "N", NULL, &off_text},
        {"raw", NULL, &raw, NULL},
    };
    const char *pos[1];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 2, pos, 1, 1, "ADDR", &npos);
    if (parsed != CLI_RUN)
        return parsed;

    const char *addr = pos[0];
    const char *why;
    char shown[256], detail[200];
    uint64_t off = 0;
    if (off_text && cli_parse_size(off_text, true, &off, &why) < 0)
        return cli_fail(verb->name, addr, "invalid offset %s: %s",
                        cli_quote(off_text, shown, sizeof shown), why);

    /* Unlike cat, no silent fallback to raw: writing at offset 0 of a foreign object is a
     * different act from writing a shmlink segment's data, so the user says which. */
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_NOATTACH | (raw ? SHML_RAW : 0);
    shml_segment *seg = NULL;
    int rc = shml_segment_open(addr, &o, &seg);
    if (rc < 0)
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(),
                            raw_hint(rc, "use --raw to write it as plain bytes"));

    size_t size = shml_segment_size(seg);
    int status = CLI_EXIT_OK;
    unsigned char *buf = NULL;
    size_t n = 0;
    if (off > size) {
        snprintf(detail, sizeof detail, "offset %llu, segment size %zu; nothing was written",
                 (unsigned long long)off, size);
        status = cli_fail_lib(verb->name, addr, -ERANGE, detail, NULL);
        goto out;
    }
    size_t room = size - (size_t)off;
    /* One byte more than fits tells "exactly full" from "too long" without reading it all. */
    rc = read_stdin(room < SIZE_MAX ? room + 1 : room, &buf, &n);
    if (rc < 0) {
        status =
            cli_fail(verb->name, addr, "cannot read stdin: %s; nothing was written", strerror(-rc));
        goto out;
    }
    if (n > room) {
        snprintf(detail, sizeof detail,
                 "stdin holds more than the %zu %s from offset %llu to the end; nothing was "
                 "written",
                 room, room == 1 ? "byte" : "bytes", (unsigned long long)off);
        status = cli_fail_lib(verb->name, addr, -ERANGE, detail, NULL);
        goto out;
    }
    if (n > 0) {
        ssize_t w = shml_segment_write(seg, (size_t)off, buf, n);
        if (w < 0) {
            status = cli_fail_lib(verb->name, addr, (int)w, shml_last_error(), NULL);
            goto out;
        }
    }
    rc = shml_segment_close(seg);
    seg = NULL;
    if (rc < 0) {
        status = cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);
        goto out;
    }
    char *addr_shown = malloc(CLI_SHOW_CAP);
    printf("wrote %zu %s to %s at offset %llu\n", n, n == 1 ? "byte" : "bytes",
           addr_shown ? cli_display(addr, addr_shown, CLI_SHOW_CAP) : "?", (unsigned long long)off);
    free(addr_shown);
out:
    free(buf);
    shml_segment_close(seg);
    return status;
}
