/*
 * Waiting for a creator: a consumer started before its producer opens with SHML_WAIT and gets
 * the segment (or channel) once it exists; a creator that fills its data with
 * shml_segment_create_init() is never seen half-done, whatever the backend.
 */
#include "seg_util.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* What the creator's init writes: a mutex and a value, the value last. */
struct table {
    shml_mutex m;
    uint64_t value;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

struct init_ctx {
    const char *addr;
    int64_t dwell_ns;
};

/* Build the table slowly, checking on the way that nobody can open the segment yet. */
static int init_table(shml_segment *new_seg, void *arg)
{
    const struct init_ctx *c = arg;
    struct table *t = shml_segment_data(new_seg);
    if (shml_segment_size(new_seg) < sizeof *t)
        return -EINVAL;
    int d = shml_segment_declare(new_seg, "table", SHML_DECL_MUTEX, 0);
    if (d < 0)
        return d;
    int r = shml_mutex_init(&t->m);
    if (r < 0)
        return r;
    struct shml_segment_opts o = opts_of(0);
    o.timeout_ns = 0;
    shml_segment *seg;
    r = shml_segment_open(c->addr, &o, &seg);
    if (r == 0) {
        shml_segment_close(seg);
        return -EEXIST; /* seen before it is ready: the test fails on this */
    }
    struct timespec ts = {0, (long)c->dwell_ns};
    nanosleep(&ts, NULL);
    t->value = 0x5eed;
    return 0;
}

/* After argv[1] ms, create argv[0] with its table built by init; wait to be told to exit. */
PEER(late_creator)
{
    ASSERT_EQ(argc, 2);
    usleep((useconds_t)atoi(argv[1]) * 1000);
    struct init_ctx c = {argv[0], 100 * MS};
    shml_segment *seg;
    ASSERT_OK(shml_segment_create_init(argv[0], sizeof(struct table), NULL, init_table, &c,
                                       &seg));
    ASSERT_EQ(parent_send("created"), 0);
    ASSERT_EQ(parent_expect("bye", 30000), 0);
    shml_segment_close(seg);
    return 0;
}

/* The opener waits for the segment to appear and finds it whole. */
static void open_waits(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *seg;
    struct shml_segment_opts o = opts_of(0);
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -ENOENT);
    o.flags = SHML_WAIT;
    o.timeout_ns = 100 * MS;
    int64_t t0 = mono_ns();
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -ETIMEDOUT);
    ASSERT_GE(mono_ns() - t0, 100 * MS);

    pid_t p = spawn_peer("late_creator", addr, "300");
    o.timeout_ns = 20 * SEC;
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    struct table *t = shml_segment_data(seg);
    ASSERT_EQ(t->value, 0x5eedu);
    ASSERT_ERR(shml_mutex_lock(&t->m, 0), 0);
    ASSERT_ERR(shml_mutex_unlock(&t->m), 0);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_EQ(peer_expect(p, "created", 20000), 0);
    ASSERT_EQ(peer_send(p, "bye"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST_TIMEOUT(open_waits_for_creator_posix, 60)
{
    open_waits(BK_POSIX);
}

TEST_TIMEOUT(open_waits_for_creator_sysv, 60)
{
    open_waits(BK_SYSV_KEY);
}

TEST_TIMEOUT(open_waits_for_creator_file, 60)
{
    open_waits(BK_FILE);
}

/* SHML_FOREVER waits without bound (here: until the creator comes). */
TEST_TIMEOUT(open_waits_forever, 60)
{
    const char *addr = new_addr(BK_POSIX);
    pid_t p = spawn_peer("late_creator", addr, "200");
    struct shml_segment_opts o = opts_of(SHML_WAIT);
    o.timeout_ns = SHML_FOREVER;
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    ASSERT_EQ(((struct table *)shml_segment_data(seg))->value, 0x5eedu);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_EQ(peer_expect(p, "created", 20000), 0);
    ASSERT_EQ(peer_send(p, "bye"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_OK(shml_segment_unlink(addr));
}

static int init_fails(shml_segment *new_seg, void *arg)
{
    (void)new_seg, (void)arg;
    return -ENOTRECOVERABLE;
}

/* An init that fails undoes the creation; misuse is -EINVAL. */
TEST(create_init_errors)
{
    const enum bk kinds[] = {BK_POSIX, BK_SYSV_KEY, BK_FILE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *addr = new_addr(kinds[i]);
        shml_segment *seg = (shml_segment *)1;
        ASSERT_ERR(shml_segment_create_init(addr, 100, NULL, init_fails, NULL, &seg),
                   -ENOTRECOVERABLE);
        ASSERT_NULL(seg);
        struct shml_segment_info info;
        ASSERT_ERR(shml_segment_stat(addr, &info, NULL, 0, NULL), -ENOENT);
    }
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg;
    ASSERT_ERR(shml_segment_create_init(addr, 100, NULL, NULL, NULL, &seg), -EINVAL);
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_ERR(shml_segment_create_init(addr, 100, &raw, init_fails, NULL, &seg), -EINVAL);
    struct shml_segment_opts wait = opts_of(SHML_WAIT);
    ASSERT_ERR(shml_segment_create(addr, 100, &wait, &seg), -EINVAL);
}

/* After argv[1] ms, create queue argv[0] and send one message; wait to be told to exit. */
PEER(late_producer)
{
    ASSERT_EQ(argc, 2);
    usleep((useconds_t)atoi(argv[1]) * 1000);
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(argv[0], NULL, &ch));
    ASSERT_EQ(shml_send(ch, "first", 5, 10 * SEC), 5);
    ASSERT_EQ(parent_expect("bye", 30000), 0);
    shml_channel_close(ch);
    return 0;
}

/* A consumer started before its producer waits for the channel, then for the message. */
TEST_TIMEOUT(channel_open_waits_for_creator, 60)
{
    const char *addr = new_addr(BK_POSIX);
    shml_channel *ch;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &o, &ch), -ENOENT);
    o.flags = SHML_WAIT;
    o.timeout_ns = 50 * MS;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &o, &ch), -ETIMEDOUT);
    pid_t p = spawn_peer("late_producer", addr, "300");
    o.timeout_ns = 20 * SEC;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &o, &ch));
    char buf[16];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 10 * SEC), 5);
    ASSERT_MEM_EQ(buf, "first", 5);
    ASSERT_OK(shml_channel_close(ch));
    ASSERT_EQ(peer_send(p, "bye"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_OK(shml_segment_unlink(addr));
}

/* A handle inherited through fork() stays the parent's: the child's close only unmaps. */
TEST(fork_child_close_keeps_parent_attach)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 100, NULL, &seg));
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.attached, 1u);
    pid_t c = fork();
    if (c == 0) {
        int r = shml_segment_close(seg); /* then a normal exit */
        _exit(r == 0 ? 0 : 1);
    }
    int status;
    ASSERT_EQ(waitpid(c, &status, 0), c);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct shml_attach_info att[MAX_ATT];
    size_t n = 0;
    STAT_OK(addr, &info, att, &n);
    ASSERT_EQ(info.attached, 1u);
    ASSERT_NOT_NULL(find_att(att, n, getpid()));
    ASSERT_OK(shml_segment_close(seg));
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.attached, 0u);
    ASSERT_OK(shml_segment_unlink(addr));
}

