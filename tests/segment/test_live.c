/*
 * Liveness and cleanup: what stat reports about the creator and the attach table, how dead
 * attachers are seen and reclaimed, what gc removes (abandoned shmlink segments only), and
 * a multi-process open/close stress per backend after which the table must be empty.
 */
#include "seg_util.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- stat ---- */

static void stat_fields(enum bk b)
{
    const char *addr = new_addr(b);
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = 0640;
    o.kind = 3;
    o.label = "camera frames";
    int64_t before = real_ns();
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, &o, &seg));
    int64_t after = real_ns();

    static struct shml_attach_info att[MAX_ATT];
    struct shml_segment_info info;
    size_t n = 999;
    STAT_OK(addr, &info, att, &n);
    ASSERT_STR_EQ(info.address, shml_segment_address(seg));
    ASSERT_EQ(info.backend, bk_backend(b));
    ASSERT_EQ(info.status, 0);
    ASSERT_TRUE(info.managed);
    ASSERT_EQ(info.kind, 3u);
    ASSERT_EQ(info.version, SHML_LAYOUT_VERSION);
    ASSERT_EQ(info.header_size, 4096u);
    ASSERT_EQ(info.hdr_flags, 0u);
    ASSERT_EQ(info.size, 5000u);
    ASSERT_GE(info.object_size, managed_map_size(5000));
    if (b != BK_SYSV_KEY)
        ASSERT_EQ(info.object_size, managed_map_size(5000));
    ASSERT_EQ(info.mode & 0777, 0640u);
    ASSERT_EQ(info.uid, geteuid());
    ASSERT_EQ(info.creator_pid, getpid());
    ASSERT_EQ(info.creator_start, shmt_proc_start(getpid()));
    ASSERT_EQ(info.creator_alive, 1);
    ASSERT_GE(info.created_ns, before);
    ASSERT_LE(info.created_ns, after);
    ASSERT_FALSE(info.other_boot);
    ASSERT_STR_EQ(info.label, "camera frames");
    /* The creator's own handle is in the table (FORMAT.md: "records itself"). */
    ASSERT_EQ(info.attached, 1u);
    ASSERT_EQ(info.attach_dead, 0u);
    ASSERT_EQ(info.untracked, 0u);
    ASSERT_EQ(n, 1u);
    ASSERT_EQ(att[0].pid, getpid());
    ASSERT_EQ(att[0].role, SHML_ROLE_CREATOR);
    ASSERT_EQ(att[0].alive, 1);
    ASSERT_EQ(att[0].start_time, shmt_proc_start(getpid()));
    ASSERT_GE(att[0].since_ns, before);
    ASSERT_LE(att[0].since_ns, after);

    /* stat does not attach. */
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.attached, 1u);
    ASSERT_OK(shml_segment_close(seg));
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_EQ(n, 0u);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(stat_fields_posix)
{
    stat_fields(BK_POSIX);
}

TEST(stat_fields_sysv)
{
    stat_fields(BK_SYSV_KEY);
}

TEST(stat_fields_file)
{
    stat_fields(BK_FILE);
}

/* ---- the attach table ---- */

/* Open argv[0] with flags argv[1] and role argv[2], say "opened", wait for "bye", close. */
PEER(attach_hold)
{
    ASSERT_EQ(argc, 3);
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = (uint32_t)strtoul(argv[1], NULL, 0);
    o.role = (uint32_t)strtoul(argv[2], NULL, 0);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(argv[0], &o, &seg));
    ASSERT_EQ(parent_send("opened"), 0);
    ASSERT_EQ(parent_expect("bye", 60000), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

static pid_t hold(const char *addr, uint32_t flags, uint32_t role)
{
    pid_t p = spawn_peer("attach_hold", addr, shmt_fmt("0x%x", flags), shmt_fmt("0x%x", role));
    ASSERT_EQ(peer_expect(p, "opened", 20000), 0);
    return p;
}

static void attach_liveness(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *creator = NULL, *again = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &creator));
    static struct shml_attach_info att[MAX_ATT];
    struct shml_segment_info info;
    size_t n;

    /* A peer that closes properly leaves no trace. */
    pid_t p = hold(addr, 0, 0x1234);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 2u);
    ASSERT_EQ(n, 2u);
    const struct shml_attach_info *e = find_att(att, n, p);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->role, 0x1234u);
    ASSERT_EQ(e->alive, 1);
    ASSERT_EQ(e->start_time, shmt_proc_start(p));
    ASSERT_EQ(peer_send(p, "bye"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 1u);
    ASSERT_EQ(n, 1u);
    ASSERT_NULL(find_att(att, n, p));

    /* A peer killed while attached: its entry stays, marked dead. */
    p = hold(addr, 0, 0x4321);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 2u);
    ASSERT_NOT_NULL(find_att(att, n, p));
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 1u);
    ASSERT_EQ(info.attach_dead, 1u);
    ASSERT_EQ(n, 2u);
    e = find_att(att, n, p);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->alive, 0);
    ASSERT_EQ(e->role, 0x4321u);
    ASSERT_EQ(info.creator_alive, 1);

    /* The next open reclaims the dead entry. */
    ASSERT_OK(shml_segment_open(addr, NULL, &again));
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attach_dead, 0u);
    ASSERT_NULL(find_att(att, n, p));
    ASSERT_EQ(info.attached, 2u);
    ASSERT_EQ(n, 2u);
    ASSERT_OK(shml_segment_close(again));
    ASSERT_OK(shml_segment_close(creator));
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_EQ(n, 0u);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(attach_liveness_posix)
{
    attach_liveness(BK_POSIX);
}

