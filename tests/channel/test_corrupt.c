/*
 * A corrupt channel: garbage written into the control block of a real channel segment (opened
 * raw, as any process that can write the segment could) makes shml_channel_open() fail with
 * -SHML_ECORRUPT or -SHML_EVERSION, never crash. Garbage in the indices and slot states, which
 * open does not validate, must still leave every call bounded by its timeout.
 */
#include "chan_util.h"

#include <stdlib.h>

/* Control block offsets (docs/FORMAT.md, "Channels"). */
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_KIND 8
#define OFF_FLAGS 12
#define OFF_NSLOTS 16
#define OFF_STRIDE 20
#define OFF_MAX_MSG 24
#define OFF_SLOTS_OFF 32
#define OFF_POLICY 40
#define OFF_NENDPOINTS 44
#define OFF_EP_OFF 48
#define OFF_BOX_OFF 56
#define OFF_BOX_STRIDE 64
#define OFF_ENQ 128
#define OFF_DEQ 256
#define CHAN_HDR 1024
#define CHAN_FIXED 128 /* the fields that never change after creation */

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, 4);
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

/* Open as a consumer and as a producer; each must fail with `want`. */
static void expect_open(const char *addr, int want, const char *what)
{
    shml_channel *ch = (shml_channel *)&ch;
    int r = shml_channel_open(addr, SHML_CONSUMER, NULL, &ch);
    if (r != want)
        shmt_fail(__FILE__, __LINE__, "%s: open gave %d (%s), want %d (%s); %s", what, r,
                  shml_strerror(r), want, shml_strerror(want), shml_last_error());
    ASSERT_NULL(ch);
    r = shml_channel_open(addr, SHML_PRODUCER, NULL, &ch);
    if (r != want)
        shmt_fail(__FILE__, __LINE__, "%s: producer open gave %d, want %d", what, r, want);
}

static void round_trip(const char *addr)
{
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, NULL, &ch));
    char buf[64];
    ASSERT_EQ(shml_send(ch, "ping", 4, WAIT_BOUND), 4);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    shml_channel_close(ch);
}

