/*
 * holder.c - a process that stays attached to segments, for the CLI's golden tests.
 *
 * The tool itself never stays attached (it opens with SHML_NOATTACH and exits), so to show a
 * live or a dead attach entry, and to keep gc off a segment, the tests need a peer that opens
 * segments the ordinary way and holds them: `holder ADDR...` opens each, prints "ready", and
 * closes them when stdin reaches EOF. Killed with SIGKILL instead, it leaves dead entries.
 *
 * With --create-owned SIZE the holder creates each segment instead, owned by it (SHML_OWNED,
 * SIZE bytes): the creator of a segment that gc removes once it and every attacher are gone.
 *
 * For `info`'s declared objects, options act on the first segment's data, in the order given,
 * before "ready" (OFF is a byte offset into the data):
 *
 *   --mutex NAME:OFF       shml_mutex_init at OFF and declare it as NAME
 *   --event NAME:OFF       shml_event_init at OFF and declare it
 *   --sem NAME:OFF:VALUE   shml_sem_init at OFF with VALUE and declare it
 *   --lock OFF             lock the mutex at OFF (try once; -EOWNERDEAD is kept as it is,
 *                          without shml_mutex_consistent); unlocked again at EOF, so a
 *                          mutex locked after an owner death becomes not recoverable
 *   --notify OFF           notify the event at OFF once
 *   --post OFF             post the semaphore at OFF once
 *   --wait-event OFF       a thread waits on the event at OFF (woken at EOF by a notify)
 *   --wait-sem OFF         a thread waits on the semaphore at OFF (woken at EOF by a post)
 *
 * For the channel cases, on the first segment (a channel):
 *
 *   --endpoint ROLE        open an endpoint: producer, consumer or both (a bus: publisher,
 *                          subscriber; rpc: client, server), closed at EOF; killed with
 *                          SIGKILL, the holder leaves it in the endpoint table, dead
 *   --send TEXT            send TEXT through the last endpoint opened (timeout 1 s)
 *
 * `holder --make-typed ADDR FORMAT ITEMSIZE` instead makes a typed queue of that element (one
 * a message) and exits, for types `shmlink mk --type` does not take.
 *
 * Waiting threads are asleep before "ready" is printed (the holder watches the object's
 * waiter count through shml_segment_declared(), so the object must be declared).
 * Killed with SIGKILL, the holder leaves its mutexes to the kernel's owner-death handling.
 */
#include "shmlink.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEGS 64
#define MAX_OPS  16

/* A waiting thread: blocked in an event or semaphore wait until the holder wakes it. */
struct waiter {
    pthread_t thread;
    bool event;
    void *obj;
    int rc;
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    if (w->event) {
        shml_event *e = w->obj;
        w->rc = shml_event_wait(e, shml_event_read(e), SHML_FOREVER);
    } else {
        w->rc = shml_sem_wait(w->obj, SHML_FOREVER);
    }
    return NULL;
}