TEST(attach_liveness_sysv)
{
    attach_liveness(BK_SYSV_KEY);
}

TEST(attach_liveness_file)
{
    attach_liveness(BK_FILE);
}

TEST(noattach_and_rdonly_are_not_recorded)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *creator = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &creator));
    ASSERT_OK(shml_segment_close(creator));
    static struct shml_attach_info att[MAX_ATT];
    struct shml_segment_info info;
    size_t n;

    pid_t p1 = hold(addr, SHML_NOATTACH, 0);
    pid_t p2 = hold(addr, SHML_RDONLY, 0); /* FORMAT.md: read-only handles are not recorded */
    pid_t p3 = hold(addr, 0, 0);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 1u);
    ASSERT_EQ(n, 1u);
    ASSERT_NULL(find_att(att, n, p1));
    ASSERT_NULL(find_att(att, n, p2));
    ASSERT_NOT_NULL(find_att(att, n, p3));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(peer_send(i == 0 ? p1 : i == 1 ? p2 : p3, "bye"), 0);
    ASSERT_EQ(wait_peer(p1, 20000), 0);
    ASSERT_EQ(wait_peer(p2, 20000), 0);
    ASSERT_EQ(wait_peer(p3, 20000), 0);
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(attach_table_full_is_untracked)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 100, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    enum { N = SHML_ATTACH_CAP + 4 };
    static shml_segment *h[N];
    for (int i = 0; i < N; i++)
        ASSERT_OK(shml_segment_open(addr, NULL, &h[i])); /* a full table is not an error */
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.attached, SHML_ATTACH_CAP);
    ASSERT_EQ(info.untracked, 4u);
    for (int i = 0; i < N; i++)
        ASSERT_OK(shml_segment_close(h[i]));
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_EQ(info.untracked, 0u);
    ASSERT_OK(shml_segment_unlink(addr));
}

/* ---- gc ---- */

/* Create managed segment argv[0] (argv[1] = "raw" for a foreign one) and exit. */
PEER(create_exit)
{
    ASSERT_EQ(argc, 2);
    struct shml_segment_opts o = opts_of(strcmp(argv[1], "raw") == 0     ? SHML_RAW
                                         : strcmp(argv[1], "owned") == 0 ? SHML_OWNED
                                                                         : 0);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(argv[0], 5000, &o, &seg));
    shmt_fill(shml_segment_data(seg), 5000, 41);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

static void create_by_dead(const char *addr, const char *how)
{
    pid_t p = spawn_peer("create_exit", addr, how);
    ASSERT_EQ(wait_peer(p, 20000), 0);
}

/* Is the segment at `addr` (canonical `canon`) in the list? */
static bool listed(const struct shml_segment_info *v, size_t n, const char *canon)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].address, canon) == 0)
            return true;
    return false;
}

static const char *canonical(const char *addr)
{
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    return shmt_fmt("%s", info.address);
}

static bool exists(const char *addr)
{
    struct shml_segment_info info;
    int r = shml_segment_stat(addr, &info, NULL, 0, NULL);
    if (r != 0 && r != -ENOENT)
        shmt_fail(__FILE__, __LINE__, "stat(%s) = %d (%s)", addr, r, shml_strerror(r));
    return r == 0;
}

static void gc_ok(bool dry, struct shml_segment_info **v, size_t *n)
{
    *v = NULL;
    *n = 12345;
    ASSERT_OK(shml_gc(dry, v, n));
    if (*n > 0)
        ASSERT_NOT_NULL(*v);
}

