/*
 * bridge_nats.c - `shmlink bridge` on the NATS C client (libnats): the connection, and the
 * loops that move messages between the local channel and a subject (bridge.h).
 *
 * One thread moves messages (the main one, whose library waits a stop signal ends); the NATS
 * client's own threads read the socket and report connection changes, which the callbacks
 * below turn into a flag and a line on stderr.
 *
 * Out: a consumer (queue) or subscriber (bus) of the local channel peeks at a message,
 * publishes it, and releases it once the client has taken it. While the connection is down
 * it takes nothing: the channel fills, and its producers wait (block) or its subscriber is
 * lapped and counts what it missed (overwrite).
 * In: a subscription (a queue group's member for a queue, a plain one for a bus) delivers
 * messages one at a time; each is sent into the local channel, waiting for room as long as
 * the policy says, meanwhile the client buffers what arrives (its pending limits: beyond
 * them it drops, and says how many, which the bridge counts).
 */
#include "shmlink.h"

#include "bridge.h"
#include "bridge_nkey.h"
#include "cmd_channel.h"
#include "verb.h"
#include "fmt.h"

#include <nats/nats.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long one library wait lasts before the loop looks at the stop flag and the link. */
#define STEP_NS ((int64_t)200 * 1000 * 1000)
#define STEP_MS 200
/* Headers: at most this many bytes beside the payload (names, values, framing). */
#define HEADER_ROOM 512
/* Reconnecting: the first wait, doubled up to the last. */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_LAST_MS  4000

#define SENT_WINDOW (1u << 20)

struct bridge {
    const struct bridge_args *a;
    char shown[1024]; /* the URL without its password */
    shml_channel *ch;
    uint32_t kind;
    size_t max_msg;
    char type_text[SHML_TYPE_FORMAT_MAX + 64];
    natsConnection *nc;
    natsSubscription *sub;
    jsCtx *js; /* latest: JetStream, its key-value bucket, the key's subject */
    kvStore *kv;
    char kv_subject[BRIDGE_SUBJECT_MAX + 160];
    atomic_int linked;  /* 1 while the connection is up */
    atomic_int closing; /* the bridge is closing its connection: callbacks stay quiet */
    uint64_t epoch;     /* out: this run's, in every message's header */
    uint64_t seq;
    uint64_t forwarded, dropped;
    atomic_uint_fast64_t reconnects; /* by the client's thread; the loop moves them to the
                                        endpoint's counter (reconnects_counted) */
    uint64_t reconnects_counted;
    int64_t client_dropped; /* in: what the NATS client dropped, as last read */
    char last_epoch[24];    /* in: the publishing bridge whose sequence we follow */
    uint64_t last_seq;
    bool warned_type, warned_size, warned_batch;
    bool started; /* forwarding began: the counts are worth a line at the end */
    /* Out: a thread that flushes the client when the loop finds its channel empty, so that
       the loop goes on while the flush waits for the server's answer. */
    pthread_t flusher;
    bool has_flusher;
    pthread_mutex_t flush_mu;
    pthread_cond_t flush_cv;
    bool flush_asked, flush_stop;
    char last_refusal[128]; /* rpc out: the reason said last */
    /* --jetstream: the stream, a bridge in's durable consumer, and the stream sequences this
       run sent into the channel, the last SENT_WINDOW of them (a bit each, by sequence
       modulo the window, below the highest sent_top), so that their redelivery is
       acknowledged, not sent twice: after an acknowledgement that failed, and after one the
       server confirmed but lost (a consumer's new leader that had not yet learnt of it). A
       redelivery comes after --ack-wait: the window holds a million sequences, 30 s of
       35000 messages a second. */
    char stream[256];
    char durable[256];
    char local_durable[256]; /* the durable endpoint of the channel ("bridge STREAM") */
    int64_t created_ns;      /* out: the channel's creation time, in message ids */
    int64_t stream_created;  /* the stream's creation time */
    uint64_t sent_top;
    uint64_t sent_bits[SENT_WINDOW / 64];
    /* in: a durable producer of its channel, each message marked with the stream (a tag of
       its name and creation time) and its sequence (mark_of()); the killed bridge's mark this
       one found at its start, and its sequence when it is of this stream (the last message
       the channel got from the killed one); the mark of the last single message sent since */
    bool marks;
    bool has_found_mark, has_found_seq;
    uint64_t found_mark, found_seq;
    uint64_t last_mark;
    uint64_t redelivered;
};

/* "shmlink: bridge out ADDR: ..." on stderr. */
CLI_PRINTF(2, 3) static void say(const struct bridge *b, const char *fmt, ...)
{
    char *shown = malloc(CLI_SHOW_CAP);
    fprintf(stderr, "shmlink: %s %s: ", b->a->verb,
            shown ? cli_display(b->a->addr, shown, CLI_SHOW_CAP) : "?");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    free(shown);
}

/* The client's last error, without the "(file.c:123): " it starts with. */
static const char *nats_why(natsStatus s)
{
    const char *text = nats_GetLastError(NULL), *at;
    if (text && text[0] == '(' && (at = strstr(text, "): ")) != NULL)
        text = at + 3;
    return text && *text ? text : natsStatus_GetText(s);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    struct bridge *b = closure;
    /* Relaxed: flags the loop polls; what they guard is the client's own state. */
    if (atomic_exchange_explicit(&b->linked, 0, memory_order_relaxed) &&
        !atomic_load_explicit(&b->closing, memory_order_relaxed))
        say(b, "disconnected from %s; reconnecting", b->shown);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct bridge *b = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_fetch_add_explicit(&b->reconnects, 1, memory_order_relaxed); /* a statistic */
    atomic_store_explicit(&b->linked, 1, memory_order_relaxed);         /* as above */
    say(b, "reconnected to %s", url[0] ? url : b->shown);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    /* A slow consumer is counted from the subscription's dropped count; others are said. */
    if (err != NATS_SLOW_CONSUMER)
        say(closure, "NATS: %s", natsStatus_GetText(err));
}

/* Options from the command line; returns 0, or the exit status after reporting. */
static int make_options(struct bridge *b, natsOptions **out)
{
    const struct bridge_args *a = b->a;
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    const char *servers[BRIDGE_SERVERS_MAX];
    for (size_t i = 0; i < a->url.nservers; i++)
        servers[i] = a->url.servers[i];
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, (int)a->url.nservers);
    if (s == NATS_OK && a->url.user[0])
        s = natsOptions_SetUserInfo(o, a->url.user, a->url.has_password ? a->url.password : "");
    if (s == NATS_OK)
        s = natsOptions_SetName(o, a->name ? a->name : "shmlink bridge");
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, false);
    /* rpc: each request and reply is waited for, so it leaves at once; the client otherwise
       gathers what is published for a moment (about a millisecond) before it writes. A
       batch (bridge out --batch) is what the channel held: it leaves at once too. Queue, bus
       and latest otherwise flush when their channel has nothing more (run_out()). */
    if (s == NATS_OK && (b->kind == SHML_RPC || a->batch))
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* for as long as the bridge runs */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, BACKOFF_FIRST_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, 100, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 2000); /* a dead server is noticed within seconds */
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, b);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return cli_fail(a->verb, a->addr, "NATS options: %s", nats_why(s));
    }
    const char *what = NULL;
    if (a->url.tls || a->tls_ca || a->tls_cert) {
        what = "TLS";
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK && a->tls_ca) {
            what = a->tls_ca;
            s = natsOptions_LoadCATrustedCertificates(o, a->tls_ca);
        }
        if (s == NATS_OK && a->tls_cert) {
            what = a->tls_cert;
            s = natsOptions_LoadCertificatesChain(o, a->tls_cert, a->tls_key);
        }
    }
    if (s == NATS_OK && a->creds) {
        what = a->creds;
        s = natsOptions_SetUserCredentialsFromFiles(o, a->creds, NULL);
    }
    if (s == NATS_OK && a->nkey) {
        char pub[64], why[256];
        if (bridge_nkey_public(a->nkey, pub, sizeof pub, why, sizeof why) < 0) {
            natsOptions_Destroy(o);
            return cli_fail(a->verb, a->addr, "%s: %s", a->nkey, why);
        }
        what = a->nkey;
        s = natsOptions_SetNKeyFromSeed(o, pub, a->nkey);
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return cli_fail(a->verb, a->addr, "%s: %s", what, nats_why(s));
    }
    *out = o;
    return 0;
}

