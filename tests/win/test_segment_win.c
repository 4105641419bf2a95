/*
 * The win: and file: backends on Windows (run under Wine here): security descriptors made from
 * the mode bits, the tutorial programs' mappings in both directions, managed segments across
 * processes, the blank window of a fresh section, unlink and the holder, listing, file:.
 *
 * The tutorial programs (tutorial_writer.cpp, tutorial_reader.cpp) are found at the paths
 * TUTORIAL_WRITER and TUTORIAL_READER when the build defines them, else beside this binary.
 */
#include "harness.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <aclapi.h>
#include <stdlib.h>
#include <string.h>

/* What tutorial_writer.exe writes when given no message: 24 bytes and a NUL. */
#define TUTORIAL_MESSAGE "Hello from the tutorial!"

/* A fresh name for a section, unique to this test process. */
static const char *win_name(void)
{
    static int n;
    return shmt_fmt("shmtw.%lu.%d", (unsigned long)GetCurrentProcessId(), n++);
}

/* The path of a program beside this binary, or the one the build gave. */
static const char *beside_me(const char *exe)
{
    const char *self = shmt_self_exe();
    const char *slash = strrchr(self, '\\'), *fslash = strrchr(self, '/');
    if (!slash || (fslash && fslash > slash))
        slash = fslash;
    if (!slash)
        return exe;
    return shmt_fmt("%.*s%c%s", (int)(slash - self), self, *slash, exe);
}

static const char *tutorial_writer(void)
{
#ifdef TUTORIAL_WRITER
    return TUTORIAL_WRITER;
#else
    return beside_me("tutorial_writer.exe");
#endif
}

static const char *tutorial_reader(void)
{
#ifdef TUTORIAL_READER
    return TUTORIAL_READER;
#else
    return beside_me("tutorial_reader.exe");
#endif
}

static struct shml_segment_opts opts_flags(uint32_t flags)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = flags;
    return o;
}

static struct shml_segment_opts opts_mode(uint32_t mode)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = mode;
    return o;
}

/* ---- security descriptors ---- */

/* The calling user's SID, into buf. */
static PSID my_sid(void *buf, DWORD cap)
{
    HANDLE tok;
    ASSERT_TRUE(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    DWORD len = 0;
    ASSERT_TRUE(GetTokenInformation(tok, TokenUser, buf, cap, &len));
    CloseHandle(tok);
    return ((TOKEN_USER *)buf)->User.Sid;
}

struct aces {
    DWORD n;
    bool owner_is_me;
    ACCESS_MASK mine, auth, world; /* 0 where there is no entry */
};

/* The DACL of the section `name` ("Local\\X"), as the entries shmlink makes. */
static struct aces section_aces(const char *name)
{
    struct aces r;
    memset(&r, 0, sizeof(r));
    HANDLE h = OpenFileMappingA(READ_CONTROL, FALSE, name);
    ASSERT_NOT_NULL(h);
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    ASSERT_EQ(GetSecurityInfo(h, SE_KERNEL_OBJECT,
                              OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                              NULL, &dacl, NULL, &sd),
              ERROR_SUCCESS);
    ASSERT_NOT_NULL(dacl); /* never a NULL DACL */
    union {
        TOKEN_USER tu;
        unsigned char b[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } me;
    PSID sid = my_sid(&me, sizeof(me));
    unsigned char auth[SECURITY_MAX_SID_SIZE], world[SECURITY_MAX_SID_SIZE];
    DWORD n1 = sizeof(auth), n2 = sizeof(world);
    ASSERT_TRUE(CreateWellKnownSid(WinAuthenticatedUserSid, NULL, auth, &n1));
    ASSERT_TRUE(CreateWellKnownSid(WinWorldSid, NULL, world, &n2));
    r.owner_is_me = owner && EqualSid(owner, sid);
    r.n = dacl->AceCount;
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace;
        ASSERT_TRUE(GetAce(dacl, i, (void **)&ace));
        ASSERT_EQ(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
        PSID s = (PSID)&ace->SidStart;
        if (EqualSid(s, sid))
            r.mine = ace->Mask;
        else if (EqualSid(s, auth))
            r.auth = ace->Mask;
        else if (EqualSid(s, world))
            r.world = ace->Mask;
        else
            shmt_fail(__FILE__, __LINE__, "entry %lu is for a SID shmlink never names",
                      (unsigned long)i);
    }
    LocalFree(sd);
    CloseHandle(h);
    return r;
}

/* GENERIC_ALL as given, or as the system maps it for a section. */
#define IS_ALL(m) ((m) == GENERIC_ALL || ((m) & SECTION_ALL_ACCESS) == SECTION_ALL_ACCESS)

TEST(dacl_default_is_the_user_alone)
{
    const char *name = win_name();
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(shmt_fmt("win:%s", name), 100, NULL, &seg));
    struct aces a = section_aces(shmt_fmt("Local\\%s", name));
    ASSERT_EQ(a.n, 1);
    ASSERT_TRUE(a.owner_is_me);
    ASSERT_TRUE(IS_ALL(a.mine));
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(shmt_fmt("win:%s", name), &info, NULL, 0, NULL));
    ASSERT_EQ(info.mode, 0600u);
    ASSERT_TRUE(info.managed);
    ASSERT_EQ(info.size, 100);
    shml_segment_close(seg);
}