/*
 * gc removes what is provably abandoned (owned segments whose creator and attachers are all
 * gone) and never a segment made to outlive its creator, whoever has died.
 */
TEST_TIMEOUT(gc_removes_only_abandoned, 90)
{
    /* Owned and abandoned: creator dead, nobody attached. */
    const char *a_posix = new_addr(BK_POSIX), *a_sysv = new_addr(BK_SYSV_KEY);
    create_by_dead(a_posix, "owned");
    create_by_dead(a_sysv, "owned");
    /* Owned, creator dead, but someone still attached (in the table, or mapping it unrecorded). */
    const char *held = new_addr(BK_POSIX), *held_noattach = new_addr(BK_POSIX);
    const char *held_sysv = new_addr(BK_SYSV_KEY);
    create_by_dead(held, "owned");
    create_by_dead(held_noattach, "owned");
    create_by_dead(held_sysv, "owned");
    /* Made to outlive their creator (the default), which has exited: written, to be read later. */
    const char *p_posix = new_addr(BK_POSIX), *p_sysv = new_addr(BK_SYSV_KEY);
    create_by_dead(p_posix, "managed");
    create_by_dead(p_sysv, "managed");
    pid_t h1 = hold(held, 0, 0), h2 = hold(held_noattach, SHML_NOATTACH, 0);
    pid_t h3 = hold(held_sysv, 0, 0);
    /* Creator alive (us). */
    const char *mine = new_addr(BK_POSIX);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(mine, 100, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    /* Foreign segments whose makers are dead. */
    const char *f_posix = new_addr(BK_POSIX), *f_sysv = new_addr(BK_SYSV_KEY);
    create_by_dead(f_posix, "raw");
    create_by_dead(f_sysv, "raw");

    /*
     * Another gc on the machine (a test outside this suite, an operator) may remove an
     * abandoned segment before ours does: that is right, so for abandoned segments "ours
     * listed it, or it is gone" is what is checked. Everything else must stay, whoever runs gc.
     */
    struct shml_segment_info info;
    STAT_OK(held, &info, NULL, NULL);
    ASSERT_EQ(info.creator_alive, 0);
    const char *c_held = canonical(held), *c_held_na = canonical(held_noattach);
    const char *c_held_sysv = canonical(held_sysv), *c_mine = canonical(mine);
    const char *c_f_posix = canonical(f_posix), *c_f_sysv = canonical(f_sysv);
    const char *c_p_posix = canonical(p_posix), *c_p_sysv = canonical(p_sysv);
    const char *c_a_posix = shmt_fmt("%s", a_posix);

    /* The verdicts, with their reasons, before any gc runs. */
    const char *why = NULL;
    STAT_OK(p_posix, &info, NULL, NULL);
    ASSERT_EQ(info.creator_alive, 0);
    ASSERT_EQ(info.hdr_flags & SHML_OWNED, 0u);
    ASSERT_EQ(shml_gc_verdict(&info, &why), SHML_GC_KEEP_PERSISTENT);
    ASSERT_STR_EQ(why, "persistent: lives until removed");
    STAT_OK(held, &info, NULL, NULL);
    ASSERT_EQ(info.hdr_flags & SHML_OWNED, SHML_OWNED);
    ASSERT_EQ(shml_gc_verdict(&info, &why), SHML_GC_KEEP_IN_USE);
    STAT_OK(held_noattach, &info, NULL, NULL);
    ASSERT_EQ(shml_gc_verdict(&info, &why), SHML_GC_KEEP_IN_USE);
    ASSERT_STR_EQ(why, "owned: a process maps it");
    STAT_OK(mine, &info, NULL, NULL);
    ASSERT_EQ(shml_gc_verdict(&info, NULL), SHML_GC_KEEP_PERSISTENT);
    STAT_OK(f_posix, &info, NULL, NULL);
    ASSERT_EQ(shml_gc_verdict(&info, NULL), SHML_GC_KEEP_FOREIGN);
    if (exists(a_posix)) {
        STAT_OK(a_posix, &info, NULL, NULL);
        ASSERT_EQ(shml_gc_verdict(&info, &why), SHML_GC_REMOVE_ORPHANED);
    }
    ASSERT_ERR(shml_gc_verdict(NULL, NULL), -EINVAL);
    const char *c_a_sysv = exists(a_sysv) ? canonical(a_sysv) : "(gone)";

    /* Dry run: says what it would remove, removes nothing. */
    struct shml_segment_info *v;
    size_t n;
    gc_ok(true, &v, &n);
    ASSERT_TRUE(listed(v, n, c_a_posix) || !exists(a_posix));
    ASSERT_TRUE(listed(v, n, c_a_sysv) || !exists(a_sysv));
    ASSERT_FALSE(listed(v, n, c_held));
    ASSERT_FALSE(listed(v, n, c_held_na));
    ASSERT_FALSE(listed(v, n, c_held_sysv));
    ASSERT_FALSE(listed(v, n, c_mine));
    ASSERT_FALSE(listed(v, n, c_f_posix));
    ASSERT_FALSE(listed(v, n, c_f_sysv));
    ASSERT_FALSE(listed(v, n, c_p_posix));
    ASSERT_FALSE(listed(v, n, c_p_sysv));
    shml_free(v);

    gc_ok(false, &v, &n);
    ASSERT_TRUE(listed(v, n, c_a_posix) || !exists(a_posix));
    ASSERT_TRUE(listed(v, n, c_a_sysv) || !exists(a_sysv));
    ASSERT_FALSE(listed(v, n, c_held));
    ASSERT_FALSE(listed(v, n, c_held_na));
    ASSERT_FALSE(listed(v, n, c_held_sysv));
    shml_free(v);
    ASSERT_FALSE(exists(a_posix));
    ASSERT_FALSE(exists(a_sysv));
    ASSERT_TRUE(exists(held));
    ASSERT_TRUE(exists(held_noattach));
    ASSERT_TRUE(exists(held_sysv));
    ASSERT_TRUE(exists(mine));
    ASSERT_TRUE(exists(f_posix));
    ASSERT_TRUE(exists(f_sysv));

    /* The holders die: now those are abandoned too. */
    ASSERT_EQ(kill_peer(h1, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(kill_peer(h2, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(kill_peer(h3, SIGKILL), 128 + SIGKILL);
    gc_ok(false, &v, &n);
    ASSERT_TRUE(listed(v, n, c_held) || !exists(held));
    ASSERT_TRUE(listed(v, n, c_held_na) || !exists(held_noattach));
    ASSERT_TRUE(listed(v, n, c_held_sysv) || !exists(held_sysv));
    ASSERT_FALSE(listed(v, n, c_mine));
    ASSERT_FALSE(listed(v, n, c_f_posix));
    ASSERT_FALSE(listed(v, n, c_f_sysv));
    ASSERT_FALSE(listed(v, n, c_p_posix));
    ASSERT_FALSE(listed(v, n, c_p_sysv));
    shml_free(v);
    ASSERT_FALSE(exists(held));
    ASSERT_FALSE(exists(held_noattach));
    ASSERT_FALSE(exists(held_sysv));
    ASSERT_TRUE(exists(mine));
    ASSERT_TRUE(exists(f_posix));
    ASSERT_TRUE(exists(f_sysv));
    /* What a program wrote before it exited is still there to read. */
    ASSERT_TRUE(exists(p_posix));
    ASSERT_TRUE(exists(p_sysv));
    ASSERT_OK(shml_segment_unlink(p_posix));
    ASSERT_OK(shml_segment_unlink(p_sysv));
    ASSERT_OK(shml_segment_unlink(mine));
    ASSERT_OK(shml_segment_unlink(f_posix));
    ASSERT_OK(shml_segment_unlink(f_sysv));
    /* A NULL out list is fine. */
    ASSERT_OK(shml_gc(true, NULL, NULL));
    /* Ownership is recorded in a header, at create. */
    struct shml_segment_opts o = opts_of(SHML_OWNED | SHML_RAW);
    ASSERT_ERR(shml_segment_create(new_addr(BK_POSIX), 100, &o, &seg), -EINVAL);
    o = opts_of(SHML_OWNED);
    ASSERT_ERR(shml_segment_open(mine, &o, &seg), -EINVAL);
}

/* ---- list ---- */

TEST(list_finds_segments)
{
    const char *m_posix = new_addr(BK_POSIX), *m_sysv = new_addr(BK_SYSV_KEY);
    const char *f_posix = new_addr(BK_POSIX), *f_sysv = new_addr(BK_SYSV_KEY);
    shml_segment *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_OK(shml_segment_create(m_posix, 100, NULL, &s1));
    ASSERT_OK(shml_segment_create(m_sysv, 100, NULL, &s2));
    ASSERT_OK(shml_segment_create(f_posix, 100, &raw, &s3));
    ASSERT_OK(shml_segment_create(f_sysv, 100, &raw, &s4));
    const char *c_m_posix = canonical(m_posix), *c_m_sysv = canonical(m_sysv);
    const char *c_f_posix = canonical(f_posix), *c_f_sysv = canonical(f_sysv);

    struct shml_segment_info *v = NULL;
    size_t n = 0;
    ASSERT_OK(shml_segment_list(0, &v, &n));
    ASSERT_TRUE(listed(v, n, c_m_posix));
    ASSERT_TRUE(listed(v, n, c_m_sysv));
    ASSERT_FALSE(listed(v, n, c_f_posix));
    ASSERT_FALSE(listed(v, n, c_f_sysv));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].address, c_m_posix) == 0) {
            ASSERT_TRUE(v[i].managed);
            ASSERT_EQ(v[i].size, 100u);
            ASSERT_EQ(v[i].backend, SHML_BACKEND_POSIX);
            ASSERT_EQ(v[i].creator_pid, getpid());
        }
        if (i > 0)
            ASSERT_LT(strcmp(v[i - 1].address, v[i].address), 0); /* sorted, no duplicates */
    }
    shml_free(v);

    ASSERT_OK(shml_segment_list(SHML_LIST_ALL, &v, &n));
    ASSERT_TRUE(listed(v, n, c_m_posix));
    ASSERT_TRUE(listed(v, n, c_m_sysv));
    ASSERT_TRUE(listed(v, n, c_f_posix));
    ASSERT_TRUE(listed(v, n, c_f_sysv));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].address, c_f_posix) == 0 || strcmp(v[i].address, c_f_sysv) == 0) {
            ASSERT_FALSE(v[i].managed);
            ASSERT_EQ(v[i].size, 100u);
        }
        if (i > 0)
            ASSERT_LT(strcmp(v[i - 1].address, v[i].address), 0);
    }
    shml_free(v);

    ASSERT_OK(shml_segment_close(s1));
    ASSERT_OK(shml_segment_close(s2));
    ASSERT_OK(shml_segment_close(s3));
    ASSERT_OK(shml_segment_close(s4));
    ASSERT_OK(shml_segment_unlink(m_posix));
    ASSERT_OK(shml_segment_unlink(m_sysv));
    ASSERT_OK(shml_segment_unlink(f_posix));
    ASSERT_OK(shml_segment_unlink(f_sysv));
    ASSERT_OK(shml_segment_list(0, &v, &n));
    ASSERT_FALSE(listed(v, n, c_m_posix));
    ASSERT_FALSE(listed(v, n, c_m_sysv));
    shml_free(v);
}

