/*
 * Address parsing: every form of the address table in shmlink/segment.h, the canonical form
 * each one gets, and every way an address can be bad (each a clear -EINVAL with a reason).
 */
#include "harness.h"

#include "segment/backend.h"

#include <stdlib.h>

static struct shml__addr addr; /* large (PATH_MAX + SHML_ADDR_MAX): keep it off the stack */

/* Parse `s`, which must be good. */
#define PARSE_OK(s)                                                                             \
    do {                                                                                       \
        memset(&addr, 0x5a, sizeof addr);                                                      \
        ASSERT_OK(shml__addr_parse((s), &addr));                                               \
    } while (0)

/* Parse `s`, which must fail with -EINVAL and say why in shml_last_error(). */
static void parse_bad_at(const char *file, int line, const char *s)
{
    struct shml__addr a;
    int r = shml__addr_parse(s, &a);
    if (r != -EINVAL) {
        shmt_fail(file, line, "shml__addr_parse(\"%s\") = %d (%s), want -EINVAL (%s)", s, r,
                  r < 0 ? shmt_errname(r) : "success", r == 0 ? a.canon : shml_last_error());
    }
    const char *why = shml_last_error();
    if (why == NULL || why[0] == '\0')
        shmt_fail(file, line, "shml__addr_parse(\"%s\") gave -EINVAL without a reason", s);
}
#define PARSE_BAD(s) parse_bad_at(__FILE__, __LINE__, (s))

