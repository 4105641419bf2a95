/*
 * Interoperability: segments made the classic way (tests/interop/classic_*.c, which do not
 * link shmlink) and by Python's multiprocessing.shared_memory are read by shmlink (raw open and
 * `shmlink cat`), and what shmlink makes, raw or managed, is read by them (managed segments
 * from the documented byte layout alone).
 */
#include "harness.h"

#include "classic.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE 10000u /* not a page multiple */

static struct shml_segment_opts raw_opts(void)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_RAW;
    return o;
}

/* Run a program; it must exit 0. Returns its stdout (free it). */
#define RUN_OK(...) run_ok_at(__FILE__, __LINE__, (const char *const[]){__VA_ARGS__, NULL}, NULL)
static char *run_ok_at(const char *file, int line, const char *const *argv, size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    int rc = shmt_run(argv, &out, &n, 60000);
    if (rc != 0) {
        char cmd[1024] = "";
        for (size_t i = 0; argv[i]; i++)
            snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "", argv[i]);
        shmt_fail(file, line, "`%s` exited with %d", cmd, rc);
    }
    if (len)
        *len = n;
    return out;
}

static void need_python(void)
{
    if (access(SHML_PYTHON, X_OK) != 0)
        SKIP("%s is not installed", SHML_PYTHON);
}

/* Open `addr` raw: SIZE bytes of pattern `seed`; a managed open says it is foreign. */
static void shmlink_reads_raw(const char *addr, unsigned seed)
{
    struct shml_segment_opts o = raw_opts();
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    ASSERT_FALSE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), SIZE);
    ASSERT_PATTERN(shml_segment_data(seg), SIZE, seed);
    uint8_t buf[SIZE];
    ASSERT_EQ(shml_segment_read(seg, 0, buf, SIZE), (ssize_t)SIZE);
    ASSERT_PATTERN(buf, SIZE, seed);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -SHML_ENOTSHML);
}

/* `shmlink cat ADDR` (and with --raw) prints the SIZE bytes of pattern `seed`. */
static void cli_cats(const char *addr, size_t size, unsigned seed, bool also_raw)
{
#ifdef SHML_CLI_PATH
    size_t n = 0;
    char *out = run_ok_at(__FILE__, __LINE__, (const char *const[]){SHML_CLI_PATH, "cat", addr, NULL},
                          &n);
    ASSERT_EQ(n, size);
    ASSERT_PATTERN(out, size, seed);
    free(out);
    if (also_raw) {
        out = run_ok_at(__FILE__, __LINE__,
                        (const char *const[]){SHML_CLI_PATH, "cat", addr, "--raw", NULL}, &n);
        ASSERT_EQ(n, size);
        ASSERT_PATTERN(out, size, seed);
        free(out);
    }
#else
    (void)addr;
    (void)size;
    (void)seed;
    (void)also_raw;
    shmt_log("the shmlink tool is not built: `shmlink cat` not checked");
#endif
}

TEST(pattern_formulas_agree)
{
    for (size_t i = 0; i < 70000; i += 7)
        for (unsigned seed = 0; seed < 300; seed += 37)
            ASSERT_EQ(classic_pattern(i, seed), shmt_pattern(i, seed));
}

/* ---- classic programs -> shmlink ---- */

TEST(classic_posix_to_shmlink)
{
    const char *name = shmt_posix_name();
    free(RUN_OK(CLASSIC_POSIX, "write", name, shmt_fmt("%u", SIZE), "3"));
    shmlink_reads_raw(shmt_fmt("posix:/%s", name), 3);
    shmlink_reads_raw(name, 3);
    cli_cats(shmt_fmt("posix:/%s", name), SIZE, 3, true);
}

TEST(classic_sysv_to_shmlink)
{
    int32_t key = shmt_sysv_key();
    char *out = RUN_OK(CLASSIC_SYSV, "write", shmt_fmt("%d", key), shmt_fmt("%u", SIZE), "4");
    int id = atoi(out);
    free(out);
    ASSERT_EQ(shmget(key, 0, 0), id);
    shmlink_reads_raw(shmt_fmt("sysv:%d", key), 4);
    shmlink_reads_raw(shmt_fmt("sysv:0x%x", (unsigned)key), 4);
    shmlink_reads_raw(shmt_fmt("sysv:id=%d", id), 4);
    cli_cats(shmt_fmt("sysv:id=%d", id), SIZE, 4, true);
    cli_cats(shmt_fmt("sysv:0x%x", (unsigned)key), SIZE, 4, false);
}