/* ---- stress: many processes opening and closing at once ---- */

#define STRESS_PEERS 4
#define STRESS_ITERS 1000

/* Open/close argv[0] ("fd:N" for an inherited fd) argv[2] times, counting in slot argv[1]. */
PEER(stress_worker)
{
    ASSERT_EQ(argc, 3);
    const char *addr = argv[0];
    int slot = atoi(argv[1]), iters = atoi(argv[2]);
    ASSERT_EQ(parent_expect("go", 30000), 0);
    for (int i = 0; i < iters; i++) {
        shml_segment *seg = NULL;
        if (strncmp(addr, "fd:", 3) == 0)
            ASSERT_OK(shml_segment_from_fd(atoi(addr + 3), NULL, &seg));
        else
            ASSERT_OK(shml_segment_open(addr, NULL, &seg));
        uint64_t *ctr = (uint64_t *)((char *)shml_segment_data(seg) + 128 * slot);
        *ctr += 1; /* our own cache line: no other process writes it */
        ASSERT_OK(shml_segment_close(seg));
    }
    return 0;
}

static void run_workers(const char *target)
{
    pid_t p[STRESS_PEERS];
    for (int i = 0; i < STRESS_PEERS; i++)
        p[i] = spawn_peer("stress_worker", target, shmt_fmt("%d", i),
                          shmt_fmt("%d", STRESS_ITERS));
    for (int i = 0; i < STRESS_PEERS; i++)
        ASSERT_EQ(peer_send(p[i], "go"), 0);
    for (int i = 0; i < STRESS_PEERS; i++)
        ASSERT_EQ(wait_peer(p[i], 200000), 0);
}

