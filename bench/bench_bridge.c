/*
 * bench_bridge.c - what `shmlink bridge` costs next to the NATS C client used directly, both
 * measured by this one program against one nats-server it starts on 127.0.0.1 and a free port.
 *
 *   throughput   N messages of S bytes. Raw: one connection publishes them, another's
 *                subscription counts them. Bridged: this program sends them into a local
 *                queue; `bridge out` publishes them, `bridge in` sends them into a second
 *                queue, which this program drains. Messages per second, from the first send
 *                to the last arrival.
 *   latency      a round trip. Raw: publish on one subject, an echo subscription (another
 *                connection, a thread of this program) publishes it back on a second, wait
 *                for it. Bridged: send into a local queue; bridges carry it to a second queue
 *                whose echo thread sends it into a third, and bridges carry it back to a
 *                fourth, where this program receives it: the same two NATS hops each way,
 *                plus the channels and bridges on both ends. p50 and p99.
 *
 *   at least once   64-byte messages through a JetStream stream, on a second server with
 *                JetStream. Raw: one connection publishes each message with an id and waits
 *                for the stream's acknowledgement; a durable pull consumer on another fetches
 *                them and acknowledges each synchronously. Bridged: `bridge out --jetstream`
 *                and `bridge in --jetstream` between two queues. Messages per second.
 *
 * Raw and bridged alternate within each repetition (A B A B), and each repetition gives its
 * ratio; the report is the median ratio, with the figures of the median repetition. Bridged
 * throughput at most once: messages a bridge in's client dropped (slow consumer) are not
 * waited for; the report says how many arrived.
 *
 * Usage: bench_bridge [--quick] [--reps N] [--shmlink PATH]   (PATH: the tool, default
 * next to this program in ../cli/shmlink)
 */
#include "shmlink.h"

#include "bench_util.h"

#include <nats/nats.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BRIDGES 8
#define SEC ((int64_t)1000000000)

static pid_t server_pid;
static pid_t bridge_pid[MAX_BRIDGES];
static int n_bridges;
#define MAX_CHANNELS 24
static char chan[MAX_CHANNELS][64];
static int n_chan;

static void cleanup(void)
{
    for (int i = 0; i < n_bridges; i++)
        if (bridge_pid[i] > 0) {
            kill(bridge_pid[i], SIGTERM);
            waitpid(bridge_pid[i], NULL, 0);
            bridge_pid[i] = 0;
        }
    n_bridges = 0;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
    for (int i = 0; i < n_chan; i++)
        shml_segment_unlink(chan[i]);
    n_chan = 0;
}

static void on_fatal(int sig)
{
    (void)sig;
    cleanup();
    _exit(1);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_bridge: %s\n", what);
    cleanup();
    exit(1);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        die("no free port");
    close(s);
    return ntohs(a.sin_port);
}

static pid_t spawn(char **argv)
{
    pid_t p = fork();
    if (p == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return p;
}

/* A connection; `asap`: the client writes each publish at once (natsOptions_SetSendAsap)
   instead of gathering them for about a millisecond, its default. */
static natsConnection *connect_asap(const char *url, bool asap)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, url) != NATS_OK ||
        natsOptions_SetSendAsap(o, asap) != NATS_OK)
        die("NATS options");
    for (int i = 0; i < 200; i++) {
        if (natsConnection_Connect(&nc, o) == NATS_OK) {
            natsOptions_Destroy(o);
            return nc;
        }
        usleep(25000);
    }
    die("cannot connect to the nats-server it started");
    return NULL;
}

static natsConnection *connect_to(const char *url)
{
    return connect_asap(url, false);
}

static const char *tool;
static char url_base[64];

