/*
 * The managed header (src/layout.h): what shml__hdr_init writes, and that shml__hdr_validate
 * gives the documented code for a corruption of each field. A corrupted field is resealed
 * (checksum recomputed) so that the check of that field itself is what is exercised.
 */
#include "harness.h"

#include "segment/backend.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OBJ 8192u /* header page + one data page: a segment of 100 user bytes */

static _Alignas(4096) unsigned char image[3 * 4096];
static struct shml_hdr *const H = (struct shml_hdr *)image;

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a 32, written from its definition (docs/FORMAT.md), not from the library. */
static uint32_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

/* A valid, published header for 100 user bytes in an 8 KiB object. */
static void fresh(void)
{
    memset(image, 0, sizeof image);
    shml__hdr_init(H, SHML_KIND_PLAIN, 0, 4096, 100, OBJ, "label");
    atomic_store_explicit(&H->state, SHML_STATE_READY, memory_order_relaxed);
}

static void reseal(void)
{
    H->check = shml__hdr_checksum(H);
}

static int validate(uint64_t object_size)
{
    return shml__hdr_validate(image, sizeof(struct shml_hdr), object_size);
}

TEST(hdr_init_fields)
{
    int64_t before = real_ns();
    memset(image, 0xee, sizeof image);
    memset(image, 0, sizeof(struct shml_hdr));
    shml__hdr_init(H, 7, 0, 4096, 100, OBJ, "my label");
    int64_t after = real_ns();

    ASSERT_MEM_EQ(H->magic, "SHMLINK\0", 8);
    ASSERT_EQ(H->version, SHML_LAYOUT_VERSION);
    ASSERT_EQ(H->header_size, 4096u);
    ASSERT_EQ(H->kind, 7u);
    ASSERT_EQ(H->flags, 0u);
    ASSERT_EQ(H->size, 100u);
    ASSERT_EQ(H->map_size, (uint64_t)OBJ);
    ASSERT_EQ(H->creator_pid, getpid());
    ASSERT_EQ(H->owner_uid, geteuid());
    ASSERT_EQ(H->creator_start, shmt_proc_start(getpid()));
    ASSERT_GE(H->created_ns, before);
    ASSERT_LE(H->created_ns, after);
    ASSERT_STR_EQ(H->label, "my label");
    for (size_t i = strlen("my label"); i < sizeof H->label; i++)
        ASSERT_EQ(H->label[i], 0); /* NUL-padded */
    static const uint8_t zero_id[16];
    ASSERT_TRUE(memcmp(H->boot_id, zero_id, 16) != 0);
    ASSERT_EQ(H->attach_off, SHML_ATTACH_OFF);
    ASSERT_EQ(H->attach_cap, SHML_ATTACH_CAP);
    ASSERT_EQ(H->attach_size, SHML_ATTACH_SIZE);
    ASSERT_EQ(atomic_load(&H->state), SHML_STATE_INIT);
    ASSERT_EQ(atomic_load(&H->untracked), 0u);
    /* The checksum is FNV-1a 32 of the first 156 bytes, as documented. */
    ASSERT_EQ(H->check, fnv1a(H, SHML_HDR_CHECKED_LEN));
    ASSERT_EQ(shml__hdr_checksum(H), H->check);
    for (unsigned i = 0; i < SHML_ATTACH_CAP; i++)
        ASSERT_EQ(atomic_load(&H->attach[i].pid), 0u);
    /* init writes the header page and nothing past it. */
    ASSERT_EQ(image[4096], 0xee);
}

TEST(hdr_checksum_is_fnv1a)
{
    fresh();
    ASSERT_EQ(shml__hdr_checksum(H), fnv1a(H, SHML_HDR_CHECKED_LEN));
    H->label[10] = 'z';
    ASSERT_EQ(shml__hdr_checksum(H), fnv1a(H, SHML_HDR_CHECKED_LEN));
    /* Fields after `check` are not covered: they change while the segment lives. */
    uint32_t c = shml__hdr_checksum(H);
    atomic_store(&H->untracked, 5);
    atomic_store(&H->attach[3].pid, 1234);
    ASSERT_EQ(shml__hdr_checksum(H), c);
}

