/*
 * bench_channel.h - what the cases of bench_channel share: the constants, the options, the
 * shared mapping of the raw baselines, one repetition's state (struct chan_run) and the
 * harness that sets a repetition up, runs its peers and releases it (bench_channel_harness.c).
 *
 * The cases, one file per concern, each with its own state on top of struct chan_run:
 *   bench_channel_rt.c      round trips: raw spin and futex, the queue, zero-copy
 *   bench_channel_stream.c  one-way streams: the raw ring, shml_send/recv, the batch calls
 *   bench_channel_bus.c     the bus: this process publishes, the peers subscribe
 *   bench_channel_kernel.c  pipes, Unix socket pairs and POSIX message queues, both ways
 *   bench_channel_evloop.c  round trips through epoll: the queue's descriptor, raw FIFOs
 * bench_channel.c runs them through the generic runner (runner.h) and prints the report.
 */
#ifndef SHML_BENCH_CHANNEL_H
#define SHML_BENCH_CHANNEL_H

#include <shmlink.h>

#include "runner.h"

#include <mqueue.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The batch calls arrive in the library separately from this benchmark: referenced weakly, a
 * library without them still links and runs it, and their rows say "not available".
 */
#pragma weak shml_send_batch
#pragma weak shml_recv_batch

/* No single wait in a benchmark may take longer than this: past it, the run has failed. */
#define WAIT_LIMIT_NS ((int64_t)10 * 1000000000)
#define WAIT_LIMIT_S  (WAIT_LIMIT_NS / 1000000000) /* the futex waits' bound, per sleep */
/* The small message of the round trips, the streams and the bus. */
#define SMALL 64
/* Messages per batch call, and the raw ring's publication interval to compare them with. */
#define BATCH 16
/* The channels of the streaming rows and the bus: the library's default capacity. */
#define STREAM_CAPACITY ((size_t)1 << 20)
/* The slot header the library puts before each message (shmlink/channel.h: 16 bytes). */
#define SLOT_HDR 16
/* Most subscribers of a bus row. */
#define MAX_PEERS 4
/* A page, for the zero-copy rows that touch one line per page. */
#define PAGE 4096

/* ---- options ---- */

struct opts {
    long rounds; /* round trips per repetition (64-byte rows; the large rows run fewer) */
    long reps;   /* repetitions of every benchmark */
    long msgs;   /* 64-byte messages streamed per repetition (larger sizes: fewer) */
    int cpu[2];  /* this process's and the peers' CPU; -1: not pinned */
    bool quick;
    const char *only; /* TEXT[,TEXT...]: run only the benchmarks whose name contains one */
};

/* ---- the shared mapping of the raw baselines ---- */

/*
 * A one-message mailbox: the number of the message in it, then the message, laid out as a
 * queue slot is (a 16-byte header, then the bytes), on its own 128-byte slot.
 */
struct mbox {
    alignas(128) _Atomic uint32_t seq; /* the message's number; also the futex word */
    uint32_t len;
    uint64_t pad;
    unsigned char data[SMALL];
};

/* The raw ring's bytes: the largest geometry of a STREAM_CAPACITY queue. */
#define RING_BYTES STREAM_CAPACITY

/*
 * Everything the processes touch through the memfd: segment. Each word one process writes
 * and another polls sits on its own 128-byte slot (two cache lines, because adjacent-line
 * prefetch pairs them), so the benchmarks measure the hand-over of one line, not false sharing.
 */
struct shared {
    alignas(128) _Atomic uint32_t ready; /* peers that are pinned, set up and about to start */
    alignas(128) _Atomic uint32_t fail;  /* a peer saw an error (its text is in why[]) */
    char why[256];
    char peer_note[2][96]; /* the paths of a peer's descriptors (shml_channel_fd()), or "" */
    alignas(128) struct mbox ping;      /* raw round trips: this process -> peer */
    alignas(128) struct mbox pong;      /* raw round trips: peer -> this process */
    alignas(128) _Atomic uint64_t head; /* raw ring: messages the producer has published */
    alignas(128) _Atomic uint64_t tail; /* raw ring: messages the consumer is done with */
    alignas(128) unsigned char ring[RING_BYTES];
};
/* ---- one repetition of one case ---- */