/* A failure to connect that retrying cannot mend (credentials, TLS), as opposed to a server
   not there (yet). */
static bool fatal_connect(natsStatus s)
{
    return s != NATS_NO_SERVER && s != NATS_TIMEOUT && s != NATS_IO_ERROR &&
           s != NATS_CONNECTION_CLOSED && s != NATS_STALE_CONNECTION;
}

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Connect, retrying with backoff while no server answers; returns 0, or the exit status. */
static int connect_server(struct bridge *b, natsOptions *o)
{
    int wait = BACKOFF_FIRST_MS;
    bool said = false;
    for (;;) {
        natsStatus s = natsConnection_Connect(&b->nc, o);
        if (s == NATS_OK)
            break;
        if (fatal_connect(s)) {
            /* A server that wants a client certificate and gets none closes the connection
               after the handshake: the client only sees its greeting go unanswered. */
            const char *why = nats_why(s);
            bool tls = b->a->url.tls || b->a->tls_ca;
            return cli_fail(b->a->verb, b->a->addr, "cannot connect to %s: %s%s", b->shown, why,
                            tls && !b->a->tls_cert && strstr(why, "PONG")
                                ? " (does the server want a client certificate? --tls-cert "
                                  "and --tls-key)"
                                : "");
        }
        if (!said) {
            say(b, "cannot reach %s (%s); retrying", b->shown, nats_why(s));
            said = true;
        }
        for (int slept = 0; slept < wait && !cli_stop_requested; slept += 50)
            nap_ms(50);
        if (cli_stop_requested)
            return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
        wait = wait * 2 > BACKOFF_LAST_MS ? BACKOFF_LAST_MS : wait * 2;
    }
    atomic_store_explicit(&b->linked, 1, memory_order_relaxed); /* as in on_reconnected() */
    if (said) {
        char url[256] = "";
        natsConnection_GetConnectedUrl(b->nc, url, sizeof url);
        say(b, "connected to %s", url[0] ? url : b->shown);
    }
    return 0;
}

static uint64_t random_epoch(void)
{
    uint64_t e = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&e, sizeof e, 1, f) != 1)
        e = (uint64_t)cli_now_ns() ^ ((uint64_t)cli_mono_ns() << 17);
    if (f)
        fclose(f);
    return e ? e : 1;
}

/* The bridge's message to publish: the payload with the bridge's headers (and `error`, for a
   reply that says why there is none). NULL if the client has no memory. */
static natsMsg *make_msg(struct bridge *b, const char *subject, const void *buf, size_t len,
                         const char *error)
{
    natsMsg *m = NULL;
    char epoch[24], seq[24];
    snprintf(epoch, sizeof epoch, "%016" PRIx64, b->epoch);
    snprintf(seq, sizeof seq, "%" PRIu64, ++b->seq);
    natsStatus s = natsMsg_Create(&m, subject, NULL, buf, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, BRIDGE_HDR_KIND, shml_kind_name(b->kind));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, BRIDGE_HDR_EPOCH, epoch);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, BRIDGE_HDR_SEQ, seq);
    if (s == NATS_OK && b->type_text[0] && !error)
        s = natsMsgHeader_Set(m, BRIDGE_HDR_TYPE, b->type_text);
    if (s == NATS_OK && error)
        s = natsMsgHeader_Set(m, BRIDGE_HDR_ERROR, error);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

/* A batch of `count` messages (bridge out --batch; framed in buf already): a message with
   the bridge's headers, the first message's sequence and the count. NULL without memory. */
static natsMsg *make_batch(struct bridge *b, const void *buf, size_t len, uint32_t count)
{
    natsMsg *m = make_msg(b, b->a->url.subject, buf, len, NULL);
    char n[16];
    snprintf(n, sizeof n, "%" PRIu32, count);
    if (m && natsMsgHeader_Set(m, BRIDGE_HDR_COUNT, n) != NATS_OK) {
        natsMsg_Destroy(m);
        m = NULL;
    }
    b->seq += count - 1; /* make_msg() numbered the first */
    return m;
}

/* Statuses of a publish that the next connection mends: keep the message, try again. */
static bool link_trouble(natsStatus s)
{
    return s == NATS_CONNECTION_DISCONNECTED || s == NATS_INSUFFICIENT_BUFFER ||
           s == NATS_IO_ERROR || s == NATS_TIMEOUT || s == NATS_STALE_CONNECTION;
}

static bool linked(struct bridge *b)
{
    return atomic_load_explicit(&b->linked, memory_order_relaxed) != 0; /* as above */
}

static void *flush_loop(void *arg)
{
    struct bridge *b = arg;
    pthread_mutex_lock(&b->flush_mu);
    for (;;) {
        while (!b->flush_asked && !b->flush_stop)
            pthread_cond_wait(&b->flush_cv, &b->flush_mu);
        if (b->flush_stop)
            break;
        b->flush_asked = false;
        pthread_mutex_unlock(&b->flush_mu);
        natsConnection_FlushTimeout(b->nc, 2000);
        pthread_mutex_lock(&b->flush_mu);
    }
    pthread_mutex_unlock(&b->flush_mu);
    return NULL;
}

/* Have what the client gathered sent now (the flusher thread does it). */
static void ask_flush(struct bridge *b)
{
    pthread_mutex_lock(&b->flush_mu);
    b->flush_asked = true;
    pthread_cond_signal(&b->flush_cv);
    pthread_mutex_unlock(&b->flush_mu);
}

static void start_flusher(struct bridge *b)
{
    pthread_mutex_init(&b->flush_mu, NULL);
    pthread_cond_init(&b->flush_cv, NULL);
    b->has_flusher = pthread_create(&b->flusher, NULL, flush_loop, b) == 0;
}

static void stop_flusher(struct bridge *b)
{
    if (!b->has_flusher)
        return;
    pthread_mutex_lock(&b->flush_mu);
    b->flush_stop = true;
    pthread_cond_signal(&b->flush_cv);
    pthread_mutex_unlock(&b->flush_mu);
    pthread_join(b->flusher, NULL);
    b->has_flusher = false;
}

/* Count n messages lost on the way, in the bridge's endpoint too (its drops). */
static void drop(struct bridge *b, uint64_t n)
{
    b->dropped += n;
    shml_channel_count(b->ch, SHML_COUNT_DROPS, n);
}

/* A message (`what`: or a value) of len bytes the channel refused (its size, its type):
   counted, and said the first time. */
static void drop_refused(struct bridge *b, const char *what, size_t len)
{
    drop(b, 1);
    if (!b->warned_size) {
        say(b, "dropping a %s of %zu bytes: %s", what, len, shml_last_error());
        b->warned_size = true;
    }
}

/* Move the reconnections the client's thread saw to the endpoint's counter (the handle is
   this thread's). */
static void count_reconnects(struct bridge *b)
{
    uint64_t r = atomic_load_explicit(&b->reconnects, memory_order_relaxed); /* a statistic */
    if (r != b->reconnects_counted) {
        shml_channel_count(b->ch, SHML_COUNT_RECONNECTS, r - b->reconnects_counted);
        b->reconnects_counted = r;
    }
}

/* Out: 0 when the channel's largest message fits the server's max_payload with the headers;
   otherwise the exit status after saying so (messages are never split). */
