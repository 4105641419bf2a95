/*
 * args.c - the argument parser every verb shares.
 *
 * Each verb describes its options in a small table and calls cli_parse() once; there is no
 * global parser state (unlike getopt_long's optind), so a verb can be tested or re-run in
 * isolation and the parser reads the same for all of them.
 */
#include "args.h"
#include "verb.h"
#include "fmt.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cli_print_verb_help(const struct cli_verb *verb)
{
    printf("usage: shmlink %s %s\n\n%s", verb->name, verb->usage, verb->help);
}

int cli_usage_error(const struct cli_verb *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "shmlink: %s: ", verb->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: shmlink %s %s\n", verb->name, verb->usage);
    return CLI_EXIT_USAGE;
}

/* "-1", "-0x5": a negative number given where a value is expected, not an option. */
static bool looks_negative(const char *arg)
{
    return arg[0] == '-' && isdigit((unsigned char)arg[1]);
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, size_t nopts, const char *name,
                                      size_t name_len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == name_len && memcmp(opts[i].name, name, name_len) == 0)
            return &opts[i];
    }
    return NULL;
}

/* The n-th word of a space-separated list of names, for "missing SIZE". */
static void nth_name(const char *names, size_t n, char *buf, size_t cap)
{
    const char *p = names;
    for (size_t i = 0; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || !*p) {
        snprintf(buf, cap, "argument");
        return;
    }
    size_t len = strcspn(p, " ");
    snprintf(buf, cap, "%.*s", (int)len, p);
}

int cli_parse(const struct cli_verb *verb, int argc, char **argv, const struct cli_opt *opts,
              size_t nopts, const char **pos, size_t min_pos, size_t max_pos,
              const char *pos_names, size_t *npos)
{
    size_t n = 0;
    bool only_positionals = false;
    char shown[256];

    /* --help anywhere before "--" wins over any error: whoever asks for help gets it. */
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_print_verb_help(verb);
            return CLI_EXIT_OK;
        }
    }

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool is_option =
            !only_positionals && arg[0] == '-' && arg[1] != '\0' && !looks_negative(arg);
        if (!is_option) {
            if (n >= max_pos) {
                cli_usage_error(verb, "unexpected argument %s",
                                cli_quote(arg, shown, sizeof shown));
                return CLI_EXIT_USAGE;
            }
            pos[n++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positionals = true;
            continue;
        }
        const char *name, *eq;
        size_t name_len;
        if (arg[1] != '-') {
            /*
             * Long names keep scripts readable; the only short options are -h and the
             * one-letter names a verb declares (recv -n), as "-n VALUE".
             */
            if (arg[2] != '\0' || !find_opt(opts, nopts, arg + 1, 1)) {
                cli_usage_error(verb, "unknown option %s", cli_quote(arg, shown, sizeof shown));
                return CLI_EXIT_USAGE;
            }
            name = arg + 1;
            eq = NULL;
            name_len = 1;
        } else {
            name = arg + 2;
            eq = strchr(name, '=');
            name_len = eq ? (size_t)(eq - name) : strlen(name);
        }
        const struct cli_opt *opt = find_opt(opts, nopts, name, name_len);
        if (!opt) {
            char raw[256];
            snprintf(raw, sizeof raw, "--%.*s", (int)name_len, name);
            cli_usage_error(verb, "unknown option %s", cli_quote(raw, shown, sizeof shown));
            return CLI_EXIT_USAGE;
        }
        if (!opt->metavar) {
            if (eq) {
                cli_usage_error(verb, "option '--%s' takes no value", opt->name);
                return CLI_EXIT_USAGE;
            }
            *opt->flag = true;
            continue;
        }
        if (eq) {
            *opt->value = eq + 1;
        } else if (i + 1 < argc) {
            *opt->value = argv[++i];
        } else {
            cli_usage_error(verb, "option '%s%s' needs a value (%s)", opt->name[1] ? "--" : "-",
                            opt->name, opt->metavar);
            return CLI_EXIT_USAGE;
        }
    }
    if (n < min_pos) {
        char name[64];
        nth_name(pos_names, n, name, sizeof name);
        cli_usage_error(verb, "missing %s", name);
        return CLI_EXIT_USAGE;
    }
    *npos = n;
    return CLI_RUN;
}