TEST(dacl_mode_bits_widen_it)
{
    static const struct {
        uint32_t mode;
        DWORD n;
        bool auth_reads, auth_writes, world_reads, world_writes;
    } cases[] = {
        {0640, 2, true, false, false, false},
        {0660, 2, true, true, false, false},
        {0644, 3, true, false, true, false},
        {0666, 3, true, true, true, true},
        {0606, 2, false, false, true, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *name = win_name();
        struct shml_segment_opts o = opts_mode(cases[i].mode);
        shml_segment *seg;
        ASSERT_OK(shml_segment_create(shmt_fmt("win:%s", name), 100, &o, &seg));
        struct aces a = section_aces(shmt_fmt("Local\\%s", name));
        ASSERT_EQ(a.n, cases[i].n);
        ASSERT_TRUE(IS_ALL(a.mine));
        ASSERT_EQ((a.auth & SECTION_MAP_READ) != 0, cases[i].auth_reads);
        ASSERT_EQ((a.auth & SECTION_MAP_WRITE) != 0, cases[i].auth_writes);
        ASSERT_EQ((a.world & SECTION_MAP_READ) != 0, cases[i].world_reads);
        ASSERT_EQ((a.world & SECTION_MAP_WRITE) != 0, cases[i].world_writes);
        struct shml_segment_info info;
        ASSERT_OK(shml_segment_stat(shmt_fmt("win:%s", name), &info, NULL, 0, NULL));
        ASSERT_EQ(info.mode, cases[i].mode);
        shml_segment_close(seg);
    }
}

TEST(dacl_read_only_owner_is_enforced)
{
    const char *addr = shmt_fmt("win:%s", win_name());
    struct shml_segment_opts o = opts_mode(0400);
    shml_segment *seg, *again;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    ASSERT_ERR(shml_segment_open(addr, NULL, &again), -EACCES);
    o = opts_flags(SHML_RDONLY);
    ASSERT_OK(shml_segment_open(addr, &o, &again));
    shml_segment_close(again);
    shml_segment_close(seg);
}

/* ---- the tutorial programs ---- */

TEST(raw_segment_read_by_the_tutorial_reader)
{
    const char *name = win_name();
    struct shml_segment_opts o = opts_flags(SHML_RAW);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(shmt_fmt("win:%s", name), 2048, &o, &seg));
    ASSERT_EQ(shml_segment_size(seg), 2048);
    static const char msg[] = "written by shmlink, raw!"; /* 24 bytes */
    ASSERT_EQ(shml_segment_write(seg, 0, msg, sizeof(msg)), (ssize_t)sizeof(msg));
    /* The reader opens it while this process keeps it. */
    char *out = NULL;
    size_t len = 0;
    const char *argv[] = {tutorial_reader(), name, NULL};
    ASSERT_EQ(shmt_run(argv, &out, &len, 20000), 0);
    ASSERT_NOT_NULL(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    ASSERT_STR_EQ(out, msg);
    free(out);
    shml_segment_close(seg);
    /* Its last handle closed: gone, and unlink finds no such segment. */
    ASSERT_ERR(shml_segment_unlink(shmt_fmt("win:%s", name)), -ENOENT);
    ASSERT_ERR(shml_segment_open(shmt_fmt("win:%s", name), &o, &seg), -ENOENT);
}

/* Runs the tutorial writer on argv[0] for argv[1] ms. */
PEER(tutorial_writer)
{
    (void)argc;
    char *out = NULL;
    const char *args[] = {tutorial_writer(), argv[0], TUTORIAL_MESSAGE, argv[1], NULL};
    int code = shmt_run(args, &out, NULL, 30000);
    free(out);
    return code;
}

TEST(tutorial_writer_read_by_a_raw_open)
{
    const char *name = win_name(), *addr = shmt_fmt("win:%s", name);
    pid_t peer = spawn_peer("tutorial_writer", name, "4000");
    /* Wait for the mapping to appear, then read it while the writer holds it. */
    struct shml_segment_opts o = opts_flags(SHML_RAW | SHML_WAIT);
    o.timeout_ns = 15000000000;
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    char buf[sizeof(TUTORIAL_MESSAGE)] = {0};
    for (int i = 0; i < 500 && buf[0] == '\0'; i++) { /* the writer copies after it maps */
        ASSERT_EQ(shml_segment_read(seg, 0, buf, sizeof(buf) - 1), (ssize_t)sizeof(buf) - 1);
        if (buf[0] == '\0')
            shmt_sleep_ms(10);
    }
    ASSERT_STR_EQ(buf, TUTORIAL_MESSAGE);
    /* 2048 bytes made; a raw open sees what the system says: one page under Wine. */
    ASSERT_TRUE(shml_segment_size(seg) == 2048 || shml_segment_size(seg) == 4096);
    shml_segment *managed;
    ASSERT_ERR(shml_segment_open(addr, NULL, &managed), -SHML_ENOTSHML);
    /* Listed only with SHML_LIST_ALL: a foreign section. */
    struct shml_segment_info *list;
    size_t n, seen_all = 0, seen = 0;
    ASSERT_OK(shml_segment_list(SHML_LIST_ALL, &list, &n));
    for (size_t i = 0; i < n; i++)
        seen_all += strcmp(list[i].address, addr) == 0 && !list[i].managed;
    free(list);
    ASSERT_OK(shml_segment_list(0, &list, &n));
    for (size_t i = 0; i < n; i++)
        seen += strcmp(list[i].address, addr) == 0;
    free(list);
    ASSERT_EQ(seen_all, 1);
    ASSERT_EQ(seen, 0);
    /* Held by the writer and by us: it cannot go. */
    ASSERT_ERR(shml_segment_unlink(addr), -EBUSY);
    shml_segment_close(seg);
    ASSERT_EQ(wait_peer(peer, 30000), 0);
    /* Both let go: the name went with the last handle. */
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT);
}