static int check_payload(struct bridge *b)
{
    int64_t max_payload = natsConnection_GetMaxPayload(b->nc);
    size_t framing = b->a->batch ? 4 : 0; /* a batch's length of each message */
    if (max_payload > 0 && (int64_t)(b->max_msg + framing + HEADER_ROOM) > max_payload)
        return cli_fail(b->a->verb, b->a->addr,
                        "the channel's messages may be %zu bytes, and the server takes at most "
                        "%" PRId64 " with headers (max_payload): raise max_payload in the "
                        "server's configuration, or make the channel with a smaller --max-msg",
                        b->max_msg, max_payload);
    return 0;
}

/* Out: peek at the channel's next message for up to timeout_ns (a lapped subscriber's gap
   counted). 0 with the message in hand (*buf, *len; shml_release() lets it go), -ETIMEDOUT
   when none came, -ECANCELED when stopped, or the exit status of a failure (said). */
static int take(struct bridge *b, const void **buf, size_t *len, int64_t timeout_ns)
{
    int r = shml_peek(b->ch, buf, len, timeout_ns);
    if (r == -ETIMEDOUT || r == -ECANCELED)
        return r;
    if (r < 0)
        return cli_fail_lib(b->a->verb, b->a->addr, r, shml_last_error(), NULL);
    b->dropped += shml_recv_gap(b->ch); /* a lapped subscriber (overwrite) */
    return 0;
}

/* Out, --batch: the messages taken (stage, lens) and the batch made of them (frame). */
struct batch_buf {
    unsigned char *stage, *frame;
    size_t *lens;
    size_t stage_cap, max;
};

static void batch_buf_free(struct batch_buf *bb)
{
    free(bb->stage);
    free(bb->frame);
    free(bb->lens);
    memset(bb, 0, sizeof *bb);
}

/* Out, --batch: how much of a batch the messages may fill, and at most how many. */
#define BATCH_BYTES (60u * 1024u)
#define BATCH_MAX   1024u

/* Out, --batch: what the channel holds (up to BATCH_MAX messages, BATCH_BYTES, waiting for the
   first at most timeout_ns), published as one NATS message of count messages. 0 (also when
   none came: *none set), -ECANCELED when stopped, or the exit status of a failure. */
