/*
 * Liveness across pid namespaces and pid reuse.
 *
 * A pid means something only inside one pid namespace, and is given again once its process
 * died. A live endpoint of another namespace (containers sharing /dev/shm) must never be
 * judged dead from this one ("not in my /proc" means nothing there), and a process that
 * happens to get the pid of a dead holder must not keep the holder's slot, buffer or mailbox.
 *
 * Each test makes a new pid namespace with its own /proc, as `unshare --pid --fork
 * --mount-proc` does (root only: skipped otherwise). In a fresh namespace pids are small and
 * predictable, and /proc/sys/kernel/ns_last_pid gives a dead process's pid to the next fork.
 */
#include "chan_util.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_SKIP SHMT_EXIT_SKIP /* the namespace could not be made (or SKIP() in it) */

/*
 * Run fn(arg) as pid 1 of a new pid namespace with its own /proc, in a child. Returns the pid
 * of the child, whose exit status is fn's (NS_SKIP if the namespace could not be made).
 */
static pid_t spawn_in_pid_ns(int (*fn)(void *), void *arg)
{
    pid_t mid = fork();
    ASSERT_GE(mid, 0);
    if (mid != 0)
        return mid;
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0)
        _exit(NS_SKIP);
    pid_t init = fork();
    if (init == 0) {
        /* Our /proc shows the new namespace's processes only; nobody else's mounts change. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            _exit(NS_SKIP);
        _exit(fn(arg));
    }
    int status = 0;
    if (init < 0 || waitpid(init, &status, 0) != init)
        _exit(NS_SKIP);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Wait (bounded) for a child of spawn_in_pid_ns(); skips the test if it could not start. */
static void wait_ns_child(pid_t mid)
{
    int status = 0;
    int64_t end = now_ns() + 60 * SEC;
    pid_t r;
    while ((r = waitpid(mid, &status, WNOHANG)) == 0 && now_ns() < end)
        usleep(10000);
    if (r == 0) {
        kill(mid, SIGKILL); /* its namespace dies with its pid 1, which dies with it */
        waitpid(mid, &status, 0);
        ASSERT_TRUE(!"the process in the pid namespace did not finish in time");
    }
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == NS_SKIP)
        SKIP("cannot make a pid namespace here (needs root)");
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* One byte through a pipe, bounded: a child says it is ready. */
static void expect_byte(int fd)
{
    char c;
    int64_t end = now_ns() + WAIT_BOUND;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n == 1)
            return;
        ASSERT_TRUE(n < 0 && errno == EAGAIN && now_ns() < end);
        usleep(1000);
    }
}

static void nonblocking_pipe(int p[2])
{
    ASSERT_SYS(pipe(p));
    ASSERT_SYS(fcntl(p[0], F_SETFL, O_NONBLOCK));
}

/* ---- pid reuse: a new process with a dead holder's pid does not keep what it held ---- */

/* What the dead holder does before it is killed (it says so on fd, then waits to die). */
enum holder_act { PEEK_QUEUE, CLAIM_BUS, TAKE_REQUEST };

struct reuse {
    const char *addr;
    enum holder_act act;
    int found; /* check findings naming the dead holder */
};

static int child_holds(const char *addr, enum holder_act act, int fd)
{
    shml_channel *ch = NULL;
    unsigned role = act == CLAIM_BUS ? SHML_PRODUCER : SHML_CONSUMER;
    if (shml_channel_open(addr, role, NULL, &ch) != 0 || write(fd, "o", 1) != 1)
        return 10;
    const void *p;
    size_t len;
    void *w;
    char buf[64];
    if (act == PEEK_QUEUE && shml_peek(ch, &p, &len, WAIT_BOUND) != 0)
        return 11; /* holds the slot: being read */
    if (act == CLAIM_BUS && shml_claim(ch, 4, &w, WAIT_BOUND) != 0)
        return 12; /* holds the slot: being written */
    if (act == TAKE_REQUEST && shml_recv(ch, buf, sizeof buf, WAIT_BOUND) < 0)
        return 13; /* holds the request: its mailbox is taken by this server */
    if (write(fd, "h", 1) != 1)
        return 14;
    for (;;)
        pause();
}

/* The process that gets the dead holder's pid: it opens the channel, and lives. */
static int child_reuses(const char *addr, enum holder_act act, int fd)
{
    shml_channel *ch = NULL;
    unsigned role = act == CLAIM_BUS ? SHML_PRODUCER : SHML_CONSUMER;
    if (shml_channel_open(addr, role, NULL, &ch) != 0)
        return 20;
    if (write(fd, "r", 1) != 1)
        return 21;
    for (;;)
        pause();
}