TEST(classic_file_to_shmlink)
{
    const char *path = shmt_fmt("%s/classic.bin", shmt_tmpdir());
    free(RUN_OK(CLASSIC_FILE, "write", path, shmt_fmt("%u", SIZE), "5"));
    shmlink_reads_raw(shmt_fmt("file:%s", path), 5);
    cli_cats(shmt_fmt("file:%s", path), SIZE, 5, true);
}

/* ---- shmlink -> classic programs ---- */

static shml_segment *shmlink_makes(const char *addr, bool managed, unsigned seed)
{
    struct shml_segment_opts o = raw_opts();
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, SIZE, managed ? NULL : &o, &seg));
    shmt_fill(shml_segment_data(seg), SIZE, seed);
    return seg;
}

TEST(shmlink_to_classic_posix)
{
    const char *name = shmt_posix_name();
    shml_segment *seg = shmlink_makes(name, false, 6);
    free(RUN_OK(CLASSIC_POSIX, "read", name, shmt_fmt("%u", SIZE), "6"));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(name));

    name = shmt_posix_name();
    seg = shmlink_makes(name, true, 7);
    free(RUN_OK(CLASSIC_POSIX, "read-managed", name, "7"));
    cli_cats(name, SIZE, 7, false);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(name));
}

TEST(shmlink_to_classic_sysv)
{
    int32_t key = shmt_sysv_key();
    const char *addr = shmt_fmt("sysv:%d", key);
    shml_segment *seg = shmlink_makes(addr, false, 8);
    free(RUN_OK(CLASSIC_SYSV, "read", shmt_fmt("%d", key), shmt_fmt("%u", SIZE), "8"));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));

    key = shmt_sysv_key();
    addr = shmt_fmt("sysv:%d", key);
    seg = shmlink_makes(addr, true, 9);
    free(RUN_OK(CLASSIC_SYSV, "read-managed", shmt_fmt("%d", key), "9"));
    cli_cats(addr, SIZE, 9, false);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(shmlink_to_classic_file)
{
    const char *dir = shmt_tmpdir();
    const char *path = shmt_fmt("%s/raw.bin", dir);
    shml_segment *seg = shmlink_makes(shmt_fmt("file:%s", path), false, 10);
    ASSERT_OK(shml_segment_sync(seg));
    free(RUN_OK(CLASSIC_FILE, "read", path, shmt_fmt("%u", SIZE), "10"));
    ASSERT_OK(shml_segment_close(seg));

    path = shmt_fmt("%s/managed.bin", dir);
    seg = shmlink_makes(shmt_fmt("file:%s", path), true, 11);
    ASSERT_OK(shml_segment_close(seg)); /* flushes */
    free(RUN_OK(CLASSIC_FILE, "read-managed", path, "11"));
    cli_cats(shmt_fmt("file:%s", path), SIZE, 11, false);
}

/* ---- Python ---- */

TEST(python_to_shmlink)
{
    need_python();
    const char *name = shmt_posix_name();
    free(RUN_OK(SHML_PYTHON, PY_SHM, "create", name, shmt_fmt("%u", SIZE), "12"));
    /* Python left it in place (its resource tracker was told to forget it). */
    struct stat st;
    ASSERT_SYS(stat(shmt_fmt("/dev/shm/%s", name), &st));
    ASSERT_EQ(st.st_size, (off_t)SIZE);
    shmlink_reads_raw(name, 12);
    cli_cats(name, SIZE, 12, true);
    ASSERT_OK(shml_segment_unlink(name));
}

TEST(shmlink_raw_to_python)
{
    need_python();
    const char *name = shmt_posix_name();
    shml_segment *seg = shmlink_makes(name, false, 13);
    /* Python checks our bytes and writes its own; we see them through our mapping. */
    free(RUN_OK(SHML_PYTHON, PY_SHM, "read", name, shmt_fmt("%u", SIZE), "13", "14"));
    ASSERT_PATTERN(shml_segment_data(seg), SIZE, 14);
    ASSERT_OK(shml_segment_close(seg));
    /* Python's exit did not unlink our segment. */
    ASSERT_OK(shml_segment_unlink(name));
}

TEST(shmlink_managed_to_python)
{
    need_python();
    const char *name = shmt_posix_name();
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.label = "from C";
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(name, SIZE, &o, &seg));
    shmt_fill(shml_segment_data(seg), SIZE, 15);
    char *out = RUN_OK(SHML_PYTHON, PY_SHM, "read-managed", name, "15");
    ASSERT_STR_EQ(out, shmt_fmt("kind=%u size=%u label=from C\n", SHML_KIND_PLAIN, SIZE));
    free(out);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(name));
}
