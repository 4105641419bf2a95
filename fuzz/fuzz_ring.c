/*
 * fuzz_ring.c - libFuzzer target for whole channel images: control block, endpoint table, rpc
 * mailboxes and slots (or latest buffers), with any indices, slot states, lengths, pins,
 * cursors and tags. Untrusted: any process that can write the segment can write all of it,
 * and open validates only the fixed fields, so every call must stay in bounds and return.
 *
 * Input: byte 0 picks the kind (queue, bus, latest, rpc), byte 1 the operations (a bit
 * each), byte 2 the role, byte 3 flags (bit 0: check with repair too; bit 1: patches). The
 * rest overlays the channel's data from offset 0 (the control block first), or with bit 1 is
 * a list of patches (u16 offset into the data, u8 length, the bytes). What the input does not
 * cover keeps the bytes of a freshly created channel of that kind: 8 slots for messages of
 * 48 bytes, 4 endpoints.
 * The image is written into a segment (common.h), opened as a channel endpoint, and the chosen
 * operations run with timeout 0, then inspect, check, and check with repair. Errors are
 * fine; a crash, a read outside the mapping or a hang is not. fuzz/make_corpus.py writes the
 * seeds (docs/FORMAT.md and src/layout.h give the bytes).
 */
#include "layout.h"
#include "common.h"

#include <shmlink.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING_MAX_MSG   48u
#define RING_SLOTS     8u
#define RING_ENDPOINTS 4u

static const uint32_t kinds[4] = {SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC};

struct ring_template {
    char path[64];
    char addr[160]; /* "posix:" + its name */
    uint8_t *bytes; /* the whole file: header page, then data */
    size_t len;
    size_t data_off;
};

static struct ring_template templates[4];
static bool ready;

/* A fresh channel of each kind, created once, kept as bytes. */
static bool make_templates(void)
{
    for (int k = 0; k < 4; k++) {
        struct ring_template *t = &templates[k];
        fuzz_tmpfile("ring", k, t->path, sizeof t->path, t->addr, sizeof t->addr);
        unlink(t->path);
        uint64_t overhead = kinds[k] == SHML_LATEST ? SHML_LATEST_HDR
                            : kinds[k] == SHML_RPC  ? SHML_SLOT_HDR + SHML_RPC_TAG
                                                    : SHML_SLOT_HDR;
        uint64_t stride = (overhead + RING_MAX_MSG + 63) / 64 * 64;
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.kind = kinds[k];
        o.capacity = RING_SLOTS * stride;
        o.max_msg = RING_MAX_MSG;
        o.endpoints = RING_ENDPOINTS;
        shml_channel *ch;
        if (shml_channel_create(t->addr, &o, &ch) != 0)
            return false;
        shml_channel_close(ch);
        int fd = open(t->path, O_RDONLY);
        if (fd < 0)
            return false;
        off_t end = lseek(fd, 0, SEEK_END);
        t->len = end > 0 ? (size_t)end : 0;
        t->bytes = malloc(t->len ? t->len : 1);
        bool ok = t->bytes && pread(fd, t->bytes, t->len, 0) == (ssize_t)t->len;
        close(fd);
        unlink(t->path); /* each input writes its own copy, removed when it is done */
        if (!ok || t->len <= sizeof(struct shml_hdr))
            return false;
        const struct shml_hdr *h = (const struct shml_hdr *)t->bytes;
        t->data_off = h->header_size;
        if (t->data_off >= t->len)
            return false;
    }
    return true;
}

