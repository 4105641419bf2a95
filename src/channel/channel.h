/*
 * channel.h - what the channel files share: the endpoint and the kind-independent parts.
 */
#ifndef SHML_CHANNEL_INTERNAL_H
#define SHML_CHANNEL_INTERNAL_H

#include "internal.h"
#include "layout.h"
#include "shmlink/channel.h"

#include <stdbool.h>

struct shml_channel {
    shml_segment *seg;
    struct shml_chan_hdr *hdr;
    char *slots;          /* the first slot */
    uint64_t mask;        /* nslots - 1 */
    uint32_t stride;
    uint64_t max_msg;
    unsigned role;        /* SHML_PRODUCER | SHML_CONSUMER */
    uint32_t wait;        /* SHML_WAIT_* */
    uint32_t spin;        /* polls before sleeping (adaptive) */
    bool spsc;
    uint32_t me;          /* own pid, as slot states hold it */
    /* an open zero-copy operation on this handle */
    struct shml_chan_slot *claimed; /* shml_claim() .. shml_commit() */
    uint64_t claimed_pos;
    size_t claimed_len;
    struct shml_chan_slot *peeked;  /* shml_peek() .. shml_release() */
    uint64_t peeked_pos;
};

/* Check a channel control block read from a segment of `size` data bytes. 0 or
   -SHML_ECORRUPT (reason recorded). */
SHML_INTERNAL int shml__chan_validate(const struct shml_chan_hdr *h, size_t size);

/* Abandon an open claim or peek (close): free the slot, count the message as lost. */
SHML_INTERNAL void shml__queue_abandon(shml_channel *ch);

#endif /* SHML_CHANNEL_INTERNAL_H */
