/*
 * typed.c - the messages of a typed channel as text: recv prints each message's values, send
 * reads them, so a channel of float pairs takes "1.5 2.5" and not the 7 bytes of that text.
 *
 * The tool decodes the simple PEP 3118 formats, one scalar per element: an optional byte
 * order (@ = native, = native with standard sizes, < little, > and ! big) and one of
 * b B h H i I l L q Q (integers), f d (floats), ? (bool). Anything else (structures, half
 * floats, repeat counts) stays bytes, and recv says so.
 */
#include "shmlink.h"

#include "typed.h"
#include "verb.h"
#include "fmt.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The element sizes of the standard (=, <, >, !) and native (@, none) forms. */
static size_t code_size(char code, bool native)
{
    switch (code) {
    case 'b': case 'B': case '?':
        return 1;
    case 'h': case 'H':
        return 2;
    case 'i': case 'I': case 'f':
        return 4;
    case 'l': case 'L':
        return native ? sizeof(long) : 4;
    case 'q': case 'Q': case 'd':
        return 8;
    default:
        return 0;
    }
}

static bool host_little(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

int cli_codec_init(const struct shml_channel_type *t, struct cli_codec *c)
{
    memset(c, 0, sizeof *c);
    const char *f = t->format;
    bool native = true, little = host_little();
    if (*f == '@' || *f == '=') {
        native = *f == '@';
        f++;
    } else if (*f == '<' || *f == '>' || *f == '!') {
        native = false;
        little = *f == '<';
        f++;
    }
    if (f[0] == '\0' || f[1] != '\0')
        return -1;
    size_t size = code_size(f[0], native);
    if (size == 0 || size != t->itemsize)
        return -1;
    uint64_t count = 1;
    for (uint32_t d = 0; d < t->ndim && d < SHML_TYPE_NDIM_MAX; d++)
        count *= t->shape[d];
    c->format = t->format;
    c->code = f[0];
    c->size = size;
    c->swap = little != host_little();
    c->count = count;
    return 0;
}

/* Element i of msg as host-order bytes in out (8 bytes, the value in the first `size`). */
static void load(const struct cli_codec *c, const unsigned char *msg, uint64_t i,
                 unsigned char out[8])
{
    const unsigned char *p = msg + i * c->size;
    for (size_t k = 0; k < c->size; k++)
        out[k] = c->swap ? p[c->size - 1 - k] : p[k];
}

static void store(const struct cli_codec *c, const unsigned char in[8], unsigned char *msg,
                  uint64_t i)
{
    unsigned char *p = msg + i * c->size;
    for (size_t k = 0; k < c->size; k++)
        p[k] = c->swap ? in[c->size - 1 - k] : in[k];
}

/* The shortest text that reads back as the same float or double. */
static void fmt_float(double v, bool single, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v)
            return;
    }
}

