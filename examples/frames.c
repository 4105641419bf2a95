/*
 * frames.c - a camera in shared memory: typed frames written and read in place, no copy.
 *
 *   frames produce ADDR --seconds S [--fps F]   create the channel ADDR, wait for a reader
 *                                               (10 s at most), write frames into it for S
 *                                               seconds (F per second; 0, the default, as
 *                                               fast as it can), then remove it
 *   frames consume ADDR --seconds S             read frames from ADDR for S seconds and print
 *                                               frames/s, GB/s and delivery latency
 *
 * A frame is one record of this type, which the channel carries in its header so that every
 * program, in any language, agrees on the layout:
 *
 *     seq     uint64        frame number, 0, 1, 2 ...
 *     t_ns    uint64        CLOCK_MONOTONIC when the frame was published (nanoseconds)
 *     pixels  uint8[480][640][3]
 *
 * Its type is the PEP 3118 format that the Python module stores for
 * np.dtype([('seq', '<u8'), ('t_ns', '<u8'), ('pixels', 'u1', (480, 640, 3))]), so that
 * examples/frames.py reads these frames as numpy arrays and writes frames this program reads.
 *
 * The channel is a *latest* channel, the honest model of a camera: the camera never waits for
 * anyone, and a reader gets the newest frame, never a backlog of stale ones. A reader faster
 * than the camera sees every frame; a slower one skips frames, and shml_recv_gap() says
 * exactly how many (the consumer checks that against the sequence numbers). A reader's frame
 * is pinned between shml_peek() and shml_release(), so it is never torn: the writer writes
 * into another buffer. (A bus with SHML_OVERWRITE would also never make the camera wait, but
 * a frame read in place could then be overwritten during the read; a queue or a blocking bus
 * would deliver every frame by making the camera wait for the slowest reader.)
 *
 * Both sides touch every pixel: the producer fills each frame with one grey level that
 * follows a triangle wave (so the brightness a reader computes visibly changes over time),
 * and the consumer sums every pixel, which also proves the frame whole (all pixels equal).
 * The producer stamps t_ns last, just before it publishes, so the latency the consumer
 * reports is delivery only: from shml_commit() in one process to shml_peek() returning in
 * the other.
 *
 * The producer ends the stream with a frame whose seq is END_SEQ (all ones), then removes the
 * channel; a consumer stops at that frame, after S seconds, or when no frame came for 2 s.
 * Ctrl-C (SIGINT) or SIGTERM ends either side cleanly, and the producer still removes the
 * channel. Exit status 0 on success, 1 on an error (a consumer that got no frame, a torn or
 * out-of-order frame, a channel of another type).
 */
#define _POSIX_C_SOURCE 200809L
#include <shmlink.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEIGHT 480
#define WIDTH  640

struct frame {
    uint64_t seq;
    uint64_t t_ns;
    uint8_t pixels[HEIGHT][WIDTH][3];
};
_Static_assert(sizeof(struct frame) == 16 + HEIGHT * WIDTH * 3, "struct frame has no padding");

/* The format the Python module stores for the dtype above: a byte order before every number
   ("<Q" a little-endian uint64, "(480,640,3)<B" a sub-array of bytes), so that no reader has
   to guess sizes or alignment. */
#define FRAME_FORMAT "T{<Q:seq:<Q:t_ns:(480,640,3)<B:pixels:}"

#define END_SEQ        UINT64_MAX /* the last frame of a stream: no pixels, stop reading */
#define NS             1000000000LL
#define READER_WAIT_NS (10 * NS) /* the producer waits this long for a first reader */
#define OPEN_WAIT_NS   (10 * NS) /* a consumer waits this long for the channel to appear */
#define IDLE_NS        (2 * NS) /* ... and stops when no frame came for this long */
#define POLL_NS        (100 * 1000000LL) /* each wait is this short, to see Ctrl-C at once */
#define MAX_SAMPLES    (1u << 20) /* latencies kept for the percentiles */
#define BUFFERS        8 /* frame buffers in the channel: up to BUFFERS - 2 readers */
#define PERIOD_NS      (4 * NS) /* of the brightness wave */
#define LEVEL_LO       16
#define LEVEL_HI       240

static volatile sig_atomic_t stop;
/* The channel a wait may be sleeping on. Relaxed: the handler runs in the thread that stores
   it, so it sees the store without ordering anything else. */
static _Atomic(shml_channel *) waiting;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
    shml_channel *ch = atomic_load_explicit(&waiting, memory_order_relaxed);
    if (ch)
        shml_channel_interrupt(ch); /* async-signal-safe: the wait returns -EINTR */
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* The grey level at `t` ns into the stream: a triangle wave from LEVEL_LO to LEVEL_HI. */
static uint8_t level_at(int64_t t)
{
    int64_t phase = t % PERIOD_NS, half = PERIOD_NS / 2;
    int64_t up = phase < half ? phase : PERIOD_NS - phase; /* 0 .. half */
    return (uint8_t)(LEVEL_LO + (LEVEL_HI - LEVEL_LO) * up / half);
}

