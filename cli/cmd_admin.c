/*
 * cmd_admin.c - the verbs that make and remove segments: create, rm.
 */
#include "shmlink.h"

#include "verb.h"
#include "args.h"
#include "fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_create(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_create = {
    .name = "create",
    .usage = "ADDR SIZE [--mode MODE] [--raw] [--label TEXT]",
    .help =
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
    .run = run_create,
};

static int run_create(const struct cli_verb *verb, int argc, char **argv)
{
    bool raw = false;
    const char *mode_text = NULL, *label = NULL;
    const struct cli_opt opts[] = {
        {"mode", "MODE", NULL, &mode_text},
        {"raw", NULL, &raw, NULL},
        {"label", "TEXT", NULL, &label},
    };
    const char *pos[2];
    size_t npos;
    int parsed = cli_parse(verb, argc, argv, opts, 3, pos, 2, 2, "ADDR SIZE", &npos);
    if (parsed != CLI_RUN)
        return parsed;
    if (raw && label)
        return cli_usage_error(verb, "--label needs a header, so it cannot go with --raw");

    const char *addr = pos[0];
    const char *why;
    char shown[256];
    uint64_t size;
    if (cli_parse_size(pos[1], false, &size, &why) < 0)
        return cli_fail(verb->name, addr, "invalid size %s: %s",
                        cli_quote(pos[1], shown, sizeof shown), why);
    uint32_t mode = 0600;
    if (mode_text && cli_parse_mode(mode_text, &mode, &why) < 0)
        return cli_fail(verb->name, addr, "invalid mode %s: %s",
                        cli_quote(mode_text, shown, sizeof shown), why);
    if (label && strlen(label) >= SHML_LABEL_MAX)
        return cli_fail(verb->name, addr, "label is %zu bytes long; at most %d fit", strlen(label),
                        SHML_LABEL_MAX - 1);
    /*
     * A memfd segment lives only as long as a descriptor to it, and the tool's descriptor is
     * gone when it exits: "created" would be a lie.
     */
    if (strncmp(addr, "memfd:", 6) == 0)
        return cli_fail(verb->name, addr,
                        "memfd segments vanish with their last descriptor, so one created by "
                        "this tool would not outlive it");

    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = mode;
    o.flags = raw ? SHML_RAW : 0;
    o.label = label;
    shml_segment *seg = NULL;
    int rc = shml_segment_create(addr, (size_t)size, &o, &seg);
    if (rc < 0)
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);

    char *canon = strdup(shml_segment_address(seg));
    /* Where a segment dies with its last handle (Windows), a holder keeps it from here on. */
    char held_why[256];
    if (cli_sys_keep(shml_segment_address(seg), held_why, sizeof held_why) < 0) {
        shml_segment_close(seg);
        shml_segment_unlink(canon ? canon : addr);
        free(canon);
        return cli_fail(verb->name, addr, "%s", held_why);
    }
    rc = shml_segment_close(seg);
    if (rc < 0) {
        free(canon);
        return cli_fail_lib(verb->name, addr, rc, shml_last_error(), NULL);
    }
    char human[32];
    char *canon_shown = malloc(CLI_SHOW_CAP);
    cli_fmt_size(size, human, sizeof human);
    printf("created %s: %llu bytes (%s), mode %04o%s\n",
           canon && canon_shown ? cli_display(canon, canon_shown, CLI_SHOW_CAP) : "?",
           (unsigned long long)size, human, mode, raw ? ", raw" : "");
    free(canon_shown);
    free(canon);
    return CLI_EXIT_OK;
}

static int run_rm(const struct cli_verb *verb, int argc, char **argv);

const struct cli_verb cli_verb_rm = {
    .name = "rm",
    .usage = "ADDR...",
    .help =
        "Remove each segment. Processes that have it mapped keep their mapping.\n"
        "Every failure is reported; the exit status is 1 if any removal failed.\n",
    .run = run_rm,
};

static int run_rm(const struct cli_verb *verb, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos;
    if (!pos)
        return cli_fail(verb->name, NULL, "out of memory");
    int parsed = cli_parse(verb, argc, argv, NULL, 0, pos, 1, SIZE_MAX, "ADDR", &npos);
    if (parsed != CLI_RUN) {
        free(pos);
        return parsed;
    }

    /* Every address gets its try: one bad name must not leave the others in place. */
    int status = CLI_EXIT_OK;
    char *shown = malloc(CLI_SHOW_CAP);
    for (size_t i = 0; i < npos; i++) {
        int rc = shml_segment_unlink(pos[i]);
        if (rc < 0) {
            status = cli_fail_lib(verb->name, pos[i], rc, shml_last_error(), NULL);
            continue;
        }
        printf("removed %s\n", shown ? cli_display(pos[i], shown, CLI_SHOW_CAP) : "?");
    }
    free(shown);
    free(pos);
    return status;
}
