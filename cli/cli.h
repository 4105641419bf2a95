/*
 * cli.h - what the files of the shmlink tool share: exit codes, error reporting, the argument
 * parser, the formatters and the JSON writer, and the verbs themselves.
 *
 * The tool is a client of the public API only (include/shmlink.h): anything it needs from the
 * library that the header does not offer is a gap to report, not something to reach around.
 */
#ifndef SHML_CLI_H
#define SHML_CLI_H

#include "shmlink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

/* Exit statuses, documented in docs/CLI.md. */
#define CLI_EXIT_OK    0 /* success */
#define CLI_EXIT_FAIL  1 /* the operation failed; one line on stderr says why */
#define CLI_EXIT_USAGE 2 /* the command line is malformed; a usage line on stderr */
#define CLI_EXIT_FOUND 3 /* info --check/--repair: the channel has problems left unrepaired */
/* recv stopped by SIGINT or SIGTERM (or any verb stopped while --wait waits): 128 + the
   signal's number (130, 143), as a shell says. */
#define CLI_EXIT_SIGNAL_BASE 128

/* Room to display any address or library detail, every byte escaped as \xNN. */
#define CLI_SHOW_CAP (4 * SHML_ADDR_MAX + 16)

/* Bytes moved per shml_segment_read() call by cat and dump, so memory stays bounded. */
#define CLI_CHUNK ((size_t)1 << 20)

/* ---- verbs ---- */

/*
 * One verb of the tool, defined in the cmd_*.c file that implements it, next to its option
 * parsing. run() gets the arguments after the verb and returns the exit status.
 */
struct cli_verb {
    const char *name;
    const char *usage; /* "ADDR SIZE [--mode MODE] ..." (after "shmlink VERB ") */
    const char *help;  /* the body of `shmlink VERB --help` */
    int (*run)(const struct cli_verb *verb, int argc, char **argv);
};

/* The verbs main.c dispatches to. */
extern const struct cli_verb cli_verb_ls;
extern const struct cli_verb cli_verb_info;
extern const struct cli_verb cli_verb_create;
extern const struct cli_verb cli_verb_rm;
extern const struct cli_verb cli_verb_gc;
extern const struct cli_verb cli_verb_cat;
extern const struct cli_verb cli_verb_dump;
extern const struct cli_verb cli_verb_write;
extern const struct cli_verb cli_verb_mk;
extern const struct cli_verb cli_verb_send;
extern const struct cli_verb cli_verb_recv;
extern const struct cli_verb cli_verb_serve;
extern const struct cli_verb cli_verb_top;

/* ---- what the channel verbs share (cmd_channel.c) ---- */

/*
 * The number of the signal (SIGINT or SIGTERM) that arrived once cli_catch_stop_signals() ran,
 * else 0: stop between two messages.
 */
extern volatile sig_atomic_t cli_stop_requested;

/*
 * Catch SIGINT and SIGTERM: the handler sets cli_stop_requested and, when `ch` is not NULL,
 * interrupts that handle's wait (shml_channel_interrupt), so a blocked send, recv or serve
 * ends at once. No SA_RESTART, so a read blocked on stdin returns as well.
 */
void cli_catch_stop_signals(shml_channel *ch);

/* CLOCK_MONOTONIC now, in ns. */
int64_t cli_mono_ns(void);

/* True for the kinds of a channel segment (queue, bus, latest, rpc). */
bool cli_is_channel_kind(uint32_t kind);

/* "producer", "subscriber", "writer+reader" ...: an endpoint's role in words of its kind. */
const char *cli_role_name(uint32_t kind, uint32_t role, char *buf, size_t cap);

/*
 * shml_send / shml_recv in slices of 100 ms, so a stop signal ends the wait between two
 * slices even where the interrupt does not reach it. -EINTR: a stop signal arrived;
 * -ETIMEDOUT: timeout_ns passed (negative: no limit); else the call's result.
 */
ssize_t cli_send_sliced(shml_channel *ch, const void *msg, size_t len, int64_t timeout_ns);
ssize_t cli_recv_sliced(shml_channel *ch, void *buf, size_t cap, int64_t timeout_ns);

/*
 * Open the channel at addr with `role` and read its stats into *st; on failure report it
 * (with what to do when the endpoint table is full) and return the exit status, else 0.
 * With `wait` (--wait), open SHML_WAIT: a channel that does not exist yet is waited for, at
 * most *wait ns (negative: no limit; a stop signal ends the wait), and an rpc client's
 * requests wait for a server.
 */
int cli_open_endpoint(const char *verb, const char *addr, unsigned role, const int64_t *wait,
                      shml_channel **ch, struct shml_channel_stats *st);

/* One slice of a wait: op(ctx, timeout_ns) returns -ETIMEDOUT when the slice passed. */
typedef ssize_t (*cli_slice_fn)(void *ctx, int64_t timeout_ns);

/*
 * Run op in slices of at most 100 ms of timeout_ns (negative: no limit) while it returns
 * -ETIMEDOUT, so that a stop signal ends the wait between two slices even where the interrupt
 * does not reach it. -EINTR: a stop signal arrived; -ETIMEDOUT: timeout_ns passed; else op's
 * result.
 */
ssize_t cli_sliced(cli_slice_fn op, void *ctx, int64_t timeout_ns);

/* cli_sliced() for an open that waits (SHML_WAIT), with the stop signals caught first. */
int cli_open_waiting(cli_slice_fn open, void *ctx, int64_t timeout_ns);

/* The channel's canonical address, escaped for display (malloc'ed; NULL if out of memory). */
char *cli_channel_address(shml_channel *ch);

