/*
 * classic.h - what the classic interop programs share. They are written the way the textbook
 * examples are (shm_open/shmget/open, ftruncate, mmap/shmat) and do NOT link shmlink: a
 * managed segment is read from its documented byte layout (docs/FORMAT.md) alone.
 */
#ifndef CLASSIC_H
#define CLASSIC_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test pattern; the same formula as shmt_pattern() in tests/harness.h and py_shm.py. */
static inline uint8_t classic_pattern(size_t i, unsigned seed)
{
    return (uint8_t)((i * 131u + (i >> 8) * 7u + seed * 17u + 1u) & 0xffu);
}

static inline void classic_fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = classic_pattern(i, seed);
}

/* 0 if p holds the pattern, else 1 after saying where it differs. */
static inline int classic_verify(const char *who, const uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != classic_pattern(i, seed)) {
            fprintf(stderr, "%s: byte %zu is 0x%02x, want 0x%02x\n", who, i, p[i],
                    classic_pattern(i, seed));
            return 1;
        }
    }
    return 0;
}

static inline uint32_t classic_u32(const uint8_t *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, 4); /* little-endian, as the format says */
    return v;
}

static inline uint64_t classic_u64(const uint8_t *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, 8);
    return v;
}

/*
 * Check a managed header at `h` (at least 4096 bytes, from an object of `object_size` bytes)
 * as docs/FORMAT.md describes it. Returns 0 and the data's offset and size, or 1.
 */
static inline int classic_header(const char *who, const uint8_t *h, uint64_t object_size,
                                 uint64_t *data_off, uint64_t *size)
{
    if (memcmp(h, "SHMLINK\0", 8) != 0) {
        fprintf(stderr, "%s: no shmlink magic\n", who);
        return 1;
    }
    /* state at 160 is published last with release: load it with acquire before the rest. */
    uint32_t state = atomic_load_explicit((const _Atomic uint32_t *)(const void *)(h + 160),
                                          memory_order_acquire);
    if (state != 0x59444552u) {
        fprintf(stderr, "%s: state 0x%x is not READY\n", who, state);
        return 1;
    }
    if (classic_u32(h, 8) != 1) {
        fprintf(stderr, "%s: layout version %u\n", who, classic_u32(h, 8));
        return 1;
    }
    uint32_t hx = 2166136261u; /* FNV-1a 32 of bytes 0..155 */
    for (size_t i = 0; i < 156; i++) {
        hx ^= h[i];
        hx *= 16777619u;
    }
    if (hx != classic_u32(h, 156)) {
        fprintf(stderr, "%s: checksum 0x%08x, header says 0x%08x\n", who, hx, classic_u32(h, 156));
        return 1;
    }
    uint32_t header_size = classic_u32(h, 12);
    uint64_t sz = classic_u64(h, 24), map_size = classic_u64(h, 32);
    if (header_size < 4096 || header_size % 4096 || sz == 0 ||
        map_size != header_size + ((sz + 4095) & ~(uint64_t)4095) || object_size < map_size) {
        fprintf(stderr, "%s: header_size %u size %llu map_size %llu object %llu inconsistent\n",
                who, header_size, (unsigned long long)sz, (unsigned long long)map_size,
                (unsigned long long)object_size);
        return 1;
    }
    *data_off = header_size;
    *size = sz;
    return 0;
}

static inline int classic_usage(const char *prog, const char *what)
{
    fprintf(stderr,
            "usage: %s write %s SIZE SEED      make it and fill it with the pattern\n"
            "       %s read %s SIZE SEED       check its SIZE bytes hold the pattern\n"
            "       %s read-managed %s SEED    read it as a shmlink segment (docs/FORMAT.md)\n",
            prog, what, prog, what, prog, what);
    return 2;
}

#endif
