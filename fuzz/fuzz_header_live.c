/*
 * fuzz_header_live.c - libFuzzer target: a managed segment whose header a peer rewrites
 * *while* the library reads it. Open validates a private copy of the header; what it then
 * uses (the data's offset and size, the attach table, the declared objects) must come from
 * that copy, so that the handle describes the object it mapped whatever the peer writes: a
 * crash, a read out of bounds, a size past the object or a hang is a finding.
 *
 * Input: byte 0 the operations (a bit each, see run_round()); byte 1 the mode: bit 0
 * threaded (else stepped), bit 1 reseal (the peer keeps the header's check word right, as one
 * that knows the format would, live.h), bits 4..7 rounds - 1. The rest is the peer's
 * schedule (live.h), offsets into the whole file: the 4 KiB header (docs/FORMAT.md,
 * "Header"), then 8 KiB of data with a mutex, an event and a semaphore declared in it.
 * fuzz/make_corpus.py writes the seeds, one or more per header field.
 */
#include "layout.h"
#include "live.h"
#include "common.h"

#include <shmlink.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATA_SIZE 8192u

static char path[64], addr[96];

static void remove_file(void)
{
    unlink(path);
}

static int declare(shml_segment *seg, void *arg)
{
    (void)arg;
    uint8_t *d = shml_segment_data(seg);
    if (shml_mutex_init((shml_mutex *)d) != 0 || shml_event_init((shml_event *)(d + 256)) != 0 ||
        shml_sem_init((shml_sem *)(d + 512), 3) != 0)
        return -EINVAL;
    if (shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0) != 0 ||
        shml_segment_declare(seg, "ready", SHML_DECL_EVENT, 256) != 0 ||
        shml_segment_declare(seg, "slots", SHML_DECL_SEM, 512) != 0)
        return -EINVAL;
    return 0;
}

/* What an opened handle says must hold for the object: its bytes are mapped and readable. */
static void use_segment(struct live *lv, shml_segment *seg)
{
    size_t n = shml_segment_size(seg);
    const volatile uint8_t *d = shml_segment_data(seg);
    struct stat sb;
    int fd = shml_segment_fd(seg);
    if (fd >= 0 && fstat(fd, &sb) == 0 && n > (uint64_t)sb.st_size)
        abort(); /* a size past the object: it came from the mapping, not the checked copy */
    if (n > 0) {
        (void)d[0];
        (void)d[n - 1];
    }
    live_step(lv);
    uint8_t buf[64];
    (void)shml_segment_read(seg, n > sizeof buf ? n - sizeof buf : 0, buf,
                            n < sizeof buf ? n : sizeof buf);
    (void)shml_segment_check(seg);
    (void)shml_segment_is_managed(seg);
    live_step(lv);
}

static void run_round(struct live *lv, uint8_t ops)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 0;
    shml_segment *seg = NULL;
    if (ops & 0x01) {
        /* open attaches: the attach table, then close detaches. */
        if (shml_segment_open(addr, &o, &seg) == 0)
            use_segment(lv, seg);
        else if (seg)
            abort(); /* a failed open leaves *out NULL */
        live_step(lv);
        shml_segment_close(seg);
        live_step(lv);
    }
    if (ops & 0x02) {
        o.flags = SHML_RDONLY | SHML_NOATTACH;
        seg = NULL;
        if (shml_segment_open(addr, &o, &seg) == 0) {
            use_segment(lv, seg);
            shml_segment_close(seg);
        }
        live_step(lv);
    }
    if (ops & 0x04) {
        /* What `shmlink info` and `gc` read. */
        struct shml_segment_info info;
        struct shml_attach_info att[4];
        size_t n = 0;
        if (shml_segment_stat(addr, &info, att, 4, &n) == 0) {
            if (!memchr(info.address, 0, SHML_ADDR_MAX) || !memchr(info.label, 0, SHML_LABEL_MAX))
                abort(); /* text without its NUL */
            const char *why = NULL;
            (void)shml_gc_verdict(&info, &why);
        }
        live_step(lv);
    }
    if (ops & 0x08) {
        struct shml_decl_info decl[SHML_DECL_MAX];
        size_t n = 0;
        if (shml_segment_declared(addr, decl, SHML_DECL_MAX, &n) == 0)
            for (size_t i = 0; i < SHML_DECL_MAX && i < n; i++)
                if (!memchr(decl[i].name, 0, SHML_DECL_NAME_MAX))
                    abort(); /* text without its NUL */
        live_step(lv);
    }
    if (ops & 0x10) {
        /* A kind the peer made a channel's: the channel readers meet a plain segment. */
        struct shml_channel_stats st;
        (void)shml_channel_inspect(addr, &st, NULL, 0, NULL);
        (void)shml_channel_check(addr, 0, NULL, NULL);
        live_step(lv);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        fuzz_tmpfile("hdrlive", 0, path, sizeof path, addr, sizeof addr);
        atexit(remove_file);
    }
    if (size < 2)
        return 0;
    uint8_t ops = data[0];
    bool threaded = data[1] & 1, reseal = data[1] & 2;
    unsigned rounds = 1u + (data[1] >> 4);

    unlink(path);
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.label = "fuzz";
    shml_segment *seg;
    if (shml_segment_create_init(addr, DATA_SIZE, &o, declare, NULL, &seg) != 0)
        fuzz_env_fail("creating", addr);
    shml_segment_close(seg);

    struct live lv;
    live_begin(&lv, path, data + 2, size - 2, reseal, threaded);
    for (unsigned i = 0; i < rounds; i++)
        run_round(&lv, ops);
    live_end(&lv);
    unlink(path);
    return 0;
}
