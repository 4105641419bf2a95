/*
 * json.h - the JSON writer behind every --json (json.c).
 */
#ifndef SHML_CLI_JSON_H
#define SHML_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_JSON_DEPTH 16

/*
 * Writes indented JSON to a FILE: the caller opens and closes objects and arrays and the writer
 * places commas, newlines and indentation. Strings are escaped per RFC 8259; bytes that are
 * not well-formed UTF-8 become U+FFFD so the output is always valid JSON.
 */
struct cli_json {
    FILE *f;
    int depth;
    bool has_items[CLI_JSON_DEPTH]; /* the container at this depth has an element already */
    bool after_key;                 /* a key was written; its value comes next */
};

void cli_json_init(struct cli_json *j, FILE *f);
void cli_json_begin_object(struct cli_json *j);
void cli_json_end_object(struct cli_json *j);
void cli_json_begin_array(struct cli_json *j);
void cli_json_end_array(struct cli_json *j);
void cli_json_key(struct cli_json *j, const char *key);
void cli_json_string(struct cli_json *j, const char *s); /* NULL writes null */
void cli_json_int(struct cli_json *j, int64_t v);
void cli_json_uint(struct cli_json *j, uint64_t v);
void cli_json_bool(struct cli_json *j, bool v);
void cli_json_null(struct cli_json *j);
/* End the document with a newline. */
void cli_json_finish(struct cli_json *j);

#endif /* SHML_CLI_JSON_H */
