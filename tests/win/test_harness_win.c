/*
 * The harness itself on Windows (harness_win32.c): peers and their pipes (arguments that need
 * quoting, lines both ways, timeouts, a pipe that closes when its peer ends even if the peer
 * started peers of its own), kill_peer(), wait_peer() bounds, shmt_run(), process start
 * times, names, the toggler. The runner's own verdicts (a timeout, a crash, a failed
 * assertion, a skip, the last line, cleanup after a crash, no process of a test left behind)
 * are checked by running this binary on its meta_ tests, which are not ctest entries (their
 * TEST lines are indented, so tests/harness.cmake does not see them) and skip unless
 * SHMT_META is set.
 */
#include "harness.h"

#include <windows.h>

#include <stdlib.h>

/* ---- peers ---- */

/* Echo every line back with "echo: " before it, until "bye"; then exit with argv[0]. */
PEER(echo)
{
    ASSERT_EQ(argc, 1);
    ASSERT_EQ(parent_send("ready"), 0);
    char line[256];
    for (;;) {
        ASSERT_EQ(parent_recv(line, sizeof line, 20000), 0);
        if (strcmp(line, "bye") == 0)
            break;
        ASSERT_EQ(parent_send(shmt_fmt("echo: %s", line)), 0);
    }
    return atoi(argv[0]);
}

TEST(peer_lines_both_ways)
{
    pid_t p = spawn_peer("echo", "7");
    ASSERT_GT(p, 0);
    ASSERT_EQ(peer_expect(p, "ready", 20000), 0);
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(peer_send(p, shmt_fmt("line %d", i)), 0);
        ASSERT_EQ(peer_expect(p, shmt_fmt("echo: line %d", i), 10000), 0);
    }
    /* Two lines in one write come back as two lines. */
    ASSERT_EQ(peer_send(p, "a\nb"), 0);
    char buf[64];
    ASSERT_EQ(peer_recv(p, buf, sizeof buf, 10000), 0);
    ASSERT_STR_EQ(buf, "echo: a");
    ASSERT_EQ(peer_recv(p, buf, sizeof buf, 10000), 0);
    ASSERT_STR_EQ(buf, "echo: b");
    ASSERT_EQ(peer_send(p, "bye"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 7);
    /* A peer that was reaped is forgotten. */
    ASSERT_EQ(peer_send(p, "x"), -ESRCH);
    ASSERT_EQ(peer_expect(p, "x", 10), -ESRCH);
}

/* Send each argument back, one per line, then end. */
PEER(args)
{
    for (int i = 0; i < argc; i++)
        ASSERT_EQ(parent_send(shmt_fmt("[%s]", argv[i])), 0);
    ASSERT_EQ(parent_send("end"), 0);
    return 0;
}

