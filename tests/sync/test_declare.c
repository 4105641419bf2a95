/*
 * Declared objects: shml_segment_declare() names the sync objects of a segment in its header,
 * and shml_segment_declared() reads their state from outside (a mutex's holder and whether it
 * is alive, an event's generation and sleepers, a semaphore's count). Every error of declare,
 * and concurrent declarations from several processes.
 */
#include "sync_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define DATA 4096

struct decl_area {
    shml_mutex m;     /* offset 0 */
    shml_event e;     /* 64 */
    shml_sem s;       /* 96 */
    shml_mutex blank; /* 128: declared, never initialised */
};
_Static_assert(offsetof(struct decl_area, e) == 64, "layout");
_Static_assert(offsetof(struct decl_area, s) == 96, "layout");
_Static_assert(offsetof(struct decl_area, blank) == 128, "layout");

static const struct shml_decl_info *find_decl(const struct shml_decl_info *d, size_t n,
                                              const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0)
            return &d[i];
    shmt_fail(__FILE__, __LINE__, "no declared object named \"%s\" among %zu", name, n);
}

/* Read the declarations of addr: exactly `want` of them. */
static void read_decls(const char *addr, struct shml_decl_info *d, size_t want)
{
    size_t n = 999;
    memset(d, 0xa5, sizeof *d * SHML_DECL_MAX);
    ASSERT_OK(shml_segment_declared(addr, d, SHML_DECL_MAX, &n));
    ASSERT_EQ(n, want);
}

/* Lock the mutex at offset 0 of argv[0], say "locked", wait to be killed. */
PEER(decl_hold)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct decl_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&a->m, WAIT_BOUND), 0);
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("never", 60000), 0);
    return 1;
}