/* A local queue for the bridged runs, removed at the end. */
static shml_channel *make_queue(const char *tag, size_t max_msg, size_t slots, unsigned role)
{
    if (n_chan == MAX_CHANNELS)
        die("too many channels");
    snprintf(chan[n_chan], sizeof chan[0], "posix:/benchbr-%d-%s", (int)getpid(), tag);
    const char *addr = chan[n_chan++];
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_QUEUE;
    o.max_msg = max_msg;
    o.capacity = slots * ((max_msg + 16 + 63) / 64 * 64);
    o.role = role;
    o.wait = SHML_WAIT_BLOCK;
    shml_channel *ch = NULL;
    shml_segment_unlink(addr);
    if (shml_channel_create(addr, &o, &ch) != 0)
        die(shml_last_error());
    return ch;
}

/* Start `shmlink bridge DIR A B [OPTION]` (OPTION NULL: none) and give it time to subscribe
   (it says so on stderr, which is /dev/null here: see settle()). */
static void bridge(const char *dir, const char *a, const char *b, const char *option)
{
    if (n_bridges == MAX_BRIDGES)
        die("too many bridges");
    char *argv[] = {(char *)tool, "bridge", (char *)dir, (char *)a, (char *)b, (char *)option,
                    NULL};
    bridge_pid[n_bridges++] = spawn(argv);
}

/* Wait until `subject` has a subscriber: publish probes to it until a request finds one
   (NATS's "no responders" says there is none). Bridges in answer nothing, so this asks the
   server with a ping instead: wait a fixed settling time, bounded. */
static void settle(natsConnection *nc)
{
    natsConnection_Flush(nc);
    usleep(300000);
}

/* ---- throughput ---- */

struct counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long got, want;
};

static void count_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    struct counter *c = arg;
    natsMsg_Destroy(m);
    pthread_mutex_lock(&c->mu);
    if (++c->got >= c->want)
        pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Messages per second through NATS alone; *arrived: how many came. */
static double raw_throughput(const char *url, long n, size_t size, long *arrived)
{
    natsConnection *pub = connect_to(url), *subc = connect_to(url);
    struct counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, n};
    natsSubscription *sub = NULL;
    if (natsConnection_Subscribe(&sub, subc, "bench.raw", count_msg, &c) != NATS_OK)
        die("subscribe");
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(subc);
    char *buf = calloc(1, size);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        natsConnection_Publish(pub, "bench.raw", buf, (int)size);
    natsConnection_Flush(pub);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&c.mu);
    while (c.got < n && pthread_cond_timedwait(&c.cv, &c.mu, &until) == 0)
        ;
    long got = c.got;
    pthread_mutex_unlock(&c.mu);
    int64_t t1 = now_ns();
    *arrived = got;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pub);
    natsConnection_Destroy(subc);
    free(buf);
    return (double)got / ((double)(t1 - t0) / 1e9);
}

struct drain {
    shml_channel *ch;
    long want, got;
    int64_t t_last;
    size_t size;
};

static void *drain_queue(void *arg)
{
    struct drain *d = arg;
    char *buf = malloc(d->size ? d->size : 1);
    while (d->got < d->want) {
        ssize_t r = shml_recv(d->ch, buf, d->size, 3 * SEC);
        if (r < 0)
            break; /* what a bridge in's client dropped never comes */
        d->got++;
        d->t_last = now_ns();
    }
    free(buf);
    return NULL;
}

/* Messages per second through queue -> bridge out -> NATS -> bridge in -> queue. */
static double bridged_throughput(shml_channel *in, shml_channel *out, long n, size_t size,
                                 long *arrived)
{
    struct drain d = {out, n, 0, 0, size};
    pthread_t t;
    pthread_create(&t, NULL, drain_queue, &d);
    char *buf = calloc(1, size);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (shml_send(in, buf, size, 10 * SEC) < 0)
            die("send into the bridged queue");
    pthread_join(t, NULL);
    free(buf);
    *arrived = d.got;
    return d.t_last > t0 ? (double)d.got / ((double)(d.t_last - t0) / 1e9) : 0;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return bench_pct_sorted(v, n, 50);
}

/* ---- at least once: through a JetStream stream ---- */

struct js_drain {
    natsSubscription *sub;
    long want, got;
    int64_t t_last;
};

/* A durable pull consumer's side of the raw pair: fetch in batches of 64 and acknowledge each
   message synchronously, as a bridge in does. */
