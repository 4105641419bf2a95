/*
 * json.h - the JSON writer behind every --json (json.c).
 */
#ifndef SHML_CLI_JSON_H
#define SHML_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_JSON_DEPTH 16

/*
 * Writes JSON: the caller opens and closes objects and arrays and the writer places commas,
 * newlines and indentation. Strings are escaped per RFC 8259; bytes that are not well-formed
 * UTF-8 become U+FFFD so the output is always valid JSON.
 *
 * Two sinks: a FILE, indented by two spaces (cli_json_init: one document per run, as ls and
 * info print), or memory, on one line (cli_json_init_line: one line of JSON Lines, for a
 * stream such as recv's, which the caller writes out and can check as one write).
 */
struct cli_json {
    FILE *f;         /* NULL: into `text`, on one line */
    char *text;      /* the line so far (line mode) */
    size_t len, cap; /* its bytes, and the room allocated */
    bool oom;        /* memory ran out: the line is incomplete */
    int depth;
    bool has_items[CLI_JSON_DEPTH]; /* the container at this depth has an element already */
    bool after_key;                 /* a key was written; its value comes next */
};

void cli_json_init(struct cli_json *j, FILE *f);
/* Start an empty line in memory; cli_json_line() gives it, cli_json_free() frees it. */
void cli_json_init_line(struct cli_json *j);
/* The line written since cli_json_init_line() or the last cli_json_line() (ended by
   cli_json_finish()), *len its bytes; NULL when memory ran out. Valid until the next value,
   which starts a new line. */
const char *cli_json_line(struct cli_json *j, size_t *len);
void cli_json_free(struct cli_json *j);

void cli_json_begin_object(struct cli_json *j);
void cli_json_end_object(struct cli_json *j);
void cli_json_begin_array(struct cli_json *j);
void cli_json_end_array(struct cli_json *j);
void cli_json_key(struct cli_json *j, const char *key);
void cli_json_string(struct cli_json *j, const char *s); /* NULL writes null */
/* A string of n bytes, NUL bytes included (as \u0000). */
void cli_json_string_n(struct cli_json *j, const void *s, size_t n);
/* n bytes as a base64 string (RFC 4648, with padding). */
void cli_json_base64(struct cli_json *j, const void *p, size_t n);
void cli_json_int(struct cli_json *j, int64_t v);
void cli_json_uint(struct cli_json *j, uint64_t v);
/* A number already written as JSON text ("1.5", "-3"): the caller vouches for its form. */
void cli_json_number(struct cli_json *j, const char *text);
void cli_json_bool(struct cli_json *j, bool v);
void cli_json_null(struct cli_json *j);
/* End the document with a newline. */
void cli_json_finish(struct cli_json *j);

#endif /* SHML_CLI_JSON_H */