TEST(hdr_valid)
{
    fresh();
    ASSERT_OK(validate(OBJ));
    /* An object larger than map_size (a file someone extended) is not truncated. */
    ASSERT_OK(validate(OBJ + 4096));
    /* Other valid shapes: a larger header, a size that fills pages exactly, a long label. */
    memset(image, 0, sizeof image);
    shml__hdr_init(H, SHML_KIND_PLAIN, 0, 8192, 4096, 8192 + 4096, "");
    atomic_store(&H->state, SHML_STATE_READY);
    ASSERT_OK(validate(8192 + 4096));
    memset(image, 0, sizeof image);
    char label[SHML_LABEL_MAX];
    memset(label, 'L', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    shml__hdr_init(H, 42, 0, 4096, 1, 8192, label);
    atomic_store(&H->state, SHML_STATE_READY);
    ASSERT_OK(validate(8192));
}

TEST(hdr_blank_is_eagain)
{
    memset(image, 0, sizeof image);
    ASSERT_ERR(validate(OBJ), -EAGAIN);
}

TEST(hdr_state_init_is_eagain)
{
    fresh();
    atomic_store(&H->state, SHML_STATE_INIT);
    ASSERT_ERR(validate(OBJ), -EAGAIN);
}

TEST(hdr_state_garbage)
{
    fresh();
    atomic_store(&H->state, 0x12345678u);
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    atomic_store(&H->state, SHML_STATE_READY + 1);
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

TEST(hdr_bad_magic)
{
    fresh();
    H->magic[6] = 'X';
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ENOTSHML);

    fresh();
    H->magic[7] = '!';
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ENOTSHML);

    /* Somebody else's bytes. */
    for (size_t i = 0; i < sizeof(struct shml_hdr); i++)
        image[i] = (unsigned char)(i * 37 + 11);
    ASSERT_ERR(validate(OBJ), -SHML_ENOTSHML);
    memset(image, 0, sizeof image);
    memcpy(image, "hello, world\n", 13);
    ASSERT_ERR(validate(OBJ), -SHML_ENOTSHML);
}

TEST(hdr_version)
{
    fresh();
    H->version = SHML_LAYOUT_VERSION + 1;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_EVERSION);

    fresh();
    H->version = 0xffffffffu;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_EVERSION);

    /* Magic, then garbage: the version is not believed without a check that holds. */
    fresh();
    for (size_t i = SHML_MAGIC_LEN; i < sizeof(struct shml_hdr); i++)
        image[i] = (unsigned char)(i * 37 + 11);
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    fresh();
    H->version = 1485455917u; /* random bytes; the check is not resealed */
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

static void check_header_size(uint32_t hs)
{
    fresh();
    H->header_size = hs;
    reseal();
    int r = validate(OBJ);
    if (r != -SHML_ECORRUPT)
        shmt_fail(__FILE__, __LINE__, "header_size %u: validate = %d (%s), want -SHML_ECORRUPT", hs,
                  r, r < 0 ? shmt_errname(r) : "success");
}

TEST(hdr_header_size)
{
    check_header_size(0);
    check_header_size(2048);  /* below the header page */
    check_header_size(4097);  /* not a page multiple */
    check_header_size(6000);
    check_header_size(4095);
    check_header_size(0x80000000u); /* past SHML_HDR_SIZE_MAX */

    /* Too big even when map_size agrees with it. */
    fresh();
    H->header_size = SHML_HDR_SIZE_MAX + 4096;
    H->map_size = (uint64_t)H->header_size + 4096;
    reseal();
    ASSERT_ERR(shml__hdr_validate(image, sizeof(struct shml_hdr), H->map_size), -SHML_ECORRUPT);
}