/* ---- managed segments across processes ---- */

PEER(open_check_reply)
{
    (void)argc;
    shml_segment *seg;
    int r = shml_segment_open(argv[0], NULL, &seg);
    if (r < 0)
        return 10;
    int ok = shml_segment_size(seg) == 10000 && strcmp(shml_segment_data(seg), argv[1]) == 0;
    strcpy((char *)shml_segment_data(seg) + 5000, "reply");
    parent_send("attached");
    parent_expect("done", 20000);
    shml_segment_close(seg);
    return ok ? 0 : 11;
}

TEST(managed_across_processes)
{
    const char *addr = shmt_fmt("win:Local\\%s", win_name());
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 10000, NULL, &seg));
    /* `Local\X` and `X` are one object, with one canonical address. */
    ASSERT_STR_EQ(shml_segment_address(seg), shmt_fmt("win:%s", addr + strlen("win:Local\\")));
    strcpy(shml_segment_data(seg), "across processes");
    pid_t peer = spawn_peer("open_check_reply", shml_segment_address(seg), "across processes");
    ASSERT_OK(peer_expect(peer, "attached", 20000));
    ASSERT_STR_EQ((char *)shml_segment_data(seg) + 5000, "reply");
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(shml_segment_address(seg), &info, NULL, 0, NULL));
    ASSERT_TRUE(info.managed);
    ASSERT_EQ(info.size, 10000);
    ASSERT_EQ(info.attached, 2);
    ASSERT_EQ(info.creator_alive, 1);
    ASSERT_OK(peer_send(peer, "done"));
    ASSERT_EQ(wait_peer(peer, 20000), 0);
    shml_segment *dup;
    ASSERT_ERR(shml_segment_create(addr, 10000, NULL, &dup), -EEXIST);
    shml_segment_close(seg);
}