TEST(peer_arguments_arrive_unchanged)
{
    const char *args[] = {"plain", "two words", "", "quote\"inside", "back\\slash",
                          "trailing\\", "both\\\"mixed\\\\\"", "win:Local\\shmt.1.2", "\ttab"};
    pid_t p = spawn_peer("args", args[0], args[1], args[2], args[3], args[4], args[5], args[6],
                         args[7], args[8]);
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        ASSERT_EQ(peer_expect(p, shmt_fmt("[%s]", args[i]), 20000), 0);
    ASSERT_EQ(peer_expect(p, "end", 10000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
}

/* Say "up", then sleep argv[0] ms and exit 0 (or wait for "go" first if argv[1] is "wait"). */
PEER(sleeper)
{
    ASSERT_GE(argc, 1);
    ASSERT_EQ(parent_send("up"), 0);
    if (argc > 1 && strcmp(argv[1], "wait") == 0)
        ASSERT_EQ(parent_expect("go", 60000), 0);
    shmt_sleep_ms(atoi(argv[0]));
    return 0;
}

TEST(peer_expect_times_out)
{
    pid_t p = spawn_peer("sleeper", "0", "wait");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    int64_t t0 = shmt_now_ms();
    ASSERT_EQ(peer_expect(p, "never", 300), -ETIMEDOUT);
    int64_t took = shmt_now_ms() - t0;
    ASSERT_GE(took, 290);
    ASSERT_LT(took, 5000);
    /* The link still works after a read timed out. */
    ASSERT_EQ(peer_send(p, "go"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
}

TEST(wait_peer_is_bounded_and_kills)
{
    pid_t p = spawn_peer("sleeper", "60000");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    int64_t t0 = shmt_now_ms();
    ASSERT_EQ(wait_peer(p, 300), -1);
    ASSERT_GE(shmt_now_ms() - t0, 290);
    /* It was killed and reaped. */
    ASSERT_EQ(shmt_proc_start(p), 0u);
}

TEST(kill_peer_reports_the_signal)
{
    pid_t p = spawn_peer("sleeper", "60000");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    ASSERT_NE(shmt_proc_start(p), 0u);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(shmt_proc_start(p), 0u);
    p = spawn_peer("sleeper", "60000");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    ASSERT_EQ(kill_peer(p, SIGTERM), 128 + SIGTERM);
}

/* End at once without a word. */
PEER(mute)
{
    (void)argc, (void)argv;
    return 3;
}

TEST(pipe_closes_when_the_peer_ends)
{
    pid_t p = spawn_peer("mute");
    ASSERT_EQ(peer_expect(p, "anything", 20000), -EPIPE);
    ASSERT_EQ(wait_peer(p, 20000), 3);
}

/* Start a sleeper of its own, tell its pid, and end: the test's pipe must close with us. */
PEER(parent_of_sleeper)
{
    (void)argc, (void)argv;
    pid_t c = spawn_peer("sleeper", "3000");
    ASSERT_EQ(peer_expect(c, "up", 20000), 0);
    ASSERT_EQ(parent_send(shmt_fmt("%d", (int)c)), 0);
    return 0;
}

TEST(pipe_is_not_inherited_by_peers_of_peers)
{
    pid_t p = spawn_peer("parent_of_sleeper");
    char buf[64];
    ASSERT_EQ(peer_recv(p, buf, sizeof buf, 20000), 0);
    pid_t grandchild = (pid_t)atoi(buf);
    ASSERT_GT(grandchild, 0);
    /* Closed when p ends, not when the grandchild (alive for 3 s more) does. */
    int64_t t0 = shmt_now_ms();
    ASSERT_EQ(peer_recv(p, buf, sizeof buf, 20000), -EPIPE);
    ASSERT_LT(shmt_now_ms() - t0, 2500);
    ASSERT_NE(shmt_proc_start(grandchild), 0u);
    ASSERT_EQ(wait_peer(p, 20000), 0);
}

/* Die of an access violation. */
PEER(crasher)
{
    (void)argc, (void)argv;
    ASSERT_EQ(parent_send("crashing"), 0);
    volatile uintptr_t null = 0;
    *(volatile int *)null = 1;
    return 0;
}

TEST(a_crashed_peer_reports_sigsegv)
{
    pid_t p = spawn_peer("crasher");
    ASSERT_EQ(peer_expect(p, "crashing", 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 128 + 11);
}

TEST(several_peers_at_once)
{
    enum { N = 4 };
    pid_t p[N];
    for (int i = 0; i < N; i++)
        p[i] = spawn_peer("echo", shmt_fmt("%d", 10 + i));
    for (int i = 0; i < N; i++)
        ASSERT_EQ(peer_expect(p[i], "ready", 20000), 0);
    for (int round = 0; round < 5; round++) {
        for (int i = N; i-- > 0;)
            ASSERT_EQ(peer_send(p[i], shmt_fmt("%d.%d", i, round)), 0);
        for (int i = 0; i < N; i++)
            ASSERT_EQ(peer_expect(p[i], shmt_fmt("echo: %d.%d", i, round), 10000), 0);
    }
    for (int i = 0; i < N; i++)
        ASSERT_EQ(peer_send(p[i], "bye"), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 10 + i);
}

/* ---- utilities ---- */

TEST(proc_start_is_the_creation_time)
{
    FILETIME c, x, k, u;
    ASSERT_TRUE(GetProcessTimes(GetCurrentProcess(), &c, &x, &k, &u));
    uint64_t want = ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
    ASSERT_EQ(shmt_proc_start((pid_t)GetCurrentProcessId()), want);
    ASSERT_EQ(shmt_proc_start(0), 0u);
    pid_t p = spawn_peer("sleeper", "0", "wait");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    uint64_t s = shmt_proc_start(p);
    ASSERT_GT(s, want); /* started after us */
    ASSERT_EQ(shmt_proc_start(p), s);
    ASSERT_EQ(peer_send(p, "go"), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_EQ(shmt_proc_start(p), 0u);
}

TEST(names_and_self)
{
    char path[MAX_PATH];
    ASSERT_GT(GetModuleFileNameA(NULL, path, sizeof path), 0u);
    ASSERT_STR_EQ(shmt_self_exe(), path);
    const char *a = shmt_addr(), *b = shmt_addr();
    const char *prefix = shmt_fmt("win:shmt.%lu.", GetCurrentProcessId());
    ASSERT_EQ(strncmp(a, prefix, strlen(prefix)), 0);
    ASSERT_EQ(strncmp(b, prefix, strlen(prefix)), 0);
    ASSERT_TRUE(strcmp(a, b) != 0);
    ASSERT_STR_EQ(shmt_current(), "harness.names_and_self");
    ASSERT_STR_EQ(shmt_errname(-ENOENT), "ENOENT");
    ASSERT_STR_EQ(shmt_errname(ETIMEDOUT), "ETIMEDOUT");
    ASSERT_STR_EQ(shmt_errname(-EOWNERDEAD), "EOWNERDEAD");
    const char *d = shmt_tmpdir();
    ASSERT_TRUE(GetFileAttributesA(d) & FILE_ATTRIBUTE_DIRECTORY);
}

TEST(run_captures_output_and_exit_code)
{
    const char *argv[] = {shmt_self_exe(), "--list", NULL};
    char *out = NULL;
    size_t len = 0;
    ASSERT_EQ(shmt_run(argv, &out, &len, 60000), 0);
    ASSERT_NOT_NULL(out);
    ASSERT_EQ(strlen(out), len);
    ASSERT_NOT_NULL(strstr(out, "harness.run_captures_output_and_exit_code\n"));
    free(out);
    const char *none[] = {shmt_self_exe(), "--run", "no.such.test", NULL};
    ASSERT_EQ(shmt_run(none, &out, &len, 60000), 1);
    ASSERT_STR_EQ(out, "0 passed, 1 failed, 0 skipped\n");
    free(out);
    const char *missing[] = {"Z:\\no\\such\\program.exe", NULL};
    ASSERT_EQ(shmt_run(missing, NULL, NULL, 10000), -1);
}

TEST(toggler_flips_and_restores)
{
    _Alignas(8) uint64_t word = 5;
    const uint64_t hostile[] = {1, 2};
    struct shmt_toggler *t = shmt_toggler_start(&word, 8, hostile, 2);
    bool seen = false;
    for (int i = 0; i < 100000000 && !seen; i++) {
        uint64_t v = __atomic_load_n(&word, __ATOMIC_RELAXED);
        seen = v == 1 || v == 2;
    }
    shmt_toggler_stop(t);
    ASSERT_TRUE(seen);
    ASSERT_EQ(word, 5u);
}

/* ---- the runner's verdicts, on the meta_ tests below ---- */

static void meta_only(void)
{
    if (GetEnvironmentVariableA("SHMT_META", NULL, 0) == 0)
        SKIP("run by runner_verdicts only");
}

/* Print a line the outer test reads (stdout goes to its shmt_run() pipe). */
static void meta_say(const char *what, const char *value)
{
    printf("%s %s\n", what, value);
    fflush(stdout);
}

/* Leaves a peer running: the runner must kill it when the test ends. */
 TEST(meta_pass)
{
    meta_only();
    pid_t p = spawn_peer("sleeper", "60000");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    meta_say("left", shmt_fmt("%d", (int)p));
}

 TEST(meta_fail)
{
    meta_only();
    ASSERT_EQ(1 + 1, 3);
}

 TEST(meta_skip)
{
    meta_only();
    SKIP("skipped on purpose");
}

/* Registers a directory with a file in it, then dies: the runner still removes it. */
 TEST(meta_crash)
{
    meta_only();
    const char *d = shmt_tmpdir();
    const char *f = shmt_fmt("%s\\file", d);
    FILE *fp = fopen(f, "w");
    ASSERT_NOT_NULL(fp);
    fputs("x", fp);
    fclose(fp);
    meta_say("dir", d);
    volatile uintptr_t null = 0;
    *(volatile int *)null = 1;
}

/* Runs past its 2 s with a peer: both are killed with the job. */
 TEST_TIMEOUT(meta_timeout, 2)
{
    meta_only();
    pid_t p = spawn_peer("sleeper", "60000");
    ASSERT_EQ(peer_expect(p, "up", 20000), 0);
    meta_say("peer", shmt_fmt("%d", (int)p));
    shmt_sleep_ms(60000);
}

/* The value after "what " in out, or NULL. */
static const char *meta_value(const char *out, const char *what)
{
    const char *p = strstr(out, shmt_fmt("%s ", what));
    if (!p)
        return NULL;
    p += strlen(what) + 1;
    return shmt_fmt("%.*s", (int)strcspn(p, "\r\n"), p);
}

TEST_TIMEOUT(runner_verdicts, 120)
{
    ASSERT_TRUE(SetEnvironmentVariableA("SHMT_META", "1"));
    const char *argv[] = {shmt_self_exe(), "--run", "harness.meta_*", NULL};
    char *out = NULL;
    int64_t t0 = shmt_now_ms();
    int rc = shmt_run(argv, &out, NULL, 100000);
    int64_t took = shmt_now_ms() - t0;
    ASSERT_NOT_NULL(out);
    shmt_log("runner output (%lld ms):\n%s", (long long)took, out);
    ASSERT_EQ(rc, 1);
    ASSERT_NOT_NULL(strstr(out, "FAIL harness.meta_crash: ended by exception 0xc0000005\n"));
    ASSERT_NOT_NULL(strstr(out, "FAIL harness.meta_fail: exit code 1\n"));
    ASSERT_NOT_NULL(strstr(out, "PASS harness.meta_pass ("));
    ASSERT_NOT_NULL(strstr(out, "SKIP harness.meta_skip: skipped on purpose\n"));
    ASSERT_NOT_NULL(strstr(out, "FAIL harness.meta_timeout: timed out after 2 s (job killed)\n"));
    const char *last = "1 passed, 3 failed, 1 skipped\n";
    ASSERT_GE(strlen(out), strlen(last));
    ASSERT_STR_EQ(out + strlen(out) - strlen(last), last);

    /* Cleanup ran after the crash. */
    const char *dir = meta_value(out, "dir");
    ASSERT_NOT_NULL(dir);
    ASSERT_EQ(GetFileAttributesA(dir), INVALID_FILE_ATTRIBUTES);
    /* No process of a test outlives it. */
    const char *pids[] = {meta_value(out, "left"), meta_value(out, "peer")};
    for (int i = 0; i < 2; i++) {
        ASSERT_NOT_NULL(pids[i]);
        ASSERT_EQ(shmt_proc_start((pid_t)atoi(pids[i])), 0u);
    }
    /* The runner's patterns: a class and a '?'. */
    const char *some[] = {shmt_self_exe(), "--run", "harness.meta_[ps]?[si]*", NULL};
    free(out);
    ASSERT_EQ(shmt_run(some, &out, NULL, 60000), 0);
    ASSERT_NOT_NULL(strstr(out, "PASS harness.meta_pass ("));
    ASSERT_NOT_NULL(strstr(out, "SKIP harness.meta_skip: skipped on purpose\n"));
    ASSERT_NOT_NULL(strstr(out, "1 passed, 0 failed, 1 skipped\n"));
    free(out);
}
