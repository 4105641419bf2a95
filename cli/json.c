/*
 * json.c - a small streaming JSON writer for --json output.
 *
 * The document is written as it is produced (no tree in memory) and indented by two spaces,
 * so it is readable on a terminal and parses anywhere. Nesting deeper than CLI_JSON_DEPTH is a
 * programming error of the tool; it is clamped rather than allowed to overrun the array.
 */
#include "json.h"
#include "fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void cli_json_init(struct cli_json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

static void indent(struct cli_json *j)
{
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

/* Called before every value: a comma and a new line unless it follows its key. */
static void before_value(struct cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (j->has_items[j->depth])
            fputc(',', j->f);
        j->has_items[j->depth] = true;
        indent(j);
    }
}

static void open_container(struct cli_json *j, char c)
{
    before_value(j);
    fputc(c, j->f);
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
    fputc(c, j->f);
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

static void put_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t seq = cli_utf8_seq(p + i, n - i, &cp);
        if (seq == 0) {
            /* Not UTF-8 (a foreign object's name can be any bytes): JSON must stay valid. */
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (seq > 1) {
            fwrite(p + i, 1, seq, f);
        } else if (cp == '"') {
            fputs("\\\"", f);
        } else if (cp == '\\') {
            fputs("\\\\", f);
        } else if (cp == '\n') {
            fputs("\\n", f);
        } else if (cp == '\r') {
            fputs("\\r", f);
        } else if (cp == '\t') {
            fputs("\\t", f);
        } else if (cp < 0x20 || cp == 0x7f) {
            fprintf(f, "\\u%04x", (unsigned)cp);
        } else {
            fputc((int)cp, f);
        }
        i += seq;
    }
    fputc('"', f);
}

void cli_json_key(struct cli_json *j, const char *key)
{
    before_value(j);
    put_escaped(j->f, key);
    fputs(": ", j->f);
    j->after_key = true;
}

void cli_json_string(struct cli_json *j, const char *s)
{
    if (!s) {
        cli_json_null(j);
        return;
    }
    before_value(j);
    put_escaped(j->f, s);
}

void cli_json_int(struct cli_json *j, int64_t v)
{
    before_value(j);
    fprintf(j->f, "%" PRId64, v);
}

void cli_json_uint(struct cli_json *j, uint64_t v)
{
    before_value(j);
    fprintf(j->f, "%" PRIu64, v);
}

void cli_json_bool(struct cli_json *j, bool v)
{
    before_value(j);
    fputs(v ? "true" : "false", j->f);
}

void cli_json_null(struct cli_json *j)
{
    before_value(j);
    fputs("null", j->f);
}

void cli_json_finish(struct cli_json *j)
{
    fputc('\n', j->f);
}
