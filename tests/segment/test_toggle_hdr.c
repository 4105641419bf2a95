/*
 * A peer that toggles the header's data size and offset: a thread, standing for any process
 * that can write the segment, flips `size` or `header_size` between the valid value and
 * hostile ones while this thread opens the segment again and again. The header is validated
 * on a private copy at open; the handle must take the data's size and offset from that copy:
 * every open gives the true size and data, or -SHML_ECORRUPT, never a size or offset from
 * the mapping after the check (a 64 GiB "size" of an 8 KiB segment, data past the mapping).
 */
#include "seg_util.h"

#include <stddef.h>

#define SIZE 8192u
#define RUN_MS 1000

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
    struct shmt_toggler *t =
        shmt_toggler_start((char *)shml_segment_data(peer) + off, width, hostile, 3);
    long opened = 0, refused = 0;
    for (int64_t t0 = shmt_now_ms(); shmt_now_ms() - t0 < RUN_MS && opened < 200000;) {
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
    shmt_toggler_stop(t);
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
