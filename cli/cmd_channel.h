/*
 * cmd_channel.h - what the channel verbs (cmd_channel.c) share with serve, top, cat and info:
 * stop signals (a cancellation token that ends the wait in progress), opening an endpoint,
 * and the --timeout and --count parsers.
 */
#ifndef SHML_CLI_CMD_CHANNEL_H
#define SHML_CLI_CMD_CHANNEL_H

#include "shmlink.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The number of the signal (SIGINT or SIGTERM) that arrived once cli_catch_stop_signals() ran,
 * else 0: stop between two messages.
 */
extern volatile sig_atomic_t cli_stop_requested;

/*
 * Catch SIGINT and SIGTERM (once; later calls do nothing): the handler sets
 * cli_stop_requested and fires a cancellation token bound to the calling thread (sync.h),
 * so that a library wait in progress (send, recv, an open that waits, a wait set's wait)
 * returns -ECANCELED at once, and later waits only try. No SA_RESTART, so a read blocked on
 * stdin returns as well. Call it from the main thread, before the waits it should end.
 */
void cli_catch_stop_signals(void);

/*
 * Hold off the stop token for a wait that must not be cut short (a reply a client waits
 * for): returns what cli_stop_release() puts back.
 */
shml_cancel *cli_stop_hold(void);
void cli_stop_release(shml_cancel *held);


/* True for the kinds of a channel segment (queue, bus, latest, rpc). */
bool cli_is_channel_kind(uint32_t kind);

/*
 * Open the channel at addr with `role` and read its stats into *st; on failure report it
 * (with what to do when the endpoint table is full) and return the exit status, else 0.
 * With `wait` (--wait), open SHML_WAIT: a channel that does not exist yet is waited for, at
 * most *wait ns (negative: no limit; a stop signal ends the wait: the stop signals are
 * caught first), and an rpc client's requests wait for a server.
 */
int cli_open_endpoint(const char *verb, const char *addr, unsigned role, const int64_t *wait,
                      shml_channel **ch, struct shml_channel_stats *st);
/* As cli_open_endpoint(), with flags for the open (SHML_BRIDGE) and a durable endpoint's name
   (opts.durable; NULL: not durable). */
int cli_open_endpoint_flags(const char *verb, const char *addr, unsigned role, uint32_t flags,
                            const char *durable, const int64_t *wait, shml_channel **ch,
                            struct shml_channel_stats *st);

/* The channel's canonical address, escaped for display (malloc'ed; NULL if out of memory). */
char *cli_channel_address(shml_channel *ch);

/* Parse --timeout text (NULL: leave *out); returns 0, or the exit status after reporting. */
int cli_parse_timeout(const char *verb, const char *addr, const char *text, int64_t *out);

/* Parse a count: a whole number >= 1. Returns 0, or -1. */
int cli_parse_count(const char *text, uint64_t *out);

#endif /* SHML_CLI_CMD_CHANNEL_H */
