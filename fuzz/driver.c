/*
 * driver.c - fuzzing without libFuzzer: runs a target over N inputs made from its seed corpus
 * by random mutations, from a given seed, so any compiler (gcc in the ASan build of CI) runs
 * the targets on new inputs too. No coverage feedback: it is a smoke run, bounded by a number
 * of runs (never by time), and the same seed makes the same inputs.
 *
 * Usage: driver [-seed=S] [-runs=N] [-save=FILE] CORPUS_DIR...
 * -save=FILE writes each input to FILE before it runs: after a crash FILE holds the input
 * that crashed, for `replay -runs=N FILE` (or the libFuzzer binary) to run again.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 4096
#define MAX_SEEDS 1024

static uint64_t rng;

/* xorshift64*: cheap, and the same on every platform for the same seed. */
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

struct seed {
    uint8_t *bytes;
    size_t len;
};

static struct seed seeds[MAX_SEEDS];
static size_t nseeds;

static void load_dir(const char *dir)
{
    /* Sorted, so that a seed gives the same inputs whatever order readdir returns. */
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        perror(dir);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        FILE *f = names[i]->d_name[0] == '.' ? NULL : fopen(path, "rb");
        free(names[i]);
        if (!f || nseeds == MAX_SEEDS) {
            if (f)
                fclose(f);
            continue;
        }
        uint8_t *b = malloc(INPUT_MAX);
        size_t len = b ? fread(b, 1, INPUT_MAX, f) : 0;
        fclose(f);
        if (b) {
            seeds[nseeds].bytes = b;
            seeds[nseeds++].len = len;
        }
    }
    free(names);
}

static const uint8_t interesting[] = {0, 1, 2, 3, 4, 7, 8, 0x10, 0x20, 0x3f, 0x40, 0x7f, 0x80,
                                      0xc0, 0xfe, 0xff};

/* A few mutations of the kinds libFuzzer makes, applied to buf in place. */
static size_t mutate(uint8_t *buf, size_t len)
{
    unsigned n = 1 + (unsigned)below(6);
    for (unsigned m = 0; m < n; m++) {
        switch (below(6)) {
        case 0: /* flip a bit */
            if (len)
                buf[below(len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* a value at a boundary */
            if (len)
                buf[below(len)] = interesting[below(sizeof interesting)];
            break;
        case 2: /* a random byte */
            if (len)
                buf[below(len)] = (uint8_t)next();
            break;
        case 3: { /* a run of bytes from another seed (crossover) */
            const struct seed *s = &seeds[below(nseeds)];
            if (!s->len || !len)
                break;
            size_t from = below(s->len), to = below(len), k = 1 + below(16);
            if (k > s->len - from)
                k = s->len - from;
            if (k > len - to)
                k = len - to;
            memcpy(buf + to, s->bytes + from, k);
            break;
        }
        case 4: /* random bytes appended */
            for (size_t k = 3 + below(9); k > 0 && len < INPUT_MAX; k--)
                buf[len++] = (uint8_t)next();
            break;
        default: /* cut the end */
            if (len > 4)
                len -= below(len / 4 + 1);
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    long runs = 1000;
    const char *save = NULL;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-seed=", 6) == 0)
            seed = strtoull(argv[i] + 6, NULL, 0);
        else if (strncmp(argv[i], "-runs=", 6) == 0)
            runs = strtol(argv[i] + 6, NULL, 10);
        else if (strncmp(argv[i], "-save=", 6) == 0)
            save = argv[i] + 6;
        else
            load_dir(argv[i]);
    }
    if (nseeds == 0) {
        fprintf(stderr, "usage: driver [-seed=S] [-runs=N] [-save=FILE] CORPUS_DIR...\n");
        return 2;
    }
    rng = seed ? seed : 1;
    printf("driver: seed %llu, %ld runs over %zu seeds%s%s\n", (unsigned long long)seed, runs,
           nseeds, save ? ", each input saved first to " : "", save ? save : "");
    fflush(stdout);
    static uint8_t buf[INPUT_MAX];
    for (long r = 0; r < runs; r++) {
        const struct seed *s = &seeds[r < (long)nseeds ? (size_t)r : below(nseeds)];
        memcpy(buf, s->bytes, s->len);
        size_t len = r < (long)nseeds ? s->len : mutate(buf, s->len);
        if (save) {
            FILE *f = fopen(save, "wb");
            if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                perror(save);
                return 1;
            }
        }
        /* An exact-size copy, so a sanitizer build catches reads past the input. */
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            return 1;
        memcpy(copy, buf, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
    }
    printf("driver: %ld runs done\n", runs);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].bytes);
    return 0;
}
