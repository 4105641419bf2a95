/*
 * typed.h - typed messages as text (typed.c): how send and recv read and write the values of a
 * typed channel's messages.
 */
#ifndef SHML_CLI_TYPED_H
#define SHML_CLI_TYPED_H

#include "shmlink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_json;

/*
 * How the tool reads and writes the values of a typed channel's messages: one scalar format
 * (see typed.c for the list), `count` elements of `size` bytes a message.
 */
struct cli_codec {
    const char *format; /* the type's format (the caller keeps the type alive) */
    char code;      /* the struct code: b B h H i I l L q Q f d ? */
    size_t size;    /* bytes of one element */
    bool swap;      /* the format's byte order is not the host's */
    uint64_t count; /* elements a message: the shape's product */
};

/* 0 and *c set when the tool decodes type t; -1 when it does not (messages stay bytes). */
int cli_codec_init(const struct shml_channel_type *t, struct cli_codec *c);
/*
 * Print one message's values on a line, separated by spaces, in C order (len must be
 * size * count). Returns 0, 1 (stdout went away) or -1 (write error, reported).
 */
int cli_codec_print(const char *verb, const struct cli_codec *c, const void *msg, size_t len);
/*
 * Write one message's values (len must be size * count) as a JSON array, in C order: numbers,
 * true / false, and the strings "inf", "-inf" and "nan" for what JSON has no number for.
 */
void cli_codec_json(struct cli_json *j, const struct cli_codec *c, const void *msg);

/*
 * Parse `len` bytes of text (values separated by spaces, tabs or commas) into one message at
 * out (size * count bytes). Returns 0, or -1 with why the text is not a message of the type.
 */
int cli_codec_parse(const struct cli_codec *c, const char *text, size_t len, void *out,
                    char *why, size_t why_cap);

#endif /* SHML_CLI_TYPED_H */