/* Wait on the event of argv[0] past generation argv[1]. */
PEER(decl_wait)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct decl_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("waiting"), 0);
    ASSERT_ERR(shml_event_wait(&a->e, (uint32_t)strtoul(argv[1], NULL, 10), 30 * SEC), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

TEST(declared_state)
{
    const char *addr;
    shml_segment *seg;
    struct decl_area *a = sync_seg_create(DATA, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&a->m));
    ASSERT_OK(shml_event_init(&a->e));
    ASSERT_OK(shml_sem_init(&a->s, 2));
    struct shml_decl_info d[SHML_DECL_MAX];
    read_decls(addr, d, 0);

    ASSERT_OK(shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0));
    ASSERT_OK(shml_segment_declare(seg, "tick", SHML_DECL_EVENT, 64));
    ASSERT_OK(shml_segment_declare(seg, "slots", SHML_DECL_SEM, 96));
    ASSERT_OK(shml_segment_declare(seg, "blank", SHML_DECL_MUTEX, 128));
    read_decls(addr, d, 4);
    const struct shml_decl_info *m = find_decl(d, 4, "lock");
    const struct shml_decl_info *e = find_decl(d, 4, "tick");
    const struct shml_decl_info *s = find_decl(d, 4, "slots");
    const struct shml_decl_info *b = find_decl(d, 4, "blank");
    ASSERT_EQ(m->type, SHML_DECL_MUTEX);
    ASSERT_EQ(m->offset, 0u);
    ASSERT_EQ(m->status, 0);
    ASSERT_EQ(m->mutex.state, SHML_MUTEX_FREE);
    ASSERT_EQ(e->type, SHML_DECL_EVENT);
    ASSERT_EQ(e->offset, 64u);
    ASSERT_EQ(e->status, 0);
    ASSERT_EQ(e->generation, 0u);
    ASSERT_EQ(e->waiters, 0u);
    ASSERT_EQ(s->type, SHML_DECL_SEM);
    ASSERT_EQ(s->offset, 96u);
    ASSERT_EQ(s->status, 0);
    ASSERT_EQ(s->value, 2u);
    ASSERT_EQ(s->waiters, 0u);
    ASSERT_EQ(b->type, SHML_DECL_MUTEX);
    ASSERT_EQ(b->offset, 128u);
    ASSERT_ERR(b->status, -EINVAL);

    /* Fewer slots than declarations: n still says how many there are. */
    size_t n = 0;
    ASSERT_OK(shml_segment_declared(addr, d, 2, &n));
    ASSERT_EQ(n, 4u);
    ASSERT_OK(shml_segment_declared(addr, NULL, 0, &n));
    ASSERT_EQ(n, 4u);

    /* State changes show. */
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(shml_event_notify(&a->e, SHML_WAKE_ALL));
        ASSERT_OK(shml_sem_post(&a->s));
    }
    pid_t w = spawn_peer("decl_wait", addr, "3");
    ASSERT_EQ(peer_expect(w, "waiting", 20000), 0);
    AWAIT_FUTEX(w, w, 10000);
    pid_t h = spawn_peer("decl_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 20000), 0);
    read_decls(addr, d, 4);
    m = find_decl(d, 4, "lock");
    e = find_decl(d, 4, "tick");
    s = find_decl(d, 4, "slots");
    ASSERT_EQ(m->mutex.state, SHML_MUTEX_HELD);
    ASSERT_EQ(m->mutex.pid, h);
    ASSERT_EQ(m->mutex.owner, h);
    ASSERT_EQ(m->mutex.alive, 1);
    ASSERT_EQ(e->generation, 3u);
    ASSERT_EQ(e->waiters, 1u);
    ASSERT_EQ(s->value, 5u);

    /* The holder dies: OWNER_DEAD, with its pid, not alive. */
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    read_decls(addr, d, 4);
    m = find_decl(d, 4, "lock");
    ASSERT_EQ(m->mutex.state, SHML_MUTEX_OWNER_DEAD);
    ASSERT_EQ(m->mutex.owner, h);
    ASSERT_EQ(m->mutex.alive, 0);

    ASSERT_OK(shml_event_notify(&a->e, SHML_WAKE_ALL));
    ASSERT_EQ(wait_peer(w, 20000), 0);
    read_decls(addr, d, 4);
    e = find_decl(d, 4, "tick");
    ASSERT_EQ(e->generation, 4u);
    ASSERT_EQ(e->waiters, 0u);

    /* Reading the declarations attaches nothing. */
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(addr, &info, NULL, 0, NULL));
    ASSERT_EQ(info.attached, 1u);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(declare_errors)
{
    const char *addr;
    shml_segment *seg;
    sync_seg_create(DATA, &addr, &seg);

    ASSERT_OK(shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0));
    /* Duplicate name, whatever the type or offset. */
    ASSERT_ERR(shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0), -EEXIST);
    ASSERT_ERR(shml_segment_declare(seg, "lock", SHML_DECL_EVENT, 64), -EEXIST);
    /* Bad type, bad names. */
    ASSERT_ERR(shml_segment_declare(seg, "t0", 0, 64), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "t4", 4, 64), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "", SHML_DECL_EVENT, 64), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, NULL, SHML_DECL_EVENT, 64), -EINVAL);
    char longest[SHML_DECL_NAME_MAX], too_long[SHML_DECL_NAME_MAX + 1];
    memset(longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'n', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    ASSERT_ERR(shml_segment_declare(seg, too_long, SHML_DECL_EVENT, 64), -EINVAL);
    ASSERT_OK(shml_segment_declare(seg, longest, SHML_DECL_EVENT, 64));
    /* Misaligned offsets. */
    ASSERT_ERR(shml_segment_declare(seg, "m4", SHML_DECL_MUTEX, 4), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "m1", SHML_DECL_MUTEX, 1), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "e2", SHML_DECL_EVENT, 2), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "s1", SHML_DECL_SEM, 1), -EINVAL);
    /* Objects past the end, including offsets that would wrap around. */
    ASSERT_ERR(shml_segment_declare(seg, "m_end", SHML_DECL_MUTEX, DATA - 56), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "m_at", SHML_DECL_MUTEX, DATA), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "e_end", SHML_DECL_EVENT, DATA - 8), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "s_end", SHML_DECL_SEM, DATA - 8), -EINVAL);
    ASSERT_ERR(shml_segment_declare(seg, "wrap", SHML_DECL_MUTEX, SIZE_MAX & ~(size_t)63),
               -EINVAL);
    /* The last object that fits. */
    ASSERT_OK(shml_segment_declare(seg, "m_last", SHML_DECL_MUTEX, DATA - 64));
    ASSERT_OK(shml_segment_declare(seg, "s_last", SHML_DECL_SEM, DATA - 80));

    size_t n = 0;
    ASSERT_OK(shml_segment_declared(addr, NULL, 0, &n));
    ASSERT_EQ(n, 4u);

    /* A read-only handle cannot declare. */
    shml_segment *ro;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_RDONLY;
    ASSERT_OK(shml_segment_open(addr, &o, &ro));
    ASSERT_ERR(shml_segment_declare(ro, "ro", SHML_DECL_SEM, 128), -EBADF);
    ASSERT_OK(shml_segment_close(ro));
    ASSERT_OK(shml_segment_declared(addr, NULL, 0, &n));
    ASSERT_EQ(n, 4u);
    ASSERT_OK(shml_segment_close(seg));

    /* Nothing there. */
    ASSERT_ERR(shml_segment_declared(shmt_fmt("posix:/%s", shmt_posix_name()), NULL, 0, &n),
               -ENOENT);
}