static double gbps(uint64_t frames, int64_t ns)
{
    return ns > 0 ? (double)frames * sizeof(struct frame) / (double)ns : 0.0;
}

static int fail(const char *what, const char *addr, int err)
{
    fprintf(stderr, "frames: %s %s: %s (%s)\n", what, addr, shml_strerror(err),
            shml_last_error());
    return 1;
}

static int produce(const char *addr, double seconds, double fps)
{
    struct shml_channel_type type = {.format = FRAME_FORMAT, .itemsize = sizeof(struct frame)};
    struct shml_channel_opts opts = SHML_CHANNEL_OPTS_INIT;
    opts.kind = SHML_LATEST;
    opts.role = SHML_PRODUCER; /* a writer only: readers are other processes */
    /* max_msg 0: one message of the type. Room for BUFFERS buffers of a frame and its slot
       header, not for twice as many. */
    opts.capacity = BUFFERS * (sizeof(struct frame) + 4096);
    opts.type = &type;
    shml_channel *ch;
    int r = shml_channel_create(addr, &opts, &ch);
    if (r < 0)
        return fail("create", addr, r);

    /* The camera starts when someone watches (or after READER_WAIT_NS): no frame of the run
       is written for nobody, however long a reader takes to start. */
    int64_t give_up = now_ns() + READER_WAIT_NS;
    struct shml_channel_stats st;
    while (!stop && now_ns() < give_up && shml_channel_get_stats(ch, &st) == 0 && st.attached < 2) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }

    int64_t start = now_ns(), end = start + (int64_t)(seconds * NS);
    int64_t period = fps > 0 ? (int64_t)(NS / fps) : 0, next = start;
    uint64_t seq = 0;
    int status = 0;
    while (!stop && now_ns() < end) {
        struct frame *f;
        /* A latest channel never makes its writer wait: the claim returns at once. */
        r = shml_claim(ch, sizeof *f, (void **)&f, 0);
        if (r < 0) {
            status = fail("claim in", addr, r);
            break;
        }
        memset(f->pixels, level_at(now_ns() - start), sizeof f->pixels);
        f->seq = seq++;
        f->t_ns = (uint64_t)now_ns(); /* last, so that latency is delivery only */
        if ((r = shml_commit(ch, sizeof *f)) < 0) {
            status = fail("commit in", addr, r);
            break;
        }
        if (period) {
            next += period;
            struct timespec ts = {.tv_sec = next / NS, .tv_nsec = next % NS};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* EINTR: see stop */
        }
    }
    int64_t took = now_ns() - start;

    /* The end of the stream: the newest value, so no reader can skip it. */
    struct frame *f;
    if (shml_claim(ch, sizeof *f, (void **)&f, 0) == 0) {
        f->seq = END_SEQ;
        f->t_ns = (uint64_t)now_ns();
        shml_commit(ch, sizeof *f);
    }
    printf("produced %" PRIu64 " frames in %.2f s: %.0f frames/s, %.2f GB/s written\n", seq,
           (double)took / NS, (double)seq * NS / (double)(took ? took : 1), gbps(seq, took));
    fflush(stdout);
    shml_channel_close(ch);
    /* Readers keep their mapping: removing the name only stops new ones from opening. */
    shml_segment_unlink(addr);
    return status;
}