static void run_ops(shml_channel *ch, uint8_t ops)
{
    static uint8_t buf[4 * 4096];
    size_t lens[8];
    const void *p;
    size_t len;
    void *w;
    if (ops & 0x01)
        (void)shml_recv(ch, buf, sizeof buf, 0);
    if (ops & 0x02) {
        if (shml_peek(ch, &p, &len, 0) == 0) {
            /* Every byte of the message must be readable. */
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < len; i++)
                sum ^= ((const uint8_t *)p)[i];
            (void)sum;
            (void)shml_release(ch);
        }
    }
    if (ops & 0x04)
        (void)shml_send(ch, "fuzz", 4, 0);
    if (ops & 0x08) {
        if (shml_claim(ch, RING_MAX_MSG, &w, 0) == 0) {
            memset(w, 0x5a, RING_MAX_MSG);
            (void)shml_commit(ch, RING_MAX_MSG);
        }
    }
    if (ops & 0x10)
        (void)shml_recv_batch(ch, buf, sizeof buf, lens, 8, 0);
    if (ops & 0x20) {
        struct shml_iov v[3] = {{"a", 1}, {"bb", 2}, {buf, RING_MAX_MSG}};
        (void)shml_send_batch(ch, v, 3, 0);
    }
    if (ops & 0x40) {
        /* A second round: what the first changed is read back. */
        (void)shml_recv(ch, buf, sizeof buf, 0);
        (void)shml_send(ch, "again", 5, 0);
        (void)shml_recv(ch, buf, 1, 0);
    }
    struct shml_channel_stats st;
    (void)shml_channel_get_stats(ch, &st);
    (void)shml_recv_gap(ch);
    if (ops & 0x80) {
        /* Leave a claim or a peek open: close abandons it. */
        if (shml_peek(ch, &p, &len, 0) != 0)
            (void)shml_claim(ch, 8, &w, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        if (!make_templates())
            abort(); /* the environment, not the input: say so loudly */
        ready = true;
    }
    if (size < 4)
        return 0;
    struct ring_template *t = &templates[data[0] % 4];
    uint8_t ops = data[1];
    unsigned role = data[2] % 3 == 0   ? SHML_PRODUCER
                    : data[2] % 3 == 1 ? SHML_CONSUMER
                                       : SHML_PRODUCER | SHML_CONSUMER;
    if (kinds[data[0] % 4] == SHML_RPC && role == (SHML_PRODUCER | SHML_CONSUMER))
        role = data[2] & 1 ? SHML_CLIENT : SHML_SERVER;
    static uint8_t *img;
    static size_t img_cap;
    if (img_cap < t->len) {
        free(img);
        img = malloc(t->len);
        img_cap = img ? t->len : 0;
        if (!img)
            return 0;
    }
    memcpy(img, t->bytes, t->len);
    size_t room = t->len - t->data_off;
    if (data[3] & 2) {
        for (size_t i = 4; i + 3 <= size;) {
            size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8, n = data[i + 2];
            i += 3;
            if (n > size - i)
                n = size - i;
            if (off < room)
                memcpy(img + t->data_off + off, data + i, n < room - off ? n : room - off);
            i += n;
        }
    } else {
        size_t over = size - 4;
        memcpy(img + t->data_off, data + 4, over < room ? over : room);
    }
    /* The file exists only while this input runs: nothing is left when the fuzzer stops
       between inputs, however it stops (libFuzzer's -max_total_time, a signal, _Exit). */
    int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        abort();
    if (pwrite(fd, img, t->len, 0) != (ssize_t)t->len)
        abort();
    close(fd);

    shml_channel *ch = NULL;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    int r = shml_channel_open(t->addr, role, &o, &ch);
    if (r == 0) {
        run_ops(ch, ops);
        shml_channel_close(ch);
    } else if (ch != NULL) {
        abort(); /* a failed open leaves *out NULL */
    }
    struct shml_channel_stats st;
    struct shml_endpoint_stats eps[RING_ENDPOINTS + 2];
    size_t n = 0;
    (void)shml_channel_inspect(t->addr, &st, eps, RING_ENDPOINTS + 2, &n);
    (void)shml_channel_check(t->addr, 0, fuzz_on_finding, NULL);
    if (data[3] & 1) {
        int left = shml_channel_check(t->addr, SHML_CHECK_REPAIR, fuzz_on_finding, NULL);
        /* A repaired channel opens and works (unless it was corrupt beyond repair). */
        if (left == 0 && shml_channel_open(t->addr, role, &o, &ch) == 0) {
            run_ops(ch, ops);
            shml_channel_close(ch);
        }
    }
    unlink(t->path);
    return 0;
}