/* Parse --timeout text (NULL: leave *out); returns 0, or the exit status after reporting. */
int cli_parse_timeout(const char *verb, const char *addr, const char *text, int64_t *out);

/* Parse a count: a whole number >= 1. Returns 0, or -1. */
int cli_parse_count(const char *text, uint64_t *out);

/* "" for 1, "s" otherwise: "1 message", "3 messages". */
const char *cli_plural(uint64_t n);

/* "block", "overwrite", "policy#N". */
const char *cli_policy_name(uint32_t policy, char *buf, size_t cap);

/* ---- typed messages as text (typed.c) ---- */

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
 * Parse `len` bytes of text (values separated by spaces, tabs or commas) into one message at
 * out (size * count bytes). Returns 0, or -1 with why the text is not a message of the type.
 */
int cli_codec_parse(const struct cli_codec *c, const char *text, size_t len, void *out,
                    char *why, size_t why_cap);

/* ---- channels for info (cmd_chinfo.c) ---- */

struct cli_json;

/*
 * What info shows about a channel, read by address with shml_channel_inspect(): no endpoint
 * is opened, so reading never changes what is read.
 */
struct cli_channel_info {
    bool present;     /* the segment is of a channel kind: show the section */
    int err;          /* < 0: the channel could not be read; detail says why */
    char detail[256]; /* shml_last_error() of the failure */
    struct shml_channel_stats st;
    struct shml_endpoint_stats *eps; /* entries in use (malloc'ed; NULL if none) */
    size_t n_eps;                    /* entries in eps */
    size_t n_used;                   /* entries in use, as the library counted them */
};

/*
 * Read the stats and endpoint table of the channel at addr into ci (ci->eps is allocated;
 * free it with cli_channel_free). Returns 0 or the negative error (also in ci->err).
 */
int cli_channel_read(const char *addr, uint32_t seg_kind, struct cli_channel_info *ci);
void cli_channel_free(struct cli_channel_info *ci);
void cli_channel_text(const struct cli_channel_info *ci);
void cli_channel_json(struct cli_json *j, const struct cli_channel_info *ci);

/* `info --check ADDR` / `info --repair ADDR`: returns the exit status. */
int cli_channel_check(const char *verb, const char *addr, bool repair, bool json);

/* ---- argument parser (args.c) ---- */

/*
 * One option of a verb. A flag (metavar == NULL) sets *flag; an option with a value stores the
 * text in *value (the last occurrence wins). Both "--name VALUE" and "--name=VALUE" work; an
 * option whose name is one letter is also given as "-n VALUE" (recv's -n, as head's).
 */
struct cli_opt {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* NULL for a flag */
    bool *flag;
    const char **value;
};

/* cli_parse(): go on, options are stored and positionals are in pos[]. */
#define CLI_RUN (-1)

/*
 * Parse a verb's arguments. Positionals go to pos[] (capacity argc is always enough) and their
 * number to *npos; fewer than min_pos or more than max_pos (SIZE_MAX: no limit) is a usage
 * error, named after pos_names (e.g. "ADDR SIZE") for the message. An argument that looks like
 * a negative number ("-1") is a positional, so `create x -1` reports a bad size rather than an
 * unknown option. Returns CLI_RUN, or the exit status the verb returns at once: CLI_EXIT_OK
 * after printing --help, CLI_EXIT_USAGE after printing a usage error.
 */
int cli_parse(const struct cli_verb *verb, int argc, char **argv,
              const struct cli_opt *opts, size_t nopts, const char **pos, size_t min_pos,
              size_t max_pos, const char *pos_names, size_t *npos);

/* Print "shmlink: VERB: message" and the verb's usage line to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_verb *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print `shmlink VERB --help` to stdout. */
void cli_print_verb_help(const struct cli_verb *verb);

/* ---- error reporting (main.c) ---- */

/*
 * Report a library failure as the one line "shmlink: VERB ADDR: reason", where reason is
 * shml_strerror(err) followed by shml_last_error() in parentheses when it says anything.
 * `detail` is that text captured right after the failing call (pass shml_last_error() at once,
 * before any other shmlink call can replace it), `hint` an optional suffix ("use --raw ...").
 * addr may be NULL for verbs without one. Returns CLI_EXIT_FAIL.
 */
int cli_fail_lib(const char *verb, const char *addr, int err, const char *detail, const char *hint);
/* Report a failure the tool itself found: "shmlink: VERB ADDR: message". */
int cli_fail(const char *verb, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Write n bytes to stdout. Returns 0; 1 if the reader went away (EPIPE), after which the verb
 * should stop quietly because `cat | head` is normal use, not an error worth a message; or -1
 * after reporting any other write error.
 */
int cli_stdout_write(const char *verb, const void *p, size_t n);
/* True once a write to stdout failed with EPIPE. */
bool cli_stdout_closed(void);
/* Flush stdout; returns false (after noting EPIPE or reporting the error) if that failed. */
bool cli_flush_stdout(const char *verb);

/* ---- formatting (fmt.c) ---- */

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
/* CLOCK_REALTIME now, in ns. */
int64_t cli_now_ns(void);

/*
 * The words come from the library's name table (shmlink/names.h), so the tool, its JSON and
 * the Python module say the same. cli_name() returns `name`, or, when the table had none
 * (NULL), "WHAT#VALUE" written into buf: "kind#7", "role#300".
 */
const char *cli_name(const char *name, const char *what, long long value, char *buf, size_t cap);
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

/* ---- JSON writer (json.c) ---- */

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

#endif /* SHML_CLI_H */