/* Open ADDR as a reader, waiting for the producer to create it, and check its type. */
static int open_frames(const char *addr, shml_channel **out)
{
    int64_t give_up = now_ns() + OPEN_WAIT_NS;
    int r;
    while ((r = shml_channel_open(addr, SHML_CONSUMER, NULL, out)) == -ENOENT &&
           now_ns() < give_up && !stop) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (r < 0)
        return fail("open", addr, r);
    struct shml_channel_type type;
    shml_channel_get_type(*out, &type);
    if (strcmp(type.format, FRAME_FORMAT) != 0 || type.itemsize != sizeof(struct frame) ||
        type.ndim != 0) {
        fprintf(stderr,
                "frames: %s carries \"%s\" (%" PRIu64 " bytes, %u dimensions), not frames"
                " (\"%s\", %zu bytes, 0 dimensions)\n",
                addr, type.format, type.itemsize, type.ndim, FRAME_FORMAT,
                sizeof(struct frame));
        shml_channel_close(*out);
        return 1;
    }
    printf("reading %s: %s, %" PRIu64 " bytes a frame\n", addr, type.format, type.itemsize);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sum every pixel: the brightness, and (all pixels equal) the proof that a frame is whole. */
static uint64_t pixel_sum(const struct frame *f)
{
    const uint8_t *p = &f->pixels[0][0][0];
    uint64_t sum = 0;
    _Static_assert(sizeof f->pixels % 4096 == 0, "whole blocks");
    for (size_t i = 0; i < sizeof f->pixels; i += 4096) {
        uint32_t s = 0; /* 4096 * 255 fits: the inner loop vectorises in 32-bit lanes */
        for (size_t j = 0; j < 4096; j++)
            s += p[i + j];
        sum += s;
    }
    return sum;
}

static int consume(const char *addr, double seconds)
{
    shml_channel *ch;
    if (open_frames(addr, &ch) != 0)
        return 1;
    int64_t *lat = malloc(MAX_SAMPLES * sizeof *lat);
    if (!lat) {
        shml_channel_close(ch);
        return fail("latencies for", addr, -ENOMEM);
    }
    atomic_store_explicit(&waiting, ch, memory_order_relaxed);

    uint64_t frames = 0, skipped = 0, errors = 0, last_seq = 0, tick_frames = 0;
    size_t nlat = 0;
    int64_t start = 0, end = 0, tick = 0, last_frame = now_ns();
    const char *why = "time is up";
    for (;;) {
        const struct frame *f;
        size_t len;
        int r = shml_peek(ch, (const void **)&f, &len, POLL_NS);
        int64_t now = now_ns();
        if (r == -ETIMEDOUT || r == -EINTR) {
            if (stop) {
                why = "interrupted";
                break;
            }
            if (now - last_frame > (frames ? IDLE_NS : OPEN_WAIT_NS)) {
                why = "no frame came";
                break;
            }
            if (frames && now >= end)
                break;
            continue;
        }
        if (r < 0) {
            fail("peek in", addr, r);
            errors++;
            break;
        }
        last_frame = now;
        if (len != sizeof *f || f->seq == END_SEQ) {
            shml_release(ch);
            if (len != sizeof *f) {
                fprintf(stderr, "frames: a message of %zu bytes\n", len);
                errors++;
            }
            why = "the stream ended";
            break;
        }
        if (frames == 0)
            start = tick = now, end = now + (int64_t)(seconds * NS);
        else if (f->seq <= last_seq || f->seq - last_seq - 1 != shml_recv_gap(ch)) {
            fprintf(stderr, "frames: frame %" PRIu64 " after %" PRIu64 " with a gap of %" PRIu64
                            "\n", f->seq, last_seq, shml_recv_gap(ch));
            errors++;
        }
        if (frames)
            skipped += shml_recv_gap(ch);
        if (nlat < MAX_SAMPLES)
            lat[nlat++] = now - (int64_t)f->t_ns;
        uint64_t sum = pixel_sum(f);
        uint8_t level = f->pixels[0][0][0];
        if (sum != (uint64_t)level * sizeof f->pixels) {
            fprintf(stderr, "frames: frame %" PRIu64 " is torn\n", f->seq);
            errors++;
        }
        last_seq = f->seq;
        frames++;
        tick_frames++;
        if ((r = shml_release(ch)) < 0) {
            fail("release in", addr, r);
            errors++;
        }
        if (now - tick >= NS) {
            printf("  %4.1f s  %6.0f frames/s  %5.2f GB/s  brightness %5.1f\n",
                   (double)(now - start) / NS, (double)tick_frames * NS / (double)(now - tick),
                   gbps(tick_frames, now - tick), (double)sum / sizeof f->pixels);
            fflush(stdout);
            tick = now, tick_frames = 0;
        }
        if (stop)
            why = "interrupted";
        if (now >= end || stop)
            break;
    }
    atomic_store_explicit(&waiting, NULL, memory_order_relaxed);
    int64_t took = now_ns() - start;

    if (frames == 0) {
        fprintf(stderr, "frames: no frame from %s (%s)\n", addr, why);
    } else {
        qsort(lat, nlat, sizeof *lat, cmp_i64);
        printf("consumed %" PRIu64 " frames in %.2f s (%s): %.0f frames/s, %.2f GB/s, "
               "latency p50 %.1f us p99 %.1f us, %" PRIu64 " skipped, %" PRIu64 " errors\n",
               frames, (double)took / NS, why, (double)frames * NS / (double)(took ? took : 1),
               gbps(frames, took), (double)lat[(nlat - 1) / 2] / 1e3,
               (double)lat[(nlat - 1) * 99 / 100] / 1e3, skipped, errors);
    }
    free(lat);
    shml_channel_close(ch);
    return frames == 0 || errors != 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: frames produce ADDR --seconds S [--fps F]\n"
                    "       frames consume ADDR --seconds S\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    bool producer = strcmp(argv[1], "produce") == 0;
    if (!producer && strcmp(argv[1], "consume") != 0)
        return usage();
    double seconds = 3, fps = 0;
    for (int i = 3; i < argc; i++) {
        char *endp;
        if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[++i], &endp);
        else if (producer && i + 1 < argc && strcmp(argv[i], "--fps") == 0)
            fps = strtod(argv[++i], &endp);
        else
            return usage();
        if (*endp != '\0' || seconds <= 0 || seconds > 3600 || fps < 0)
            return usage();
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return producer ? produce(argv[2], seconds, fps) : consume(argv[2], seconds);
}
