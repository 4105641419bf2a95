/*
 * Options that can grow (shmlink/common.h): struct shml_channel_opts carries its size, the
 * library reads only what lies within it, and refuses a size it cannot trust (0 from
 * `= {0}`, smaller than the first version's, or larger with a setting it does not know).
 * And the stats the library fills come back with their reserved space zeroed.
 */
#include "chan_util.h"

/* As a caller built against a newer header would pass it: fields past today's. */
struct newer_channel_opts {
    struct shml_channel_opts today;
    uint64_t newer[4];
};

#define ASSERT_ERROR_NAMES_INIT()                                                                  \
    ASSERT_NOT_NULL(strstr(shml_last_error(), "SHML_CHANNEL_OPTS_INIT"))

/* Create and open both refuse `o` with -EINVAL, naming the init macro; nothing is made. */
static void refused_everywhere(const struct shml_channel_opts *o)
{
    const char *addr = chan_addr();
    shml_channel *ch = (shml_channel *)1;
    ASSERT_ERR(shml_channel_create(addr, o, &ch), -EINVAL);
    ASSERT_NULL(ch);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &ch), -ENOENT);
    ASSERT_OK(shml_channel_create(addr, NULL, &ch));
    shml_channel *other = (shml_channel *)1;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, o, &other), -EINVAL);
    ASSERT_NULL(other);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_OK(shml_channel_close(ch));
}

/* The geometry and table of the defaults: 128 slots of 4096-byte messages, 64 endpoints. */
static void assert_default_channel(const struct shml_channel_opts *o)
{
    const char *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, o, &ch));
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.kind, SHML_QUEUE);
    ASSERT_EQ(st.max_msg, 4096);
    ASSERT_EQ(st.slots, 128);
    ASSERT_EQ(st.endpoints, 64);
    ASSERT_EQ(st.policy, SHML_BLOCK);
    ASSERT_EQ(st.flags, 0);
    ASSERT_STR_EQ(st.type.format, "");
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(addr, &info, NULL, 0, NULL));
    ASSERT_EQ(info.mode, 0600);
    ASSERT_OK(shml_channel_close(ch));
}

TEST(chan_opts_zero_filled_refused)
{
    /* What `= {0}` or memset gives: size 0. Before sizes, this meant the defaults. */
    struct shml_channel_opts o;
    memset(&o, 0, sizeof(o));
    refused_everywhere(&o);
}

TEST(chan_opts_smaller_size_refused)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.size = (uint32_t)offsetof(struct shml_channel_opts, reserved); /* no reserved space */
    refused_everywhere(&o);
    o.size = (uint32_t)sizeof(o) - 1;
    refused_everywhere(&o);
}

TEST(chan_opts_larger_size_with_zeros_beyond_accepted)
{
    /* A caller built against a newer header that set nothing new: today's fields apply. */
    struct newer_channel_opts n;
    memset(&n, 0, sizeof(n));
    n.today = (struct shml_channel_opts)SHML_CHANNEL_OPTS_INIT;
    n.today.size = (uint32_t)sizeof(n);
    n.today.kind = SHML_BUS;
    n.today.max_msg = 100;
    n.today.capacity = 8 * 128;
    const char *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &n.today, &ch));
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.kind, SHML_BUS);
    ASSERT_EQ(st.max_msg, 100);
    ASSERT_EQ(st.slots, 8);
    shml_channel *sub;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &n.today, &sub));
    ASSERT_OK(shml_channel_close(sub));
    ASSERT_OK(shml_channel_close(ch));
}

TEST(chan_opts_nonzero_byte_beyond_refused)
{
    /* A newer caller's setting this library does not know: refused, never ignored. */
    struct newer_channel_opts n;
    memset(&n, 0, sizeof(n));
    n.today = (struct shml_channel_opts)SHML_CHANNEL_OPTS_INIT;
    n.today.size = (uint32_t)sizeof(n);
    n.newer[0] = 1;
    refused_everywhere(&n.today);
    /* The same within today's size: the reserved space is not a place for settings. */
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.reserved[5] = 1;
    refused_everywhere(&o);
    o.reserved[5] = 0;
    o.size = SHML_OPTS_SIZE_MAX + 1; /* garbage, not a struct anyone's header gives */
    refused_everywhere(&o);
}

TEST(chan_opts_init_and_null_give_the_defaults)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    ASSERT_EQ(o.size, sizeof(struct shml_channel_opts));
    ASSERT_EQ(o.kind, 0);
    ASSERT_EQ(o.capacity, 0);
    ASSERT_EQ(o.max_msg, 0);
    ASSERT_EQ(o.policy, SHML_BLOCK);
    ASSERT_EQ(o.wait, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(o.mode, 0);
    ASSERT_EQ(o.flags, 0);
    ASSERT_EQ(o.spin, 0);
    ASSERT_EQ(o.endpoints, 0);
    ASSERT_EQ(o.role, 0);
    ASSERT_NULL(o.type);
    ASSERT_EQ(o.timeout_ns, 0);
    ASSERT_NULL(o.durable);
    for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
        ASSERT_EQ(o.reserved[i], 0);
    assert_default_channel(&o);
    assert_default_channel(NULL);
}

TEST(chan_type_reserved_must_be_zero)
{
    struct shml_channel_type t;
    memset(&t, 0, sizeof(t));
    strcpy(t.format, "<d");
    t.itemsize = 8;
    t.reserved[3] = 1;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.type = &t;
    shml_channel *ch;
    ASSERT_ERR(shml_channel_create(chan_addr(), &o, &ch), -EINVAL);
    t.reserved[3] = 0;
    ASSERT_OK(shml_channel_create(chan_addr(), &o, &ch));
    ASSERT_OK(shml_channel_close(ch));
}

TEST(chan_stats_reserved_zeroed)
{
    const char *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, NULL, &ch));
    /* Filled with ones first: whatever the library leaves would show. */
    struct shml_channel_stats st;
    struct shml_endpoint_stats eps[2];
    struct shml_channel_type t;
    memset(&st, 0xff, sizeof(st));
    memset(eps, 0xff, sizeof(eps));
    memset(&t, 0xff, sizeof(t));
    static const uint64_t zeros[8];
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_MEM_EQ(st.reserved2, zeros, sizeof(st.reserved2));
    ASSERT_MEM_EQ(st.type.reserved, zeros, sizeof(st.type.reserved));
    ASSERT_OK(shml_channel_get_type(ch, &t));
    ASSERT_MEM_EQ(t.reserved, zeros, sizeof(t.reserved));
    memset(&st, 0xff, sizeof(st));
    size_t n = 0;
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, 2, &n));
    ASSERT_EQ(n, 1);
    ASSERT_MEM_EQ(st.reserved2, zeros, sizeof(st.reserved2));
    ASSERT_MEM_EQ(eps[0].reserved, zeros, sizeof(eps[0].reserved));
    ASSERT_OK(shml_channel_close(ch));
}