static void check_counters(const void *data)
{
    for (int i = 0; i < STRESS_PEERS; i++)
        ASSERT_EQ(*(const uint64_t *)((const char *)data + 128 * i), (uint64_t)STRESS_ITERS);
}

static void stress(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 4096, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    run_workers(addr);
    static struct shml_attach_info att[MAX_ATT];
    struct shml_segment_info info;
    size_t n;
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_EQ(info.attach_dead, 0u);
    ASSERT_EQ(info.untracked, 0u);
    ASSERT_EQ(n, 0u);
    struct shml_segment_opts o = opts_of(SHML_NOATTACH);
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    check_counters(shml_segment_data(seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST_TIMEOUT(stress_open_close_posix, 240)
{
    stress(BK_POSIX);
}

TEST_TIMEOUT(stress_open_close_sysv, 240)
{
    stress(BK_SYSV_KEY);
}

TEST_TIMEOUT(stress_open_close_file, 240)
{
    stress(BK_FILE);
}

TEST_TIMEOUT(stress_open_close_memfd, 240)
{
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create("memfd:shmt-stress", 4096, NULL, &seg));
    int fd = dup(shml_segment_fd(seg));
    ASSERT_SYS(fd);
    run_workers(shmt_fmt("fd:%d", fd));
    close(fd);
    check_counters(shml_segment_data(seg));
    /* Only the creator's entry is left in the table. */
    const struct shml_hdr *h = (const struct shml_hdr *)((const char *)shml_segment_data(seg) - 4096);
    unsigned used = 0;
    for (unsigned i = 0; i < SHML_ATTACH_CAP; i++) {
        uint32_t pid = atomic_load_explicit(&h->attach[i].pid, memory_order_acquire);
        if (pid != 0) {
            used++;
            ASSERT_EQ(pid, (uint32_t)getpid());
        }
    }
    ASSERT_EQ(used, 1u);
    ASSERT_EQ(atomic_load_explicit(&h->untracked, memory_order_acquire), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- gc of corrupt segments and of creators' temporaries ---- */

/* Flip a label byte of segment `addr` (raw handle, closed again): the checksum breaks. */
static void break_checksum(const char *addr)
{
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    uint8_t c;
    ASSERT_EQ(shml_segment_read(seg, 80, &c, 1), 1);
    c ^= 0x01;
    ASSERT_EQ(shml_segment_write(seg, 80, &c, 1), 1);
    ASSERT_OK(shml_segment_close(seg));
}

static void bump_version(const char *addr)
{
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    struct shml_hdr h;
    ASSERT_EQ(shml_segment_read(seg, 0, &h, sizeof h), (ssize_t)sizeof h);
    h.version = SHML_LAYOUT_VERSION + 1;
    h.check = hdr_check(&h);
    ASSERT_EQ(shml_segment_write(seg, 0, &h, SHML_HDR_CHECKED_LEN + 4),
              (ssize_t)SHML_HDR_CHECKED_LEN + 4);
    ASSERT_OK(shml_segment_close(seg));
}

static void make_temporary(const char *name)
{
    shmt_cleanup_posix(name);
    int fd = shm_open(shmt_fmt("/%s", name), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, 8192));
    close(fd);
}

static bool posix_exists(const char *name)
{
    return access(shmt_fmt("/dev/shm/%s", name), F_OK) == 0;
}

TEST_TIMEOUT(gc_corrupt_and_temporaries, 90)
{
    /* Corrupt, old, nobody maps it: removed. The same but mapped by someone: kept. */
    const char *old_corrupt = new_addr(BK_POSIX), *old_corrupt_sysv = new_addr(BK_SYSV_KEY);
    const char *mapped_corrupt = new_addr(BK_POSIX);
    /* Another layout version: never touched, however old and abandoned. */
    const char *other_version = new_addr(BK_POSIX);
    create_by_dead(old_corrupt, "managed");
    create_by_dead(old_corrupt_sysv, "managed");
    create_by_dead(mapped_corrupt, "managed");
    create_by_dead(other_version, "managed");
    break_checksum(old_corrupt);
    break_checksum(old_corrupt_sysv);
    break_checksum(mapped_corrupt);
    bump_version(other_version);
    pid_t holder = hold(mapped_corrupt, SHML_RAW | SHML_NOATTACH, 0);

    /* Temporaries of a dead creator and of a live one (us). */
    pid_t dead = spawn_peer("report_and_wait_live");
    ASSERT_EQ(peer_expect(dead, "up", 10000), 0);
    ASSERT_EQ(kill_peer(dead, SIGKILL), 128 + SIGKILL);
    const char *tmp_dead = shmt_fmt(".shml-tmp-%d-1", (int)dead);
    const char *tmp_live = shmt_fmt(".shml-tmp-%d-1", (int)getpid());
    make_temporary(tmp_dead);
    make_temporary(tmp_live);

    /* Let the corrupt ones age past 5 s; then make a young corrupt one. */
    shmt_sleep_ms(5600);
    const char *young_corrupt = new_addr(BK_POSIX);
    create_by_dead(young_corrupt, "managed");
    break_checksum(young_corrupt);

    struct shml_segment_info info;
    STAT_OK(old_corrupt, &info, NULL, NULL);
    ASSERT_TRUE(info.shmlink);
    ASSERT_EQ(info.status, -SHML_ECORRUPT);
    STAT_OK(other_version, &info, NULL, NULL);
    ASSERT_TRUE(info.shmlink);
    ASSERT_EQ(info.status, -SHML_EVERSION);

    struct shml_segment_info *v;
    size_t n;
    gc_ok(true, &v, &n); /* dry run removes nothing */
    shml_free(v);
    ASSERT_TRUE(exists(old_corrupt));
    ASSERT_TRUE(posix_exists(tmp_dead));

    gc_ok(false, &v, &n);
    shml_free(v);
    ASSERT_FALSE(exists(old_corrupt));
    ASSERT_FALSE(exists(old_corrupt_sysv));
    ASSERT_FALSE(posix_exists(tmp_dead));
    ASSERT_TRUE(exists(mapped_corrupt));
    ASSERT_TRUE(exists(young_corrupt));
    ASSERT_TRUE(exists(other_version));
    ASSERT_TRUE(posix_exists(tmp_live));

    ASSERT_EQ(peer_send(holder, "bye"), 0);
    ASSERT_EQ(wait_peer(holder, 20000), 0);
    ASSERT_OK(shml_segment_unlink(mapped_corrupt));
    ASSERT_OK(shml_segment_unlink(young_corrupt));
    ASSERT_OK(shml_segment_unlink(other_version));
}

PEER(report_and_wait_live)
{
    (void)argc;
    (void)argv;
    ASSERT_EQ(parent_send("up"), 0);
    parent_expect("bye", 30000);
    return 0;
}

/* ---- many processes creating the same segment at once ---- */

#define RACE_PEERS 4
#define RACE_ROUNDS 25

/*
 * For each round: wait for "go", create argv[2 + round] (with SHML_OPEN_OR_CREATE if argv[0]
 * is "ooc"), and report "created", "eexist" or the error; with "excl", an EEXIST is followed by
 * an open, which must succeed. Count in slot argv[1] of the data.
 */
PEER(create_race)
{
    ASSERT_EQ(argc, 2 + RACE_ROUNDS);
    bool ooc = strcmp(argv[0], "ooc") == 0;
    int slot = atoi(argv[1]);
    for (int r = 0; r < RACE_ROUNDS; r++) {
        const char *addr = argv[2 + r];
        ASSERT_EQ(parent_expect("go", 30000), 0);
        struct shml_segment_opts o = opts_of(ooc ? SHML_OPEN_OR_CREATE : 0);
        shml_segment *seg = NULL;
        int rc = shml_segment_create(addr, 4096, &o, &seg);
        const char *what = "created";
        if (rc == -EEXIST && !ooc) {
            what = "eexist";
            rc = shml_segment_open(addr, NULL, &seg);
        }
        if (rc < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "error %d %s: %s", rc, shml_strerror(rc), shml_last_error());
            ASSERT_EQ(parent_send(msg), 0);
            return 1;
        }
        ASSERT_TRUE(shml_segment_is_managed(seg));
        ASSERT_EQ(shml_segment_size(seg), 4096u);
        ((uint8_t *)shml_segment_data(seg))[slot] += 1;
        ASSERT_OK(shml_segment_close(seg));
        ASSERT_EQ(parent_send(what), 0);
    }
    return 0;
}

static void create_race(enum bk b, bool ooc)
{
    const char *addrs[RACE_ROUNDS];
    for (int r = 0; r < RACE_ROUNDS; r++)
        addrs[r] = new_addr(b);
    pid_t p[RACE_PEERS];
    for (int i = 0; i < RACE_PEERS; i++) {
        const char *args[3 + RACE_ROUNDS + 1];
        args[0] = "create_race";
        args[1] = ooc ? "ooc" : "excl";
        args[2] = shmt_fmt("%d", i);
        for (int r = 0; r < RACE_ROUNDS; r++)
            args[3 + r] = addrs[r];
        args[3 + RACE_ROUNDS] = NULL;
        p[i] = shmt_spawn_peer(args);
    }
    for (int r = 0; r < RACE_ROUNDS; r++) {
        for (int i = 0; i < RACE_PEERS; i++)
            ASSERT_EQ(peer_send(p[i], "go"), 0);
        int created = 0;
        for (int i = 0; i < RACE_PEERS; i++) {
            char line[600];
            ASSERT_EQ(peer_recv(p[i], line, sizeof line, 30000), 0);
            if (strcmp(line, "created") == 0)
                created++;
            else if (strcmp(line, "eexist") != 0 || ooc)
                shmt_fail(__FILE__, __LINE__, "round %d, peer %d: %s", r, i, line);
        }
        if (!ooc)
            ASSERT_EQ(created, 1); /* exactly one creator, whatever the interleaving */
        shml_segment *seg = NULL;
        struct shml_segment_opts o = opts_of(SHML_NOATTACH);
        ASSERT_OK(shml_segment_open(addrs[r], &o, &seg));
        const uint8_t *d = shml_segment_data(seg);
        for (int i = 0; i < RACE_PEERS; i++)
            ASSERT_EQ(d[i], 1); /* nobody re-initialised it under another */
        ASSERT_OK(shml_segment_close(seg));
        struct shml_segment_info info;
        STAT_OK(addrs[r], &info, NULL, NULL);
        ASSERT_EQ(info.attached, 0u);
        bool by_peer = false;
        for (int i = 0; i < RACE_PEERS; i++)
            by_peer = by_peer || info.creator_pid == p[i];
        ASSERT_TRUE(by_peer);
        ASSERT_OK(shml_segment_unlink(addrs[r]));
    }
    for (int i = 0; i < RACE_PEERS; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
}

TEST_TIMEOUT(create_race_excl_posix, 120)
{
    create_race(BK_POSIX, false);
}

TEST_TIMEOUT(create_race_excl_sysv, 120)
{
    create_race(BK_SYSV_KEY, false);
}

TEST_TIMEOUT(create_race_excl_file, 120)
{
    create_race(BK_FILE, false);
}

TEST_TIMEOUT(create_race_open_or_create_posix, 120)
{
    create_race(BK_POSIX, true);
}

TEST_TIMEOUT(create_race_open_or_create_sysv, 120)
{
    create_race(BK_SYSV_KEY, true);
}

TEST_TIMEOUT(create_race_open_or_create_file, 120)
{
    create_race(BK_FILE, true);
}

/* ---- gc against a segment made again under the same name ---- */

struct gc_loop_area {
    _Atomic uint64_t passes;
    _Atomic int stop;
};

/* Run gc over and over until told to stop, counting the passes in argv[0]'s data. */
PEER(gc_loop)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(argv[0], NULL, &seg));
    struct gc_loop_area *g = shml_segment_data(seg);
    while (!atomic_load(&g->stop)) {
        ASSERT_OK(shml_gc(false, NULL, NULL));
        atomic_fetch_add(&g->passes, 1);
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/*
 * The restart pattern: a program finds its stale segment (owned, creator dead), removes it
 * and makes a new one under the same name, while a gc runs. gc judged the stale one; it must
 * never remove the new one that stands under the name by the time it acts.
 */
TEST_TIMEOUT(gc_never_removes_a_segment_made_again, 240)
{
    const char *ctl = new_addr(BK_POSIX), *name = new_addr(BK_POSIX);
    shml_segment *cs = NULL;
    ASSERT_OK(shml_segment_create(ctl, sizeof(struct gc_loop_area), NULL, &cs));
    struct gc_loop_area *g = shml_segment_data(cs);
    pid_t loop = spawn_peer("gc_loop", ctl);
    int lost = 0, rounds = 300;
    for (int i = 0; i < rounds; i++) {
        create_by_dead(name, "owned");
        int r = shml_segment_unlink(name);
        if (r != 0 && r != -ENOENT)
            ASSERT_OK(r);
        shml_segment *s = NULL;
        ASSERT_OK(shml_segment_create(name, 100, NULL, &s));
        ASSERT_OK(shml_segment_close(s));
        /* Two whole passes after the new one was made: any gc acting on the old judgment
           has acted by then. */
        uint64_t p0 = atomic_load(&g->passes);
        for (int w = 0; w < 20000 && atomic_load(&g->passes) < p0 + 2; w++)
            usleep(500);
        if (exists(name))
            ASSERT_OK(shml_segment_unlink(name));
        else
            lost++;
    }
    atomic_store(&g->stop, 1);
    ASSERT_EQ(wait_peer(loop, 60000), 0);
    shmt_log("%d rounds, %d new segments lost", rounds, lost);
    ASSERT_EQ(lost, 0);
    ASSERT_OK(shml_segment_close(cs));
}
