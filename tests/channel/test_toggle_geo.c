/*
 * A peer that toggles the channel's geometry: a thread, standing for any process that can
 * write the segment, flips one field of the control block (ep_off, box_off, slots_off,
 * stride, nslots, nendpoints or max_msg) between its valid value and hostile ones in a tight
 * loop, while this thread sends and receives on endpoints opened before, opens and closes
 * new endpoints, inspects the channel (shmlink info, top) and checks and repairs it (info
 * --check, --repair). The library validates a private copy of the geometry once and never
 * reads those fields from the mapping again: every call must give the right message, or
 * -SHML_ECORRUPT where it takes a new copy (open, inspect), never a crash or a stray access
 * (the sanitizer build catches what does not crash). Each run is bounded by a number of rounds
 * and by time.
 */
#include "chan_util.h"
#include "layout.h"

#include <stddef.h>

#define MAX_MSG 64u
#define NEP 8u                     /* endpoints: this thread's four, the opened one, spares */
#define RUN_NS (400 * MS)          /* per kind */
#define NHOSTILE 4

/* A field of struct shml_chan_hdr and values that must never be used for it. */
struct field {
    const char *name;
    size_t off;
    size_t width; /* 4 or 8 */
    uint64_t hostile[NHOSTILE];
};

#define BIG ((uint64_t)1 << 40)
static const struct field fields[] = {
    {"ep_off", offsetof(struct shml_chan_hdr, ep_off), 8,
     {BIG, UINT64_MAX - 4095, 0x7ffffffffffff000u, 1u << 30}},
    {"box_off", offsetof(struct shml_chan_hdr, box_off), 8,
     {BIG, UINT64_MAX - 4095, 0x7ffffffffffff000u, 1u << 30}},
    {"slots_off", offsetof(struct shml_chan_hdr, slots_off), 8,
     {BIG, UINT64_MAX - 4095, 0x7ffffffffffff000u, 1u << 30}},
    {"stride", offsetof(struct shml_chan_hdr, stride), 4,
     {0xffffffc0u, 1u << 30, 0x7fffffc0u, 1u << 24}},
    {"nslots", offsetof(struct shml_chan_hdr, nslots), 4,
     {1u << 30, 1u << 31, 0xffffffffu, 1u << 20}},
    {"nendpoints", offsetof(struct shml_chan_hdr, nendpoints), 4,
     {SHML_EP_MAX, 0xffffffffu, 1u << 20, 0}},
    {"max_msg", offsetof(struct shml_chan_hdr, max_msg), 8,
     {1u << 30, UINT64_MAX, BIG, 1u << 20}},
};

/* Start flipping field f of channel `addr`, opened raw as any process that can write it. */
static struct shmt_toggler *toggler_start(const char *addr, const struct field *f,
                                          shml_segment **seg)
{
    ASSERT_OK(shml_segment_open(addr, NULL, seg));
    return shmt_toggler_start((char *)shml_segment_data(*seg) + f->off, f->width, f->hostile,
                              NHOSTILE);
}

/* ---- what runs meanwhile ---- */

/* Send message i from tx and receive it on rx (rpc: a request and its reply). */
static void exchange(uint32_t kind, shml_channel *tx, shml_channel *rx, uint32_t i)
{
    char msg[32], buf[MAX_MSG];
    int len = snprintf(msg, sizeof msg, "message %u", i) + 1;
    ASSERT_EQ(shml_send(tx, msg, (size_t)len, WAIT_BOUND), len);
    ASSERT_EQ(shml_recv(rx, buf, sizeof buf, WAIT_BOUND), len);
    ASSERT_STR_EQ(buf, msg);
    if (kind != SHML_RPC)
        return;
    len = snprintf(msg, sizeof msg, "reply %u", i) + 1;
    ASSERT_EQ(shml_send(rx, msg, (size_t)len, WAIT_BOUND), len);
    ASSERT_EQ(shml_recv(tx, buf, sizeof buf, WAIT_BOUND), len);
    ASSERT_STR_EQ(buf, msg);
}

