/*
 * json.c - a small streaming JSON writer for --json output.
 *
 * The document is written as it is produced (no tree in memory) and indented by two spaces,
 * so it is readable on a terminal and parses anywhere; or, for a stream of records, each
 * record on one line in memory, so the caller writes it whole. Nesting deeper than
 * CLI_JSON_DEPTH is a programming error of the tool; it is clamped rather than allowed to
 * overrun the array.
 */
#include "json.h"
#include "fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_json_init(struct cli_json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

void cli_json_init_line(struct cli_json *j)
{
    memset(j, 0, sizeof *j);
}

const char *cli_json_line(struct cli_json *j, size_t *len)
{
    const char *text = j->oom ? NULL : j->text;
    *len = j->len;
    /* The next value starts a new line, in the same memory. */
    j->len = 0;
    j->oom = false;
    j->depth = 0;
    j->after_key = false;
    memset(j->has_items, 0, sizeof j->has_items);
    return text;
}

void cli_json_free(struct cli_json *j)
{
    if (!j->f)
        free(j->text);
    j->text = NULL;
    j->len = j->cap = 0;
}

/* Every byte goes out through here: to the FILE, or appended to the line. */
static void put(struct cli_json *j, const void *p, size_t n)
{
    if (j->f) {
        fwrite(p, 1, n, j->f);
        return;
    }
    if (j->oom)
        return;
    if (j->cap - j->len < n) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap - j->len < n && cap <= SIZE_MAX / 2)
            cap *= 2;
        char *t = cap - j->len < n ? NULL : realloc(j->text, cap);
        if (!t) {
            j->oom = true;
            return;
        }
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, p, n);
    j->len += n;
}

static void put_str(struct cli_json *j, const char *s)
{
    put(j, s, strlen(s));
}

static void indent(struct cli_json *j)
{
    if (!j->f)
        return; /* one line */
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

/* Called before every value: a comma and a new line (on one line: a space) unless it follows
   its key. */
static void before_value(struct cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        bool more = j->has_items[j->depth];
        if (more)
            put_str(j, j->f ? "," : ", ");
        j->has_items[j->depth] = true;
        indent(j);
    }
}

static void open_container(struct cli_json *j, char c)
{
    before_value(j);
    put(j, &c, 1);
    if (j->depth + 1 < CLI_JSON_DEPTH)
        j->depth++;
    j->has_items[j->depth] = false;
}

static void close_container(struct cli_json *j, char c)
{
    bool had = j->has_items[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (had)
        indent(j);
    put(j, &c, 1);
}

void cli_json_begin_object(struct cli_json *j)
{
    open_container(j, '{');
}

void cli_json_end_object(struct cli_json *j)
{
    close_container(j, '}');
}

void cli_json_begin_array(struct cli_json *j)
{
    open_container(j, '[');
}

void cli_json_end_array(struct cli_json *j)
{
    close_container(j, ']');
}

static void put_escaped(struct cli_json *j, const void *s, size_t n)
{
    const unsigned char *p = s;

    put(j, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t seq = cli_utf8_seq(p + i, n - i, &cp);
        if (seq == 0) {
            /* Not UTF-8 (a foreign object's name can be any bytes): JSON must stay valid. */
            put_str(j, "\\ufffd");
            i++;
            continue;
        }
        if (seq > 1) {
            put(j, p + i, seq);
        } else if (cp == '"') {
            put_str(j, "\\\"");
        } else if (cp == '\\') {
            put_str(j, "\\\\");
        } else if (cp == '\n') {
            put_str(j, "\\n");
        } else if (cp == '\r') {
            put_str(j, "\\r");
        } else if (cp == '\t') {
            put_str(j, "\\t");
        } else if (cp < 0x20 || cp == 0x7f) {
            char u[8];
            snprintf(u, sizeof u, "\\u%04x", (unsigned)cp);
            put_str(j, u);
        } else {
            char c = (char)cp;
            put(j, &c, 1);
        }
        i += seq;
    }
    put(j, "\"", 1);
}

void cli_json_key(struct cli_json *j, const char *key)
{
    before_value(j);
    put_escaped(j, key, strlen(key));
    put_str(j, ": ");
    j->after_key = true;
}

void cli_json_string(struct cli_json *j, const char *s)
{
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_string_n(j, s, strlen(s));
}

void cli_json_string_n(struct cli_json *j, const void *s, size_t n)
{
    before_value(j);
    put_escaped(j, s, n);
}

void cli_json_base64(struct cli_json *j, const void *p, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = p;
    before_value(j);
    put(j, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        char q[4] = {digits[v >> 18], digits[(v >> 12) & 63],
                     i + 1 < n ? digits[(v >> 6) & 63] : '=', i + 2 < n ? digits[v & 63] : '='};
        put(j, q, 4);
    }
    put(j, "\"", 1);
}

void cli_json_int(struct cli_json *j, int64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%" PRId64, v);
    cli_json_number(j, t);
}

void cli_json_uint(struct cli_json *j, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%" PRIu64, v);
    cli_json_number(j, t);
}

void cli_json_number(struct cli_json *j, const char *text)
{
    before_value(j);
    put_str(j, text);
}

void cli_json_bool(struct cli_json *j, bool v)
{
    before_value(j);
    put_str(j, v ? "true" : "false");
}

void cli_json_null(struct cli_json *j)
{
    before_value(j);
    put_str(j, "null");
}

void cli_json_finish(struct cli_json *j)
{
    put(j, "\n", 1);
}
