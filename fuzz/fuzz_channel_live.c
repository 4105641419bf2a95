/*
 * fuzz_channel_live.c - libFuzzer target: a channel whose bytes a peer rewrites *while* the
 * library reads them. Open validates the control block once; every later call must keep to
 * what was validated (the geometry held in private memory, each length read once) and so stay
 * inside the mapping and the caller's buffers, whatever the peer writes meanwhile, and
 * return: a crash, a read or write out of bounds, a length past the caller's buffer or
 * max_msg, or a hang is a finding.
 *
 * Input: byte 0 picks the kind (queue, bus, latest, rpc); byte 1 the operations (a bit each,
 * run_round()); byte 2 the handles (0: a sender, 1: a receiver, 2: both; rpc: client and
 * server); byte 3 the mode: bit 0 threaded (else stepped), bit 1 reseal the header (live.h),
 * bit 2 check with repair at the end, bits 4..7 rounds - 1. The rest is the peer's schedule
 * (live.h), with offsets into the whole file: header page first, then the channel's data
 * (control block at 4096, docs/FORMAT.md). Each input creates a fresh channel of the kind (8
 * slots for messages of 48 bytes, 4 endpoints), and every call uses timeout 0.
 * fuzz/make_corpus.py writes the seeds, one or more per field the library must read once.
 */
#include "layout.h"
#include "live.h"
#include "common.h"

#include <shmlink.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIVE_MAX_MSG   48u
#define LIVE_SLOTS     8u
#define LIVE_ENDPOINTS 4u
#define LIVE_CAP       32u /* the receivers' buffers: smaller than max_msg */

static const uint32_t kinds[4] = {SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC};

static char path[64], addr[96];

static void remove_file(void)
{
    unlink(path);
}

/* An exact-size heap buffer per receive, so ASan sees a byte written past `cap`. */
static void recv_checked(shml_channel *ch, size_t cap)
{
    uint8_t *buf = malloc(cap);
    if (!buf)
        return;
    ssize_t r = shml_recv(ch, buf, cap, 0);
    if (r > (ssize_t)cap)
        abort(); /* a length past the caller's buffer */
    free(buf);
}

static void peek_checked(shml_channel *ch)
{
    const void *p;
    size_t len;
    if (shml_peek(ch, &p, &len, 0) != 0)
        return;
    if (len > LIVE_MAX_MSG)
        abort(); /* a length past max_msg, as validated at open */
    /* Every byte of the message must be readable. */
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= ((const uint8_t *)p)[i];
    (void)sum;
    (void)shml_release(ch);
}

static void open_handles(shml_channel **tx, shml_channel **rx, unsigned which)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    if (!*tx && which != 1 && shml_channel_open(addr, SHML_PRODUCER, &o, tx) != 0 && *tx)
        abort(); /* a failed open leaves *out NULL */
    if (!*rx && which != 0 && shml_channel_open(addr, SHML_CONSUMER, &o, rx) != 0 && *rx)
        abort();
}

static void read_back(shml_channel *ch)
{
    struct shml_channel_stats st;
    struct shml_channel_type type;
    if (!ch)
        return;
    (void)shml_channel_get_stats(ch, &st);
    (void)shml_channel_get_type(ch, &type);
    (void)shml_recv_gap(ch);
}

