/*
 * opts.c - reading the caller's options structs by the rule for structs that can grow
 * (include/shmlink/common.h): the one place that rule is applied.
 */
#include "internal.h"

#include <string.h>

int shml__opts_copy(void *out, const void *defaults, size_t known, size_t used, size_t first,
                    const void *in, const char *name, const char *macro)
{
    if (!in) {
        memcpy(out, defaults, known);
        return 0;
    }
    uint32_t size;
    memcpy(&size, in, sizeof(size)); /* the first field of every options struct */
    if (size < first || size > SHML_OPTS_SIZE_MAX)
        return shml__fail(EINVAL, "struct %s has size %u, which no shmlink header gives: "
                                  "initialise it with %s, then set its fields",
                          name, size, macro);
    /* Past the fields this library reads: its reserved space and whatever a newer header
       added. A non-zero byte there is a setting this library would silently ignore. */
    const unsigned char *b = in;
    for (size_t i = used; i < size; i++) {
        if (b[i] != 0)
            return shml__fail(EINVAL, "struct %s has a non-zero byte at offset %zu, past the "
                                      "fields this library knows (its reserved space, or a "
                                      "field of a newer shmlink); initialise it with %s",
                              name, i, macro);
    }
    /* Fields within the caller's size are the caller's; the rest keep their defaults. */
    memcpy(out, defaults, known);
    memcpy(out, in, size < used ? size : used);
    return 0;
}