static void *js_drain(void *arg)
{
    struct js_drain *d = arg;
    while (d->got < d->want) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, d->sub, 64, 3000, &jerr);
        if (s != NATS_OK && list.Count == 0)
            break;
        for (int i = 0; i < list.Count; i++) {
            natsMsg_AckSync(list.Msgs[i], NULL, &jerr);
            d->got++;
        }
        d->t_last = now_ns();
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

/* Messages per second through a stream with the NATS C client alone, with the guarantees of
   `bridge --jetstream`: each publish waits for the stream's acknowledgement and carries a
   message id; the consumer acknowledges each message synchronously. */
static double raw_js_throughput(jsCtx *js, natsSubscription *sub, long n, size_t size,
                                long *arrived)
{
    static uint64_t next_id;
    struct js_drain d = {sub, n, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, js_drain, &d);
    char *buf = calloc(1, size);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        natsMsg *m = NULL;
        char id[32];
        snprintf(id, sizeof id, "raw-%llu", (unsigned long long)++next_id);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        jsErrCode jerr = 0;
        if (natsMsg_Create(&m, "bench.jsraw", NULL, buf, (int)size) != NATS_OK ||
            js_PublishMsg(NULL, js, m, &po, &jerr) != NATS_OK)
            die("raw JetStream publish");
        natsMsg_Destroy(m);
    }
    pthread_join(t, NULL);
    free(buf);
    *arrived = d.got;
    return d.t_last > t0 ? (double)d.got / ((double)(d.t_last - t0) / 1e9) : 0;
}

/* The JetStream part: its own server (with JetStream, its store in a directory of its own,
   removed at the end), the raw pair and the bridged path side by side, 64-byte messages. */
static void jetstream_throughput(long reps, bool quick)
{
    char dir[] = "/tmp/bench-bridge-js-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    int port = free_port();
    char port_s[16], url[64];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    char *srv[] = {"nats-server", "-a", "127.0.0.1", "-p", port_s, "-js", "-sd", dir, NULL};
    pid_t js_server = spawn(srv);
    natsConnection *nc = connect_to(url);
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, nc, NULL);
    jsStreamConfig c;
    jsStreamConfig_Init(&c);
    const char *subjects[] = {"bench.jsraw"};
    c.Name = "BENCH_RAW";
    c.Subjects = subjects;
    c.SubjectsLen = 1;
    c.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    natsStatus s = NATS_ERR;
    for (int i = 0; i < 100 && s != NATS_OK; i++) { /* JetStream starts after the listener */
        s = js_AddStream(NULL, js, &c, NULL, &jerr);
        if (s != NATS_OK)
            usleep(50000);
    }
    if (s != NATS_OK)
        die("cannot make the raw stream");
    natsConnection *cc = connect_to(url);
    jsCtx *jc = NULL;
    natsConnection_JetStream(&jc, cc, NULL);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    natsSubscription *sub = NULL;
    if (js_PullSubscribe(&sub, jc, "bench.jsraw", "rawbench", NULL, &so, &jerr) != NATS_OK)
        die("raw pull consumer");

    size_t size = 64;
    long n = quick ? 100 : 2000;
    shml_channel *qa = make_queue("jsa", size, 1024, SHML_PRODUCER);
    shml_channel *qb = make_queue("jsb", size, 1024, SHML_CONSUMER);
    char u[128];
    snprintf(u, sizeof u, "%s/bench.jsbr", url);
    int first = n_bridges;
    bridge("in", u, chan[n_chan - 1], "--jetstream");
    bridge("out", chan[n_chan - 2], u, "--jetstream");
    usleep(1500000); /* both made or found the stream and their consumer */
    double *ratio = calloc((size_t)reps, sizeof(double));
    double raw_last = 0, br_last = 0;
    long raw_got = 0, br_got = 0;
    for (long r = 0; r < reps; r++) {
        raw_last = raw_js_throughput(js, sub, n, size, &raw_got);
        br_last = bridged_throughput(qa, qb, n, size, &br_got);
        ratio[r] = raw_last > 0 ? br_last / raw_last : 0;
    }
    printf("\nat least once through JetStream, 64-byte messages (%ld)\n", n);
    printf("  throughput  raw (publish acknowledged, id; consumer acknowledging each) %.0f msg/s "
           "(%ld arrived), bridged --jetstream %.0f msg/s (%ld arrived): median ratio %.2fx\n",
           raw_last, raw_got, br_last, br_got, median(ratio, (size_t)reps));
    free(ratio);
    for (int i = first; i < n_bridges; i++) {
        kill(bridge_pid[i], SIGTERM);
        waitpid(bridge_pid[i], NULL, 0);
    }
    n_bridges = first;
    shml_channel_close(qa);
    shml_channel_close(qb);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(jc);
    jsCtx_Destroy(js);
    natsConnection_Destroy(cc);
    natsConnection_Destroy(nc);
    kill(js_server, SIGTERM);
    waitpid(js_server, NULL, 0);
    char *rm[] = {"rm", "-rf", dir, NULL};
    pid_t p = spawn(rm);
    waitpid(p, NULL, 0);
}