TEST(hdr_kind_zero)
{
    fresh();
    H->kind = 0;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

TEST(hdr_size_zero)
{
    fresh();
    H->size = 0;
    H->map_size = 4096; /* consistent with size 0, so only the size itself is wrong */
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

TEST(hdr_map_size_inconsistent)
{
    fresh();
    H->map_size = 4096; /* smaller than header + data */
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->map_size = OBJ + 4096; /* not header_size + size rounded up */
    reseal();
    ASSERT_ERR(validate(OBJ + 4096), -SHML_ECORRUPT);

    fresh();
    H->map_size = OBJ - 1; /* not a page multiple */
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->map_size = 0;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    /* A size whose rounding overflows. */
    fresh();
    H->size = UINT64_MAX - 100;
    H->map_size = 4096;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    fresh();
    H->size = UINT64_MAX - 100;
    H->map_size = UINT64_MAX & ~(uint64_t)4095;
    reseal();
    ASSERT_ERR(validate(UINT64_MAX), -SHML_ECORRUPT);
}

TEST(hdr_object_truncated)
{
    fresh();
    ASSERT_ERR(validate(OBJ - 1), -SHML_ECORRUPT);
    ASSERT_ERR(validate(4096), -SHML_ECORRUPT);
    ASSERT_ERR(validate(100), -SHML_ECORRUPT);
    /* (An empty object is not "truncated": it is what a creator has before it sizes it.) */
}

TEST(hdr_short_image)
{
    /* An image shorter than the header page cannot be trusted for anything past its end. */
    fresh();
    ASSERT_ERR(shml__hdr_validate(image, 100, OBJ), -SHML_ECORRUPT);
    ASSERT_ERR(shml__hdr_validate(image, 4095, OBJ), -SHML_ECORRUPT);
}

TEST(hdr_attach_fields)
{
    fresh();
    H->attach_off = 2048;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->attach_off = 4096; /* outside the header page */
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->attach_cap = SHML_ATTACH_CAP - 1;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->attach_cap = 0;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->attach_cap = 100000; /* the table would run far past the header */
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    fresh();
    H->attach_size = 16;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

TEST(hdr_checksum_mismatch)
{
    fresh();
    H->check ^= 1;
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);

    /* A flipped byte in any checked field is caught. */
    fresh();
    H->label[3] ^= 0x20;
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    fresh();
    H->creator_pid ^= 1;
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    fresh();
    H->created_ns ^= 1;
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
    fresh();
    H->boot_id[15] ^= 1;
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

/* FORMAT.md: flags "bit 0: huge pages; other bits must be 0 in version 1". */
TEST(hdr_unknown_flags)
{
    fresh();
    H->flags = 0x4;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_EVERSION); /* a feature of a later layout */

    fresh();
    H->flags = 0x80000000u;
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_EVERSION);
}

TEST(hdr_label_unterminated)
{
    fresh();
    memset(H->label, 'x', sizeof H->label);
    reseal();
    ASSERT_ERR(validate(OBJ), -SHML_ECORRUPT);
}

TEST(hdr_round_up)
{
    ASSERT_EQ(shml__round_up(0, 4096), 0u);
    ASSERT_EQ(shml__round_up(1, 4096), 4096u);
    ASSERT_EQ(shml__round_up(4096, 4096), 4096u);
    ASSERT_EQ(shml__round_up(4097, 4096), 8192u);
    ASSERT_EQ(shml__round_up(UINT64_MAX & ~(uint64_t)4095, 4096), UINT64_MAX & ~(uint64_t)4095);
    ASSERT_EQ(shml__round_up(UINT64_MAX, 4096), 0u);                  /* overflow */
    ASSERT_EQ(shml__round_up((UINT64_MAX & ~(uint64_t)4095) + 1, 4096), 0u);
}

/* ---- the attach table ---- */

static pid_t dead_pid(uint64_t *start)
{
    pid_t pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0)
        _exit(0);
    /* The child is a zombie until reaped: its start time is still readable. */
    for (int i = 0; i < 1000 && (*start = shmt_proc_start(pid)) == 0; i++)
        shmt_sleep_ms(1);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return pid;
}

TEST(attach_add_remove)
{
    fresh();
    uint64_t me = shmt_proc_start(getpid());
    int slot = shml__attach_add(H, getpid(), me, 0x1234);
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, (int)SHML_ATTACH_CAP);
    struct shml_attach *e = &H->attach[slot];
    ASSERT_EQ(atomic_load(&e->pid), (uint32_t)getpid());
    ASSERT_EQ(atomic_load(&e->valid), 1u);
    ASSERT_EQ(atomic_load(&e->start_time), me);
    ASSERT_EQ(atomic_load(&e->role), 0x1234u);
    ASSERT_GT(atomic_load(&e->since_ns), 0);

    int slot2 = shml__attach_add(H, getpid(), me, 0);
    ASSERT_GE(slot2, 0);
    ASSERT_NE(slot2, slot);

    shml__attach_remove(H, slot, getpid());
    ASSERT_EQ(atomic_load(&e->pid), 0u);
    ASSERT_EQ(atomic_load(&e->valid), 0u);
    ASSERT_EQ(atomic_load(&H->attach[slot2].pid), (uint32_t)getpid());
    /* Fields after `check` do not break the header. */
    ASSERT_OK(validate(OBJ));
}

TEST(attach_table_full)
{
    fresh();
    uint64_t me = shmt_proc_start(getpid());
    for (unsigned i = 0; i < SHML_ATTACH_CAP; i++)
        ASSERT_GE(shml__attach_add(H, getpid(), me, 0), 0);
    ASSERT_ERR(shml__attach_add(H, getpid(), me, 0), -ENOSPC);
    shml__attach_remove(H, 17, getpid());
    ASSERT_EQ(shml__attach_add(H, getpid(), me, 0), 17);
}

TEST(attach_reap)
{
    fresh();
    uint64_t me = shmt_proc_start(getpid());
    uint64_t dead_start = 0;
    pid_t dead = dead_pid(&dead_start);
    ASSERT_GT(dead_start, 0u);

    int live = shml__attach_add(H, getpid(), me, 0);
    int gone = shml__attach_add(H, dead, dead_start, 0);
    /* Our pid with another start time: the pid was reused, the attacher is dead. */
    int reused = shml__attach_add(H, getpid(), me + 12345, 0);
    ASSERT_GE(live, 0);
    ASSERT_GE(gone, 0);
    ASSERT_GE(reused, 0);

    ASSERT_EQ(shml__attach_reap(H), 2);
    ASSERT_EQ(atomic_load(&H->attach[live].pid), (uint32_t)getpid());
    ASSERT_EQ(atomic_load(&H->attach[gone].pid), 0u);
    ASSERT_EQ(atomic_load(&H->attach[reused].pid), 0u);
    ASSERT_EQ(shml__attach_reap(H), 0);
}