static int publish_batch(struct bridge *b, struct batch_buf *bb, int64_t timeout_ns, bool *none)
{
    ssize_t n = shml_recv_batch(b->ch, bb->stage, bb->stage_cap, bb->lens, bb->max, timeout_ns);
    *none = n == -ETIMEDOUT;
    if (n == -ETIMEDOUT || n == -ECANCELED)
        return n == -ECANCELED ? (int)n : 0;
    if (n < 0)
        return cli_fail_lib(b->a->verb, b->a->addr, (int)n, shml_last_error(), NULL);
    b->dropped += shml_recv_gap(b->ch); /* a lapped subscriber (overwrite) */
    size_t at = 0, from = 0;
    for (ssize_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)bb->lens[i];
        unsigned char le[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                               (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
        memcpy(bb->frame + at, le, 4);
        memcpy(bb->frame + at + 4, bb->stage + from, len);
        at += 4 + len;
        from += len;
    }
    natsMsg *m = make_batch(b, bb->frame, at, (uint32_t)n);
    natsStatus s = m ? NATS_OK : NATS_NO_MEMORY;
    while (m && (s = natsConnection_PublishMsg(b->nc, m)) != NATS_OK && link_trouble(s) &&
           !cli_stop_requested)
        nap_ms(20);
    natsMsg_Destroy(m);
    if (s == NATS_OK) {
        b->forwarded += (uint64_t)n;
    } else {
        b->seq -= (uint64_t)n; /* not published: the next messages take their numbers */
        drop(b, (uint64_t)n);
        if (!cli_stop_requested)
            say(b, "%zd messages (%zu bytes) not published: %s", n, at, nats_why(s));
    }
    return 0;
}

static int run_out(struct bridge *b)
{
    int rc = check_payload(b);
    if (rc != 0)
        return rc;
    struct batch_buf bb = {0};
    if (b->a->batch) {
        /* What a batch may carry: BATCH_BYTES of messages (at least the largest one) and
           BATCH_MAX lengths, less under a small max_payload: the bytes first, then the count
           (check_payload() made sure one message of max_msg fits). */
        int64_t max_payload = natsConnection_GetMaxPayload(b->nc);
        size_t room = max_payload > 0 ? (size_t)max_payload - HEADER_ROOM : SIZE_MAX;
        bb.max = BATCH_MAX;
        bb.stage_cap = BATCH_BYTES;
        if (bb.stage_cap + 4 * bb.max > room)
            bb.stage_cap = room > 4 * bb.max ? room - 4 * bb.max : 0;
        if (bb.stage_cap < b->max_msg)
            bb.stage_cap = b->max_msg;
        while (bb.max > 1 && bb.stage_cap + 4 * bb.max > room)
            bb.max /= 2;
        bb.stage = malloc(bb.stage_cap);
        bb.frame = malloc(bb.stage_cap + 4 * bb.max);
        bb.lens = malloc(bb.max * sizeof *bb.lens);
        if (!bb.stage || !bb.frame || !bb.lens) {
            batch_buf_free(&bb);
            return cli_fail(b->a->verb, b->a->addr, "out of memory");
        }
    }
    say(b, "forwarding to %s%s", b->shown, b->a->batch ? " in batches" : "");
    b->started = true;
    if (!b->a->batch)
        start_flusher(b); /* a batch is written as it is published */
    bool unflushed = false; /* published since the channel last had nothing for us */
    while (!cli_stop_requested) {
        count_reconnects(b);
        if (!linked(b)) {
            nap_ms(20); /* take nothing while disconnected: the channel holds it */
            continue;
        }
        const void *buf = NULL;
        size_t len = 0;
        int r;
        if (b->a->batch) {
            bool none = false;
            r = publish_batch(b, &bb, STEP_NS, &none);
            if (r == 0 && !none)
                continue;
            if (r == 0)
                r = -ETIMEDOUT;
        } else {
            r = take(b, &buf, &len, unflushed ? 0 : STEP_NS);
        }
        if (r == -ETIMEDOUT && unflushed) {
            /* Nothing more for now: send what the client gathered, rather than let it wait
               for the client's own flush a millisecond later. */
            if (b->has_flusher)
                ask_flush(b);
            else
                natsConnection_FlushTimeout(b->nc, 2000);
            unflushed = false;
            continue;
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0) {
            batch_buf_free(&bb);
            return r == -ECANCELED ? CLI_EXIT_SIGNAL_BASE + cli_stop_requested : r;
        }
        natsMsg *m = make_msg(b, b->a->url.subject, buf, len, NULL);
        natsStatus s = m ? NATS_OK : NATS_NO_MEMORY;
        while (m && (s = natsConnection_PublishMsg(b->nc, m)) != NATS_OK && link_trouble(s) &&
               !cli_stop_requested)
            nap_ms(20);
        natsMsg_Destroy(m);
        if (s != NATS_OK)
            b->seq--; /* not published: the next message takes its number */
        if (s == NATS_OK) {
            b->forwarded++;
            unflushed = true;
        } else if (!cli_stop_requested) {
            drop(b, 1);
            say(b, "message of %zu bytes not published: %s", len, nats_why(s));
        }
        shml_release(b->ch);
    }
    batch_buf_free(&bb);
    return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
}

/* In: is the message's type the channel's? A message without the header passes (a plain
   NATS publisher's bytes, checked by the channel's own size rule on send). */
static bool type_matches(struct bridge *b, natsMsg *m)
{
    const char *t = NULL;
    if (natsMsgHeader_Get(m, BRIDGE_HDR_TYPE, &t) != NATS_OK || !t)
        return true;
    return strcmp(t, b->type_text) == 0;
}

/* In: true when the message's type is not the channel's: then its `count` messages are
   counted as drops (and said the first time), and the caller drops it. */
static bool refuse_type(struct bridge *b, natsMsg *m, uint32_t count)
{
    if (type_matches(b, m))
        return false;
    drop(b, count);
    if (!b->warned_type) {
        const char *t = "";
        natsMsgHeader_Get(m, BRIDGE_HDR_TYPE, &t);
        say(b, "dropping messages of type '%s': the channel's is '%s'", t ? t : "",
            b->type_text[0] ? b->type_text : "untyped");
        b->warned_type = true;
    }
    return true;
}

/* In: count the messages a publishing bridge sent that never arrived (its sequence skipped);
   m holds `count` of them, numbered from its sequence on. */
static void follow_sequence(struct bridge *b, natsMsg *m, uint32_t count)
{
    const char *epoch = NULL, *seq = NULL;
    if (natsMsgHeader_Get(m, BRIDGE_HDR_EPOCH, &epoch) != NATS_OK || !epoch ||
        natsMsgHeader_Get(m, BRIDGE_HDR_SEQ, &seq) != NATS_OK || !seq)
        return;
    char *end;
    uint64_t n = strtoull(seq, &end, 10);
    if (*end || n == 0)
        return;
    /* A queue group splits one sequence among its members: only a bus sees all of it. */
    if (b->kind == SHML_BUS && strcmp(epoch, b->last_epoch) == 0 && n > b->last_seq + 1)
        drop(b, n - b->last_seq - 1);
    if (strcmp(epoch, b->last_epoch) != 0 || n > b->last_seq) {
        snprintf(b->last_epoch, sizeof b->last_epoch, "%s", epoch);
        b->last_seq = n + count - 1;
    }
}

/* In: how many messages m holds: 1, or a batch's count (BRIDGE_HDR_COUNT); 0 for a count
   that is not a number from 1 to what the payload can hold (4 bytes of length each): the
   batch is then dropped, counted as one message. */
static uint32_t batch_count(natsMsg *m, bool *batch)
{
    const char *c = NULL;
    *batch = natsMsgHeader_Get(m, BRIDGE_HDR_COUNT, &c) == NATS_OK && c;
    if (!*batch)
        return 1;
    char *end;
    unsigned long n = strtoul(c, &end, 10);
    unsigned long most = (unsigned long)natsMsg_GetDataLength(m) / 4;
    return *end || c[0] < '0' || c[0] > '9' || n == 0 || n > most ? 0 : (uint32_t)n;
}

/* In: the messages of m's payload: itself, or a batch's `count`, each a 4-byte little-endian
   length and its bytes, which must fill the payload exactly. iov has room for count. */
static bool split_batch(natsMsg *m, bool batch, uint32_t count, struct shml_iov *iov)
{
    const unsigned char *p = (const unsigned char *)natsMsg_GetData(m);
    size_t left = (size_t)natsMsg_GetDataLength(m);
    if (!batch) {
        iov[0].base = p;
        iov[0].len = left;
        return true;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (left < 4)
            return false;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (len > left - 4)
            return false;
        iov[i].base = p + 4;
        iov[i].len = len;
        p += 4 + len;
        left -= 4 + len;
    }
    return left == 0;
}

/* In: send m's messages (one, or a batch's) into the channel, in order, waiting while it is
   full; through JetStream (js) telling the server meanwhile that m is in hand. A message the
   channel refuses (its size, its type) is dropped, counted. Returns 0, -ECANCELED when
   stopped before all were sent, or the exit status of a failure. */
static int put_local(struct bridge *b, natsMsg *m, bool js)
{
    bool batch;
    uint32_t count = batch_count(m, &batch);
    struct shml_iov one, *iov = count > 1 ? malloc(count * sizeof *iov) : &one;
    if (!iov)
        return cli_fail(b->a->verb, b->a->addr, "out of memory");
    if (!count || !split_batch(m, batch, count, iov)) {
        drop(b, count ? count : 1);
        if (!b->warned_batch)
            say(b, "dropping a batch whose messages do not fill it as its %s header says",
                BRIDGE_HDR_COUNT);
        b->warned_batch = true;
        if (iov != &one)
            free(iov);
        return 0;
    }
    int rc = 0;
    bool singly = false; /* the channel refused the rest as a batch: one at a time */
    int64_t waited = 0;
    for (uint32_t k = 0; k < count;) {
        ssize_t r = singly || count - k == 1
                        ? shml_send(b->ch, iov[k].base, iov[k].len, STEP_NS)
                        : shml_send_batch(b->ch, iov + k, count - k, STEP_NS);
        bool whole = singly || count - k == 1;
        if (r == -ETIMEDOUT) {
            if (cli_stop_requested) {
                rc = -ECANCELED;
                break;
            }
            /* A full channel (block): tell the server the message is in hand, well before
               it would deliver it again. */
            waited += STEP_NS;
            if (js && waited >= b->a->ack_wait_ns / 3) {
                natsMsg_InProgress(m, NULL);
                waited = 0;
            }
            count_reconnects(b);
            continue;
        }
        if (r == -ECANCELED) {
            rc = -ECANCELED;
            break;
        }
        if (r >= 0) {
            uint32_t sent = whole ? 1 : (uint32_t)r;
            b->forwarded += sent;
            k += sent;
        } else if ((r == -EMSGSIZE || r == -EINVAL) && !whole) {
            singly = true;
        } else if (r == -EMSGSIZE || r == -EINVAL) {
            drop_refused(b, "message", iov[k].len);
            k++;
        } else if (r == -ESTALE) {
            drop(b, 1); /* an overwrite bus passed it while it was written: counted lost */
            k++;
        } else {
            rc = cli_fail_lib(b->a->verb, b->a->addr, (int)r, shml_last_error(), NULL);
            break;
        }
    }
    if (iov != &one)
        free(iov);
    return rc;
}

static void count_client_drops(struct bridge *b)
{
    int64_t d = 0;
    if (natsSubscription_GetDropped(b->sub, &d) == NATS_OK && d > b->client_dropped) {
        drop(b, (uint64_t)(d - b->client_dropped));
        b->client_dropped = d;
    }
}

static int run_in(struct bridge *b)
{
    natsStatus s =
        b->kind == SHML_QUEUE
            ? natsConnection_QueueSubscribeSync(&b->sub, b->nc, b->a->url.subject, b->a->group)
            : natsConnection_SubscribeSync(&b->sub, b->nc, b->a->url.subject);
    if (s == NATS_OK)
        s = natsConnection_Flush(b->nc); /* the server has the subscription when we say so */
    if (s != NATS_OK)
        return cli_fail(b->a->verb, b->a->addr, "cannot subscribe to %s: %s", b->a->url.subject,
                        nats_why(s));
    if (b->kind == SHML_QUEUE)
        say(b, "forwarding from %s (queue group %s)", b->shown, b->a->group);
    else
        say(b, "forwarding from %s", b->shown);
    b->started = true;
    while (!cli_stop_requested) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, b->sub, STEP_MS);
        count_client_drops(b);
        count_reconnects(b);
        if (s == NATS_TIMEOUT || s == NATS_SLOW_CONSUMER)
            continue;
        if (s != NATS_OK) {
            if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION)
                return cli_fail(b->a->verb, b->a->addr, "the subscription ended: %s", nats_why(s));
            continue;
        }
        bool batch;
        uint32_t count = batch_count(m, &batch);
        if (count)
            follow_sequence(b, m, count);
        int r = count && refuse_type(b, m, count) ? 0 : put_local(b, m, false);
        natsMsg_Destroy(m);
        if (r == -ECANCELED)
            break;
        if (r != 0)
            return r;
    }
    return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
}

/* ---- JetStream: queue and bus, at least once ---- */

/* Statuses JetStream gives while a stream has no leader or the link is down: try again. */
static bool js_trouble(natsStatus s)
{
    return link_trouble(s) || s == NATS_NO_RESPONDERS;
}

