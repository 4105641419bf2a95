/*
 * fuzz_header.c - libFuzzer target for managed-header validation (untrusted: any process that
 * can write the segment can write its header). The first 8 bytes of the input give the size
 * the object claims to have; the rest is the header image. Validation must return one of its
 * documented codes, never crash or read past the image.
 */
#include "segment/backend.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t object_size;
    memcpy(&object_size, data, 8);
    size_t len = size - 8;
    /* An exact-size heap copy, so ASan catches any read past the image. */
    uint8_t *image = malloc(len ? len : 1);
    if (!image)
        return 0;
    memcpy(image, data + 8, len);
    int r = shml__hdr_validate(image, len, object_size);
    switch (r) {
    case 0:
        /* Accepted: the invariants openers rely on must hold. */
        if (len < sizeof(struct shml_hdr))
            abort();
        {
            const struct shml_hdr *h = (const struct shml_hdr *)image;
            if (h->map_size > object_size || h->header_size < SHML_HDR_PAGE ||
                h->header_size + h->size > h->map_size || h->size == 0)
                abort();
        }
        break;
    case -EAGAIN:
    case -SHML_ENOTSHML:
    case -SHML_EVERSION:
    case -SHML_ECORRUPT:
        break;
    default:
        abort();
    }
    free(image);
    return 0;
}