TEST(corrupt_control_block)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 8 * 128;
    o.max_msg = 100;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    shml_channel_close(ch);
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    uint8_t *b = shml_segment_data(seg);
    size_t size = shml_segment_size(seg);
    ASSERT_GE(size, (size_t)CHAN_HDR + 8 * 128);
    round_trip(addr);
    /* Only the fixed fields are saved and restored: enq, deq and the slots move on. */
    static uint8_t good[CHAN_FIXED];
    memcpy(good, b, CHAN_FIXED);

    struct {
        const char *what;
        size_t off;
        int width;
        uint64_t v;
        int want;
    } cases[] = {
        {"magic 0", OFF_MAGIC, 4, 0, -SHML_ECORRUPT},
        {"magic swapped", OFF_MAGIC, 4, 0x4348414e, -SHML_ECORRUPT},
        {"version 0", OFF_VERSION, 4, 0, -SHML_EVERSION},
        {"version 1", OFF_VERSION, 4, 1, -SHML_EVERSION},
        {"version 2 (pids as holders)", OFF_VERSION, 4, 2, -SHML_EVERSION},
        {"version 4", OFF_VERSION, 4, 4, -SHML_EVERSION},
        {"version ~0", OFF_VERSION, 4, 0xffffffff, -SHML_EVERSION},
        {"kind 0", OFF_KIND, 4, 0, -SHML_ECORRUPT},
        {"kind bus", OFF_KIND, 4, 3, -SHML_ECORRUPT},
        {"kind 1000", OFF_KIND, 4, 1000, -SHML_ECORRUPT},
        {"nslots 0", OFF_NSLOTS, 4, 0, -SHML_ECORRUPT},
        {"nslots 1", OFF_NSLOTS, 4, 1, -SHML_ECORRUPT},
        {"nslots 3", OFF_NSLOTS, 4, 3, -SHML_ECORRUPT},
        {"nslots 16 (past the data)", OFF_NSLOTS, 4, 16, -SHML_ECORRUPT},
        {"nslots 2^31", OFF_NSLOTS, 4, 0x80000000u, -SHML_ECORRUPT},
        {"nslots ~0", OFF_NSLOTS, 4, 0xffffffffu, -SHML_ECORRUPT},
        {"stride 0", OFF_STRIDE, 4, 0, -SHML_ECORRUPT},
        {"stride 100", OFF_STRIDE, 4, 100, -SHML_ECORRUPT},
        {"stride 64 (< 16 + max_msg)", OFF_STRIDE, 4, 64, -SHML_ECORRUPT},
        {"stride 2^31", OFF_STRIDE, 4, 0x80000000u, -SHML_ECORRUPT},
        {"stride ~63", OFF_STRIDE, 4, 0xffffffc0u, -SHML_ECORRUPT},
        {"max_msg 113", OFF_MAX_MSG, 8, 113, -SHML_ECORRUPT},
        {"max_msg 2^30+1", OFF_MAX_MSG, 8, (1ull << 30) + 1, -SHML_ECORRUPT},
        {"max_msg 2^63", OFF_MAX_MSG, 8, 1ull << 63, -SHML_ECORRUPT},
        {"max_msg ~0", OFF_MAX_MSG, 8, ~0ull, -SHML_ECORRUPT},
        {"slots_off 0", OFF_SLOTS_OFF, 8, 0, -SHML_ECORRUPT},
        {"slots_off 2048", OFF_SLOTS_OFF, 8, 2048, -SHML_ECORRUPT},
        {"slots_off ~0", OFF_SLOTS_OFF, 8, ~0ull, -SHML_ECORRUPT},
        {"policy overwrite on a queue", OFF_POLICY, 4, SHML_OVERWRITE, -SHML_ECORRUPT},
        {"policy 2", OFF_POLICY, 4, 2, -SHML_ECORRUPT},
        {"endpoints 0", OFF_NENDPOINTS, 4, 0, -SHML_ECORRUPT},
        {"endpoints 4097", OFF_NENDPOINTS, 4, 4097, -SHML_ECORRUPT},
        {"endpoints ~0", OFF_NENDPOINTS, 4, 0xffffffffu, -SHML_ECORRUPT},
        {"endpoints 4096 (slots move)", OFF_NENDPOINTS, 4, 4096, -SHML_ECORRUPT},
        {"ep_off 0", OFF_EP_OFF, 8, 0, -SHML_ECORRUPT},
        {"ep_off ~0", OFF_EP_OFF, 8, ~0ull, -SHML_ECORRUPT},
        {"box_off on a queue", OFF_BOX_OFF, 8, 2048, -SHML_ECORRUPT},
        {"box_stride on a queue", OFF_BOX_STRIDE, 4, 128, -SHML_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, good, CHAN_FIXED);
        if (cases[i].width == 4)
            put32(b, cases[i].off, (uint32_t)cases[i].v);
        else
            put64(b, cases[i].off, cases[i].v);
        expect_open(addr, cases[i].want, cases[i].what);
    }
    /* Consistent-looking but too large: 2^20 slots of 64 bytes for max_msg 48. */
    memcpy(b, good, CHAN_FIXED);
    put32(b, OFF_NSLOTS, 1u << 20);
    put32(b, OFF_STRIDE, 64);
    put64(b, OFF_MAX_MSG, 48);
    expect_open(addr, -SHML_ECORRUPT, "slots past the data");
    /* 2^30 slots of 2^32-64 bytes: the product does not overflow 64 bits, but is huge. */
    put32(b, OFF_NSLOTS, 1u << 30);
    put32(b, OFF_STRIDE, 0xffffffc0u);
    put64(b, OFF_MAX_MSG, 1u << 30);
    expect_open(addr, -SHML_ECORRUPT, "2^30 huge slots");
    /* All zero, all ones. */
    memset(b, 0, CHAN_FIXED);
    expect_open(addr, -SHML_ECORRUPT, "zeroed fields");
    memset(b, 0xff, CHAN_FIXED);
    expect_open(addr, -SHML_ECORRUPT, "fields of 0xff");

    /* Random garbage in the fixed fields, then garbage that keeps magic and version. */
    unsigned seed = chan_seed();
    for (int i = 0; i < 2000; i++) {
        memcpy(b, good, CHAN_FIXED);
        int nbytes = 1 + (int)(rand_r(&seed) % 16);
        for (int k = 0; k < nbytes; k++)
            b[(i < 1000 ? 0 : 8) + rand_r(&seed) % (i < 1000 ? 40 : 32)] = (uint8_t)rand_r(&seed);
        shml_channel *x = NULL;
        int r = shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, NULL, &x);
        if (r == 0) {
            /* Accepted: the block is self-consistent and fits; close again. */
            shml_channel_close(x);
            continue;
        }
        if (r != -SHML_ECORRUPT && r != -SHML_EVERSION)
            shmt_fail(__FILE__, __LINE__, "garbage %d: open gave %d (%s)", i, r,
                      shml_strerror(r));
    }
    /* Restored: the channel works again. */
    memcpy(b, good, CHAN_FIXED);
    round_trip(addr);
    shml_segment_close(seg);
}