/* Waiting for JetStream to answer, across the attempts of one step. */
struct js_waiting {
    bool said;
    int64_t no_responders_since;
};

/* After a JetStream request failed with s (and jerr): true, having napped, when it is worth
   asking again: the link is down, or a cluster has no leader or not its peers yet (said
   once). No responder at all means a server without JetStream, unless it lasts under three
   seconds (a cluster's servers still joining). False when stopped. */
static bool js_wait(struct bridge *b, struct js_waiting *w, natsStatus s, jsErrCode jerr)
{
    bool again = link_trouble(s) || jerr == JSClusterNotAvailErr || jerr == JSClusterNoPeersErr;
    if (s == NATS_NO_RESPONDERS) {
        int64_t now = cli_mono_ns();
        if (!w->no_responders_since)
            w->no_responders_since = now;
        again = now - w->no_responders_since < (int64_t)3 * 1000 * 1000 * 1000;
    }
    if (!again || cli_stop_requested)
        return false;
    if (!w->said) {
        say(b, "JetStream does not answer yet (%s); retrying", nats_why(s));
        w->said = true;
    }
    nap_ms(250);
    return !cli_stop_requested;
}

/* The stream that keeps the subject's messages (--stream, or the name derived from the
   subject), made with --replicas when missing. While JetStream does not answer yet (a cluster
   electing its leaders) it waits, saying so once; a server without JetStream (no responder
   for a few seconds) fails. 0, or the exit status. */
static int open_stream(struct bridge *b)
{
    const struct bridge_args *a = b->a;
    natsStatus s = natsConnection_JetStream(&b->js, b->nc, NULL);
    struct js_waiting w = {0};
    while (s == NATS_OK) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &jerr);
        if (s == NATS_NOT_FOUND) {
            jsStreamConfig c;
            jsStreamConfig_Init(&c);
            const char *subjects[1] = {a->url.subject};
            c.Name = b->stream;
            c.Subjects = subjects;
            c.SubjectsLen = 1;
            c.Storage = js_FileStorage;
            c.Replicas = a->replicas;
            s = js_AddStream(&si, b->js, &c, NULL, &jerr);
            if (s == NATS_OK)
                say(b, "made stream %s for %s (%d replica%s)", b->stream, a->url.subject,
                    a->replicas, a->replicas == 1 ? "" : "s");
        }
        if (s == NATS_OK && si)
            b->stream_created = si->Created;
        jsStreamInfo_Destroy(si);
        if (s == NATS_OK)
            return 0;
        /* A stream another bridge made between our look and our making: look again. */
        if (jerr != JSStreamNameExistErr && !js_wait(b, &w, s, jerr))
            break;
        s = NATS_OK;
    }
    if (cli_stop_requested)
        return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    return cli_fail(a->verb, a->addr,
                    "cannot open stream %s: %s (--jetstream needs a server with JetStream: "
                    "nats-server -js)",
                    b->stream, nats_why(s));
}

/* Out: each message is stored in the stream before the channel lets it go (shml_release()
   after the server's acknowledgement). Its id, the bridge's epoch and sequence, is the same
   in every attempt, so the stream keeps one copy of a message published again after a lost
   acknowledgement or a server's failure. */
static int run_js_out(struct bridge *b)
{
    int rc = check_payload(b);
    if (rc == 0)
        rc = open_stream(b);
    if (rc != 0)
        return rc;
    say(b, "forwarding to stream %s at %s", b->stream, b->shown);
    b->started = true;
    while (!cli_stop_requested) {
        count_reconnects(b);
        const void *buf;
        size_t len;
        int r = take(b, &buf, &len, STEP_NS);
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0)
            return r == -ECANCELED ? CLI_EXIT_SIGNAL_BASE + cli_stop_requested : r;
        natsMsg *m = make_msg(b, b->a->url.subject, buf, len, NULL);
        /* The message's id: the channel (its creation time) and the message's position in
           it, which a successor of this bridge delivered the same message gets again. */
        uint64_t pos = 0;
        shml_channel_position(b->ch, &pos);
        char id[48];
        snprintf(id, sizeof id, "%016" PRIx64 "-%" PRIu64, (uint64_t)b->created_ns, pos);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = 2000;
        natsStatus s = m ? NATS_OK : NATS_NO_MEMORY;
        bool said = false;
        while (m) {
            jsErrCode jerr = 0;
            s = js_PublishMsg(NULL, b->js, m, &po, &jerr);
            if (s == NATS_OK || !js_trouble(s) || cli_stop_requested)
                break;
            count_reconnects(b);
            if (!said) {
                say(b, "message %s not stored yet (%s); trying again", id, nats_why(s));
                said = true;
            }
            nap_ms(100);
        }
        natsMsg_Destroy(m);
        if (s == NATS_OK) {
            b->forwarded++;
            if (said)
                say(b, "message %s stored", id);
        } else {
            /* Not stored: a refusal that trying again cannot mend, or a stop meanwhile. */
            drop(b, 1);
            say(b, "message %s of %zu bytes not stored: %s", id, len,
                cli_stop_requested ? "stopped" : nats_why(s));
        }
        shml_release(b->ch);
    }
    return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
}

/* In: the consumer's name: --durable; for a queue, the queue group (every bridge in of the
   group shares the consumer, so each message goes to one); for a bus, one per host and
   channel (each bridge in gets every message). */
static void durable_name(struct bridge *b)
{
    const struct bridge_args *a = b->a;
    char raw[512];
    if (a->durable || b->kind == SHML_QUEUE) {
        snprintf(raw, sizeof raw, "%s", a->durable ? a->durable : a->group);
    } else {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(raw, sizeof raw, "shmlink_%s_%s", host, a->addr);
    }
    size_t o = 0;
    for (const char *p = raw; *p && o + 1 < sizeof b->durable; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        b->durable[o++] = ok ? c : '_';
    }
    b->durable[o] = '\0';
}

/* In: the mark of stream message sseq: 16 bits of the stream's name and creation time above
   the low 48 bits of the sequence, so that a mark found in the channel names a message of
   this stream, not of one made again under the same name (whose sequences start again). */