/* Opens win:PREFIX-I with SHML_WAIT for I = 0..N-1, reporting each. */
PEER(race_opener)
{
    (void)argc;
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        struct shml_segment_opts o = opts_flags(SHML_WAIT);
        o.timeout_ns = 20000000000;
        shml_segment *seg;
        int r = shml_segment_open(shmt_fmt("win:%s-%d", argv[0], i), &o, &seg);
        if (r < 0) {
            parent_send(shmt_fmt("failed %d %s", i, shml_last_error()));
            continue;
        }
        parent_send(shml_segment_size(seg) == 64 ? "ok" : "bad size");
        shml_segment_close(seg);
    }
    return 0;
}

/*
 * A section is visible before its creator wrote anything into it: an opener that catches it
 * blank must wait (the creation marker), not report a foreign object. Measured without the
 * marker: a few opens in 40 fail under Wine.
 */
TEST_TIMEOUT(blank_section_of_a_creator_at_work_is_waited_for, 120)
{
    const char *prefix = win_name();
    const int n = 40;
    pid_t peer = spawn_peer("race_opener", prefix, shmt_fmt("%d", n));
    for (int i = 0; i < n; i++) {
        Sleep((DWORD)(i % 7)); /* land the create at different points of the opener's polls */
        shml_segment *seg;
        ASSERT_OK(shml_segment_create(shmt_fmt("win:%s-%d", prefix, i), 64, NULL, &seg));
        char line[256];
        ASSERT_OK(peer_recv(peer, line, sizeof(line), 30000));
        ASSERT_STR_EQ(line, "ok");
        shml_segment_close(seg);
    }
    ASSERT_EQ(wait_peer(peer, 20000), 0);
}

/* ---- lifetime ---- */

TEST(unlink_says_whether_the_section_is_gone)
{
    const char *addr = shmt_fmt("win:%s", win_name());
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT); /* never was */
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 100, NULL, &seg));
    ASSERT_ERR(shml_segment_unlink(addr), -EBUSY); /* our own handle keeps it */
    shml_segment_close(seg);
    /* The last handle took the name with it: nothing is left to remove. */
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT);
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT);
}

/* What the tool's `__hold ADDR` does (cli_sys_hold): a handle, the event, the wait. */
PEER(holder)
{
    (void)argc;
    HANDLE m = OpenFileMappingA(FILE_MAP_READ, FALSE, shmt_fmt("Local\\%s", argv[0]));
    if (!m)
        return 10;
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, shmt_fmt("Local\\shmlh-%s", argv[0]));
    if (!ev)
        return 11;
    parent_send("holding");
    WaitForSingleObject(ev, 30000);
    CloseHandle(ev);
    CloseHandle(m);
    return 0;
}

TEST(unlink_lets_the_holder_go)
{
    const char *name = win_name(), *addr = shmt_fmt("win:%s", name);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 1000, NULL, &seg));
    strcpy(shml_segment_data(seg), "held");
    pid_t peer = spawn_peer("holder", name);
    ASSERT_OK(peer_expect(peer, "holding", 20000));
    shml_segment_close(seg);
    /* Its creator is gone; the holder keeps it. */
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_STR_EQ(shml_segment_data(seg), "held");
    shml_segment_close(seg);
    ASSERT_OK(shml_segment_unlink(addr));
    ASSERT_EQ(wait_peer(peer, 20000), 0);
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT);

    /* A holder and another handle: the holder goes, the segment stays while the handle does. */
    ASSERT_OK(shml_segment_create(addr, 1000, NULL, &seg));
    peer = spawn_peer("holder", name);
    ASSERT_OK(peer_expect(peer, "holding", 20000));
    ASSERT_ERR(shml_segment_unlink(addr), -EBUSY);
    ASSERT_EQ(wait_peer(peer, 20000), 0);
    shml_segment_close(seg);
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT); /* gone with our handle */
}