/* Inspect: the geometry reported is the valid one, or the copy was refused. */
static void inspect(const char *addr, const struct shml_channel_stats *want)
{
    struct shml_channel_stats st;
    struct shml_endpoint_stats eps[NEP];
    size_t n = 0;
    int r = shml_channel_inspect(addr, &st, eps, NEP, &n);
    if (r == -SHML_ECORRUPT)
        return;
    ASSERT_OK(r);
    ASSERT_EQ(st.slots, want->slots);
    ASSERT_EQ(st.slot_size, want->slot_size);
    ASSERT_EQ(st.max_msg, want->max_msg);
    ASSERT_EQ(st.endpoints, want->endpoints);
    ASSERT_LE(n, (size_t)NEP);
}

/* Open, use and close one more endpoint: refused, or as good as any. */
static void open_close(const char *addr, uint32_t kind)
{
    unsigned role = kind == SHML_RPC ? SHML_CLIENT : SHML_CONSUMER;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_ADAPTIVE;
    shml_channel *ch;
    int r = shml_channel_open(addr, role, &o, &ch);
    if (r == -SHML_ECORRUPT)
        return;
    ASSERT_OK(r);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.max_msg, (uint64_t)MAX_MSG);
    char buf[MAX_MSG];
    if (kind == SHML_QUEUE || kind == SHML_BUS)
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT); /* all taken, or none yet */
    ASSERT_OK(shml_channel_close(ch));
}

static void run_kind(uint32_t kind, const struct field *f)
{
    const char *addr;
    shml_channel *mk = chan_make(&addr, kind, 0, 8 * 128, MAX_MSG, NEP);
    shml_channel_close(mk);
    unsigned txr = kind == SHML_RPC ? SHML_CLIENT : SHML_PRODUCER;
    unsigned rxr = kind == SHML_RPC ? SHML_SERVER : SHML_CONSUMER;
    shml_channel *rx = chan_open(addr, rxr, SHML_WAIT_ADAPTIVE);
    shml_channel *tx = chan_open(addr, txr, SHML_WAIT_ADAPTIVE);
    struct shml_channel_stats want = chan_inspect(addr);
    shml_segment *peer;
    struct shmt_toggler *t = toggler_start(addr, f, &peer);
    long rounds = 0, limit = chan_iters(20000, 500);
    for (int64_t t0 = now_ns(); rounds < limit && now_ns() - t0 < RUN_NS; rounds++) {
        exchange(kind, tx, rx, (uint32_t)rounds);
        struct shml_channel_stats st;
        ASSERT_OK(shml_channel_get_stats(tx, &st));
        ASSERT_EQ(st.endpoints, want.endpoints);
        inspect(addr, &want);
        /* A refused copy is a finding (counted), never a failed call. */
        ASSERT_GE(shml_channel_check(addr, 0, NULL, NULL), 0);
        ASSERT_GE(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
        open_close(addr, kind);
    }
    shmt_toggler_stop(t);
    shml_segment_close(peer);
    shmt_log("%s, %s: %ld rounds", shml_kind_name(kind), f->name, rounds);
    /* The toggling over, the channel is whole and every message was counted. */
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.received, (uint64_t)rounds * (kind == SHML_RPC ? 2 : 1));
    ASSERT_EQ(st.lost, 0);
    shml_channel_close(tx);
    shml_channel_close(rx);
}

static void toggle_field(const char *name)
{
    const struct field *f = NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].name, name) == 0)
            f = &fields[i];
    ASSERT_NOT_NULL(f);
    static const uint32_t kinds[] = {SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        run_kind(kinds[k], f);
}

TEST(toggle_geo_ep_off)
{
    toggle_field("ep_off");
}

TEST(toggle_geo_box_off)
{
    toggle_field("box_off");
}

TEST(toggle_geo_slots_off)
{
    toggle_field("slots_off");
}

TEST(toggle_geo_stride)
{
    toggle_field("stride");
}

TEST(toggle_geo_nslots)
{
    toggle_field("nslots");
}

TEST(toggle_geo_nendpoints)
{
    toggle_field("nendpoints");
}

TEST(toggle_geo_max_msg)
{
    toggle_field("max_msg");
}