static uint64_t mark_of(const struct bridge *b, uint64_t sseq)
{
    uint64_t h = 14695981039346656037ull ^ (uint64_t)b->stream_created;
    for (const char *c = b->stream; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    return (((h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) & 0xffffu) << 48) |
           (sseq & 0xffffffffffffull);
}

/* Did this run send stream message sseq into the channel (within the last SENT_WINDOW)? */
static bool sent_has(const struct bridge *b, uint64_t sseq)
{
    if (!sseq || sseq > b->sent_top || b->sent_top - sseq >= SENT_WINDOW)
        return false;
    return (b->sent_bits[(sseq % SENT_WINDOW) / 64] >> (sseq % 64)) & 1u;
}

static void sent_add(struct bridge *b, uint64_t sseq)
{
    if (!sseq || (sseq <= b->sent_top && b->sent_top - sseq >= SENT_WINDOW))
        return; /* older than the window */
    /* Sequences between the highest and this one were not sent by this run (yet). */
    for (uint64_t q = b->sent_top + 1; q < sseq && q - b->sent_top <= SENT_WINDOW; q++)
        b->sent_bits[(q % SENT_WINDOW) / 64] &= ~((uint64_t)1 << (q % 64));
    if (sseq > b->sent_top)
        b->sent_top = sseq;
    b->sent_bits[(sseq % SENT_WINDOW) / 64] |= (uint64_t)1 << (sseq % 64);
}

/* In: one message from the stream: sent into the channel, then acknowledged (synchronously:
   the server has the acknowledgement before the next message). 0; -1 when stopped before the
   message was sent (it stays unacknowledged and is delivered again later); or the exit
   status of a failure. */
static int js_deliver(struct bridge *b, natsMsg *m)
{
    jsMsgMetaData *meta = NULL;
    uint64_t sseq = 0;
    bool again = false, batch = false;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        sseq = meta->Sequence.Stream;
        again = meta->NumDelivered > 1;
        if (again) {
            b->redelivered++;
            shml_channel_count(b->ch, SHML_COUNT_REDELIVERED, 1);
        }
        jsMsgMetaData_Destroy(meta);
    }
    uint32_t count = batch_count(m, &batch), msgs = count ? count : 1;
    if (sent_has(b, sseq)) {
        /* Sent by this run already; its acknowledgement was lost. */
    } else if (sseq && again && b->has_found_seq && b->found_seq == sseq) {
        /* The last message the channel got from the bridge killed before it acknowledged it,
           whose place in the channel this one took. */
        say(b, "stream message %" PRIu64 " was in the channel already (the bridge before "
               "this one sent it): acknowledged, not sent twice",
            sseq);
        sent_add(b, sseq);
    } else if (count && refuse_type(b, m, msgs)) {
        /* dropped, counted */
    } else {
        if (count)
            follow_sequence(b, m, count);
        /* Its mark: a single message's own; a batch's messages carry the last one sent (a
           kill in the middle of the batch leaves the mark of a message before it, so the
           batch is sent again, whole). */
        if (b->marks && sseq)
            shml_channel_set_mark(b->ch, batch ? b->last_mark : mark_of(b, sseq));
        uint64_t forwarded = b->forwarded;
        int r = put_local(b, m, true);
        if (r == -ECANCELED)
            return -1;
        if (r != 0)
            return r;
        sent_add(b, sseq);
        if (!batch && b->forwarded > forwarded && sseq)
            b->last_mark = mark_of(b, sseq);
    }
    /* Acknowledged before the next message is taken, trying again while the server does not
       answer (a leader being elected, the link down): so the channel's mark names the only
       message a bridge killed now leaves unacknowledged. */
    jsErrCode jerr = 0;
    natsStatus s;
    bool said = false;
    while ((s = natsMsg_AckSync(m, NULL, &jerr)) != NATS_OK && js_trouble(s) &&
           !cli_stop_requested) {
        if (!said)
            say(b, "stream message %" PRIu64 ": its acknowledgement not confirmed (%s); "
                   "trying again",
                sseq, nats_why(s));
        said = true;
        count_reconnects(b);
        nap_ms(250);
    }
    if (s == NATS_OK && said)
        say(b, "stream message %" PRIu64 " acknowledged", sseq);
    else if (s != NATS_OK && sseq)
        say(b, "stream message %" PRIu64 ": its acknowledgement not made (%s): it will be "
               "delivered again%s",
            sseq, cli_stop_requested ? "stopped" : nats_why(s),
            cli_stop_requested ? "" : ", and acknowledged, not sent twice");
    return 0;
}

/* In: a durable pull consumer of the stream; messages are fetched in batches and each one is
   acknowledged once the channel has it. */
static int run_js_in(struct bridge *b)
{
    int rc = open_stream(b);
    if (rc != 0)
        return rc;
    /* The killed bridge's mark counts only if it is of this stream. */
    if (b->has_found_mark && b->found_mark >> 48 == mark_of(b, 0) >> 48) {
        b->has_found_seq = true;
        b->found_seq = b->found_mark & 0xffffffffffffull;
        b->last_mark = b->found_mark;
    } else if (b->has_found_mark && b->found_mark) {
        say(b, "the channel's mark is of another stream than %s (made again since?): every "
               "message delivered again is sent",
            b->stream);
    }
    durable_name(b);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.Config.AckWait = b->a->ack_wait_ns;
    so.Config.MaxAckPending = 1024;
    jsErrCode jerr = 0;
    natsStatus s = NATS_OK;
    bool said = false;
    while (!cli_stop_requested) {
        s = js_PullSubscribe(&b->sub, b->js, b->a->url.subject, b->durable, NULL, &so, &jerr);
        if (s == NATS_OK || !js_trouble(s))
            break;
        if (!said) {
            say(b, "cannot make consumer %s yet (%s); retrying", b->durable, nats_why(s));
            said = true;
        }
        nap_ms(250);
    }
    if (cli_stop_requested)
        return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    if (s != NATS_OK)
        return cli_fail(b->a->verb, b->a->addr, "cannot consume %s from stream %s: %s",
                        b->a->url.subject, b->stream, nats_why(s));
    say(b, "forwarding from stream %s (consumer %s) at %s", b->stream, b->durable, b->shown);
    b->started = true;
    while (!cli_stop_requested) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, b->sub, 64, STEP_MS, &jerr);
        count_reconnects(b);
        if (s != NATS_OK && list.Count == 0) {
            if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION)
                return cli_fail(b->a->verb, b->a->addr, "the consumer ended: %s", nats_why(s));
            if (s != NATS_TIMEOUT)
                nap_ms(50);
            continue;
        }
        int r = 0;
        /* Stopped: the rest stays unacknowledged, delivered again later. */
        for (int i = 0; i < list.Count && r == 0 && !cli_stop_requested; i++)
            r = js_deliver(b, list.Msgs[i]);
        natsMsgList_Destroy(&list);
        if (r > 0)
            return r;
        if (r < 0)
            break;
    }
    return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
}

/* ---- rpc ---- */

/* Say a reason for refusing requests once, not at each request. */
static void refused(struct bridge *b, const char *why)
{
    b->dropped++;
    if (strcmp(why, b->last_refusal) != 0) {
        say(b, "refusing requests: %s", why);
        snprintf(b->last_refusal, sizeof b->last_refusal, "%s", why);
    }
}

/* Out: a server of the local channel; each request goes to the subject as a NATS request,
   and the reply that comes back goes to its client. A request nobody answers (no responders,
   the timeout, an error reply) is refused: its client hears so at once (shml_refuse()). */
static int run_rpc_out(struct bridge *b)
{
    int64_t max_payload = natsConnection_GetMaxPayload(b->nc);
    if (max_payload > 0 && (int64_t)(b->max_msg + HEADER_ROOM) > max_payload)
        return cli_fail(b->a->verb, b->a->addr,
                        "the channel's requests may be %zu bytes, and the server takes at most "
                        "%" PRId64 " with headers (max_payload)",
                        b->max_msg, max_payload);
    unsigned char *buf = malloc(b->max_msg ? b->max_msg : 1);
    if (!buf)
        return cli_fail(b->a->verb, b->a->addr, "out of memory");
    say(b, "forwarding requests to %s", b->shown);
    b->started = true;
    int rc = CLI_EXIT_SIGNAL_BASE;
    int64_t wait_ms = b->a->timeout_ns / 1000000;
    while (!cli_stop_requested) {
        count_reconnects(b);
        ssize_t n = shml_recv(b->ch, buf, b->max_msg, STEP_NS);
        if (n == -ETIMEDOUT)
            continue;
        if (n == -ECANCELED)
            break;
        if (n < 0) {
            rc = cli_fail_lib(b->a->verb, b->a->addr, (int)n, shml_last_error(), NULL);
            break;
        }
        natsMsg *req = make_msg(b, b->a->url.subject, buf, (size_t)n, NULL), *rep = NULL;
        natsStatus s = req ? natsConnection_RequestMsg(&rep, b->nc, req, wait_ms > 0 ? wait_ms : 1)
                           : NATS_NO_MEMORY;
        natsMsg_Destroy(req);
        const char *err = NULL;
        if (s == NATS_OK && natsMsgHeader_Get(rep, BRIDGE_HDR_ERROR, &err) == NATS_OK && err) {
            refused(b, err);
            shml_refuse(b->ch);
        } else if (s == NATS_OK) {
            ssize_t r =
                shml_send(b->ch, natsMsg_GetData(rep), (size_t)natsMsg_GetDataLength(rep), STEP_NS);
            if (r >= 0) {
                b->forwarded++;
            } else if (r == -EMSGSIZE || r == -EINVAL) {
                refused(b, "a reply does not fit the channel (its size or type)");
                shml_refuse(b->ch);
            } else if (r == -ECANCELED) {
                natsMsg_Destroy(rep);
                break;
            } else {
                b->dropped++; /* the client went away: the channel counted it */
            }
        } else {
            refused(b, s == NATS_NO_RESPONDERS ? "no responders on the subject"
                       : s == NATS_TIMEOUT     ? "no reply within the timeout"
                                               : nats_why(s));
            shml_refuse(b->ch);
        }
        natsMsg_Destroy(rep);
        if (s == NATS_OK && !err)
            b->last_refusal[0] = '\0';
    }
    free(buf);
    return rc + (rc == CLI_EXIT_SIGNAL_BASE ? cli_stop_requested : 0);
}

