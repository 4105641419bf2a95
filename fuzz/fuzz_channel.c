/*
 * fuzz_channel.c - libFuzzer target for channel control-block validation (untrusted: any
 * process that can write the segment can write the block). The first 8 bytes of the input give
 * the data size the segment claims; the rest is the start of the data, zero-padded to the
 * 1024-byte block. The image is an exact-size heap copy of min(claimed size, 1024) bytes, so
 * ASan catches a read of the block when the data is too small to hold one. Validation must
 * return 0, -SHML_ECORRUPT or -SHML_EVERSION, never crash; and what it accepts must satisfy
 * every invariant the channel kinds rely on (docs/FORMAT.md, "Channels", layout version 3).
 * fuzz_ring.c fuzzes whole images (indices, endpoint table, slots) through the API.
 */
#include "channel/channel.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t claimed;
    memcpy(&claimed, data, 8);
    if (claimed > SIZE_MAX)
        return 0;
    size_t len = claimed < SHML_CHAN_HDR ? (size_t)claimed : SHML_CHAN_HDR;
    uint8_t *image = calloc(1, len ? len : 1);
    if (!image)
        return 0;
    size_t avail = size - 8;
    memcpy(image, data + 8, avail < len ? avail : len);
    struct shml__chan_geo geo;
    int r = shml__chan_geo_load((struct shml_chan_hdr *)image, (size_t)claimed, &geo);
    switch (r) {
    case 0: {
        if (len < SHML_CHAN_HDR)
            abort();
        const struct shml_chan_hdr *h = (const struct shml_chan_hdr *)image;
        /* The private copy is what was checked: the image's fields, the slots where they say. */
        if (geo.kind != h->kind || geo.nslots != h->nslots || geo.stride != h->stride ||
            geo.max_msg != h->max_msg || geo.slots_off != h->slots_off ||
            geo.nendpoints != h->nendpoints || geo.ep_off != h->ep_off ||
            geo.box_off != h->box_off || geo.box_stride != h->box_stride ||
            geo.policy != h->policy || geo.slots != (char *)image + h->slots_off)
            abort();
        uint64_t n = h->nslots;
        uint64_t overhead = h->kind == SHML_LATEST ? SHML_LATEST_HDR
                            : h->kind == SHML_RPC  ? SHML_SLOT_HDR + SHML_RPC_TAG
                                                   : SHML_SLOT_HDR;
        if (h->magic != SHML_CHAN_MAGIC || h->version != SHML_CHAN_VERSION ||
            h->kind < SHML_QUEUE || h->kind > SHML_RPC || n < 2 ||
            (h->kind == SHML_LATEST && n < 4) || (n & (n - 1)) != 0 || h->stride % 64 != 0 ||
            h->max_msg > ((uint64_t)1 << 30) || h->stride < overhead + h->max_msg)
            abort();
        if (h->policy > SHML_OVERWRITE || (h->policy == SHML_OVERWRITE && h->kind != SHML_BUS) ||
            ((h->flags & SHML_CHANF_SPSC) && h->kind != SHML_QUEUE) ||
            (h->flags & ~SHML_CHANF_SPSC))
            abort();
        /* The tables: endpoints right after the block, mailboxes (rpc) after them, each inside
           the data and before the slots. */
        if (h->nendpoints < 1 || h->nendpoints > SHML_EP_MAX || h->ep_off != SHML_CHAN_HDR)
            abort();
        uint64_t end = h->ep_off + (uint64_t)h->nendpoints * SHML_EP_SIZE;
        if (h->kind == SHML_RPC) {
            if (h->box_off != end || h->box_stride % 64 != 0 ||
                h->box_stride < SHML_BOX_HDR + h->max_msg)
                abort();
            end += (uint64_t)h->nendpoints * h->box_stride;
        } else if (h->box_off != 0 || h->box_stride != 0) {
            abort();
        }
        if (h->slots_off < end || h->slots_off % 128 != 0)
            abort();
        /* The slots fit in the data, computed without overflow. */
        if ((unsigned __int128)n * h->stride + h->slots_off > (unsigned __int128)claimed)
            abort();
        /* The last slot's message ends inside the data. */
        uint64_t last = h->slots_off + (n - 1) * h->stride + overhead + h->max_msg;
        if (last > claimed)
            abort();
        break;
    }
    case -SHML_ECORRUPT:
    case -SHML_EVERSION:
        break;
    default:
        abort();
    }
    free(image);
    return 0;
}