/* Create argv[0] once told to go; say the result. */
PEER(create_on_go)
{
    ASSERT_EQ(argc, 1);
    ASSERT_EQ(parent_expect("go", 30000), 0);
    shml_segment *seg = NULL;
    int r = shml_segment_create(argv[0], 100, NULL, &seg);
    ASSERT_EQ(parent_send(shmt_fmt("%d", r)), 0);
    if (r == 0)
        shml_segment_close(seg);
    return 0;
}

/*
 * Another user who guesses a creator's temporary names and takes them first must not make
 * create fail with a false "exists": the names are unpredictable, and a taken one is retried.
 * Squatted here: every name of the old scheme, PREFIX-PID-0..63, beside both backends' names.
 */
static void squatted(enum bk b)
{
    const char *addr = new_addr(b);
    pid_t p = spawn_peer("create_on_go", addr);
    char dir[4096];
    if (b == BK_FILE) {
        snprintf(dir, sizeof dir, "%s", object_path(addr));
    } else {
        snprintf(dir, sizeof dir, "/dev/shm/");
    }
    static char taken[64][4200];
    for (int n = 0; n < 64; n++) {
        snprintf(taken[n], sizeof taken[n], "%s.shml-tmp-%d-%d", dir, (int)p, n);
        int fd = open(taken[n], O_CREAT | O_EXCL | O_WRONLY, 0600);
        ASSERT_TRUE(fd >= 0);
        close(fd);
    }
    ASSERT_EQ(peer_send(p, "go"), 0);
    ASSERT_EQ(peer_expect(p, "0", 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    /* Once the peer is gone its names look like a dead creator's: a gc running meanwhile (in
       another test) may have removed them first. */
    for (int n = 0; n < 64; n++)
        ASSERT_TRUE(unlink(taken[n]) == 0 || errno == ENOENT);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(create_not_stopped_by_squatted_temporary_names_posix)
{
    squatted(BK_POSIX);
}

TEST(create_not_stopped_by_squatted_temporary_names_file)
{
    squatted(BK_FILE);
}

/* As nobody: open-or-create argv[0]; say the result. */
PEER(open_or_create_as_nobody)
{
    ASSERT_EQ(argc, 1);
    struct passwd *pw = getpwnam("nobody");
    ASSERT_NOT_NULL(pw);
    ASSERT_EQ(setgid(pw->pw_gid), 0);
    ASSERT_EQ(setuid(pw->pw_uid), 0);
    struct shml_segment_opts o = opts_of(SHML_OPEN_OR_CREATE);
    shml_segment *seg = NULL;
    int r = shml_segment_create(argv[0], 100, &o, &seg);
    ASSERT_EQ(parent_send(shmt_fmt("%d", r)), 0);
    shml_segment_close(seg);
    return 0;
}

/*
 * SHML_OPEN_OR_CREATE opens only the caller's own segment: another user's object under the
 * name (here root's, mode 0666, squatting the name nobody meant to create) is refused.
 */
TEST(open_or_create_refuses_another_users_object)
{
    if (geteuid() != 0 || !getpwnam("nobody"))
        SKIP("needs root and the user nobody, to be two users");
    const char *addr = new_addr(BK_POSIX);
    struct shml_segment_opts o = opts_of(0);
    o.mode = 0666;
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_EQ(chmod(object_path(addr), 0666), 0);
    pid_t p = spawn_peer("open_or_create_as_nobody", addr);
    ASSERT_EQ(peer_expect(p, shmt_fmt("%d", -EACCES), 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    /* The owner's own open-or-create opens it, owned or not asked. */
    o = opts_of(SHML_OPEN_OR_CREATE | SHML_OWNED);
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}
