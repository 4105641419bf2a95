/*
 * chan_util.h - what the channel tests share: unique channel addresses, a plain shared segment
 * for results, the test message (producer id, sequence number, checksum over a pattern of
 * random length), the iteration scale and the seed.
 *
 * Every wait is bounded and none asserts on speed: the CI machine has 2 cores and these tests
 * oversubscribe it, so endpoints use the adaptive or blocking strategy.
 */
#ifndef SHMT_CHAN_UTIL_H
#define SHMT_CHAN_UTIL_H

#include "harness.h"

#include <stdatomic.h>

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)
/* The bound on a wait that must succeed: reaching it is a failure. */
#define WAIT_BOUND (10 * SEC)

/* A fresh channel address, registered for removal after the test (valid until it ends). */
const char *chan_addr(void);

/* Create a managed plain segment of `size` zeroed bytes at a fresh address; returns the data. */
void *chan_shared_create(size_t size, const char **addr, shml_segment **seg);
void *chan_shared_open(const char *addr, shml_segment **seg);

/* The header every test message starts with; the rest is shmt_pattern(seed = msg_seed()). */
struct chan_msg {
    uint32_t producer;
    uint32_t len; /* whole message, header included */
    uint64_t seq;
    uint64_t sum; /* FNV-1a of producer, len, seq and the payload */
};
#define CHAN_MSG_MIN ((uint32_t)sizeof(struct chan_msg))

/* Write message (producer, seq) of `len` bytes (>= CHAN_MSG_MIN) into buf. */
void chan_msg_fill(void *buf, uint32_t len, uint32_t producer, uint64_t seq);
/* Check a received message of `len` bytes; 0 if whole, else a description (static). */
const char *chan_msg_check(const void *buf, size_t len);

/* Iterations divided by SHMT_CHAN_DIV (default 10 in ASan builds, else 1), never below
   min. */
long chan_iters(long n, long min);
/* SHMT_SEED if set, else from the clock; logged. */
unsigned chan_seed(void);
int64_t now_ns(void);

/* Create a channel of `kind` at a fresh address (0 for any size: the default). */
shml_channel *chan_make(const char **addr, uint32_t kind, uint32_t policy, size_t capacity,
                        size_t max_msg, uint32_t endpoints);
/* Open `addr` with `role` and wait strategy `wait`; fails the test on error. */
shml_channel *chan_open(const char *addr, unsigned role, uint32_t wait);
/* The same with opts.flags: SHML_WAIT for an rpc client that may come before its servers. */
shml_channel *chan_open_flags(const char *addr, unsigned role, uint32_t wait, uint32_t flags);
/* shml_channel_get_stats() / shml_channel_inspect() that fail the test on error. */
struct shml_channel_stats chan_stats(const shml_channel *ch);
struct shml_channel_stats chan_inspect(const char *addr);
/* The endpoint entry of process `pid` with role `role` (the first one); fails if none. */
struct shml_endpoint_stats chan_endpoint(const char *addr, int32_t pid, uint32_t role);

#endif
