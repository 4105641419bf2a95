/*
 * verb.h - what every verb of the shmlink tool needs: its descriptor, the exit statuses, and
 * the one way to report a failure and to write to stdout (main.c).
 *
 * The tool is a client of the public API only (include/shmlink.h): anything it needs from the
 * library that the header does not offer is a gap to report, not something to reach around.
 */
#ifndef SHML_CLI_VERB_H
#define SHML_CLI_VERB_H

#include <stdbool.h>
#include <stddef.h>

#include "sys.h"

/* Exit statuses, documented in docs/CLI.md. */
#define CLI_EXIT_OK    0 /* success */
#define CLI_EXIT_FAIL  1 /* the operation failed; one line on stderr says why */
#define CLI_EXIT_USAGE 2 /* the command line is malformed; a usage line on stderr */
#define CLI_EXIT_FOUND 3 /* info --check/--repair: the channel has problems left unrepaired */
/* recv stopped by SIGINT or SIGTERM (or any verb stopped while --wait waits): 128 + the
   signal's number (130, 143), as a shell says. */
#define CLI_EXIT_SIGNAL_BASE 128

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

/* The verbs main.c dispatches to, each defined in its cmd_*.c. */
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
extern const struct cli_verb cli_verb_bridge;

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
    CLI_PRINTF(3, 4);

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

#endif /* SHML_CLI_VERB_H */