/* argv: channel. Every call with a short timeout must return; say "done". */
PEER(bounded_calls)
{
    ASSERT_EQ(argc, 1);
    shml_channel *ch;
    int r = shml_channel_open(argv[0], SHML_PRODUCER | SHML_CONSUMER, NULL, &ch);
    if (r == 0) {
        char buf[128];
        for (int i = 0; i < 20; i++) {
            ssize_t s = shml_send(ch, "x", 1, i % 2 ? 0 : 20 * MS);
            ssize_t v = shml_recv(ch, buf, sizeof buf, i % 2 ? 0 : 20 * MS);
            (void)s;
            (void)v;
        }
        shml_channel_close(ch);
    }
    parent_send("done");
    return 0;
}

/*
 * Garbage in enq, deq and the slot states: open cannot tell, but send and recv with a timeout
 * must still return (an error is fine), never spin for ever.
 */
TEST_TIMEOUT(corrupt_indices_stay_bounded, 120)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 8 * 128;
    o.max_msg = 100;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    shml_channel_close(ch);
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    uint8_t *b = shml_segment_data(seg);
    size_t size = shml_segment_size(seg);
    uint8_t *good = malloc(size);
    ASSERT_NOT_NULL(good);
    memcpy(good, b, size);
    struct {
        const char *what;
        uint64_t enq, deq;
        int slot_garbage;
    } cases[] = {
        {"enq far ahead", 1000, 0, 0},
        {"deq far ahead", 0, 1000, 0},
        {"deq ahead of enq", 3, 5, 0},
        {"enq and deq near 2^64", ~0ull - 2, ~0ull - 2, 0},
        {"slot states garbage", 0, 0, 1},
        {"all garbage", 77, 33, 1},
    };
    unsigned seed = chan_seed();
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, good, size);
        put64(b, OFF_ENQ, cases[i].enq);
        put64(b, OFF_DEQ, cases[i].deq);
        uint64_t slots_off;
        memcpy(&slots_off, b + OFF_SLOTS_OFF, 8);
        ASSERT_LE(slots_off + 8 * 128, size);
        if (cases[i].slot_garbage)
            for (int s = 0; s < 8; s++)
                for (int k = 0; k < 16; k++)
                    b[slots_off + (size_t)s * 128 + (size_t)k] = (uint8_t)rand_r(&seed);
        pid_t p = spawn_peer("bounded_calls", addr);
        int r = peer_expect(p, "done", 10000);
        int code = wait_peer(p, 5000);
        if (r != 0 || code != 0) {
            shmt_log("%s: calls did not return within 10 s (peer exit %d)", cases[i].what,
                     code);
            failures++;
        }
    }
    memcpy(b, good, size);
    free(good);
    round_trip(addr);
    shml_segment_close(seg);
    ASSERT_EQ(failures, 0);
}