/* ---- names and listing ---- */

TEST(a_name_taken_by_another_object_type)
{
    const char *name = win_name();
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, shmt_fmt("Local\\%s", name));
    ASSERT_NOT_NULL(ev);
    shml_segment *seg;
    ASSERT_ERR(shml_segment_create(shmt_fmt("win:%s", name), 100, NULL, &seg), -EEXIST);
    ASSERT_ERR(shml_segment_open(shmt_fmt("win:%s", name), NULL, &seg), -EINVAL);
    CloseHandle(ev);
}

TEST(raw_open_sees_the_section_size)
{
    const char *addr = shmt_fmt("win:%s", win_name());
    struct shml_segment_opts o = opts_flags(SHML_RAW);
    shml_segment *seg, *again;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    ASSERT_EQ(shml_segment_size(seg), 100);
    ASSERT_OK(shml_segment_open(addr, &o, &again));
    /* The size the system gives: whole pages under Wine (NtQuerySection). */
    ASSERT_TRUE(shml_segment_size(again) == 100 || shml_segment_size(again) == 4096);
    shml_segment_close(again);
    shml_segment_close(seg);
}

TEST(list_shows_sections_of_both_namespaces)
{
    const char *local = shmt_fmt("win:%s", win_name());
    const char *global = shmt_fmt("win:Global\\%s", win_name());
    const char *odd = shmt_fmt("%s/odd", win_name());
    shml_segment *a, *b = NULL;
    ASSERT_OK(shml_segment_create(local, 100, NULL, &a));
    int rg = shml_segment_create(global, 100, NULL, &b);
    if (rg == -EPERM)
        shmt_log("no Global section (%s): listed from Local only", shml_last_error());
    else
        ASSERT_OK(rg);
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 100,
                                  shmt_fmt("Local\\%s", odd));
    ASSERT_NOT_NULL(h);
    struct shml_segment_info *list;
    size_t n;
    int seen_local = 0, seen_global = 0, seen_odd = 0;
    ASSERT_OK(shml_segment_list(SHML_LIST_ALL, &list, &n));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].address, local) == 0)
            seen_local += list[i].managed && list[i].size == 100;
        if (strcmp(list[i].address, global) == 0)
            seen_global += list[i].managed;
        /* A name shmlink would refuse ('/' in it) is shown, not opened. */
        if (strcmp(list[i].address, shmt_fmt("win:%s", odd)) == 0)
            seen_odd += list[i].status == -EINVAL;
    }
    free(list);
    ASSERT_EQ(seen_local, 1);
    ASSERT_EQ(seen_global, rg == 0 ? 1 : 0);
    ASSERT_EQ(seen_odd, 1);
    /* gc never removes a section: one that exists is held by somebody. */
    struct shml_segment_info *gone;
    size_t n_gone;
    ASSERT_OK(shml_gc(true, &gone, &n_gone));
    for (size_t i = 0; i < n_gone; i++)
        ASSERT_TRUE(strncmp(gone[i].address, "win:", 4) != 0);
    free(gone);
    CloseHandle(h);
    shml_segment_close(a);
    if (b)
        shml_segment_close(b);
}

