/*
 * A channel whose object a peer truncates while others use it (posix and file, queue and
 * bus): a consumer in another process reading, and a producer here, each get
 * -SHML_ETRUNCATED from their next call and from every call after it; nobody dies of
 * SIGBUS. A consumer asleep in a wait when it happens notices within its bound too.
 */
#include "chan_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *object_of(const char *addr)
{
    if (strncmp(addr, "posix:/", 7) == 0)
        return shmt_fmt("/dev/shm/%s", addr + 7);
    return addr + 5; /* file: */
}

static void truncate_object(const char *addr, off_t keep)
{
    int fd = open(object_of(addr), O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, keep));
    close(fd);
}

static shml_channel *make(const char *addr, uint32_t kind)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    o.capacity = 16;
    o.max_msg = 256;
    shml_channel *ch = NULL;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    return ch;
}

/* argv: address. Reads until the channel is lost: exit 0 if it then stays lost. */
PEER(trunc_reader)
{
    (void)argc;
    shml_channel *ch = NULL;
    if (shml_channel_open(argv[0], SHML_CONSUMER, NULL, &ch) != 0)
        return 10;
    parent_send("ready");
    char buf[256];
    long got = 0;
    int64_t end = shmt_now_ms() + 10000;
    while (shmt_now_ms() < end) {
        ssize_t r = shml_recv(ch, buf, sizeof buf, 100 * MS);
        if (r >= 0) {
            got++;
            continue;
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != -SHML_ETRUNCATED)
            return 11;
        const void *p;
        size_t len;
        struct shml_channel_stats st;
        if (shml_recv(ch, buf, sizeof buf, 0) != -SHML_ETRUNCATED ||
            shml_peek(ch, &p, &len, 0) != -SHML_ETRUNCATED ||
            shml_channel_get_stats(ch, &st) != -SHML_ETRUNCATED)
            return 12;
        shmt_log("reader: %ld messages, then %s", got, shml_last_error());
        return shml_channel_close(ch) == 0 ? 0 : 13;
    }
    return 14; /* never noticed */
}

static void truncated_under_a_reader(const char *addr, uint32_t kind, off_t keep)
{
    shml_channel *ch = make(addr, kind);
    pid_t peer = spawn_peer("trunc_reader", addr);
    ASSERT_OK(peer_expect(peer, "ready", 10000));
    char msg[64] = "message";
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(shml_send(ch, msg, sizeof msg, WAIT_BOUND), (ssize_t)sizeof msg);
    truncate_object(addr, keep);
    ASSERT_EQ(wait_peer(peer, 20000), 0); /* 128 + SIGBUS before the guard */
    /* This producer's next call touches the mapping, which faults: lost here too. */
    ASSERT_ERR(shml_send(ch, msg, sizeof msg, WAIT_BOUND), -SHML_ETRUNCATED);
    void *w;
    ASSERT_ERR(shml_claim(ch, 8, &w, 0), -SHML_ETRUNCATED);
    ASSERT_OK(shml_channel_close(ch));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(truncated_queue_posix)
{
    truncated_under_a_reader(chan_addr(), SHML_QUEUE, 0);
}

TEST(truncated_bus_posix_header_kept)
{
    truncated_under_a_reader(chan_addr(), SHML_BUS, 4096);
}

TEST(truncated_queue_file)
{
    truncated_under_a_reader(shmt_fmt("file:%s/ch", shmt_tmpdir()), SHML_QUEUE, 0);
}

struct sleeper {
    shml_channel *ch;
    ssize_t r;
};

static void *sleep_in_recv(void *arg)
{
    struct sleeper *s = arg;
    char buf[256];
    s->r = shml_recv(s->ch, buf, sizeof buf, 30 * SEC);
    return NULL;
}

/*
 * A consumer thread asleep in recv when the object is truncated: nobody will wake it (the
 * producers lose the channel too), so it looks again within a second, faults and returns.
 */
TEST(truncated_under_a_sleeping_consumer)
{
    const char *addr = chan_addr();
    shml_channel *ch = make(addr, SHML_QUEUE);
    shml_channel *rd = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    struct sleeper s = {.ch = rd, .r = 1};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, sleep_in_recv, &s), 0);
    shmt_sleep_ms(200); /* asleep by now, most likely; either way it must end */
    truncate_object(addr, 0);
    int64_t start = shmt_now_ms();
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(s.r, -SHML_ETRUNCATED);
    ASSERT_LT(shmt_now_ms() - start, 20000); /* well before its 30 s timeout */
    ASSERT_OK(shml_channel_close(rd));
    ASSERT_OK(shml_channel_close(ch));
    ASSERT_OK(shml_segment_unlink(addr));
}

/* A channel truncated below its header's size: open and inspect refuse it, and the handle
   that had it open closes without touching what is gone. */
TEST(truncated_channel_refused_at_open)
{
    const char *addr = chan_addr();
    shml_channel *ch = make(addr, SHML_QUEUE);
    truncate_object(addr, 4096); /* the header page stays, the control block goes */
    shml_channel *other = NULL;
    ASSERT_LT(shml_channel_open(addr, SHML_CONSUMER, NULL, &other), 0);
    ASSERT_NULL(other);
    struct shml_channel_stats st;
    ASSERT_LT(shml_channel_inspect(addr, &st, NULL, 0, NULL), 0);
    ASSERT_OK(shml_channel_close(ch));
    ASSERT_OK(shml_segment_unlink(addr));
}
