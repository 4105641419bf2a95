/*
 * fuzz_address.c - libFuzzer target for address parsing (untrusted: command lines, config).
 * Any input must give 0 or a negative errno, never a crash, and a success must name a backend
 * and a canonical address that parses again to itself.
 */
#include "segment/backend.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    static struct shml__addr a, b;
    int r = shml__addr_parse(s, &a);
    if (r == 0) {
        if (a.backend < SHML_BACKEND_POSIX || a.backend > SHML_BACKEND_WINDOWS || a.canon[0] == 0)
            abort();
        if (shml__addr_parse(a.canon, &b) != 0 || strcmp(a.canon, b.canon) != 0)
            abort();
    } else if (r != -EINVAL) {
        abort();
    }
    free(s);
    return 0;
}
