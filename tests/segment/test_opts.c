/*
 * Options that can grow (shmlink/common.h): struct shml_segment_opts carries its size, the
 * library reads only what lies within it, and refuses a size it cannot trust (0 from
 * `= {0}`, smaller than the first version's, or larger with a setting it does not know).
 * And the structs the library fills come back with their reserved space zeroed.
 */
#include "seg_util.h"

#include <string.h>
#include <sys/stat.h>

/* As a caller built against a newer header would pass it: fields past today's. */
struct newer_segment_opts {
    struct shml_segment_opts today;
    uint64_t newer[4];
};

#define ASSERT_ERROR_NAMES_INIT()                                                                  \
    ASSERT_NOT_NULL(strstr(shml_last_error(), "SHML_SEGMENT_OPTS_INIT"))

static int init_nothing(shml_segment *seg, void *arg)
{
    (void)seg;
    (void)arg;
    return 0;
}

/* Every call that takes options refuses `o` with -EINVAL, naming the init macro, and
   leaves nothing behind. */
static void refused_everywhere(const char *addr, const struct shml_segment_opts *o)
{
    shml_segment *seg = (shml_segment *)1;
    ASSERT_ERR(shml_segment_create(addr, 4096, o, &seg), -EINVAL);
    ASSERT_NULL(seg);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_ERR(shml_segment_create_init(addr, 4096, o, init_nothing, NULL, &seg), -EINVAL);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT); /* nothing was created */
    ASSERT_OK(shml_segment_create(addr, 4096, NULL, &seg));
    shml_segment *other = (shml_segment *)1;
    ASSERT_ERR(shml_segment_open(addr, o, &other), -EINVAL);
    ASSERT_NULL(other);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_ERR(shml_segment_from_fd(shml_segment_fd(seg), o, &other), -EINVAL);
    ASSERT_ERROR_NAMES_INIT();
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(segment_opts_zero_filled_refused)
{
    /* What `= {0}` or memset gives: size 0. Before sizes, this was mode 0600, timeout 0. */
    struct shml_segment_opts o;
    memset(&o, 0, sizeof(o));
    refused_everywhere(new_addr(BK_POSIX), &o);
    /* A raw flag in it does not change which error comes first. */
    o.flags = SHML_RAW;
    shml_segment *seg;
    ASSERT_ERR(shml_segment_create_init(new_addr(BK_POSIX), 4096, &o, init_nothing, NULL, &seg),
               -EINVAL);
    ASSERT_ERROR_NAMES_INIT();
}

TEST(segment_opts_smaller_size_refused)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.size = (uint32_t)offsetof(struct shml_segment_opts, reserved); /* no reserved space */
    refused_everywhere(new_addr(BK_POSIX), &o);
    o.size = 1;
    refused_everywhere(new_addr(BK_POSIX), &o);
}

TEST(segment_opts_size_past_the_limit_refused)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.size = SHML_OPTS_SIZE_MAX + 1; /* garbage, not a struct anyone's header gives */
    refused_everywhere(new_addr(BK_POSIX), &o);
}

TEST(segment_opts_larger_size_with_zeros_beyond_accepted)
{
    /* A caller built against a newer header that set nothing new: today's fields apply. */
    struct newer_segment_opts n;
    memset(&n, 0, sizeof(n));
    n.today = (struct shml_segment_opts)SHML_SEGMENT_OPTS_INIT;
    n.today.size = (uint32_t)sizeof(n);
    n.today.mode = 0640;
    n.today.label = "grown";
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 4096, &n.today, &seg));
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.mode, 0640);
    ASSERT_STR_EQ(info.label, "grown");
    shml_segment *other;
    ASSERT_OK(shml_segment_open(addr, &n.today, &other));
    ASSERT_OK(shml_segment_close(other));
    ASSERT_OK(shml_segment_close(seg));
}

TEST(segment_opts_nonzero_byte_beyond_refused)
{
    /* A newer caller's setting this library does not know: refused, never ignored. */
    struct newer_segment_opts n;
    memset(&n, 0, sizeof(n));
    n.today = (struct shml_segment_opts)SHML_SEGMENT_OPTS_INIT;
    n.today.size = (uint32_t)sizeof(n);
    n.newer[3] = 1;
    refused_everywhere(new_addr(BK_POSIX), &n.today);
    /* The same within today's size: the reserved space is not a place for settings. */
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.reserved[0] = 1;
    refused_everywhere(new_addr(BK_POSIX), &o);
}

TEST(segment_opts_init_and_null_give_the_defaults)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    ASSERT_EQ(o.size, sizeof(struct shml_segment_opts));
    ASSERT_EQ(o.mode, 0600);
    ASSERT_EQ(o.flags, 0);
    ASSERT_EQ(o.timeout_ns, SHML_OPEN_TIMEOUT_DEFAULT);
    ASSERT_EQ(o.kind, SHML_KIND_ANY);
    ASSERT_EQ(o.role, SHML_ROLE_USER);
    ASSERT_NULL(o.label);
    for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
        ASSERT_EQ(o.reserved[i], 0);
    /* Created either way, the segments are alike. */
    const struct shml_segment_opts *ways[] = {&o, NULL};
    for (size_t w = 0; w < 2; w++) {
        const char *addr = new_addr(BK_POSIX);
        shml_segment *seg;
        ASSERT_OK(shml_segment_create(addr, 4096, ways[w], &seg));
        struct shml_segment_info info;
        struct shml_attach_info att[MAX_ATT];
        size_t n;
        STAT_OK(addr, &info, att, &n);
        ASSERT_EQ(info.mode, 0600);
        ASSERT_EQ(info.kind, SHML_KIND_PLAIN);
        ASSERT_STR_EQ(info.label, "");
        ASSERT_EQ(info.hdr_flags, 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(att[0].role, SHML_ROLE_CREATOR); /* role 0 at create: the creator's */
        ASSERT_OK(shml_segment_close(seg));
    }
}

TEST(segment_info_reserved_zeroed)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 4096, NULL, &seg));
    ASSERT_OK(shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0));
    ASSERT_OK(shml_mutex_init((shml_mutex *)shml_segment_data(seg)));
    struct shml_segment_info info;
    struct shml_attach_info att[2];
    struct shml_decl_info decl[1];
    /* Filled with ones first: whatever the library leaves would show. */
    memset(&info, 0xff, sizeof(info));
    memset(att, 0xff, sizeof(att));
    memset(decl, 0xff, sizeof(decl));
    size_t n = 0;
    ASSERT_OK(shml_segment_stat(addr, &info, att, 2, &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(shml_segment_declared(addr, decl, 1, &n));
    ASSERT_EQ(n, 1);
    struct shml_mutex_state ms;
    memset(&ms, 0xff, sizeof(ms));
    ASSERT_OK(shml_mutex_inspect((shml_mutex *)shml_segment_data(seg), &ms));
    static const uint64_t zeros[8];
    ASSERT_MEM_EQ(info.reserved, zeros, sizeof(info.reserved));
    ASSERT_MEM_EQ(att[0].reserved, zeros, sizeof(att[0].reserved));
    ASSERT_MEM_EQ(decl[0].reserved, zeros, sizeof(decl[0].reserved));
    ASSERT_MEM_EQ(decl[0].mutex.reserved, zeros, sizeof(decl[0].mutex.reserved));
    ASSERT_MEM_EQ(ms.reserved, zeros, sizeof(ms.reserved));
    ASSERT_OK(shml_segment_close(seg));
}
