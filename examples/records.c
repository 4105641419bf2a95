/*
 * records.c - the classic "struct student" table in shared memory, done right.
 *
 * Every shared-memory tutorial ends with a table of records that several processes update,
 * and a line saying "protect it with a mutex". This example is that table with the part the
 * tutorials leave out: what happens when a process dies in the middle of an update, while it
 * holds the lock.
 *
 *   1. The parent creates a managed segment holding a `struct table`: a header with one
 *      shml_mutex, an undo journal, counters, and N_RECORDS fixed records (id, name, age,
 *      update count, checksum). It declares the mutex in the segment's header
 *      (shml_segment_declare) so that `shmlink info ADDR` shows who holds it.
 *   2. It forks N_WORKERS workers. Each opens the segment by its address, as an unrelated
 *      program would, and updates random records under the mutex, field by field, with a
 *      tiny pause in the middle of each update, the checksum written last.
 *   3. One worker (VICTIM) stops in the middle of an update, the lock held, and says so in the
 *      segment; the parent then kills it with SIGKILL. The record it was writing is torn: its
 *      name is new, the rest old, the checksum wrong.
 *   4. The kernel releases the dead worker's lock at once (a robust mutex), and the next
 *      locker gets -EOWNERDEAD: it holds the lock and is told that the data may be half
 *      written. It rolls the unfinished update back from the journal, checks every checksum,
 *      calls shml_mutex_consistent(), and carries on. Nobody waits for a timeout.
 *   5. At the end the parent checks every checksum and that the update counts add up: the
 *      counts in the records equal what the surviving workers report plus what the killed
 *      worker had committed before it died. It prints a summary and removes the segment.
 *
 * Usage: records [ADDRESS]   (default posix:/shml-records.PID)
 * Exit status 0 when the table is consistent at the end, 1 otherwise. Every wait is bounded
 * (LOCK_TIMEOUT_NS, RUN_TIMEOUT_NS), and the segment is removed on every way out but a
 * SIGKILL of the parent itself; the workers die with the parent (PR_SET_PDEATHSIG).
 */
#include <shmlink.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_RECORDS          64
#define N_WORKERS          4
#define UPDATES_PER_WORKER 300
#define VICTIM             1   /* the worker the parent kills ... */
#define VICTIM_AT          100 /* ... in the middle of its update number VICTIM_AT */
#define NO_RECORD          UINT32_MAX
#define TABLE_MAGIC        0x53545544u /* "STUD" */

/* No lock is waited for longer than this, and the whole run is bounded too. */
#define LOCK_TIMEOUT_NS ((int64_t)5 * 1000000000)
#define RUN_TIMEOUT_NS  ((int64_t)20 * 1000000000)

/* ---- the shared layout ---- */

/*
 * One record. Fixed-width fields, no pointer (each process maps the segment at its own
 * address), and no padding, so the bytes mean the same to every program that reads them.
 */
struct record {
    uint32_t id;
    uint32_t age;
    char name[32];
    uint64_t updates;  /* how many updates this record has received */
    uint64_t checksum; /* FNV-1a over the fields above; written last by an update */
};
_Static_assert(sizeof(struct record) == 56, "struct record has no padding");

/*
 * The undo journal: the update in progress, if any. Before it touches a record, a worker
 * copies the record and its own commit count here, then sets `index` (the journal is open).
 * When the update is complete, it clears `index` (the commit). Whoever finds the journal open
 * after an owner death knows exactly what to undo.
 */
struct journal {
    _Atomic uint32_t index;    /* the record being updated, or NO_RECORD */
    uint32_t worker;           /* who is updating it */
    uint64_t committed_before; /* that worker's commit count before this update */
    struct record before;      /* the record before this update */
};