static char *repeat(char c, size_t n)
{
    static char buf[8192];
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

TEST(addr_posix_bare)
{
    PARSE_OK("cam0");
    ASSERT_EQ(addr.backend, SHML_BACKEND_POSIX);
    ASSERT_STR_EQ(addr.name, "/cam0");
    ASSERT_STR_EQ(addr.canon, "posix:/cam0");
}

TEST(addr_posix_prefixed)
{
    PARSE_OK("posix:cam0");
    ASSERT_EQ(addr.backend, SHML_BACKEND_POSIX);
    ASSERT_STR_EQ(addr.name, "/cam0");
    ASSERT_STR_EQ(addr.canon, "posix:/cam0");

    PARSE_OK("posix:/cam0");
    ASSERT_EQ(addr.backend, SHML_BACKEND_POSIX);
    ASSERT_STR_EQ(addr.name, "/cam0");
    ASSERT_STR_EQ(addr.canon, "posix:/cam0");
}

TEST(addr_posix_charset)
{
    /* Every character the header allows: [A-Za-z0-9._-+@=,~]. */
    const char *all = "ABCXYZabcxyz0189._-+@=,~";
    PARSE_OK(all);
    ASSERT_STR_EQ(addr.name, shmt_fmt("/%s", all));
    ASSERT_STR_EQ(addr.canon, shmt_fmt("posix:/%s", all));
    /* A single dot is not allowed, but a name may start with one. */
    PARSE_OK(".hidden");
    ASSERT_STR_EQ(addr.name, "/.hidden");
    PARSE_OK("a.b.c");
    ASSERT_STR_EQ(addr.name, "/a.b.c");
}

TEST(addr_posix_length)
{
    char *name = strdup(repeat('n', SHML_NAME_MAX));
    ASSERT_NOT_NULL(name);
    PARSE_OK(name);
    ASSERT_EQ(strlen(addr.name), (size_t)SHML_NAME_MAX + 1);
    ASSERT_STR_EQ(addr.canon, shmt_fmt("posix:/%s", name));
    PARSE_OK(shmt_fmt("posix:/%s", name));
    ASSERT_STR_EQ(addr.canon, shmt_fmt("posix:/%s", name));
    PARSE_OK(shmt_fmt("posix:%s", name));
    ASSERT_STR_EQ(addr.canon, shmt_fmt("posix:/%s", name));
    free(name);

    /* One more is too long, in every spelling. */
    PARSE_BAD(repeat('n', SHML_NAME_MAX + 1));
    PARSE_BAD(shmt_fmt("posix:%s", repeat('n', SHML_NAME_MAX + 1)));
    PARSE_BAD(shmt_fmt("posix:/%s", repeat('n', SHML_NAME_MAX + 1)));
    PARSE_BAD(repeat('n', 5000));
}

TEST(addr_bad_empty)
{
    PARSE_BAD("");
    PARSE_BAD("posix:");
    PARSE_BAD("posix:/");
    PARSE_BAD("sysv:");
    PARSE_BAD("file:");
    PARSE_BAD("memfd:");
}

TEST(addr_bad_null)
{
    struct shml__addr a;
    ASSERT_ERR(shml__addr_parse(NULL, &a), -EINVAL);
}

TEST(addr_bad_slash)
{
    PARSE_BAD("a/b");
    PARSE_BAD("a/");
    PARSE_BAD("posix:a/b");
    PARSE_BAD("posix:/a/b");
    PARSE_BAD("posix://a");
    PARSE_BAD("posix:/../etc/passwd");
    PARSE_BAD("memfd:a/b");
}

TEST(addr_bad_dots)
{
    PARSE_BAD(".");
    PARSE_BAD("..");
    PARSE_BAD("a..b");
    PARSE_BAD("..a");
    PARSE_BAD("a..");
    PARSE_BAD("posix:.");
    PARSE_BAD("posix:/.");
    PARSE_BAD("posix:..");
    PARSE_BAD("posix:/..");
    PARSE_BAD("memfd:.");
    PARSE_BAD("memfd:..");
}

TEST(addr_bad_characters)
{
    /* Control characters, anywhere, in any backend's name. */
    PARSE_BAD("a\tb");
    PARSE_BAD("a\nb");
    PARSE_BAD("a\rb");
    PARSE_BAD("a\x01");
    PARSE_BAD("\x1b[31m");
    PARSE_BAD("a\x7f");
    PARSE_BAD("posix:a\nb");
    PARSE_BAD("posix:/a\x01");
    PARSE_BAD("memfd:a\nb");
    PARSE_BAD("memfd:\x7f");
}

TEST(addr_printable_and_utf8_names)
{
    /* segment.h: printable ASCII other than '/', or UTF-8 (what /dev/shm can hold). */
    PARSE_OK("a b");
    ASSERT_EQ(addr.backend, SHML_BACKEND_POSIX);
    ASSERT_STR_EQ(addr.name, "/a b");
    ASSERT_STR_EQ(addr.canon, "posix:/a b");
    PARSE_OK("posix:/a*b?\"c'");
    ASSERT_STR_EQ(addr.name, "/a*b?\"c'");
    PARSE_OK("caf\xc3\xa9");
    ASSERT_STR_EQ(addr.name, "/caf\xc3\xa9");
    PARSE_OK("memfd:\xe6\x97\xa5\xe6\x9c\xac");
    ASSERT_STR_EQ(addr.name, "\xe6\x97\xa5\xe6\x9c\xac");
}

TEST(addr_name_invalid_utf8)
{
    /* segment.h allows "printable ASCII ... or UTF-8": bytes that are not UTF-8 are not. */
    PARSE_BAD("a\xff");
    PARSE_BAD("caf\xc3");         /* truncated sequence */
    PARSE_BAD("\xc3\x28");         /* bad continuation byte */
    PARSE_BAD("memfd:\xfe\xfe");
}

TEST(addr_unknown_prefix)
{
    PARSE_BAD("foo:bar");
    PARSE_BAD("shm:x");
    PARSE_BAD(":x");
    PARSE_BAD("posixx:/a");
}

TEST(addr_win_not_here)
{
    /* Parsing accepts every backend's syntax on every platform (the fuzzer relies on it)... */
    struct shml__addr a;
    ASSERT_OK(shml__addr_parse("win:name", &a));
    ASSERT_EQ(a.backend, SHML_BACKEND_WINDOWS);
    ASSERT_OK(shml__addr_parse("win:Local\\name", &a));
    ASSERT_STR_EQ(a.canon, "win:name");
    /* ...and a call that would use a backend this build lacks says so. */
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open("win:name", NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_create("win:Local\\name", 4096, NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_unlink("win:name"), -ENOTSUP);
}

TEST(addr_win_namespaces)
{
    /* No namespace is the session's (Local): one object, one canonical address. */
    PARSE_OK("win:cam");
    ASSERT_EQ(addr.backend, SHML_BACKEND_WINDOWS);
    ASSERT_STR_EQ(addr.name, "Local\\cam");
    ASSERT_STR_EQ(addr.canon, "win:cam");
    PARSE_OK("win:Local\\cam");
    ASSERT_STR_EQ(addr.name, "Local\\cam");
    ASSERT_STR_EQ(addr.canon, "win:cam");
    PARSE_OK("win:Global\\cam");
    ASSERT_STR_EQ(addr.name, "Global\\cam");
    ASSERT_STR_EQ(addr.canon, "win:Global\\cam");
    /* The canonical forms read back as themselves. */
    PARSE_OK("win:Global\\cam");
    ASSERT_STR_EQ(addr.canon, "win:Global\\cam");
    /* The longest name fits with either namespace. */
    char longest[SHML_NAME_MAX + 16];
    memset(longest, 'n', sizeof(longest));
    memcpy(longest, "win:Global\\", 11);
    longest[11 + SHML_NAME_MAX] = '\0';
    PARSE_OK(longest);
    ASSERT_EQ(strlen(addr.name), strlen("Global\\") + SHML_NAME_MAX);
    longest[11 + SHML_NAME_MAX] = 'n';
    longest[11 + SHML_NAME_MAX + 1] = '\0';
    PARSE_BAD(longest);
    /* One namespace, then a flat name: no nesting, no other namespaces, no empty name. */
    PARSE_BAD("win:Local\\Global\\cam");
    PARSE_BAD("win:Session\\1\\cam");
    PARSE_BAD("win:Local\\");
    PARSE_BAD("win:Global\\");
    PARSE_BAD("win:a/b");
}

TEST(addr_sysv_key)
{
    PARSE_OK("sysv:1234");
    ASSERT_EQ(addr.backend, SHML_BACKEND_SYSV);
    ASSERT_TRUE(addr.has_key);
    ASSERT_FALSE(addr.has_id);
    ASSERT_EQ(addr.key, 1234);
    char canon_dec[SHML_ADDR_MAX];
    snprintf(canon_dec, sizeof canon_dec, "%s", addr.canon);
    ASSERT_EQ(strncmp(canon_dec, "sysv:", 5), 0);

    PARSE_OK("sysv:0x4d2");
    ASSERT_EQ(addr.backend, SHML_BACKEND_SYSV);
    ASSERT_TRUE(addr.has_key);
    ASSERT_FALSE(addr.has_id);
    ASSERT_EQ(addr.key, 1234);
    /* One key, one canonical address, however it was spelt. */
    ASSERT_STR_EQ(addr.canon, canon_dec);

    /* The canonical form reads back as itself. */
    PARSE_OK(canon_dec);
    ASSERT_EQ(addr.key, 1234);
    ASSERT_STR_EQ(addr.canon, canon_dec);

    PARSE_OK("sysv:2147483647");
    ASSERT_EQ(addr.key, INT32_MAX);
    PARSE_OK("sysv:0x7fffffff");
    ASSERT_EQ(addr.key, INT32_MAX);
    PARSE_OK("sysv:1");
    ASSERT_EQ(addr.key, 1);
}

TEST(addr_sysv_key_bad)
{
    PARSE_BAD("sysv:0");   /* IPC_PRIVATE is not a name */
    PARSE_BAD("sysv:0x0");
    PARSE_BAD("sysv:-5");
    PARSE_BAD("sysv:-0x10");
    PARSE_BAD("sysv:12abc");
    PARSE_BAD("sysv:0x");
    PARSE_BAD("sysv:0xg1");
    PARSE_BAD("sysv: 12");
    PARSE_BAD("sysv:12 ");
    PARSE_BAD("sysv:99999999999");
    PARSE_BAD("sysv:0x1ffffffff");
    PARSE_BAD("sysv:184467440737095516160");
    PARSE_BAD("sysv:abc");
}

TEST(addr_sysv_ftok)
{
    PARSE_OK("sysv:/path/to/file#102");
    ASSERT_EQ(addr.backend, SHML_BACKEND_SYSV);
    ASSERT_TRUE(addr.has_key);
    ASSERT_FALSE(addr.has_id);
    ASSERT_STR_EQ(addr.path, "/path/to/file");
    ASSERT_EQ(addr.proj, 102);
    ASSERT_STR_EQ(addr.canon, "sysv:/path/to/file#102");

    PARSE_OK("sysv:/p#1");
    ASSERT_EQ(addr.proj, 1);
    ASSERT_STR_EQ(addr.path, "/p");
    PARSE_OK("sysv:/p#255");
    ASSERT_EQ(addr.proj, 255);
    ASSERT_STR_EQ(addr.canon, "sysv:/p#255");

    /* As ftok(): any int, of which only the low 8 bits count (a tutorial's 0x6666 is 0x66). */
    PARSE_OK("sysv:/p#0x6666");
    ASSERT_EQ(addr.proj, 0x66);
    ASSERT_STR_EQ(addr.canon, "sysv:/p#102");
    PARSE_OK("sysv:/p#257");
    ASSERT_EQ(addr.proj, 1);
    PARSE_OK("sysv:/p#2147483647");
    ASSERT_EQ(addr.proj, 255);
}

TEST(addr_sysv_ftok_bad)
{
    PARSE_BAD("sysv:/p#0");
    PARSE_BAD("sysv:/p#256"); /* low 8 bits 0: unspecified for ftok(), maybe IPC_PRIVATE */
    PARSE_BAD("sysv:/p#0x100");
    PARSE_BAD("sysv:/p#2147483648");
    PARSE_BAD("sysv:/p#-1");
    PARSE_BAD("sysv:/p#");
    PARSE_BAD("sysv:/p#abc");
    PARSE_BAD("sysv:/p#1x");
    PARSE_BAD("sysv:/p#99999999999");
    PARSE_BAD("sysv:#5");
    PARSE_BAD(shmt_fmt("sysv:/%s#5", repeat('p', 5000)));
}

TEST(addr_sysv_id)
{
    PARSE_OK("sysv:id=32769");
    ASSERT_EQ(addr.backend, SHML_BACKEND_SYSV);
    ASSERT_TRUE(addr.has_id);
    ASSERT_FALSE(addr.has_key);
    ASSERT_EQ(addr.shmid, 32769);
    ASSERT_STR_EQ(addr.canon, "sysv:id=32769");

    /* Id 0 is a real id (the first segment of a fresh system often has it). */
    PARSE_OK("sysv:id=0");
    ASSERT_TRUE(addr.has_id);
    ASSERT_EQ(addr.shmid, 0);
    ASSERT_STR_EQ(addr.canon, "sysv:id=0");

    PARSE_OK("sysv:id=2147483647");
    ASSERT_EQ(addr.shmid, INT32_MAX);
}

TEST(addr_sysv_id_bad)
{
    PARSE_BAD("sysv:id=");
    PARSE_BAD("sysv:id=abc");
    PARSE_BAD("sysv:id=-1");
    PARSE_BAD("sysv:id=12x");
    PARSE_BAD("sysv:id= 12");
    PARSE_BAD("sysv:id=2147483648");
    PARSE_BAD("sysv:id=99999999999");
    PARSE_BAD("sysv:id=184467440737095516160");
}

TEST(addr_file)
{
    PARSE_OK("file:/p");
    ASSERT_EQ(addr.backend, SHML_BACKEND_FILE);
    ASSERT_STR_EQ(addr.path, "/p");
    ASSERT_STR_EQ(addr.canon, "file:/p");

    PARSE_OK("file:/tmp/dir/seg.bin");
    ASSERT_STR_EQ(addr.path, "/tmp/dir/seg.bin");
    ASSERT_STR_EQ(addr.canon, "file:/tmp/dir/seg.bin");
}

TEST(addr_file_bad)
{
    PARSE_BAD("file:");
    PARSE_BAD(shmt_fmt("file:/%s", repeat('f', 5000)));
    PARSE_BAD("file:/tmp/a\nb");
}

TEST(addr_memfd)
{
    PARSE_OK("memfd:n");
    ASSERT_EQ(addr.backend, SHML_BACKEND_MEMFD);
    ASSERT_STR_EQ(addr.name, "n");
    ASSERT_STR_EQ(addr.canon, "memfd:n");

    char *name = strdup(repeat('m', SHML_NAME_MAX));
    ASSERT_NOT_NULL(name);
    PARSE_OK(shmt_fmt("memfd:%s", name));
    ASSERT_STR_EQ(addr.name, name);
    free(name);
    PARSE_BAD(shmt_fmt("memfd:%s", repeat('m', SHML_NAME_MAX + 1)));
}

TEST(addr_canonical_is_fixed_point)
{
    static const char *const good[] = {
        "cam0", "posix:cam0", "posix:/cam0", "sysv:1234", "sysv:0x4d2", "sysv:/tmp/f#7",
        "sysv:id=5", "file:/tmp/x", "memfd:buf", "a_b-c.d+e@f=g,h~i",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        PARSE_OK(good[i]);
        char canon[SHML_ADDR_MAX];
        snprintf(canon, sizeof canon, "%s", addr.canon);
        int backend = addr.backend;
        PARSE_OK(canon);
        ASSERT_STR_EQ(addr.canon, canon);
        ASSERT_EQ(addr.backend, backend);
    }
}
