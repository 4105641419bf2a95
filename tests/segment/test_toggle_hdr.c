/*
 * A peer that toggles the header's data size and offset: a thread, standing for any process
 * that can write the segment, flips `size` or `header_size` between the valid value and
 * hostile ones while this thread opens the segment again and again. The header is validated
 * on a private copy at open; the handle must take the data's size and offset from that copy:
 * every open gives the true size and data, or -SHML_ECORRUPT, never a size or offset from
 * the mapping after the check (a 64 GiB "size" of an 8 KiB segment, data past the mapping).
 */
#include "seg_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define SIZE 8192u
#define RUN_NS ((int64_t)1000000000)

struct toggler {
    void *word;
    size_t width;
    uint64_t valid;
    const uint64_t *hostile;
    atomic_bool stop;
};

static void store(const struct toggler *t, uint64_t v)
{
    /* Relaxed: the toggler promises nothing, as a hostile peer would not. */
    if (t->width == 8)
        atomic_store_explicit((shml_atomic_u64 *)t->word, v, memory_order_relaxed);
    else
        atomic_store_explicit((shml_atomic_u32 *)t->word, (uint32_t)v, memory_order_relaxed);
}

static void *toggle_loop(void *arg)
{
    struct toggler *t = arg;
    for (size_t k = 0; !atomic_load_explicit(&t->stop, memory_order_relaxed); k++) {
        store(t, t->hostile[k % 3]);
        store(t, t->valid);
    }
    return NULL;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void toggle_header(size_t off, size_t width, const uint64_t hostile[3])
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *mk;
    ASSERT_OK(shml_segment_create(addr, SIZE, NULL, &mk));
    memset(shml_segment_data(mk), 'd', SIZE);
    /* The peer's view: the whole object, header included. */
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *peer;
    ASSERT_OK(shml_segment_open(addr, &raw, &peer));
    struct toggler t = {.word = (char *)shml_segment_data(peer) + off, .width = width,
                        .hostile = hostile};
    t.valid = width == 8 ? *(uint64_t *)t.word : *(uint32_t *)t.word;
    atomic_init(&t.stop, false);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, toggle_loop, &t), 0);
    long opened = 0, refused = 0;
    for (int64_t t0 = mono_ns(); mono_ns() - t0 < RUN_NS && opened < 200000;) {
        shml_segment *seg;
        int r = shml_segment_open(addr, NULL, &seg);
        if (r == -SHML_ECORRUPT) {
            refused++;
            continue;
        }
        ASSERT_OK(r);
        ASSERT_EQ(shml_segment_size(seg), (size_t)SIZE);
        const char *d = shml_segment_data(seg);
        ASSERT_EQ(d[0], 'd');
        ASSERT_EQ(d[SIZE - 1], 'd');
        shml_segment_close(seg);
        opened++;
    }
    atomic_store_explicit(&t.stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    store(&t, t.valid);
    shmt_log("%ld opened, %ld refused", opened, refused);
    shml_segment_close(peer);
    shml_segment_close(mk);
}

TEST(toggle_header_size)
{
    static const uint64_t hostile[3] = {(uint64_t)1 << 36, (uint64_t)1 << 62, 4096};
    toggle_header(offsetof(struct shml_hdr, size), 8, hostile);
}

TEST(toggle_header_data_offset)
{
    static const uint64_t hostile[3] = {(uint64_t)1 << 20, 8192, 0};
    toggle_header(offsetof(struct shml_hdr, header_size), 4, hostile);
}
