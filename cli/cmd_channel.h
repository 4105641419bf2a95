/*
 * cmd_channel.h - what the channel verbs (cmd_channel.c) share with serve, top, cat and info:
 * stop signals, waits cut into slices, opening an endpoint, and the --timeout and --count
 * parsers.
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
 * Catch SIGINT and SIGTERM: the handler sets cli_stop_requested and, when `ch` is not NULL,
 * interrupts that handle's wait (shml_channel_interrupt), so a blocked send, recv or serve
 * ends at once. No SA_RESTART, so a read blocked on stdin returns as well.
 */
void cli_catch_stop_signals(shml_channel *ch);

/* CLOCK_MONOTONIC now, in ns. */
int64_t cli_mono_ns(void);

/* True for the kinds of a channel segment (queue, bus, latest, rpc). */
bool cli_is_channel_kind(uint32_t kind);

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

#endif /* SHML_CLI_CMD_CHANNEL_H */
