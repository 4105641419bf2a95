/*
 * fmt.h - parsing and formatting for people (fmt.c): sizes, durations, times, the names of
 * kinds, roles and policies, and text made safe to show on a terminal.
 */
#ifndef SHML_CLI_FMT_H
#define SHML_CLI_FMT_H

#include "shmlink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room to display any address or library detail, every byte escaped as \xNN. */
#define CLI_SHOW_CAP (4 * SHML_ADDR_MAX + 16)

/*
 * Parse a byte count: decimal digits with an optional binary suffix K, M, G, T (or KiB, MiB,
 * GiB, TiB), case-insensitive. Returns 0 and *out, or -1 with *why naming the problem (empty,
 * negative, zero when !allow_zero, garbage, too large for size_t).
 */
int cli_parse_size(const char *s, bool allow_zero, uint64_t *out, const char **why);

/* Parse octal permission bits ("0640", "640"): 1..0777. Returns 0, or -1 with *why. */
int cli_parse_mode(const char *s, uint32_t *out, const char **why);

/*
 * Parse a duration, the one parser of every duration option: a decimal number, with an
 * optional fraction ("0.5", "1.25ms"), and a unit ns, us, ms, s, m or h (no unit: seconds), or
 * "forever" (SHML_FOREVER). Digits past nanoseconds are dropped. Returns 0 and *out_ns, or -1
 * with *why.
 */
int cli_parse_duration(const char *s, int64_t *out_ns, const char **why);

/* "4K", "1.5M", "512B": a byte count for people. */
void cli_fmt_size(uint64_t bytes, char *buf, size_t cap);
/* "5s", "3m", "2h", "4d": the age of a CLOCK_REALTIME ns timestamp; "-" if unknown (0). */
void cli_fmt_age(int64_t stamp_ns, int64_t now_ns, char *buf, size_t cap);
/* Whole seconds from stamp_ns to now_ns, 0 for a stamp in the future; never overflows. */
int64_t cli_age_s(int64_t stamp_ns, int64_t now_ns);
/* "2024-05-01T12:00:00Z"; "-" if unknown (0). */
void cli_fmt_time(int64_t stamp_ns, char *buf, size_t cap);
/* The user name of `uid`, or its number if it has none. */
void cli_fmt_user(uint32_t uid, char *buf, size_t cap);

/* "" for 1, "s" otherwise: "1 message", "3 messages". */
const char *cli_plural(uint64_t n);

/*
 * The words come from the library's name table (shmlink/names.h), so the tool, its JSON and
 * the Python module say the same. cli_name() returns `name`, or, when the table had none
 * (NULL), "WHAT#VALUE" written into buf: "kind#7", "role#300".
 */
const char *cli_name(const char *name, const char *what, long long value, char *buf, size_t cap);
/* "producer", "subscriber", "writer+reader" ...: an endpoint's role in words of its kind. */
const char *cli_role_name(uint32_t kind, uint32_t role, char *buf, size_t cap);
/* "block", "overwrite", "policy#N". */
const char *cli_policy_name(uint32_t policy, char *buf, size_t cap);
/* "posix", "sysv", ...; "?" for an unknown value. */
const char *cli_backend_name(int backend);
/* "plain", "queue", ...; "kind#7" for kinds the library does not know. */
void cli_fmt_kind(uint32_t kind, char *buf, size_t cap);
/* "alive", "dead", "?" for 1, 0, -1. */
const char *cli_alive_name(int alive);

/*
 * Copy `s` into buf for display on a terminal: control characters, DEL, C1 controls,
 * invalid UTF-8 and backslash are escaped (\n, \t, \xNN, \\), so a hostile segment name or
 * label cannot inject escape sequences or break a line. An empty string shows as "".
 * Truncates (ending with "...") if buf is too small.
 */
const char *cli_display(const char *s, char *buf, size_t cap);

/*
 * Escape n bytes as cli_display() does (and backslash as \\ when `backslash`, so the result
 * can be read back unambiguously) into buf, without a terminating NUL. Stops before a piece
 * that would not fit in cap bytes; returns how many input bytes were escaped and sets
 * *out_len to the bytes written.
 */
size_t cli_escape_bytes(const void *data, size_t n, bool backslash, char *buf, size_t cap,
                        size_t *out_len);

/* cli_display() between single quotes, for a value inside a message: 'abc', '' when empty. */
const char *cli_quote(const char *s, char *buf, size_t cap);

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), storing its code point in
 * *cp; 0 if the bytes there are not well-formed UTF-8 (overlong, surrogate, truncated, > U+10FFFF).
 */
size_t cli_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);

#endif /* SHML_CLI_FMT_H */
