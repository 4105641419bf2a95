/*
 * main.c - the shmlink tool: verb dispatch, help, version, and how failures are reported.
 *
 * Every verb lives in its own function (cmd_*.c) and reports through cli_fail*() so the tool
 * has exactly one error format: "shmlink: VERB ADDR: reason" on one line of stderr.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_verb verbs[] = {
    {"ls", "[--all] [--json]",
     "List shmlink segments (POSIX and System V; file and memfd segments cannot be\n"
     "enumerated).\n"
     "\n"
     "Columns: ADDRESS, ID (a System V segment's id, as ipcs shows it), BACKEND, KIND\n"
     "(plain, raw for a foreign object, ? when the header could not be read), SIZE, MODE,\n"
     "OWNER, CREATOR (pid and (alive) or (dead)), ATTACHED (live attaches, +Nd dead entries,\n"
     "+Nu untracked), AGE, NOTE (the label, or why the header could not be read).\n"
     "Segments the caller may not open are listed too, marked permission denied, with what\n"
     "the system shows anyone (size, mode, owner; System V: creator, attaches, id).\n"
     "\n"
     "Options:\n"
     "  --all    also list foreign POSIX objects in /dev/shm and System V segments\n"
     "  --json   print a JSON object {\"segments\": [...]} instead of the table\n",
     cli_ls},
    {"info", "ADDR [--json] [--check | --repair]",
     "Show everything a segment's header records and its attach table, without attaching,\n"
     "then the synchronisation objects it declares and their state: a mutex free, held by\n"
     "pid N (alive or dead), owner died, or not recoverable; an event's generation and\n"
     "waiters; a semaphore's value and waiters. Foreign objects are shown as raw.\n"
     "A channel adds its kind, policy, geometry, totals and endpoint table (each endpoint's\n"
     "pid, role, alive or dead, messages, bytes, drops, sleeps and lag), read without\n"
     "opening an endpoint.\n"
     "\n"
     "Options:\n"
     "  --json     print a JSON object instead of text\n"
     "  --check    check a channel instead: print each problem found (slots held by dead\n"
     "             processes, dead endpoints, a corrupt control block), marking what\n"
     "             --repair cannot repair\n"
     "  --repair   check, and repair what dead processes left (needs write access)\n"
     "\n"
     "Exit status of --check and --repair: 0 healthy (or all repaired), 3 problems left,\n"
     "1 the check could not run.\n",
     cli_info},
    {"create", "ADDR SIZE [--mode MODE] [--raw] [--label TEXT]",
     "Create a segment of SIZE bytes at ADDR, memory reserved up front.\n"
     "\n"
     "SIZE is a number of bytes with an optional suffix K, M, G or T (or KiB, MiB, GiB,\n"
     "TiB; any case), all powers of 1024: 4096, 64K, 16M, 1G. It must be at least 1 and fit\n"
     "in size_t.\n"
     "\n"
     "Options:\n"
     "  --mode MODE    octal permission bits, 1 to 0777 (default 0600; umask does not apply)\n"
     "  --raw          no shmlink header: a plain object of exactly SIZE bytes\n"
     "  --label TEXT   free-form label stored in the header (at most 63 bytes)\n",
     cli_create},
    {"rm", "ADDR...",
     "Remove each segment. Processes that have it mapped keep their mapping.\n"
     "Every failure is reported; the exit status is 1 if any removal failed.\n",
     cli_rm},
    {"gc", "[--dry-run] [--json]",
     "Remove abandoned shmlink segments: managed POSIX and System V segments whose creator\n"
     "is dead and that no live process is attached to. Foreign objects are never touched.\n"
     "\n"
     "Options:\n"
     "  --dry-run   only say what would be removed\n"
     "  --json      print a JSON object {\"dry_run\": ..., \"removed\": [...]}\n",
     cli_gc},
    {"cat", "ADDR [--offset N] [--length N] [--raw] [--wait]",
     "Copy a segment's bytes to stdout: a shmlink segment's data, or a foreign object whole.\n"
     "A segment truncated by another process while it is read is an error, not a crash.\n"
     "\n"
     "Options:\n"
     "  --offset N   start N bytes in (default 0; K/M/G/T suffixes as for create)\n"
     "  --length N   copy N bytes (default: to the end)\n"
     "  --raw        read the whole object, header included\n"
     "  --wait       if ADDR does not exist yet, wait for it to appear (until interrupted)\n",
     cli_cat},
    {"dump", "ADDR [--offset N] [--length N] [--raw] [--wait]",
     "Show a segment's bytes in hex and ASCII, 16 per line, like hexdump -C: the offset\n"
     "column counts from the start of the data (or object with --raw), and a '*' line stands\n"
     "for lines equal to the one before.\n"
     "\n"
     "Options:\n"
     "  --offset N   start N bytes in (default 0)\n"
     "  --length N   show N bytes (default: to the end)\n"
     "  --raw        show the whole object, header included\n"
     "  --wait       if ADDR does not exist yet, wait for it to appear (until interrupted)\n",
     cli_dump},
    {"write", "ADDR [--offset N] [--raw]",
     "Copy stdin into a segment at offset N. All of stdin is read first: if it does not fit\n"
     "between the offset and the end of the segment, nothing is written.\n"
     "\n"
     "Options:\n"
     "  --offset N   write N bytes in (default 0)\n"
     "  --raw        write into the object as plain bytes (a foreign object, or a shmlink\n"
     "               segment's header)\n",
     cli_write},
    {"mk",
     "KIND ADDR [--capacity SIZE] [--max-msg SIZE] [--policy POLICY] [--endpoints N]\n"
     "          [--mode MODE] [--spsc] [--type FORMAT [--shape N[,N...]]]",
     "Create a channel of KIND at ADDR; it persists until 'shmlink rm ADDR'.\n"
     "\n"
     "KIND is one of:\n"
     "  queue    each message goes to exactly one receiver\n"
     "  bus      each message goes to every subscriber (a receiver joins at the next message)\n"
     "  latest   one newest value: writers never wait, a reader gets the newest value\n"
     "  rpc      request/reply: 'shmlink send' asks, 'shmlink serve' answers\n"
     "Any other KIND is a usage error. The channel holds the largest power of two of slots\n"
     "of max-msg bytes (plus a slot header) that fits in the capacity, and at least 2 (a\n"
     "latest channel: at least 4 buffers).\n"
     "\n"
     "Options:\n"
     "  --capacity SIZE   bytes of message slots (default 1M; K/M/G/T suffixes as for create)\n"
     "  --max-msg SIZE    largest message in bytes (default 4K, at most 1G)\n"
     "  --policy POLICY   when the channel is full: block (the default: senders wait) or,\n"
     "                    for a bus only, overwrite (publishers never wait; a subscriber that\n"
     "                    falls behind skips ahead and is told how many messages it missed)\n"
     "  --endpoints N     entries in the endpoint table, 1 to 4096 (default 64): how many\n"
     "                    handles can have the channel open at once\n"
     "  --mode MODE       octal permission bits, 1 to 0777 (default 0600)\n"
     "  --spsc            queue: one producer and one consumer at a time (faster; not\n"
     "                    enforced)\n"
     "  --type FORMAT     typed messages: each is an array of elements of this PEP 3118\n"
     "                    format, one scalar: b B h H i I l L q Q (integers), f d (floats),\n"
     "                    ? (bool), with an optional byte order @ = < > ! ('<f': a\n"
     "                    little-endian float); send and recv then move values\n"
     "  --shape N[,N...]  the array's shape (default: one element); max-msg defaults to\n"
     "                    one message of the type\n",
     cli_mk},
    {"send", "ADDR [MSG...] [--binary] [--timeout DURATION] [--wait]",
     "Send messages to the channel at ADDR: each MSG argument is one message; without MSG,\n"
     "each line of stdin is one (without its newline). Stops at the first failure.\n"
     "A queue or bus gets each message once; a latest channel takes each as its new value.\n"
     "To an rpc channel, each message is a request: send waits for its reply and prints it\n"
     "(escaped as recv prints messages; length-framed with --binary), then sends the next.\n"
     "With no server attached, a request fails at once (exit 1), unless --wait is given.\n"
     "To a typed channel whose type recv decodes, each MSG or line is the message's values,\n"
     "separated by spaces or commas ('1.5 2.5'); other typed channels take bytes. A message\n"
     "that is not exactly one message of the type is refused.\n"
     "\n"
     "Options:\n"
     "  --binary             stdin is length-framed: per message a 4-byte little-endian\n"
     "                       length, then that many bytes\n"
     "  --timeout DURATION   how long to wait for room in a full channel (rpc: and for the\n"
     "                       reply), per message: a number, with an optional fraction, and\n"
     "                       a unit ns, us, ms, s, m or h (none: seconds): 0.5, 250ms;\n"
     "                       0 (fail at once) or forever (the default)\n"
     "  --wait               wait for what is missing: for ADDR to appear, and (rpc) for a\n"
     "                       server to attach; each wait within --timeout\n",
     cli_send},
    {"recv", "ADDR [-n N] [--follow] [--binary] [--timeout DURATION] [--wait]",
     "Receive messages from the channel at ADDR and print each on its own line; bytes that\n"
     "are not printable UTF-8, and backslash, are escaped (\\n, \\t, \\xNN, \\\\).\n"
     "From a queue, received messages are consumed: no other receiver gets them.\n"
     "A typed channel's messages are printed as values, separated by spaces, in C order,\n"
     "when the type is one scalar per element (b B h H i I l L q Q f d ?, with an optional\n"
     "byte order @ = < > !); other types are printed as bytes, and recv says so on stderr.\n"
     "\n"
     "By default, receive what is queued now and exit (exit 0 also when nothing was).\n"
     "On a bus, recv subscribes from the next message sent, so it needs -n or --follow;\n"
     "on a latest channel it prints the newest value (and with -n or --follow, each newer\n"
     "one). What a bus subscriber missed (policy overwrite) or a latest reader skipped is\n"
     "said on stderr: 'shmlink: recv ADDR: missed N messages ...'.\n"
     "SIGINT or SIGTERM ends recv cleanly between two messages, with exit status 130\n"
     "(SIGINT) or 143 (SIGTERM), 128 + the signal, as a shell reports it.\n"
     "\n"
     "Options:\n"
     "  -n N, --count N      stop after N messages, waiting for them (fewer: exit 1)\n"
     "  --follow             keep waiting for messages until interrupted\n"
     "  --binary             print messages as-is, length-framed as send --binary reads them\n"
     "  --timeout DURATION   wait at most this long for each message (as for send); when it\n"
     "                       passes, recv ends: exit 1 with -n, else exit 0. Default 0\n"
     "                       (drain), forever with -n or --follow\n"
     "  --wait               if ADDR does not exist yet, wait for it to appear (within\n"
     "                       --timeout, if given): a consumer started before its producer\n",
     cli_recv},
    {"serve", "ADDR (--echo | -- CMD [ARGS...]) [-n N] [--timeout DURATION] [--wait]",
     "Answer the requests of the rpc channel at ADDR, one at a time, until interrupted:\n"
     "with the request itself (--echo), or with what CMD prints on stdout when run with the\n"
     "request on its stdin (one trailing newline removed, as the shell's $(...) does; cut\n"
     "to the channel's largest message). CMD's stderr passes through; a CMD that fails is\n"
     "reported on stderr and its output is still the reply. At the end, prints\n"
     "'served N requests on ADDR'. SIGINT or SIGTERM ends serve cleanly (exit 0); a\n"
     "request whose CMD was still running gets no reply.\n"
     "\n"
     "Options:\n"
     "  --echo               reply with the request\n"
     "  -- CMD [ARGS...]     reply with CMD's output (everything after -- is the command)\n"
     "  -n N, --count N      stop after N requests\n"
     "  --timeout DURATION   stop when no request came for this long (default forever)\n"
     "  --wait               if ADDR does not exist yet, wait for it to appear (within\n"
     "                       --timeout)\n",
     cli_serve},
    {"top", "[ADDR...] [--interval DURATION] [--once]",
     "Show every channel (or the channels at ADDR...) live: per channel the messages and\n"
     "bytes sent per second since the last refresh, messages sent and queued, endpoints\n"
     "(live, +Nd dead), the largest lag of a subscriber or reader, drops and lost messages.\n"
     "An ADDR that cannot be read when top starts is an error (exit 1).\n"
     "On a terminal the view is redrawn in place; q or Ctrl-C quits. Otherwise each refresh\n"
     "is printed as a table followed by an empty line, until interrupted.\n"
     "\n"
     "Options:\n"
     "  --interval DURATION  time between refreshes, a duration as for send --timeout\n"
     "                       (0.5, 2, 250ms); at least 10ms, default 1s\n"
     "  --once               read twice, an interval apart, print one table and exit\n",
     cli_top},
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
           "  recv     receive messages from a channel\n"
           "  serve    answer the requests of an rpc channel\n"
           "  top      show channels' traffic live\n"
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
           "3 info --check or --repair found problems left, 130 or 143 recv stopped by\n"
           "SIGINT or SIGTERM.\n");
}

static const struct cli_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
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
    /*
     * A closed pipe must not kill the tool mid-write: with SIGPIPE ignored, the write fails with
     * EPIPE and the verb stops quietly (see cli_stdout_write()).
     */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        fputs("shmlink: missing verb\n", stderr);
        fputs(main_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *first = argv[1];
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
    if (errno == EPIPE) {
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