TEST(other_platforms_backends_are_not_here)
{
    shml_segment *seg;
    ASSERT_ERR(shml_segment_open("posix:/x", NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_create("sysv:0x1234", 100, NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_create("memfd:x", 100, NULL, &seg), -ENOTSUP);
}

/* ---- file: ---- */

TEST(file_relative_path_becomes_absolute)
{
    char cwd[MAX_PATH];
    ASSERT_GT(GetCurrentDirectoryA(sizeof(cwd), cwd), 0);
    const char *rel = shmt_fmt("%s.seg", win_name());
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(shmt_fmt("file:%s", rel), 5000, NULL, &seg));
    size_t clen = strlen(cwd);
    const char *want = cwd[clen - 1] == '\\' ? shmt_fmt("file:%s%s", cwd, rel)
                                             : shmt_fmt("file:%s\\%s", cwd, rel);
    ASSERT_STR_EQ(shml_segment_address(seg), want);
    shml_segment_close(seg);
    ASSERT_OK(shml_segment_unlink(want));
}

TEST(file_paths_are_utf8)
{
    /* A working directory outside the ANSI code page: the canonical address is UTF-8. */
    wchar_t dir[MAX_PATH], old[MAX_PATH];
    ASSERT_GT(GetTempPathW(MAX_PATH, dir), 0);
    ASSERT_GT(GetCurrentDirectoryW(MAX_PATH, old), 0);
    wcscat(dir, L"shmtw-\u65e5\u00e9");
    ASSERT_TRUE(CreateDirectoryW(dir, NULL) || GetLastError() == ERROR_ALREADY_EXISTS);
    ASSERT_TRUE(SetCurrentDirectoryW(dir));
    shml_segment *seg;
    ASSERT_OK(shml_segment_create("file:x.seg", 100, NULL, &seg));
    const char *canon = shml_segment_address(seg);
    ASSERT_NOT_NULL(strstr(canon, "\\shmtw-\xe6\x97\xa5\xc3\xa9\\x.seg"));
    ASSERT_TRUE(GetFileAttributesW(L"x.seg") != INVALID_FILE_ATTRIBUTES);
    shml_segment_close(seg);
    ASSERT_OK(shml_segment_unlink(canon));
    ASSERT_TRUE(SetCurrentDirectoryW(old));
    ASSERT_TRUE(RemoveDirectoryW(dir));
}

TEST(file_managed_round_trip)
{
    char dir[MAX_PATH];
    ASSERT_GT(GetTempPathA(sizeof(dir), dir), 0);
    const char *addr = shmt_fmt("file:%s%s.seg", dir, win_name());
    shml_segment *seg, *again;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &seg));
    ASSERT_ERR(shml_segment_create(addr, 5000, NULL, &again), -EEXIST);
    strcpy(shml_segment_data(seg), "in a file");
    ASSERT_OK(shml_segment_sync(seg));
    ASSERT_OK(shml_segment_open(addr, NULL, &again));
    ASSERT_STR_EQ(shml_segment_data(again), "in a file");
    ASSERT_EQ(shml_segment_write(again, 0, "IN", 2), 2);
    shml_segment_close(again);
    char buf[10] = {0};
    ASSERT_EQ(shml_segment_read(seg, 0, buf, 9), 9);
    ASSERT_STR_EQ(buf, "IN a file");
    struct shml_segment_info info;
    ASSERT_OK(shml_segment_stat(addr, &info, NULL, 0, NULL));
    ASSERT_TRUE(info.managed);
    ASSERT_EQ(info.size, 5000);
    ASSERT_EQ(info.mode, 0600u);
    /* Every handle shares delete: unlink works while it is open. */
    ASSERT_OK(shml_segment_unlink(addr));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_EQ(GetFileAttributesA(addr + 5), INVALID_FILE_ATTRIBUTES);
}

TEST(file_raw_of_a_drive_path)
{
    char dir[MAX_PATH];
    ASSERT_GT(GetTempPathA(sizeof(dir), dir), 0);
    ASSERT_EQ(dir[1], ':');
    const char *addr = shmt_fmt("file:%s%s.raw", dir, win_name());
    struct shml_segment_opts o = opts_flags(SHML_RAW);
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 3000, &o, &seg));
    ASSERT_STR_EQ(shml_segment_address(seg), addr);
    shml_segment_close(seg);
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    ASSERT_EQ(shml_segment_size(seg), 3000);
    shml_segment_close(seg);
    ASSERT_OK(shml_segment_unlink(addr));
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT);
}
