/*
 * live.h - a hostile peer for the concurrent fuzz targets: it rewrites bytes of a segment's
 * file while the library uses the same segment through its own mapping.
 *
 * The schedule comes from the fuzz input, as records of
 *     u16 offset (little-endian, taken modulo the file's length) | u8 ctl | (ctl & 7) + 1 bytes
 * ctl bit 3 set: an initial patch, written once before the library opens anything (the
 * segment as a buggy peer left it). Clear: a live patch. Live patches form a cycle of steps:
 * step i writes patch i % n with its bytes on even passes (i / n even) and puts back the bytes
 * the file had before (odd passes), so every field flips between a valid and a hostile value.
 *
 * Two modes, chosen by the input:
 *   stepped: the main thread calls live_step() between library calls; nothing runs
 *            concurrently, so a crash replays exactly (a value validated at open and changed
 *            before the next call, read again then: "geometry trusted after validation").
 *   threaded: a second thread applies the steps in a loop until live_stop(): a value changed
 *            *during* a call (read twice inside one call). A crash replays with the same
 *            schedule; run the input a few times (replay -runs=N, or libFuzzer's -runs=N).
 * With `reseal`, a step that touches the checked header bytes recomputes the header's check
 * word, as a peer that knows the format would, so that a hostile header is also a valid one.
 *
 * Mutations change bytes only, never the object's size (truncation is another test's: SIGBUS).
 * The header's state word is never written: its INIT value makes openers wait for a creator
 * (bounded, but slow to fuzz).
 */
#ifndef SHML_FUZZ_LIVE_H
#define SHML_FUZZ_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVE_MAX 32 /* patches of each sort an input may give; more are ignored */

struct live_patch {
    uint32_t off;
    uint8_t len;
    uint8_t bytes[8];
    uint8_t orig[8];
};

struct live {
    uint8_t *map; /* the mutator's own shared mapping of the file */
    size_t len;
    bool reseal;
    struct live_patch init[LIVE_MAX], step[LIVE_MAX];
    size_t n_init, n_step;
    uint64_t next;     /* stepped mode: the next step */
    atomic_bool stop;  /* threaded mode: set by live_end() */
    atomic_uint_fast64_t steps; /* threaded mode: steps applied (so a run can wait for one) */
    bool threaded;
    pthread_t thread;
};

/*
 * Map the segment file at `path` (its whole length), read the schedule in data[0..size),
 * write the initial patches, take each live patch's current bytes as its valid value and, if
 * `threaded`, start the mutator thread (returning once it has applied one step). Aborts if the
 * file cannot be mapped: the environment, not the input.
 */
void live_begin(struct live *lv, const char *path, const uint8_t *data, size_t size,
                bool reseal, bool threaded);
/* Stepped mode: apply the next step now. A no-op in threaded mode or with no live patches. */
void live_step(struct live *lv);
/* Stop the thread (if any) and unmap. The file keeps whatever bytes were last written. */
void live_end(struct live *lv);

#endif