/* One round of the chosen operations, a peer's step between each (stepped mode). */
static void run_round(struct live *lv, shml_channel *tx, shml_channel *rx, uint8_t ops)
{
    if ((ops & 0x01) && tx) {
        (void)shml_send(tx, "fuzz", 4, 0);
        live_step(lv);
    }
    if ((ops & 0x08) && tx) {
        void *w;
        if (shml_claim(tx, LIVE_MAX_MSG, &w, 0) == 0) {
            memset(w, 0x5a, LIVE_MAX_MSG);
            live_step(lv);
            (void)shml_commit(tx, LIVE_MAX_MSG);
        }
        live_step(lv);
    }
    if ((ops & 0x02) && rx) {
        recv_checked(rx, LIVE_CAP);
        live_step(lv);
        recv_checked(rx, LIVE_MAX_MSG);
        live_step(lv);
        /* rpc: the server replies, the client reads its reply (the request's round trip). */
        (void)shml_send(rx, "reply", 5, 0);
        live_step(lv);
        if (tx)
            recv_checked(tx, LIVE_CAP);
        live_step(lv);
    }
    if ((ops & 0x04) && rx) {
        peek_checked(rx);
        live_step(lv);
        if (tx)
            peek_checked(tx);
        live_step(lv);
    }
    if (ops & 0x10) {
        size_t lens[4];
        uint8_t *buf = malloc(2 * LIVE_CAP);
        struct shml_iov v[3] = {{"a", 1}, {"bb", 2}, {"ccc", 3}};
        if (tx)
            (void)shml_send_batch(tx, v, 3, 0);
        live_step(lv);
        if (rx && buf) {
            ssize_t n = shml_recv_batch(rx, buf, 2 * LIVE_CAP, lens, 4, 0);
            size_t total = 0;
            for (ssize_t i = 0; i < n; i++)
                total += lens[i];
            if (n > 4 || total > 2 * LIVE_CAP)
                abort(); /* more than the caller's buffer holds */
        }
        free(buf);
        live_step(lv);
    }
    if (ops & 0x20) {
        read_back(tx);
        read_back(rx);
        live_step(lv);
    }
    if (ops & 0x40) {
        /* What the tool's info, top and info --check do, on the mapping the peer writes. */
        struct shml_channel_stats st;
        struct shml_endpoint_stats eps[LIVE_ENDPOINTS + 2];
        size_t n = 0;
        (void)shml_channel_inspect(addr, &st, eps, LIVE_ENDPOINTS + 2, &n);
        live_step(lv);
        (void)shml_channel_check(addr, 0, fuzz_on_finding, NULL);
        live_step(lv);
        struct shml_segment_info info;
        (void)shml_segment_stat(addr, &info, NULL, 0, NULL);
        live_step(lv);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        fuzz_tmpfile("chanlive", 0, path, sizeof path, addr, sizeof addr);
        atexit(remove_file);
    }
    if (size < 4)
        return 0;
    uint32_t kind = kinds[data[0] % 4];
    uint8_t ops = data[1];
    unsigned which = data[2] % 3;
    bool threaded = data[3] & 1, reseal = data[3] & 2, repair = data[3] & 4;
    unsigned rounds = 1u + (data[3] >> 4);

    unlink(path);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    uint64_t overhead = kind == SHML_LATEST ? SHML_LATEST_HDR
                        : kind == SHML_RPC  ? SHML_SLOT_HDR + SHML_RPC_TAG
                                            : SHML_SLOT_HDR;
    o.capacity = LIVE_SLOTS * ((overhead + LIVE_MAX_MSG + 63) / 64 * 64);
    o.max_msg = LIVE_MAX_MSG;
    o.endpoints = LIVE_ENDPOINTS;
    shml_channel *ch;
    if (shml_channel_create(addr, &o, &ch) != 0)
        fuzz_env_fail("creating", addr);
    shml_channel_close(ch);

    struct live lv;
    live_begin(&lv, path, data + 4, size - 4, reseal, threaded);

    shml_channel *tx = NULL, *rx = NULL;
    for (unsigned r = 0; r < rounds; r++) {
        open_handles(&tx, &rx, which);
        live_step(&lv);
        run_round(&lv, tx, rx, ops);
        if (ops & 0x80) {
            /* Close and open again: attach, the endpoint table, detach under the peer. */
            shml_channel_close(tx);
            shml_channel_close(rx);
            tx = rx = NULL;
            live_step(&lv);
        }
    }
    shml_channel_close(tx);
    shml_channel_close(rx);
    if (repair)
        (void)shml_channel_check(addr, SHML_CHECK_REPAIR, fuzz_on_finding, NULL);
    live_end(&lv);
    unlink(path);
    return 0;
}
