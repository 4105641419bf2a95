/*
 * cmd_chinfo.h - channels for info and top (cmd_chinfo.c): what a channel's stats and endpoint
 * table say, read without opening an endpoint, and info --check / --repair.
 */
#ifndef SHML_CLI_CMD_CHINFO_H
#define SHML_CLI_CMD_CHINFO_H

#include "shmlink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif /* SHML_CLI_CMD_CHINFO_H */