/* Whether the object at `off` of `addr` has at least `n` waiters (bounded wait: 5 s). */
static int await_waiters(const char *addr, size_t off, uint32_t n)
{
    for (int tries = 0; tries < 500; tries++) {
        struct shml_decl_info d[SHML_DECL_MAX];
        size_t cnt = 0;
        if (shml_segment_declared(addr, d, SHML_DECL_MAX, &cnt) == 0) {
            for (size_t i = 0; i < cnt && i < SHML_DECL_MAX; i++)
                if (d[i].offset == off && d[i].waiters >= n)
                    return 0;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int parse_off(const char *s, size_t *off)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end)
        return -1;
    *off = (size_t)v;
    return 0;
}

/* "NAME:OFF" or "NAME:OFF:VALUE" into its parts (name is copied into name[]). */
static int parse_decl(const char *s, char *name, size_t cap, size_t *off, unsigned long *value,
                      bool with_value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *c1 = strchr(buf, ':');
    if (!c1)
        return -1;
    *c1 = '\0';
    char *c2 = strchr(c1 + 1, ':');
    if (with_value != (c2 != NULL))
        return -1;
    if (c2) {
        *c2 = '\0';
        *value = strtoul(c2 + 1, NULL, 10);
    }
    size_t len = strlen(buf);
    if (len >= cap)
        return -1;
    memcpy(name, buf, len + 1);
    return parse_off(c1 + 1, off);
}

/* `holder --make-typed ADDR FORMAT ITEMSIZE`: a queue of one element of any type a message, as
   a C or Python program makes it (`shmlink mk --type` takes simple formats only). */
static int make_typed(const char *addr, const char *format, const char *itemsize)
{
    struct shml_channel_type t;
    memset(&t, 0, sizeof t);
    snprintf(t.format, sizeof t.format, "%s", format);
    t.itemsize = strtoull(itemsize, NULL, 10);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_QUEUE;
    o.capacity = 4096;
    o.type = &t;
    shml_channel *ch;
    int rc = shml_channel_create(addr, &o, &ch);
    if (rc < 0) {
        fprintf(stderr, "holder: make %s: %s (%s)\n", addr, shml_strerror(rc), shml_last_error());
        return 1;
    }
    shml_channel_close(ch);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--make-typed"))
        return make_typed(argv[2], argv[3], argv[4]);
    shml_segment *segs[MAX_SEGS] = {0};
    const char *addrs[MAX_SEGS];
    const char *ops[MAX_OPS][2];
    int n = 0, nops = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (i + 1 >= argc || nops == MAX_OPS) {
                fprintf(stderr, "holder: %s needs a value (at most %d options)\n", argv[i],
                        MAX_OPS);
                return 2;
            }
            ops[nops][0] = argv[i];
            ops[nops++][1] = argv[++i];
        } else if (n < MAX_SEGS) {
            addrs[n++] = argv[i];
        } else {
            n = MAX_SEGS + 1;
        }
    }
    if (n < 1 || n > MAX_SEGS) {
        fprintf(stderr, "usage: holder ADDR... (1 to 64) [--mutex NAME:OFF] [--lock OFF] ...\n");
        return 2;
    }
    size_t create_size = 0;
    for (int k = 0; k < nops; k++)
        if (!strcmp(ops[k][0], "--create-owned"))
            create_size = (size_t)strtoull(ops[k][1], NULL, 0);
    struct shml_segment_opts owned = SHML_SEGMENT_OPTS_INIT;
    owned.flags = SHML_OWNED;
    for (int i = 0; i < n; i++) {
        int rc = create_size ? shml_segment_create(addrs[i], create_size, &owned, &segs[i])
                             : shml_segment_open(addrs[i], NULL, &segs[i]);
        if (rc < 0) {
            fprintf(stderr, "holder: open %s: %s (%s)\n", addrs[i], shml_strerror(rc),
                    shml_last_error());
            for (int k = 0; k < i; k++)
                shml_segment_close(segs[k]);
            return 1;
        }
    }

    unsigned char *data = shml_segment_data(segs[0]);
    shml_mutex *locked[MAX_OPS];
    struct waiter waiters[MAX_OPS];
    shml_channel *chans[MAX_OPS];
    int nlocked = 0, nwaiters = 0, nchans = 0, status = 0;
    for (int k = 0; k < nops && status == 0; k++) {
        const char *op = ops[k][0] + 2, *arg = ops[k][1];
        if (!strcmp(op, "create-owned"))
            continue; /* done above */
        char name[SHML_DECL_NAME_MAX + 8];
        size_t off = 0;
        unsigned long value = 0;
        int rc = 0;
        if (!strcmp(op, "endpoint") || !strcmp(op, "send")) {
            static const struct {
                const char *name;
                unsigned role;
            } roles[] = {{"producer", SHML_PRODUCER},
                         {"publisher", SHML_PRODUCER},
                         {"writer", SHML_PRODUCER},
                         {"client", SHML_CLIENT},
                         {"consumer", SHML_CONSUMER},
                         {"subscriber", SHML_CONSUMER},
                         {"reader", SHML_CONSUMER},
                         {"server", SHML_SERVER},
                         {"both", SHML_PRODUCER | SHML_CONSUMER}};
            if (!strcmp(op, "send")) {
                rc = nchans ? (int)shml_send(chans[nchans - 1], arg, strlen(arg), 1000000000)
                            : -EINVAL;
            } else {
                unsigned role = 0;
                for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++)
                    if (!strcmp(arg, roles[r].name))
                        role = roles[r].role;
                rc = role ? shml_channel_open(addrs[0], role, NULL, &chans[nchans]) : -EINVAL;
                if (rc >= 0)
                    nchans++;
            }
            if (rc < 0) {
                fprintf(stderr, "holder: --%s %s: %s (%s)\n", op, arg, shml_strerror(rc),
                        shml_last_error());
                status = 1;
            }
            continue;
        }
        bool is_decl = !strcmp(op, "mutex") || !strcmp(op, "event") || !strcmp(op, "sem");
        if (is_decl ? parse_decl(arg, name, sizeof name, &off, &value, !strcmp(op, "sem")) < 0
                    : parse_off(arg, &off) < 0) {
            fprintf(stderr, "holder: --%s %s: cannot parse\n", op, arg);
            status = 2;
            break;
        }
        if (off >= shml_segment_size(segs[0])) {
            fprintf(stderr, "holder: --%s %s: offset past the end\n", op, arg);
            status = 2;
            break;
        }
        void *obj = data + off;
        if (!strcmp(op, "mutex")) {
            rc = shml_mutex_init(obj);
            if (rc >= 0)
                rc = shml_segment_declare(segs[0], name, SHML_DECL_MUTEX, off);
        } else if (!strcmp(op, "event")) {
            rc = shml_event_init(obj);
            if (rc >= 0)
                rc = shml_segment_declare(segs[0], name, SHML_DECL_EVENT, off);
        } else if (!strcmp(op, "sem")) {
            rc = shml_sem_init(obj, (uint32_t)value);
            if (rc >= 0)
                rc = shml_segment_declare(segs[0], name, SHML_DECL_SEM, off);
        } else if (!strcmp(op, "lock")) {
            rc = shml_mutex_lock(obj, 0);
            if (rc == 0 || rc == -EOWNERDEAD) {
                locked[nlocked++] = obj;
                rc = 0;
            }
        } else if (!strcmp(op, "notify")) {
            rc = shml_event_notify(obj, SHML_WAKE_ALL);
        } else if (!strcmp(op, "post")) {
            rc = shml_sem_post(obj);
        } else if (!strcmp(op, "wait-event") || !strcmp(op, "wait-sem")) {
            struct waiter *w = &waiters[nwaiters];
            *w = (struct waiter){.event = !strcmp(op, "wait-event"), .obj = obj};
            rc = -pthread_create(&w->thread, NULL, wait_main, w);
            if (rc == 0) {
                nwaiters++;
                if (await_waiters(shml_segment_address(segs[0]), off, 1) < 0) {
                    fprintf(stderr, "holder: --%s %s: the thread did not go to sleep\n", op, arg);
                    status = 1;
                }
            }
        } else {
            fprintf(stderr, "holder: unknown option --%s\n", op);
            status = 2;
        }
        if (rc < 0) {
            fprintf(stderr, "holder: --%s %s: %s (%s)\n", op, arg, shml_strerror(rc),
                    shml_last_error());
            status = 1;
        }
    }

    if (status == 0) {
        printf("ready\n");
        fflush(stdout);
        char buf[256];
        while (read(STDIN_FILENO, buf, sizeof buf) > 0)
            ;
    }
    /* Wake and join our waiting threads, release our locks, then detach. */
    for (int k = 0; k < nwaiters; k++) {
        if (waiters[k].event)
            shml_event_notify(waiters[k].obj, SHML_WAKE_ALL);
        else
            shml_sem_post(waiters[k].obj);
        pthread_join(waiters[k].thread, NULL);
    }
    for (int k = nlocked - 1; k >= 0; k--)
        shml_mutex_unlock(locked[k]);
    for (int k = 0; k < nchans; k++)
        shml_channel_close(chans[k]);
    for (int i = 0; i < n; i++)
        shml_segment_close(segs[i]);
    return status;
}