TEST(declare_table_full)
{
    const char *addr;
    shml_segment *seg;
    sync_seg_create(DATA, &addr, &seg);
    for (int i = 0; i < SHML_DECL_MAX; i++)
        ASSERT_OK(shml_segment_declare(seg, shmt_fmt("obj%d", i), SHML_DECL_SEM,
                                       (size_t)i * 16));
    ASSERT_ERR(shml_segment_declare(seg, "one_more", SHML_DECL_SEM, 512), -ENOSPC);
    struct shml_decl_info d[SHML_DECL_MAX];
    read_decls(addr, d, SHML_DECL_MAX);
    for (int i = 0; i < SHML_DECL_MAX; i++)
        ASSERT_EQ(find_decl(d, SHML_DECL_MAX, shmt_fmt("obj%d", i))->offset,
                  (uint64_t)i * 16);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * Raw segments declare nothing: declare is -EINVAL, declared() -SHML_ENOTSHML, at once, as
 * shml_segment_stat() and open report them; whether the foreign bytes are data or still blank.
 */
TEST(declare_raw_segment)
{
    const char *addr = shmt_fmt("posix:/%s", shmt_posix_name());
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_RAW;
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 2 * DATA, &o, &seg));
    ASSERT_ERR(shml_segment_declare(seg, "lock", SHML_DECL_MUTEX, 0), -EINVAL);
    size_t n = 0;
    struct shml_decl_info d[1];
    /* Foreign data. */
    shmt_fill(shml_segment_data(seg), 2 * DATA, 3);
    ASSERT_ERR(shml_segment_declared(addr, d, 1, &n), -SHML_ENOTSHML);
    ASSERT_EQ(n, 0u);
    /* Blank (all zero), as a foreign program's fresh object is. */
    memset(shml_segment_data(seg), 0, 2 * DATA);
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(addr, &info, NULL, 0, NULL));
    ASSERT_ERR(info.status, -SHML_ENOTSHML);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_segment_declared(addr, d, 1, &n), -SHML_ENOTSHML);
    ASSERT_LT(now_ns() - t0, SEC);
    ASSERT_OK(shml_segment_close(seg));
}

/* argv: address, index. On "go": declare "pINDEXa", "pINDEXb" and "shared"; print results. */
PEER(decl_racer)
{
    ASSERT_EQ(argc, 2);
    int idx = atoi(argv[1]);
    shml_segment *seg;
    sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("ready"), 0);
    ASSERT_EQ(parent_expect("go", 60000), 0);
    int ra = shml_segment_declare(seg, shmt_fmt("p%da", idx), SHML_DECL_SEM,
                                  (size_t)idx * 64);
    int rs = shml_segment_declare(seg, "shared", SHML_DECL_EVENT, 1024);
    int rb = shml_segment_declare(seg, shmt_fmt("p%db", idx), SHML_DECL_EVENT,
                                  (size_t)idx * 64 + 32);
    ASSERT_EQ(parent_send(shmt_fmt("%d %d %d", ra, rs, rb)), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* Three processes declare at once: nothing is lost, "shared" is won exactly once. */
TEST(declare_concurrent)
{
    enum { P = 3 };
    for (int round = 0; round < 5; round++) {
        const char *addr;
        shml_segment *seg;
        sync_seg_create(DATA, &addr, &seg);
        pid_t p[P];
        for (int i = 0; i < P; i++)
            p[i] = spawn_peer("decl_racer", addr, shmt_fmt("%d", i));
        for (int i = 0; i < P; i++)
            ASSERT_EQ(peer_expect(p[i], "ready", 20000), 0);
        for (int i = 0; i < P; i++)
            ASSERT_EQ(peer_send(p[i], "go"), 0);
        int winners = 0;
        for (int i = 0; i < P; i++) {
            char line[128];
            ASSERT_EQ(peer_recv(p[i], line, sizeof line, 20000), 0);
            int ra, rs, rb;
            ASSERT_EQ(sscanf(line, "%d %d %d", &ra, &rs, &rb), 3);
            ASSERT_ERR(ra, 0);
            ASSERT_ERR(rb, 0);
            if (rs == 0)
                winners++;
            else
                ASSERT_ERR(rs, -EEXIST);
            ASSERT_EQ(wait_peer(p[i], 20000), 0);
        }
        ASSERT_EQ(winners, 1);
        struct shml_decl_info d[SHML_DECL_MAX];
        read_decls(addr, d, 2 * P + 1);
        for (int i = 0; i < P; i++) {
            ASSERT_EQ(find_decl(d, 2 * P + 1, shmt_fmt("p%da", i))->type, SHML_DECL_SEM);
            ASSERT_EQ(find_decl(d, 2 * P + 1, shmt_fmt("p%db", i))->type, SHML_DECL_EVENT);
        }
        ASSERT_EQ(find_decl(d, 2 * P + 1, "shared")->offset, 1024u);
        ASSERT_OK(shml_segment_close(seg));
    }
}