/* What every case of a session shares: the mapping, the options, the message buffers. */
struct chan_env {
    struct shared *sh;
    const struct opts *o;
    unsigned char *msg; /* a message to send (BATCH of the largest size) */
    unsigned char *buf; /* where messages are received (as large) */
};

/*
 * One repetition of one case: what the harness sets up, hands to the peers (they inherit it
 * through the fork) and releases. A family of cases that needs more embeds it as its first
 * member (struct rt_run, struct st_run).
 */
struct chan_run {
    struct shared *sh;
    const struct opts *o;
    const char *bench;
    size_t size;         /* message bytes */
    long count;          /* round trips, or messages, of this repetition (warm-up included) */
    uint32_t wait;       /* SHML_WAIT_* of every endpoint */
    uint32_t flags;      /* channel flags: SHML_SPSC or 0 (the bus: its policy) */
    int64_t timeout;     /* the library calls' timeout */
    char addr[2][80];    /* channel addresses (posix:), "" if none */
    char fifo[2][96];    /* raw FIFOs' paths until the peers have opened them, "" if none */
    shml_channel *ch[2]; /* this process's endpoints */
    int fd[4];           /* kernel cases: pipes [0]->[1] out, [2]->[3] back; socket pair [0], [1];
                            event loops: epoll [0], raw FIFOs [1] out, [2] back */
    mqd_t mq[2];         /* kernel cases: the message queues */
    shml_waitset *ws;    /* event loops: this process's wait set, or NULL */
    unsigned char *msg;  /* the session's buffers (struct chan_env) */
    unsigned char *buf;
};

typedef int (*setup_fn)(struct chan_run *c);
typedef void (*peer_fn)(struct chan_run *c, int k);

/* ---- the harness (bench_channel_harness.c) ---- */

/* Start a repetition of case `name`: nothing set up, nothing open. */
void chan_run_init(struct chan_run *c, const struct chan_env *e, const char *name, size_t size,
                   uint32_t wait, uint32_t flags, int64_t timeout);

/* The message stamp: a message's number in its first 8 bytes, and its check (-EMSGSIZE for a
   wrong length, -EBADMSG for a lost, repeated or torn message). */
void stamp(unsigned char *msg, uint64_t n);
int check_stamp(const unsigned char *msg, size_t len, size_t want_len, uint64_t n);

/* Report a failed call of case `bench` on stderr, with the library's detail. */
void report(const char *bench, const char *what, long rc);

/* The handler of SIGINT, SIGTERM, SIGHUP and SIGALRM: unlink the names, say why, exit. */
void on_fatal_signal(int sig);

/* In a peer: report an error to the parent and exit; say that the peer is set up. */
_Noreturn void peer_fail(struct chan_run *c, const char *what, long err);
void peer_ready(struct chan_run *c);
/* In a peer, before peer_ready(): the path of its k-th descriptor from shml_channel_fd(), for
   the parent to remove if the peer is killed (the library removes it at close). */
void peer_publish_fd(struct chan_run *c, int k, int fd);

/* Channel k at a fresh posix: name (c->ch[k]), armed for the signal handler. 0 or -err. */
int create_channel(struct chan_run *c, int k, const struct shml_channel_opts *co);
/* A queue for messages of c->size bytes with `capacity` bytes of slots (0: two slots). */
int create_queue(struct chan_run *c, int k, size_t capacity);
/* A FIFO (mkfifo) k at a fresh /dev/shm path (c->fifo[k]), armed for the signal handler and
   unlinked once the peers have started. 0 or -errno. */
int create_fifo(struct chan_run *c, int k);
/* shml_channel_fd() of c->ch[k], its FIFO armed for the signal handler. */
int channel_fd(struct chan_run *c, int k);
/* In a peer: its end of channel k, with role `role` and the repetition's wait. */
shml_channel *peer_open(struct chan_run *c, int k, unsigned role);

/* Set up a repetition and start its n peers: 1 when they run, 0 when the case is not
   available (s->na says why), -1 on a failure (reported). */
int begin_rep(struct chan_run *c, const char *name, setup_fn setup, peer_fn peer, int n, pid_t *pid,
              struct bench_series *s);
