/*
 * main.c - the shmlink tool: verb dispatch, the main help, version, and how failures are
 * reported.
 *
 * Every verb is a descriptor (struct cli_verb: name, usage, help, function) defined in the
 * cmd_*.c file that implements it, beside its options, so a verb's help is read and changed
 * with its code; this file only lists them. Every verb reports through cli_fail*() so the
 * tool has exactly one error format: "shmlink: VERB ADDR: reason" on one line of stderr.
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"
#include "sys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every verb, in the order the main help lists them; each is defined in its cmd_*.c. */
static const struct cli_verb *const verbs[] = {
    &cli_verb_ls,
    &cli_verb_info,
    &cli_verb_create,
    &cli_verb_rm,
    &cli_verb_gc,
    &cli_verb_cat,
    &cli_verb_dump,
    &cli_verb_write,
    &cli_verb_mk,
    &cli_verb_send,
    &cli_verb_recv,
    &cli_verb_serve,
    &cli_verb_top,
    &cli_verb_bridge,
};

#define N_VERBS (sizeof verbs / sizeof verbs[0])

static const char main_usage[] = "usage: shmlink VERB [ARGS] [OPTIONS]   (shmlink --help)\n";

static void print_main_help(void)
{
    printf("usage: shmlink VERB [ARGS] [OPTIONS]\n"
           "\n"
           "Inspect and edit shared memory: shmlink's own segments and foreign ones.\n"
           "\n"
           "Verbs:\n"
           "  ls       list segments\n"
           "  info     show a segment's header, attach table and declared objects\n"
           "  create   create a segment\n"
           "  rm       remove segments\n"
           "  gc       remove abandoned shmlink segments\n"
           "  cat      copy a segment's bytes to stdout\n"
           "  dump     show a segment's bytes in hex and ASCII\n"
           "  write    copy stdin into a segment\n"
           "  mk       create a channel (queue, bus, latest, rpc)\n"
           "  send     send messages to a channel, or requests to an rpc channel\n"
           "  recv     receive messages from one channel or several\n"
           "  serve    answer the requests of an rpc channel\n"
           "  top      show channels' traffic live\n"
           "  bridge   carry a channel to or from other machines through NATS\n"
           "\n"
           "Addresses:\n"
           "  name, posix:name, posix:/name     POSIX shared memory (the default backend)\n"
           "  sysv:1234, sysv:0x4d2             System V key\n"
           "  sysv:/path#102, sysv:id=32769     System V key from ftok() (id: its low 8 bits),\n"
           "                                    or segment id\n"
           "  file:/path                        a regular file mapped shared\n"
           "\n"
           "Options:\n"
           "  --help      this text; 'shmlink VERB --help' describes a verb\n"
           "  --version   print the version\n"
           "\n"
           "Exit status: 0 success, 1 failure (one line on stderr), 2 usage error,\n"
           "3 info --check or --repair found problems left, 130 or 143 recv or bridge\n"
           "stopped by SIGINT or SIGTERM.\n");
}

static const struct cli_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i]->name, name) == 0)
            return verbs[i];
    }
    return NULL;
}

/* "shmlink: <msg> '<arg>'" and the short usage line; msg names what is wrong with arg. */
static int top_usage_error(const char *msg, const char *arg)
{
    char shown[256];
    fprintf(stderr, "shmlink: %s %s\n", msg, cli_quote(arg, shown, sizeof shown));
    fputs(main_usage, stderr);
    return CLI_EXIT_USAGE;
}

/* `shmlink help [VERB]`, `shmlink --help`. */
static int run_help(int argc, char **argv)
{
    if (argc == 0) {
        print_main_help();
        return CLI_EXIT_OK;
    }
    const struct cli_verb *verb = find_verb(argv[0]);
    if (!verb)
        return top_usage_error("unknown verb", argv[0]);
    if (argc > 1)
        return top_usage_error("help takes one verb; unexpected", argv[1]);
    cli_print_verb_help(verb);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    cli_sys_init(); /* a closed pipe ends a verb quietly, never the process */

    if (argc < 2) {
        fputs("shmlink: missing verb\n", stderr);
        fputs(main_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *first = argv[1];
    /* The holder of a segment that must outlive the tool (sys.h): not a verb for people. */
    if (strcmp(first, "__hold") == 0 && argc == 3)
        return cli_sys_hold(argv[2]);
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 || strcmp(first, "help") == 0)
        return run_help(argc - 2, argv + 2);
    if (strcmp(first, "--version") == 0) {
        if (argc > 2)
            return top_usage_error("--version takes no arguments; unexpected", argv[2]);
        printf("shmlink %s\n", shml_version());
        return cli_flush_stdout("--version") || cli_stdout_closed() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    if (first[0] == '-')
        return top_usage_error("unknown option", first);
    const struct cli_verb *verb = find_verb(first);
    if (!verb)
        return top_usage_error("unknown verb", first);

    int rc = verb->run(verb, argc - 2, argv + 2);
    if (!cli_flush_stdout(verb->name) && !cli_stdout_closed())
        rc = CLI_EXIT_FAIL;
    return rc;
}

/* ---- error reporting ---- */

static void put_prefix(const char *verb, const char *addr)
{
    fprintf(stderr, "shmlink: %s", verb);
    if (addr) {
        char *shown = malloc(CLI_SHOW_CAP);
        fprintf(stderr, " %s", shown ? cli_display(addr, shown, CLI_SHOW_CAP) : "?");
        free(shown);
    }
    fputs(": ", stderr);
}

int cli_fail_lib(const char *verb, const char *addr, int err, const char *detail, const char *hint)
{
    /* Copy the detail first: printing the address must not be able to change it. */
    char *shown = malloc(CLI_SHOW_CAP);
    if (shown && detail && *detail)
        cli_display(detail, shown, CLI_SHOW_CAP);
    else if (shown)
        shown[0] = '\0';
    put_prefix(verb, addr);
    fputs(shml_strerror(err), stderr);
    if (shown && *shown)
        fprintf(stderr, " (%s)", shown);
    if (hint)
        fprintf(stderr, "; %s", hint);
    fputc('\n', stderr);
    free(shown);
    return CLI_EXIT_FAIL;
}

int cli_fail(const char *verb, const char *addr, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    put_prefix(verb, addr);
    fprintf(stderr, "%s\n", msg);
    return CLI_EXIT_FAIL;
}

/* ---- stdout ---- */

static bool stdout_closed;   /* the reader went away: stop quietly */
static bool stdout_reported; /* another write error was reported already: say it once */

bool cli_stdout_closed(void)
{
    return stdout_closed;
}

/* Classify a failed write to stdout; errno is the write's. Returns 1 (EPIPE) or -1. */
static int stdout_failed(const char *verb)
{
    if (cli_sys_reader_gone(errno)) {
        stdout_closed = true;
        return 1;
    }
    if (!stdout_reported) {
        stdout_reported = true;
        cli_fail(verb, NULL, "cannot write to stdout: %s", errno ? strerror(errno) : "I/O error");
    }
    return -1;
}

int cli_stdout_write(const char *verb, const void *p, size_t n)
{
    if (stdout_closed)
        return 1;
    if (stdout_reported)
        return -1;
    errno = 0;
    if (n == 0 || fwrite(p, 1, n, stdout) == n)
        return 0;
    return stdout_failed(verb);
}

bool cli_flush_stdout(const char *verb)
{
    if (stdout_closed || stdout_reported)
        return false;
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return true;
    stdout_failed(verb);
    return false;
}