/* Answer a remote request with the bridge's error header instead of a reply. */
static void answer_error(struct bridge *b, const char *reply_to, const char *why)
{
    natsMsg *m = make_msg(b, reply_to, NULL, 0, why);
    if (m)
        natsConnection_PublishMsg(b->nc, m);
    natsMsg_Destroy(m);
}

/* In: a client of the local channel; each request from the subject (a queue group's member)
   is sent to the local servers, and their reply published to the requester's inbox. A
   request the local side cannot answer gets an empty reply with a Shmlink-Error header. */
static int run_rpc_in(struct bridge *b)
{
    natsStatus s =
        natsConnection_QueueSubscribeSync(&b->sub, b->nc, b->a->url.subject, b->a->group);
    if (s == NATS_OK)
        s = natsConnection_Flush(b->nc);
    if (s != NATS_OK)
        return cli_fail(b->a->verb, b->a->addr, "cannot subscribe to %s: %s", b->a->url.subject,
                        nats_why(s));
    unsigned char *buf = malloc(b->max_msg ? b->max_msg : 1);
    if (!buf)
        return cli_fail(b->a->verb, b->a->addr, "out of memory");
    say(b, "serving requests from %s (queue group %s)", b->shown, b->a->group);
    b->started = true;
    int rc = CLI_EXIT_SIGNAL_BASE;
    while (!cli_stop_requested) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, b->sub, STEP_MS);
        count_client_drops(b);
        count_reconnects(b);
        if (s != NATS_OK)
            continue;
        const char *reply_to = natsMsg_GetReply(m);
        if (!reply_to || !*reply_to) {
            drop(b, 1); /* a publish, not a request: nobody to answer */
            natsMsg_Destroy(m);
            continue;
        }
        if (!type_matches(b, m)) {
            drop(b, 1);
            answer_error(b, reply_to, "the request's type is not the channel's");
            natsMsg_Destroy(m);
            continue;
        }
        ssize_t r = shml_send(b->ch, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                              b->a->timeout_ns);
        if (r < 0) {
            if (r == -ECANCELED) {
                natsMsg_Destroy(m);
                break;
            }
            drop(b, 1);
            char why[256];
            snprintf(why, sizeof why, "%s (%s)", shml_strerror((int)r), shml_last_error());
            answer_error(b, reply_to, why);
            natsMsg_Destroy(m);
            continue;
        }
        /* The reply, within the timeout; a later one is waited for (the request is in flight
           until then) and dropped, as its requester has given up. */
        int64_t deadline = cli_mono_ns() + b->a->timeout_ns;
        bool answered = false;
        for (;;) {
            r = shml_recv(b->ch, buf, b->max_msg, STEP_NS);
            if (r == -ETIMEDOUT && !cli_stop_requested) {
                if (!answered && cli_mono_ns() >= deadline) {
                    answer_error(b, reply_to, "no reply from the local server in time");
                    answered = true;
                }
                continue;
            }
            break;
        }
        if (r >= 0 && !answered) {
            natsMsg *rep = make_msg(b, reply_to, buf, (size_t)r, NULL);
            if (rep && natsConnection_PublishMsg(b->nc, rep) == NATS_OK)
                b->forwarded++;
            natsMsg_Destroy(rep);
        } else if (r >= 0 || r == -ECANCELED || r == -ETIMEDOUT) {
            if (r >= 0)
                drop(b, 1);
        } else {
            char why[256];
            snprintf(why, sizeof why, "%s (%s)", shml_strerror((int)r), shml_last_error());
            if (!answered)
                answer_error(b, reply_to, why);
            drop(b, 1);
        }
        natsMsg_Destroy(m);
        if (r == -ECANCELED)
            break;
    }
    free(buf);
    return rc + cli_stop_requested;
}

/* ---- latest: a key-value bucket ---- */

/* A bucket name (letters, digits, '-', '_') or, with `key`, a key (also '/', '=' and '.'
   between non-empty tokens), as NATS's key-value store takes them. */
static bool kv_name_ok(const char *s, bool key)
{
    if (!*s || (key && (s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))))
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (key && (c == '/' || c == '=' || c == '.'));
        if (!ok)
            return false;
    }
    return true;
}

/* The bucket, made with history 1 when it does not exist; waits while JetStream does not
   answer yet (js_wait()). 0, or the exit status. */
static int open_bucket(struct bridge *b)
{
    natsStatus s = natsConnection_JetStream(&b->js, b->nc, NULL);
    struct js_waiting w = {0};
    while (s == NATS_OK) {
        s = js_KeyValue(&b->kv, b->js, b->a->bucket);
        if (s == NATS_NOT_FOUND) {
            kvConfig c;
            kvConfig_Init(&c);
            c.Bucket = b->a->bucket;
            c.History = 1;
            s = js_CreateKeyValue(&b->kv, b->js, &c);
        }
        if (s == NATS_OK || !js_wait(b, &w, s, 0))
            break;
        s = NATS_OK;
    }
    if (cli_stop_requested)
        return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
    if (s != NATS_OK)
        return cli_fail(b->a->verb, b->a->addr,
                        "cannot open the key-value bucket %s: %s (a latest channel is kept "
                        "in one: the server needs JetStream, nats-server -js)",
                        b->a->bucket, nats_why(s));
    snprintf(b->kv_subject, sizeof b->kv_subject, "$KV.%s.%s", b->a->bucket, b->a->url.subject);
    return 0;
}

/* Out: a reader of the local channel; each newest value is put under the key (a publish to
   the bucket's subject with the bridge's headers, which a key-value get ignores). A value
   not stored while disconnected is retried: only the newest matters. */
static int run_latest_out(struct bridge *b)
{
    int rc = open_bucket(b);
    if (rc != 0)
        return rc;
    unsigned char *buf = malloc(b->max_msg ? b->max_msg : 1);
    if (!buf)
        return cli_fail(b->a->verb, b->a->addr, "out of memory");
    say(b, "forwarding to key %s of bucket %s at %s", b->a->url.subject, b->a->bucket, b->shown);
    b->started = true;
    rc = CLI_EXIT_SIGNAL_BASE;
    ssize_t held = -1; /* a value read and not stored yet */
    while (!cli_stop_requested) {
        count_reconnects(b);
        ssize_t n = shml_recv(b->ch, buf, b->max_msg, held >= 0 ? 0 : STEP_NS);
        if (n >= 0)
            held = n;
        else if (n == -ECANCELED)
            break;
        else if (n != -ETIMEDOUT) {
            rc = cli_fail_lib(b->a->verb, b->a->addr, (int)n, shml_last_error(), NULL);
            break;
        }
        if (held < 0)
            continue;
        if (!linked(b)) {
            nap_ms(20);
            continue;
        }
        natsMsg *m = make_msg(b, b->kv_subject, buf, (size_t)held, NULL);
        jsErrCode jerr = 0;
        natsStatus s = m ? js_PublishMsg(NULL, b->js, m, NULL, &jerr) : NATS_NO_MEMORY;
        natsMsg_Destroy(m);
        if (s == NATS_OK) {
            b->forwarded++;
            held = -1;
        } else if (!link_trouble(s) && s != NATS_NO_RESPONDERS) {
            drop(b, 1);
            say(b, "a value of %zd bytes not stored: %s", held, nats_why(s));
            held = -1;
        } else {
            nap_ms(50);
        }
    }
    free(buf);
    return rc + (rc == CLI_EXIT_SIGNAL_BASE ? cli_stop_requested : 0);
}