/* ---- latency ---- */

static void echo_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)sub;
    (void)arg;
    natsConnection_Publish(nc, "bench.pong", natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static void raw_latency(const char *url, bool asap, long n, size_t size, double *rtt)
{
    natsConnection *a = connect_asap(url, asap), *b = connect_asap(url, asap);
    natsSubscription *echo = NULL, *pong = NULL;
    natsConnection_Subscribe(&echo, b, "bench.ping", echo_msg, NULL);
    natsConnection_SubscribeSync(&pong, a, "bench.pong");
    natsConnection_Flush(b);
    natsConnection_Flush(a);
    char *buf = calloc(1, size);
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        /* No flush: the client's flusher sends it at once, as it does for the bridges (a
           flush would add a PING/PONG round trip to each). */
        natsConnection_Publish(a, "bench.ping", buf, (int)size);
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, pong, 10000) != NATS_OK)
            die("raw echo timed out");
        rtt[i] = (double)(now_ns() - t0);
        natsMsg_Destroy(m);
    }
    free(buf);
    natsSubscription_Destroy(echo);
    natsSubscription_Destroy(pong);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
}

struct echo {
    shml_channel *from, *to;
    size_t size;
    volatile int stop;
};

static void *echo_queue(void *arg)
{
    struct echo *e = arg;
    char *buf = malloc(e->size ? e->size : 1);
    while (!e->stop) {
        ssize_t r = shml_recv(e->from, buf, e->size, SEC / 5);
        if (r >= 0)
            shml_send(e->to, buf, (size_t)r, 10 * SEC);
    }
    free(buf);
    return NULL;
}