struct table {
    shml_mutex lock; /* protects everything below except mid_update; declared as "table" */
    uint32_t magic;
    uint32_t n_records;
    struct journal journal;
    uint64_t committed[N_WORKERS]; /* updates each worker has committed */
    uint64_t reported[N_WORKERS];  /* what each worker reports when it has finished */
    uint32_t recoveries;           /* times a locker got -EOWNERDEAD */
    uint32_t torn;                 /* records found torn (bad checksum) and restored */
    uint32_t rolled_back;          /* unfinished updates undone (torn or not) */
    /*
     * The victim's pid once it is stopped mid-update: read by the parent without the lock,
     * hence atomic.
     */
    _Atomic int32_t mid_update;
    struct record rec[N_RECORDS];
};

/* ---- records ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* The checksum covers each field on its own, so it does not depend on the struct's layout. */
static uint64_t record_sum(const struct record *r)
{
    uint64_t h = 0xcbf29ce484222325u;
    h = fnv1a(h, &r->id, sizeof r->id);
    h = fnv1a(h, &r->age, sizeof r->age);
    h = fnv1a(h, r->name, sizeof r->name);
    h = fnv1a(h, &r->updates, sizeof r->updates);
    return h;
}

static bool record_ok(const struct record *r)
{
    return r->checksum == record_sum(r);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* ---- recovery: what a locker does when the previous holder died ---- */

/*
 * Called with the lock held, after shml_mutex_lock() returned -EOWNERDEAD. Undo the update
 * the dead holder left unfinished, if any, then check every record. Returns 0 when the table
 * is consistent again (the caller then calls shml_mutex_consistent()), -1 when it cannot be
 * repaired (the caller then unlocks without it, and the mutex becomes unusable: better than
 * letting others work on a table known to be wrong).
 */
static int repair_table(struct table *t, const char *who)
{
    t->recoveries++;
    /* Relaxed: the mutex's acquire already ordered everything the dead holder wrote. */
    uint32_t j = atomic_load_explicit(&t->journal.index, memory_order_relaxed);
    if (j != NO_RECORD) {
        if (j >= N_RECORDS || t->journal.worker >= N_WORKERS) {
            fprintf(stderr, "%s: the journal itself is corrupt (record %" PRIu32 ")\n", who, j);
            return -1;
        }
        bool torn = !record_ok(&t->rec[j]);
        /*
         * Undo, whether or not the record is torn: a holder that died after the checksum
         * but before the commit had not finished either (its commit count, below, had
         * perhaps moved already). Restoring both keeps the counts in step with the records.
         */
        t->rec[j] = t->journal.before;
        t->committed[t->journal.worker] = t->journal.committed_before;
        atomic_store_explicit(&t->journal.index, NO_RECORD, memory_order_relaxed);
        t->rolled_back++;
        if (torn)
            t->torn++;
        printf("%s: lock returned EOWNERDEAD: the holder died updating record %" PRIu32
               " (%s); restored it from the journal\n",
               who, j, torn ? "torn: checksum mismatch" : "checksum fine, but not committed");
    } else {
        printf("%s: lock returned EOWNERDEAD: the holder died between updates; nothing to "
               "undo\n", who);
    }
    /* A torn record the journal does not explain would mean this protocol is broken. */
    for (uint32_t i = 0; i < N_RECORDS; i++) {
        if (!record_ok(&t->rec[i])) {
            fprintf(stderr, "%s: record %" PRIu32 " is torn and not in the journal\n", who, i);
            return -1;
        }
    }
    return 0;
}

/*
 * Lock the table. An owner death is repaired here, so the caller only ever sees a
 * consistent table: 0 locked, < 0 failed (not locked).
 */
static int lock_table(struct table *t, const char *who)
{
    int rc = shml_mutex_lock(&t->lock, LOCK_TIMEOUT_NS);
    if (rc == -EOWNERDEAD) {
        if (repair_table(t, who) < 0) {
            shml_mutex_unlock(&t->lock); /* without consistent(): nobody may use it now */
            return -ENOTRECOVERABLE;
        }
        rc = shml_mutex_consistent(&t->lock);
        if (rc < 0) {
            fprintf(stderr, "%s: shml_mutex_consistent: %s\n", who, shml_strerror(rc));
            shml_mutex_unlock(&t->lock);
            return rc;
        }
        return 0;
    }
    if (rc < 0)
        fprintf(stderr, "%s: shml_mutex_lock: %s\n", who, shml_strerror(rc));
    return rc;
}

/* ---- a worker ---- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * One update of record i by worker w, the lock held. The order of the steps is the whole
 * point: journal first, then the fields, the checksum last, then the commit.
 */
static void update_record(struct table *t, uint32_t w, uint32_t i, uint64_t *rng,
                          bool stop_midway)
{
    struct record *r = &t->rec[i];

    /*
     * 1. Open the journal. Release: the copy and the counts above are written before the
     * index that makes them count. A process killed between two stores has executed exactly
     * the stores before the point where it stopped, in program order; the release keeps the
     * compiler (and a weakly ordered CPU) from moving the copy after the index.
     */
    t->journal.before = *r;
    t->journal.worker = w;
    t->journal.committed_before = t->committed[w];
    atomic_store_explicit(&t->journal.index, i, memory_order_release);

    /* 2. The fields, one at a time, with a pause in the middle where a death can land. */
    snprintf(r->name, sizeof r->name, "student %" PRIu32 " by w%" PRIu32 " #%" PRIu64, r->id,
             w, r->updates + 1);
    if (stop_midway) {
        /*
         * The victim: stop here, the record half written and the lock held, tell the parent
         * (release: the name written above is in memory before the parent reads this), and
         * wait to be killed. If the kill never comes, give up after a bound.
         */
        atomic_store_explicit(&t->mid_update, (int32_t)getpid(), memory_order_release);
        for (int k = 0; k < 5000; k++)
            sleep_ns(1000000);
        _exit(3);
    }
    sleep_ns(20000); /* the tiny pause: another process's kill could land here */
    r->age = 18 + (uint32_t)(xorshift(rng) % 50);
    r->updates++;

    /* 3. The checksum last, over the new fields. */
    r->checksum = record_sum(r);
    t->committed[w]++;

    /* 4. Commit. Release: the record and the count are complete before the journal closes. */
    atomic_store_explicit(&t->journal.index, NO_RECORD, memory_order_release);
}

/* A worker process: open the segment as any other program would, update, report. */
static int worker(const char *addr, uint32_t w)
{
    char who[32];
    snprintf(who, sizeof who, "worker %" PRIu32 " (pid %d)", w, (int)getpid());

    shml_segment *seg;
    int rc = shml_segment_open(addr, NULL, &seg);
    if (rc < 0) {
        fprintf(stderr, "%s: open %s: %s (%s)\n", who, addr, shml_strerror(rc),
                shml_last_error());
        return 1;
    }
    /* Validate what the segment holds before trusting it: size, then magic and count. */
    struct table *t = shml_segment_data(seg);
    if (shml_segment_size(seg) < sizeof *t || t->magic != TABLE_MAGIC ||
        t->n_records != N_RECORDS) {
        fprintf(stderr, "%s: %s does not hold a records table\n", who, addr);
        shml_segment_close(seg);
        return 1;
    }

    uint64_t rng = 0x9e3779b97f4a7c15u ^ ((uint64_t)getpid() << 16) ^ w;
    uint64_t done = 0;
    for (uint32_t n = 1; n <= UPDATES_PER_WORKER; n++) {
        if (lock_table(t, who) < 0) {
            shml_segment_close(seg);
            return 1;
        }
        uint32_t i = (uint32_t)(xorshift(&rng) % N_RECORDS);
        update_record(t, w, i, &rng, w == VICTIM && n == VICTIM_AT);
        done++;
        shml_mutex_unlock(&t->lock);
    }

    /* Report, under the lock like every other write to the table. */
    if (lock_table(t, who) < 0) {
        shml_segment_close(seg);
        return 1;
    }
    t->reported[w] = done;
    shml_mutex_unlock(&t->lock);
    shml_segment_close(seg);
    return 0;
}

/* ---- the parent ---- */

static void kill_all(pid_t *pids)
{
    for (int w = 0; w < N_WORKERS; w++) {
        if (pids[w] > 0) {
            kill(pids[w], SIGKILL);
            waitpid(pids[w], NULL, 0);
            pids[w] = 0;
        }
    }
}

/* Wait for worker w to exit, at most until `deadline`. Returns its wait status, or -1. */
static int wait_worker(pid_t *pids, int w, int64_t deadline)
{
    for (;;) {
        int status;
        pid_t r = waitpid(pids[w], &status, WNOHANG);
        if (r == pids[w]) {
            pids[w] = 0;
            return status;
        }
        if ((r < 0 && errno != EINTR) || now_ns() > deadline)
            return -1;
        sleep_ns(1000000);
    }
}

static void init_table(struct table *t)
{
    static const char *const names[] = {"Ada", "Alan", "Barbara", "Dennis", "Edsger",
                                        "Grace", "Ken", "Linus", "Margaret", "Niklaus"};
    memset(t, 0, sizeof *t);
    t->magic = TABLE_MAGIC;
    t->n_records = N_RECORDS;
    atomic_init(&t->journal.index, NO_RECORD);
    atomic_init(&t->mid_update, 0);
    for (uint32_t i = 0; i < N_RECORDS; i++) {
        struct record *r = &t->rec[i];
        r->id = 1000 + i;
        r->age = 18 + i % 10;
        snprintf(r->name, sizeof r->name, "%s", names[i % 10]);
        r->checksum = record_sum(r);
    }
}

/* Everything the parent checks at the end, the lock held. Returns 0 or -1. */
static int verify(struct table *t, pid_t victim_pid)
{
    int bad = 0;
    uint64_t in_records = 0;
    for (uint32_t i = 0; i < N_RECORDS; i++) {
        if (!record_ok(&t->rec[i])) {
            fprintf(stderr, "records: record %" PRIu32 " has a bad checksum\n", i);
            bad = 1;
        }
        in_records += t->rec[i].updates;
    }
    if (atomic_load_explicit(&t->journal.index, memory_order_relaxed) != NO_RECORD) {
        fprintf(stderr, "records: the journal is still open\n");
        bad = 1;
    }
    uint64_t reported = 0;
    for (int w = 0; w < N_WORKERS; w++) {
        if (w == VICTIM)
            continue;
        reported += t->reported[w];
        if (t->reported[w] != UPDATES_PER_WORKER || t->committed[w] != UPDATES_PER_WORKER) {
            fprintf(stderr, "records: worker %d reported %" PRIu64 " and committed %" PRIu64
                    " updates, expected %d\n", w, t->reported[w], t->committed[w],
                    UPDATES_PER_WORKER);
            bad = 1;
        }
    }
    uint64_t victim = t->committed[VICTIM];
    if (victim != VICTIM_AT - 1) {
        fprintf(stderr, "records: the killed worker committed %" PRIu64 " updates, expected %d\n",
                victim, VICTIM_AT - 1);
        bad = 1;
    }
    if (in_records != reported + victim) {
        fprintf(stderr, "records: the records count %" PRIu64 " updates, the workers %" PRIu64
                " + %" PRIu64 "\n", in_records, reported, victim);
        bad = 1;
    }
    if (t->recoveries != 1 || t->torn != 1 || t->rolled_back != 1) {
        fprintf(stderr, "records: %" PRIu32 " recoveries, %" PRIu32 " torn records, %" PRIu32
                " rollbacks; expected one each\n", t->recoveries, t->torn, t->rolled_back);
        bad = 1;
    }
    printf("records: %d records, all checksums %s; %" PRIu64 " updates in the records = %" PRIu64
           " reported by %d survivors + %" PRIu64 " committed by worker %d (pid %d) before it "
           "was killed; %" PRIu32 " recovery, %" PRIu32 " torn record repaired\n",
           N_RECORDS, bad ? "checked" : "valid", in_records, reported, N_WORKERS - 1, victim,
           VICTIM, (int)victim_pid, t->recoveries, t->torn);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    char defaddr[64];
    snprintf(defaddr, sizeof defaddr, "posix:/shml-records.%d", (int)getpid());
    const char *addr = argc > 1 ? argv[1] : defaddr;

    /* 1. The segment and the table in it, the mutex initialised before anyone else looks. */
    shml_segment *seg;
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.label = "records example";
    int rc = shml_segment_create(addr, sizeof(struct table), &so, &seg);
    if (rc < 0) {
        fprintf(stderr, "records: create %s: %s (%s)%s\n", addr, shml_strerror(rc),
                shml_last_error(), rc == -EEXIST ? "; remove it with `shmlink rm`" : "");
        return 1;
    }
    struct table *t = shml_segment_data(seg);
    init_table(t);
    rc = shml_mutex_init(&t->lock);
    if (rc >= 0)
        rc = shml_segment_declare(seg, "table", SHML_DECL_MUTEX, offsetof(struct table, lock));
    if (rc < 0) {
        fprintf(stderr, "records: mutex: %s (%s)\n", shml_strerror(rc), shml_last_error());
        shml_segment_close(seg);
        shml_segment_unlink(addr);
        return 1;
    }
    printf("records: %d records in %s, %d workers x %d updates; worker %d will be killed "
           "mid-update\n", N_RECORDS, shml_segment_address(seg), N_WORKERS, UPDATES_PER_WORKER,
           VICTIM);
    fflush(stdout);

    /* 2. The workers. */
    pid_t pids[N_WORKERS] = {0};
    int ok = 1;
    for (int w = 0; w < N_WORKERS && ok; w++) {
        pids[w] = fork();
        if (pids[w] < 0) {
            perror("records: fork");
            pids[w] = 0;
            ok = 0;
        } else if (pids[w] == 0) {
            /* A worker must not outlive the parent, which removes the segment. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1)
                _exit(1);
            int status = worker(addr, (uint32_t)w);
            fflush(stdout);
            _exit(status);
        }
    }
    int64_t deadline = now_ns() + RUN_TIMEOUT_NS;

    /* 3. Wait until the victim is stopped mid-update, the lock held, and kill it. */
    pid_t victim = pids[VICTIM];
    /* Acquire: pairs with the victim's release store; its half-written record is in memory. */
    while (ok && atomic_load_explicit(&t->mid_update, memory_order_acquire) != victim) {
        pid_t r = waitpid(victim, NULL, WNOHANG);
        if (r == victim)
            pids[VICTIM] = 0; /* reaped: kill_all() must not signal its pid again */
        if (now_ns() > deadline || r != 0) {
            fprintf(stderr, "records: worker %d never stopped mid-update\n", VICTIM);
            ok = 0;
            break;
        }
        sleep_ns(100000);
    }
    if (ok) {
        printf("records: worker %d (pid %d) is in the middle of an update, the lock held: "
               "SIGKILL\n", VICTIM, (int)victim);
        fflush(stdout);
        kill(victim, SIGKILL);
        int status = wait_worker(pids, VICTIM, deadline);
        if (status < 0 || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            fprintf(stderr, "records: the victim did not die by SIGKILL\n");
            ok = 0;
        }
    }

    /* 4. The survivors recover by themselves; wait for them. */
    for (int w = 0; w < N_WORKERS && ok; w++) {
        if (w == VICTIM)
            continue;
        int status = wait_worker(pids, w, deadline);
        if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "records: worker %d %s\n", w,
                    status < 0 ? "did not finish in time" : "failed");
            ok = 0;
        }
    }
    kill_all(pids); /* only does something after a failure */

    /*
     * 5. Verify, under the lock. If no survivor locked after the kill (they had all finished),
     * the parent is the one that meets -EOWNERDEAD, and recovers the same way.
     */
    if (ok && lock_table(t, "parent") == 0) {
        ok = verify(t, victim) == 0;
        shml_mutex_unlock(&t->lock);
    } else {
        ok = 0;
    }

    shml_segment_close(seg);
    rc = shml_segment_unlink(addr);
    if (rc < 0) {
        fprintf(stderr, "records: unlink %s: %s\n", addr, shml_strerror(rc));
        ok = 0;
    }
    printf("records: %s\n", ok ? "consistent" : "FAILED");
    return ok ? 0 : 1;
}