static void count_holder_finding(void *ctx, int repaired, const char *finding)
{
    (void)repaired;
    shmt_log("check: %s", finding);
    if (strstr(finding, "which died")) /* a slot, buffer or mailbox; not "endpoint I ..." */
        ((struct reuse *)ctx)->found++;
}

/* Give pid `pid` of our namespace to the next fork (it must be free). */
static void next_pid_is(pid_t pid)
{
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
    if (!f) /* SKIP exits NS_SKIP, which the test's wait_ns_child() reports as a skip */
        SKIP("cannot choose the next pid: ns_last_pid: %s", strerror(errno));
    ASSERT_TRUE(fprintf(f, "%d", (int)pid - 1) > 0);
    ASSERT_EQ(fclose(f), 0);
}

/*
 * Pid 1 of the namespace: the holder (pid A) takes something and is killed; a new process gets
 * pid A and opens the channel; the holder must be found dead all the same, by check and by the
 * endpoint that needs what it held.
 */
static int reuse_main(void *arg)
{
    struct reuse *r = arg;
    int p[2];
    nonblocking_pipe(p);
    shml_channel *me = NULL;
    char buf[64];
    if (r->act == PEEK_QUEUE) {
        me = chan_open(r->addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
        while (shml_send(me, "full", 4, 0) == 4) /* the holder's peek keeps the ring full */
            ;
    } else if (r->act == CLAIM_BUS) {
        me = chan_open(r->addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    } else {
        me = chan_open(r->addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    }

    pid_t holder = fork();
    ASSERT_GE(holder, 0);
    if (holder == 0)
        _exit(child_holds(r->addr, r->act, p[1]));
    expect_byte(p[0]);          /* open */
    if (r->act == TAKE_REQUEST) /* to the server that just opened */
        ASSERT_EQ(shml_send(me, "ask", 3, WAIT_BOUND), 3);
    expect_byte(p[0]); /* holding */
    ASSERT_SYS(kill(holder, SIGKILL));
    ASSERT_EQ(waitpid(holder, NULL, 0), holder);
    /* Start times count clock ticks: let one pass, so that pid + start time tells the two
       processes apart (it does not help the holder's slot: only its endpoint entry). */
    usleep(50 * 1000);

    next_pid_is(holder);
    pid_t reuser = fork();
    ASSERT_GE(reuser, 0);
    if (reuser == 0)
        _exit(child_reuses(r->addr, r->act, p[1]));
    ASSERT_EQ(reuser, holder); /* the dead holder's pid, now a live endpoint's */
    expect_byte(p[0]);

    /* check names the dead holder, though a live endpoint has its pid. */
    ASSERT_GE(shml_channel_check(r->addr, 0, count_holder_finding, r), 1);
    ASSERT_EQ(r->found, 1);

    /* And the endpoint that needs what it held gets past it, in bounded time. */
    if (r->act == PEEK_QUEUE) {
        ASSERT_EQ(shml_send(me, "next", 4, WAIT_BOUND), 4);
    } else if (r->act == CLAIM_BUS) {
        shml_channel *pub = chan_open(r->addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
        ASSERT_EQ(shml_send(pub, "next", 4, WAIT_BOUND), 4);
        ASSERT_EQ(shml_recv(me, buf, sizeof buf, WAIT_BOUND), 4); /* past the hole */
        ASSERT_MEM_EQ(buf, "next", 4);
        shml_channel_close(pub);
    } else {
        ASSERT_ERR(shml_recv(me, buf, sizeof buf, WAIT_BOUND), -ECONNRESET);
    }
    ASSERT_EQ(shml_channel_check(r->addr, 0, NULL, NULL), 1); /* the holder's dead entry */
    ASSERT_EQ(shml_channel_check(r->addr, SHML_CHECK_REPAIR, NULL, NULL), 0);

    kill(reuser, SIGKILL);
    waitpid(reuser, NULL, 0);
    shml_channel_close(me);
    return 0;
}

static void pid_reuse(uint32_t kind, uint32_t policy, enum holder_act act)
{
    struct reuse r = {.act = act};
    shml_channel *creator = chan_make(&r.addr, kind, policy, 4 * 128, 64, 8);
    shml_channel_close(creator);
    wait_ns_child(spawn_in_pid_ns(reuse_main, &r));
}

TEST_TIMEOUT(pid_reuse_queue_slot_being_read, 90)
{
    pid_reuse(SHML_QUEUE, SHML_BLOCK, PEEK_QUEUE);
}

TEST_TIMEOUT(pid_reuse_bus_slot_being_written, 90)
{
    pid_reuse(SHML_BUS, SHML_BLOCK, CLAIM_BUS);
}

TEST_TIMEOUT(pid_reuse_rpc_request_taken, 90)
{
    pid_reuse(SHML_RPC, SHML_BLOCK, TAKE_REQUEST);
}

/* ---- another pid namespace: its live processes are never judged dead from here ---- */

#define NS_MESSAGES 40

struct other_ns {
    const char *addr; /* the bus */
    const char *seg;  /* an owned segment whose creator lives outside the namespace */
    int ready;        /* write end: the subscriber is in */
};

/* Pid 1 of the other namespace: a subscriber that must receive every message, in order. */
static int subscriber_main(void *arg)
{
    struct other_ns *o = arg;
    shml_channel *sub = chan_open(o->addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_EQ(write(o->ready, "s", 1), 1);
    char buf[64], want[64];
    for (int i = 0; i < NS_MESSAGES; i++) {
        ssize_t n = shml_recv(sub, buf, sizeof buf, WAIT_BOUND);
        int len = snprintf(want, sizeof want, "m%d", i);
        ASSERT_EQ(n, len);
        ASSERT_MEM_EQ(buf, want, (size_t)len);
    }
    ASSERT_EQ(chan_stats(sub).drops, 0);
    shml_channel_close(sub);
    return 0;
}

TEST_TIMEOUT(other_pid_ns_subscriber_is_never_taken, 90)
{
    struct other_ns o;
    int p[2];
    nonblocking_pipe(p);
    o.ready = p[1];
    /* Two entries: ours and the subscriber's, so that every further open looks for the
       entries of dead processes to take. */
    shml_channel *creator = chan_make(&o.addr, SHML_BUS, SHML_BLOCK, 4 * 128, 64, 2);
    shml_channel_close(creator);
    pid_t mid = spawn_in_pid_ns(subscriber_main, &o);
    char c;
    int64_t end = now_ns() + WAIT_BOUND;
    while (read(p[0], &c, 1) != 1) {
        int status;
        if (waitpid(mid, &status, WNOHANG) == mid) {
            ASSERT_TRUE(WIFEXITED(status));
            if (WEXITSTATUS(status) == NS_SKIP)
                SKIP("cannot make a pid namespace here (needs root)");
            ASSERT_TRUE(!"the subscriber ended before it was ready");
        }
        ASSERT_TRUE(now_ns() < end);
        usleep(1000);
    }

    shml_channel *pub = chan_open(o.addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    for (int i = 0; i < 20; i++) {
        shml_channel *extra = NULL;
        ASSERT_ERR(shml_channel_open(o.addr, SHML_PRODUCER, NULL, &extra), -EUSERS);
    }
    ASSERT_EQ(shml_channel_check(o.addr, 0, NULL, NULL), 0);
    ASSERT_EQ(shml_channel_check(o.addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    /* Its attach entry (the channel is a segment) counts as attached, not dead. */
    struct shml_segment_info info;
    struct shml_attach_info att[8];
    size_t n = 0;
    ASSERT_OK(shml_segment_stat(o.addr, &info, att, 8, &n));
    ASSERT_EQ(info.attach_dead, 0);
    /* A block bus waits for it, and frees no entry it finds lagging. */
    for (int i = 0; i < NS_MESSAGES; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "m%d", i);
        ASSERT_EQ(shml_send(pub, m, (size_t)len, WAIT_BOUND), len);
    }
    wait_ns_child(mid);
    shml_channel_close(pub);
    close(p[0]);
    close(p[1]);
}

/* Pid 1 of the other namespace: attaches to a segment whose creator lives outside, and
   judges it as gc would. */
static int judge_main(void *arg)
{
    struct other_ns *o = arg;
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(o->seg, NULL, &seg)); /* attaching reaps dead entries */
    ASSERT_OK(shml_segment_close(seg));
    struct shml_segment_info info;
    struct shml_attach_info att[8];
    size_t n = 0;
    ASSERT_OK(shml_segment_stat(o->seg, &info, att, 8, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(att[0].alive, -1);       /* its pid means nothing here */
    ASSERT_EQ(info.creator_alive, -1); /* so is the creator's, as its entry tells */
    int v = shml_gc_verdict(&info, NULL);
    ASSERT_TRUE(v != SHML_GC_REMOVE_ORPHANED && v != SHML_GC_REMOVE_UNFINISHED);
    return 0;
}

TEST_TIMEOUT(other_pid_ns_keeps_an_owned_segment, 60)
{
    struct other_ns o = {0};
    o.seg = chan_addr();
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.flags = SHML_OWNED;
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(o.seg, 4096, &so, &seg));
    wait_ns_child(spawn_in_pid_ns(judge_main, &o));
    /* Our own entry is still there: the other namespace did not reap it. */
    struct shml_segment_info info;
    struct shml_attach_info att[8];
    size_t n = 0;
    ASSERT_OK(shml_segment_stat(o.seg, &info, att, 8, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(att[0].pid, getpid());
    ASSERT_EQ(att[0].alive, 1);
    ASSERT_OK(shml_segment_close(seg));
}