/* End a repetition whose timed part returned rc: wait for the peers, count the sleeps of
   `messages` messages, release everything. 0 or -1. */
int end_rep(struct chan_run *c, pid_t *pid, int n, int rc, struct bench_series *s, long messages);

/* ---- the kernel mechanisms (bench_channel_kernel.c) ---- */

/* Round trips: two pipes, a socket pair, two message queues. */
int setup_pipes(struct chan_run *c);
int setup_socketpair(struct chan_run *c);
int setup_mqs(struct chan_run *c);
void peer_pipe_rt(struct chan_run *c, int k);
void peer_sock_rt(struct chan_run *c, int k);
void peer_mq_rt(struct chan_run *c, int k);
int round_pipe(struct chan_run *c, uint32_t i);
int round_sock(struct chan_run *c, uint32_t i);
int round_mq(struct chan_run *c, uint32_t i);

/* Streams (the peer sends, this process receives): a pipe, a socket pair, a message queue. */
int setup_pipe1(struct chan_run *c);
int setup_mq1(struct chan_run *c);
void peer_pipe_stream(struct chan_run *c, int k);
void peer_sock_stream(struct chan_run *c, int k);
void peer_mq_stream(struct chan_run *c, int k);
long recv_pipe(struct chan_run *c, uint64_t next, long want);
long recv_sock(struct chan_run *c, uint64_t next, long want);
long recv_mq(struct chan_run *c, uint64_t next, long want);

/* ---- event loops (bench_channel_evloop.c) ---- */

/* Round trips, each side waiting in epoll: two raw FIFOs (read, write), or two queues, each
   receiver's descriptor (shml_channel_fd()) in epoll or (c->ws) in a shml_waitset. */
int setup_fifos(struct chan_run *c);
int setup_evloop_queues(struct chan_run *c);
int setup_waitset_queues(struct chan_run *c);
void peer_fifo_rt(struct chan_run *c, int k);
void peer_evloop_rt(struct chan_run *c, int k);
int round_fifo(struct chan_run *c, uint32_t i);
int round_evloop(struct chan_run *c, uint32_t i);

/* The round trips' two SHML_SPSC queues of 16 slots, 0 -> the peer, 1 back
   (bench_channel_rt.c). */
int setup_queues(struct chan_run *c);

/* ---- the families of cases, as the runner calls them ---- */

/* Round trips (bench_channel_rt.c). The order matters: the report takes ratios of RT_*. */
enum {
    RT_SPIN,
    RT_Q_SPIN,
    RT_FUTEX,
    RT_Q_BLOCK,
    RT_ZC1,
    RT_ZC16,
    RT_FIFO = 11,
    RT_Q_EPOLL,
    RT_PAUSE = 17,
    N_RT
};
/* Where each group of the printed table starts. */
#define RT_FIRST_ZC    4
#define RT_FIRST_OTHER 8
const char *rt_case_name(size_t i);
int rt_case_run(void *env, size_t i, struct bench_series *s);

/* Streams (bench_channel_stream.c). The order matters: the report takes ratios of ST_*. */
enum {
    ST_RING1,
    ST_SEND,
    ST_RING16,
    ST_BATCH,
    ST_4K_RING = 7,
    ST_4K_SEND,
    ST_64K_RING = 12,
    ST_64K_SEND,
    N_ST = 17,
};
const char *st_case_name(size_t i);
size_t st_case_size(size_t i); /* message bytes */
int st_case_run(void *env, size_t i, struct bench_series *s);

/* What the bus rows time as the streams do: chunks of messages, after a warm-up. */
long chunk_of(size_t size);
long stream_count(const struct opts *o, size_t size, long div);
int time_chunks(struct chan_run *c, long (*recv)(struct chan_run *, uint64_t, long), long count,
                long warm, long chunk, struct bench_series *s);

/* The bus (bench_channel_bus.c): [0] 1 subscriber, [1] 4 subscribers, then diagnostics. */
enum { N_BUS = 6 };
const char *bus_case_name(size_t i);
int bus_case_run(void *env, size_t i, struct bench_series *s);

#endif
