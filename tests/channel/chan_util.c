#include "chan_util.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

const char *chan_addr(void)
{
    return shmt_addr();
}

void *chan_shared_create(size_t size, const char **addr, shml_segment **seg)
{
    const char *a = shmt_addr();
    ASSERT_OK(shml_segment_create(a, size, NULL, seg));
    shmt_hold(a); /* the address stays valid until the test ends, where segments do not persist */
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    memset(data, 0, size);
    *addr = a;
    return data;
}

void *chan_shared_open(const char *addr, shml_segment **seg)
{
    ASSERT_OK(shml_segment_open(addr, NULL, seg));
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    return data;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t msg_sum(const struct chan_msg *m, const uint8_t *payload, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    h = fnv(h, &m->producer, sizeof m->producer);
    h = fnv(h, &m->len, sizeof m->len);
    h = fnv(h, &m->seq, sizeof m->seq);
    return fnv(h, payload, n);
}

static unsigned msg_seed(uint32_t producer, uint64_t seq)
{
    return (unsigned)(seq * 2654435761u) ^ (producer * 40503u);
}

void chan_msg_fill(void *buf, uint32_t len, uint32_t producer, uint64_t seq)
{
    struct chan_msg m = {producer, len, seq, 0};
    uint8_t *payload = (uint8_t *)buf + sizeof m;
    size_t n = len - sizeof m;
    shmt_fill(payload, n, msg_seed(producer, seq));
    m.sum = msg_sum(&m, payload, n);
    memcpy(buf, &m, sizeof m);
}

const char *chan_msg_check(const void *buf, size_t len)
{
    static char why[200];
    struct chan_msg m;
    if (len < sizeof m) {
        snprintf(why, sizeof why, "message of %zu bytes is shorter than its header", len);
        return why;
    }
    memcpy(&m, buf, sizeof m);
    if (m.len != len) {
        snprintf(why, sizeof why, "message says %u bytes, received %zu (producer %u seq %ju)",
                 m.len, len, m.producer, (uintmax_t)m.seq);
        return why;
    }
    const uint8_t *payload = (const uint8_t *)buf + sizeof m;
    if (msg_sum(&m, payload, len - sizeof m) != m.sum) {
        ptrdiff_t off = shmt_check(payload, len - sizeof m, msg_seed(m.producer, m.seq));
        snprintf(why, sizeof why, "checksum mismatch (producer %u seq %ju len %zu, payload byte %td)",
                 m.producer, (uintmax_t)m.seq, len, off);
        return why;
    }
    return NULL;
}

/* ASan builds run the multi-process tests several times slower: unless SHMT_CHAN_DIV says
   otherwise, they run a tenth of the iterations. (TSan runs only the in-process tests, at
   full scale in about 30 s.) */
#if defined(__SANITIZE_ADDRESS__)
#define CHAN_DEFAULT_DIV 10
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHAN_DEFAULT_DIV 10
#endif
#endif
#ifndef CHAN_DEFAULT_DIV
#define CHAN_DEFAULT_DIV 1
#endif

long chan_iters(long n, long min)
{
    const char *d = getenv("SHMT_CHAN_DIV");
    long div = d ? strtol(d, NULL, 10) : CHAN_DEFAULT_DIV;
    if (div > 1)
        n /= div;
    return n < min ? min : n;
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

unsigned chan_seed(void)
{
    const char *s = getenv("SHMT_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)(now_ns() ^ getpid());
    shmt_log("seed %u (set SHMT_SEED=%u to repeat)", seed, seed);
    return seed;
}

shml_channel *chan_make(const char **addr, uint32_t kind, uint32_t policy, size_t capacity,
                        size_t max_msg, uint32_t endpoints)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    o.policy = policy;
    o.capacity = capacity;
    o.max_msg = max_msg;
    o.endpoints = endpoints;
    *addr = chan_addr();
    shml_channel *ch = NULL;
    ASSERT_OK(shml_channel_create(*addr, &o, &ch));
    ASSERT_NOT_NULL(ch);
    shmt_hold(*addr); /* tests close `ch` and open the address again, peers open it later */
    return ch;
}

shml_channel *chan_open(const char *addr, unsigned role, uint32_t wait)
{
    return chan_open_flags(addr, role, wait, 0);
}

shml_channel *chan_open_flags(const char *addr, unsigned role, uint32_t wait, uint32_t flags)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = wait;
    o.flags = flags;
    shml_channel *ch = NULL;
    ASSERT_OK(shml_channel_open(addr, role, &o, &ch));
    ASSERT_NOT_NULL(ch);
    return ch;
}

struct shml_channel_stats chan_stats(const shml_channel *ch)
{
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    return st;
}

struct shml_channel_stats chan_inspect(const char *addr)
{
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_inspect(addr, &st, NULL, 0, NULL));
    return st;
}

struct shml_endpoint_stats chan_endpoint(const char *addr, int32_t pid, uint32_t role)
{
    static struct shml_endpoint_stats eps[256];
    size_t n = 0;
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, 256, &n));
    for (size_t i = 0; i < n && i < 256; i++)
        if (eps[i].pid == pid && eps[i].role == role)
            return eps[i];
    shmt_fail(__FILE__, __LINE__, "no endpoint of pid %d role %u among %zu", (int)pid, role, n);
}