static void bridged_latency(shml_channel *ping, shml_channel *pong, long n, size_t size,
                            double *rtt)
{
    char *buf = calloc(1, size ? size : 1);
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        if (shml_send(ping, buf, size, 10 * SEC) < 0 || shml_recv(pong, buf, size, 10 * SEC) < 0)
            die("bridged echo timed out");
        rtt[i] = (double)(now_ns() - t0);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    bool quick = false;
    long reps = 5;
    static char def_tool[4096];
    snprintf(def_tool, sizeof def_tool, "%s", argv[0]);
    char *slash = strrchr(def_tool, '/');
    snprintf(slash ? slash + 1 : def_tool, sizeof def_tool - (size_t)(slash ? slash + 1 - def_tool : 0),
             "../cli/shmlink");
    tool = def_tool;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc &&
                 bench_parse_long(argv[i + 1], 1, &reps))
            i++;
        else if (strcmp(argv[i], "--shmlink") == 0 && i + 1 < argc)
            tool = argv[++i];
        else {
            fprintf(stderr, "usage: bench_bridge [--quick] [--reps N] [--shmlink PATH]\n");
            return 2;
        }
    }
    if (quick)
        reps = 1;
    bench_catch_fatal(on_fatal);
    int port = free_port();
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    char *srv[] = {"nats-server", "-a", "127.0.0.1", "-p", port_s, NULL};
    server_pid = spawn(srv);
    snprintf(url_base, sizeof url_base, "nats://127.0.0.1:%d", port);
    natsConnection *probe = connect_to(url_base);

    static const size_t sizes[2] = {64, 65536};
    printf("bench_bridge: shmlink bridge next to the NATS C client, one nats-server on "
           "127.0.0.1, %ld repetition%s\n",
           reps, reps == 1 ? "" : "s");
    for (int si = 0; si < 2; si++) {
        size_t size = sizes[si];
        long n_tp = quick ? 200 : (size <= 64 ? 20000 : 400);
        long n_lat = quick ? 50 : 1000;
        /* The bridged path: throughput a -> b; round trip c -> d, echo, e -> f. */
        /* ... and g -> h with bridge out --batch. */
        char tag[8][16];
        for (int k = 0; k < 8; k++)
            snprintf(tag[k], sizeof tag[k], "%c%zu", 'a' + k, size);
        size_t tp_slots = size <= 64 ? 1024 : 128;
        shml_channel *qa = make_queue(tag[0], size, tp_slots, SHML_PRODUCER);
        shml_channel *qb = make_queue(tag[1], size, tp_slots, SHML_CONSUMER);
        shml_channel *qc = make_queue(tag[2], size, 64, SHML_PRODUCER);
        shml_channel *qd = make_queue(tag[3], size, 64, SHML_CONSUMER);
        shml_channel *qe = make_queue(tag[4], size, 64, SHML_PRODUCER);
        shml_channel *qf = make_queue(tag[5], size, 64, SHML_CONSUMER);
        shml_channel *qg = make_queue(tag[6], size, tp_slots, SHML_PRODUCER);
        shml_channel *qh = make_queue(tag[7], size, tp_slots, SHML_CONSUMER);
        char u[4][128];
        snprintf(u[0], sizeof u[0], "%s/bench.tp%zu", url_base, size);
        snprintf(u[1], sizeof u[1], "%s/bench.ping%zu", url_base, size);
        snprintf(u[2], sizeof u[2], "%s/bench.pong%zu", url_base, size);
        snprintf(u[3], sizeof u[3], "%s/bench.tpb%zu", url_base, size);
        int first_chan = n_chan - 8;
        bridge("in", u[0], chan[first_chan + 1], NULL);
        bridge("in", u[1], chan[first_chan + 3], NULL);
        bridge("in", u[2], chan[first_chan + 5], NULL);
        bridge("in", u[3], chan[first_chan + 7], NULL);
        settle(probe);
        bridge("out", chan[first_chan + 0], u[0], NULL);
        bridge("out", chan[first_chan + 2], u[1], NULL);
        bridge("out", chan[first_chan + 4], u[2], NULL);
        bridge("out", chan[first_chan + 6], u[3], "--batch");
        settle(probe);
        struct echo e = {qd, qe, size, 0};
        pthread_t et;
        pthread_create(&et, NULL, echo_queue, &e);

        double *tp_ratio = calloc((size_t)reps, sizeof(double));
        double *tpb_ratio = calloc((size_t)reps, sizeof(double));
        double brb_tp_last = 0;
        long brb_got = 0;
        double *p50_ratio = calloc((size_t)reps, sizeof(double));
        double *p99_ratio = calloc((size_t)reps, sizeof(double));
        double *a50_ratio = calloc((size_t)reps, sizeof(double));
        double *a99_ratio = calloc((size_t)reps, sizeof(double));
        double *asap_rtt = calloc((size_t)n_lat, sizeof(double));
        double asap50 = 0, asap99 = 0;
        double *raw_rtt = calloc((size_t)n_lat, sizeof(double));
        double *br_rtt = calloc((size_t)n_lat, sizeof(double));
        double raw_tp_last = 0, br_tp_last = 0, raw50 = 0, raw99 = 0, br50 = 0, br99 = 0;
        long raw_got = 0, br_got = 0;
        for (long r = 0; r < reps; r++) {
            double raw_tp = raw_throughput(url_base, n_tp, size, &raw_got);
            double br_tp = bridged_throughput(qa, qb, n_tp, size, &br_got);
            tp_ratio[r] = raw_tp > 0 ? br_tp / raw_tp : 0;
            double raw_tp2 = raw_throughput(url_base, n_tp, size, &raw_got);
            double brb_tp = bridged_throughput(qg, qh, n_tp, size, &brb_got);
            tpb_ratio[r] = raw_tp2 > 0 ? brb_tp / raw_tp2 : 0;
            brb_tp_last = brb_tp;
            raw_latency(url_base, false, n_lat, size, raw_rtt);
            bridged_latency(qc, qf, n_lat, size, br_rtt);
            raw_latency(url_base, true, n_lat, size, asap_rtt);
            qsort(raw_rtt, (size_t)n_lat, sizeof(double), cmp_double);
            qsort(br_rtt, (size_t)n_lat, sizeof(double), cmp_double);
            qsort(asap_rtt, (size_t)n_lat, sizeof(double), cmp_double);
            asap50 = bench_pct_sorted(asap_rtt, (size_t)n_lat, 50);
            asap99 = bench_pct_sorted(asap_rtt, (size_t)n_lat, 99);
            double r50 = bench_pct_sorted(raw_rtt, (size_t)n_lat, 50);
            double r99 = bench_pct_sorted(raw_rtt, (size_t)n_lat, 99);
            double b50 = bench_pct_sorted(br_rtt, (size_t)n_lat, 50);
            double b99 = bench_pct_sorted(br_rtt, (size_t)n_lat, 99);
            p50_ratio[r] = b50 / r50;
            p99_ratio[r] = b99 / r99;
            a50_ratio[r] = b50 / asap50;
            a99_ratio[r] = b99 / asap99;
            raw_tp_last = raw_tp;
            br_tp_last = br_tp;
            raw50 = r50;
            raw99 = r99;
            br50 = b50;
            br99 = b99;
        }
        e.stop = 1;
        pthread_join(et, NULL);
        printf("\n%zu-byte messages (%ld for throughput, %ld round trips)\n", size, n_tp, n_lat);
        printf("  throughput  raw %.0f msg/s (%ld arrived), bridged %.0f msg/s (%ld arrived): "
               "median ratio %.2fx (target >= 0.8x)\n",
               raw_tp_last, raw_got, br_tp_last, br_got, median(tp_ratio, (size_t)reps));
        printf("  throughput  bridge out --batch %.0f msg/s (%ld arrived): median ratio %.2fx\n",
               brb_tp_last, brb_got, median(tpb_ratio, (size_t)reps));
        printf("  round trip  raw (client defaults) p50 %.0f us p99 %.0f us, raw (send at once) "
               "p50 %.0f us p99 %.0f us, bridged p50 %.0f us p99 %.0f us\n",
               raw50 / 1e3, raw99 / 1e3, asap50 / 1e3, asap99 / 1e3, br50 / 1e3, br99 / 1e3);
        printf("              median ratios (target <= 1.2x): to raw with defaults p50 %.2fx "
               "p99 %.2fx; to raw sending at once p50 %.2fx p99 %.2fx\n",
               median(p50_ratio, (size_t)reps), median(p99_ratio, (size_t)reps),
               median(a50_ratio, (size_t)reps), median(a99_ratio, (size_t)reps));
        free(tp_ratio);
        free(tpb_ratio);
        free(p50_ratio);
        free(p99_ratio);
        free(a50_ratio);
        free(a99_ratio);
        free(asap_rtt);
        free(raw_rtt);
        free(br_rtt);
        for (int i = 0; i < n_bridges; i++) {
            kill(bridge_pid[i], SIGTERM);
            waitpid(bridge_pid[i], NULL, 0);
        }
        n_bridges = 0;
        shml_channel *all[8] = {qa, qb, qc, qd, qe, qf, qg, qh};
        for (int k = 0; k < 8; k++)
            shml_channel_close(all[k]);
    }
    natsConnection_Destroy(probe);
    jetstream_throughput(reps, quick);
    cleanup();
    nats_Close();
    return 0;
}
