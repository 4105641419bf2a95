/*
 * counting_steps.h - for the counting tests (test_counting.c, test_counting_rpc.c): how far
 * a dead endpoint got with what it holds, and writing that into its entry by hand, as a
 * foreign program would (layout.h, shml_ep_rec(): record, count, hand-over).
 */
#ifndef SHML_TEST_COUNTING_STEPS_H
#define SHML_TEST_COUNTING_STEPS_H

#include "layout.h"

#include <stdbool.h>

enum step {
    HELD,     /* claimed, being read, being written or delivered: no record */
    RECORDED, /* recorded, not counted */
    COUNTED,  /* recorded and counted, not handed over */
};

/* Make the dead entry e say it got to `step` with `what` (a position, a client index, a
   ticket) in hand, sending or receiving. */
static inline void fake_step(struct shml_chan_ep *e, bool sending, uint64_t what,
                             enum step step)
{
    shml_atomic_u64 *rec = sending ? &e->send_rec : &e->recv_rec;
    shml_atomic_u64 *n = sending ? &e->sent : &e->received;
    if (step == HELD)
        return;
    atomic_store(rec, shml_ep_rec(what, atomic_load(n) + 1));
    if (step == COUNTED)
        atomic_store(n, atomic_load(n) + 1);
}

#endif