/* In: a writer of the local channel; the key's newest value (an ordered consumer of the
   bucket's subject, starting with the value it holds now) is written into it. Deletes and
   purges of the key leave the channel's value as it is. */
static int run_latest_in(struct bridge *b)
{
    int rc = open_bucket(b);
    if (rc != 0)
        return rc;
    char stream[96];
    snprintf(stream, sizeof stream, "KV_%s", b->a->bucket);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&b->sub, b->js, b->kv_subject, NULL, &so, &jerr);
    if (s != NATS_OK)
        return cli_fail(b->a->verb, b->a->addr, "cannot watch key %s of bucket %s: %s",
                        b->a->url.subject, b->a->bucket, nats_why(s));
    say(b, "forwarding from key %s of bucket %s at %s", b->a->url.subject, b->a->bucket, b->shown);
    b->started = true;
    while (!cli_stop_requested) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, b->sub, STEP_MS);
        count_reconnects(b);
        if (s != NATS_OK)
            continue;
        const char *op = NULL;
        if (natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op) {
            natsMsg_Destroy(m); /* DEL or PURGE: no value to write */
            continue;
        }
        if (!type_matches(b, m)) {
            drop(b, 1);
            if (!b->warned_type) {
                say(b, "dropping values of another type: the channel's is '%s'",
                    b->type_text[0] ? b->type_text : "untyped");
                b->warned_type = true;
            }
            natsMsg_Destroy(m);
            continue;
        }
        ssize_t r = shml_send(b->ch, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0);
        if (r >= 0) {
            b->forwarded++;
        } else if (r == -EMSGSIZE || r == -EINVAL) {
            drop_refused(b, "value", (size_t)natsMsg_GetDataLength(m));
        } else {
            natsMsg_Destroy(m);
            return cli_fail_lib(b->a->verb, b->a->addr, (int)r, shml_last_error(), NULL);
        }
        natsMsg_Destroy(m);
    }
    return CLI_EXIT_SIGNAL_BASE + cli_stop_requested;
}

/* Open the local end: a consumer to bridge out, a producer to bridge in. */
static int open_local(struct bridge *b)
{
    const struct bridge_args *a = b->a;
    struct shml_channel_stats st;
    shml_channel *probe = NULL;
    /* The kind decides the role: look first (inspect touches no endpoint). */
    int r = shml_channel_inspect(a->addr, &st, NULL, 0, NULL);
    if (r < 0)
        return cli_fail_lib(a->verb, a->addr, r, shml_last_error(),
                            r == -ENOENT ? "make it first (shmlink mk)" : NULL);
    if (st.kind == SHML_RPC && a->url.wildcard)
        return cli_fail(a->verb, a->addr,
                        "subject '%s': an rpc bridge serves one subject, "
                        "without wildcards",
                        a->url.subject);
    if (a->jetstream && (st.kind == SHML_RPC || st.kind == SHML_LATEST))
        return cli_fail(a->verb, a->addr,
                        "--jetstream is for queue and bus channels; %s",
                        st.kind == SHML_RPC
                            ? "an rpc request waits for its reply, which says whether it arrived"
                            : "a latest channel is always kept in a JetStream key-value bucket");
    if (a->batch && (st.kind == SHML_RPC || st.kind == SHML_LATEST))
        return cli_fail(a->verb, a->addr, "--batch is for queue and bus channels; %s",
                        st.kind == SHML_RPC ? "an rpc bridge sends each request as it comes"
                                            : "a latest channel has one value at a time");
    if (st.kind == SHML_LATEST) {
        if (!kv_name_ok(a->bucket, false) || !kv_name_ok(a->url.subject, true))
            return cli_fail(a->verb, a->addr,
                            "a latest channel is kept in a key-value bucket: the bucket ('%s') "
                            "takes letters, digits, '-' and '_', the subject ('%s', its key) "
                            "also '/', '=' and dots between tokens, and no wildcards",
                            a->bucket, a->url.subject);
    }
    /* Out: what the channel delivers; for rpc, its clients' requests, as a server. In: into
       the channel; for rpc, remote requests, as a client. Through JetStream, the stream is
       known now, and the bridge is a durable endpoint named after it, whose place a bridge
       started after this one was killed takes (a bridge in's mark, the stream sequence of
       the last message the channel got, then tells it what not to send twice). */
    const char *durable = NULL;
    if (a->jetstream) {
        if (a->stream)
            snprintf(b->stream, sizeof b->stream, "%s", a->stream);
        else
            cli_bridge_stream_name(a->url.subject, b->stream, sizeof b->stream);
        snprintf(b->local_durable, sizeof b->local_durable, "bridge %.240s", b->stream);
        durable = b->local_durable;
    }
    int rc = cli_open_endpoint_flags(a->verb, a->addr, a->out ? SHML_CONSUMER : SHML_PRODUCER,
                                     SHML_BRIDGE, durable, NULL, &probe, &st);
    if (rc != 0)
        return rc;
    struct shml_segment_info si;
    if (durable && shml_segment_stat(a->addr, &si, NULL, 0, NULL) == 0)
        b->created_ns = si.created_ns;
    b->ch = probe;
    b->kind = st.kind;
    b->marks = durable && !a->out;
    b->has_found_mark = b->marks && shml_channel_mark(b->ch, &b->found_mark) == 0;
    b->max_msg = st.max_msg;
    struct shml_channel_type t;
    if (shml_channel_get_type(b->ch, &t) == 0)
        cli_bridge_type_text(&t, b->type_text, sizeof b->type_text);
    return 0;
}

int cli_bridge_run(const struct bridge_args *a)
{
    struct bridge *b = calloc(1, sizeof *b);
    if (!b)
        return cli_fail(a->verb, a->addr, "out of memory");
    b->a = a;
    bridge_url_show(&a->url, b->shown, sizeof b->shown);
    b->epoch = random_epoch();
    cli_catch_stop_signals();
    natsOptions *o = NULL;
    int rc = open_local(b);
    if (rc == 0)
        rc = make_options(b, &o);
    if (rc == 0)
        rc = connect_server(b, o);
    if (rc == 0)
        rc = b->kind == SHML_RPC      ? (a->out ? run_rpc_out(b) : run_rpc_in(b))
             : b->kind == SHML_LATEST ? (a->out ? run_latest_out(b) : run_latest_in(b))
             : a->jetstream           ? (a->out ? run_js_out(b) : run_js_in(b))
                                      : (a->out ? run_out(b) : run_in(b));
    if (b->sub) {
        natsSubscription_Unsubscribe(b->sub);
        natsSubscription_Destroy(b->sub);
    }
    stop_flusher(b);
    kvStore_Destroy(b->kv);
    jsCtx_Destroy(b->js);
    if (b->nc) {
        natsConnection_FlushTimeout(b->nc, 2000); /* what was published reaches the server */
        atomic_store_explicit(&b->closing, 1, memory_order_relaxed); /* as in the callbacks */
        natsConnection_Destroy(b->nc);
    }
    natsOptions_Destroy(o);
    /* The client's threads, which call back with b, are gone once this returns. */
    nats_CloseAndWait(5000);
    if (b->started)
        say(b, "%" PRIu64 " forwarded, %" PRIu64 " dropped, %" PRIu64 " reconnects, %" PRIu64
               " redelivered",
            b->forwarded, b->dropped,
            (uint64_t)atomic_load_explicit(&b->reconnects, memory_order_relaxed),
            b->redelivered);
    if (b->ch)
        shml_channel_close(b->ch);
    free(b);
    return rc;
}
