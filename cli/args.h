/*
 * args.h - the argument parser every verb uses (args.c): options, positionals, --help and
 * usage errors, all worded from the verb's descriptor (verb.h).
 */
#ifndef SHML_CLI_ARGS_H
#define SHML_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "sys.h"

struct cli_verb;

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
    CLI_PRINTF(2, 3);

/* Print `shmlink VERB --help` to stdout. */
void cli_print_verb_help(const struct cli_verb *verb);

#endif /* SHML_CLI_ARGS_H */