static void fmt_value(const struct cli_codec *c, const unsigned char raw[8], char *buf,
                      size_t cap)
{
    union {
        int8_t b; uint8_t B; int16_t h; uint16_t H; int32_t i; uint32_t I; int64_t q;
        uint64_t Q; float f; double d; unsigned char raw[8];
    } u;
    memcpy(u.raw, raw, sizeof u.raw);
    bool sgn = c->code == 'b' || c->code == 'h' || c->code == 'i' || c->code == 'l' ||
               c->code == 'q';
    if (c->code == 'f' || c->code == 'd') {
        double v = c->code == 'f' ? (double)u.f : u.d;
        if (isnan(v) || isinf(v))
            snprintf(buf, cap, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        else
            fmt_float(v, c->code == 'f', buf, cap);
    } else if (c->code == '?') {
        snprintf(buf, cap, "%s", u.B ? "true" : "false");
    } else if (sgn) {
        long long v = c->size == 1 ? u.b : c->size == 2 ? u.h : c->size == 4 ? u.i : u.q;
        snprintf(buf, cap, "%lld", v);
    } else {
        unsigned long long v = c->size == 1 ? u.B : c->size == 2 ? u.H : c->size == 4 ? u.I : u.Q;
        snprintf(buf, cap, "%llu", v);
    }
}

int cli_codec_print(const char *verb, const struct cli_codec *c, const void *msg, size_t len)
{
    (void)len; /* the caller checked: len == size * count */
    char text[64];
    for (uint64_t i = 0; i < c->count; i++) {
        unsigned char raw[8] = {0};
        load(c, msg, i, raw);
        fmt_value(c, raw, text, sizeof text);
        int w = cli_stdout_write(verb, i ? " " : "", i ? 1 : 0);
        if (!w)
            w = cli_stdout_write(verb, text, strlen(text));
        if (w)
            return w;
    }
    return cli_stdout_write(verb, "\n", 1);
}

void cli_codec_json(struct cli_json *j, const struct cli_codec *c, const void *msg)
{
    char text[64];
    cli_json_begin_array(j);
    for (uint64_t i = 0; i < c->count; i++) {
        unsigned char raw[8] = {0};
        load(c, msg, i, raw);
        fmt_value(c, raw, text, sizeof text);
        /* JSON has no infinities or NaN: those are strings, the words recv prints ("inf",
           "-inf", "nan": the only texts of a value with an 'n'). */
        if (strchr(text, 'n'))
            cli_json_string(j, text);
        else
            cli_json_number(j, text); /* a number, or true / false: valid JSON as written */
    }
    cli_json_end_array(j);
}

/* Parse one value's text (NUL-terminated) as the element type; 0, or -1. */
static int parse_value(const struct cli_codec *c, const char *s, unsigned char raw[8])
{
    union {
        int8_t b; uint8_t B; int16_t h; uint16_t H; int32_t i; uint32_t I; int64_t q;
        uint64_t Q; float f; double d; unsigned char raw[8];
    } u;
    memset(&u, 0, sizeof u);
    char *end;
    errno = 0;
    if (c->code == 'f' || c->code == 'd') {
        double v = strtod(s, &end);
        if (end == s || *end || (errno == ERANGE && (v > 1 || v < -1)))
            return -1;
        if (c->code == 'f') {
            if (isfinite(v) && (v > 3.4028234663852886e38 || v < -3.4028234663852886e38))
                return -1;
            u.f = (float)v;
        } else {
            u.d = v;
        }
    } else if (c->code == '?') {
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
            u.B = 1;
        else if (strcmp(s, "false") != 0 && strcmp(s, "0") != 0)
            return -1;
    } else {
        bool sgn = c->code == 'b' || c->code == 'h' || c->code == 'i' || c->code == 'l' ||
                   c->code == 'q';
        unsigned bits = (unsigned)c->size * 8;
        if (sgn) {
            long long v = strtoll(s, &end, 0);
            long long max = bits == 64 ? INT64_MAX : (1LL << (bits - 1)) - 1;
            if (end == s || *end || errno || v > max || v < -max - 1)
                return -1;
            /* The member of the element's size: its bytes, in host order, start raw. */
            if (bits == 8)
                u.b = (int8_t)v;
            else if (bits == 16)
                u.h = (int16_t)v;
            else if (bits == 32)
                u.i = (int32_t)v;
            else
                u.q = v;
        } else {
            if (*s == '-')
                return -1;
            unsigned long long v = strtoull(s, &end, 0);
            unsigned long long max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
            if (end == s || *end || errno || v > max)
                return -1;
            if (bits == 8)
                u.B = (uint8_t)v;
            else if (bits == 16)
                u.H = (uint16_t)v;
            else if (bits == 32)
                u.I = (uint32_t)v;
            else
                u.Q = v;
        }
    }
    memcpy(raw, u.raw, sizeof u.raw);
    return 0;
}

int cli_codec_parse(const struct cli_codec *c, const char *text, size_t len, void *out,
                    char *why, size_t why_cap)
{
    uint64_t n = 0;
    size_t i = 0;
    char shown[96];
    while (i < len) {
        /* Values are separated by spaces, tabs or commas. */
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == ','))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != ',')
            i++;
        char word[64];
        size_t wl = i - start;
        if (wl >= sizeof word || memchr(text + start, '\0', wl)) {
            snprintf(why, why_cap, "value %llu is not a number", (unsigned long long)n + 1);
            return -1;
        }
        memcpy(word, text + start, wl);
        word[wl] = '\0';
        if (n == c->count) {
            snprintf(why, why_cap, "more than %llu value%s", (unsigned long long)c->count,
                     cli_plural(c->count));
            return -1;
        }
        unsigned char raw[8];
        if (parse_value(c, word, raw) < 0) {
            snprintf(why, why_cap, "%s is not a value of type %s%s",
                     cli_quote(word, shown, sizeof shown), c->format,
                     strchr("fd", c->code) ? " (a number in its range, inf or nan)"
                     : c->code == '?' ? " (true, false, 1 or 0)"
                                      : " (a whole number in its range)");
            return -1;
        }
        store(c, raw, out, n++);
    }
    if (n != c->count) {
        snprintf(why, why_cap, "%llu value%s where a message has %llu",
                 (unsigned long long)n, cli_plural(n), (unsigned long long)c->count);
        return -1;
    }
    return 0;
}
