/*
 * Error texts and the small common API: shml_strerror() describes every shmlink code in
 * shmlink's terms, accepts either sign, never returns NULL.
 */
#include "harness.h"

static const struct {
    int code;
    const char *name;
} shml_codes[] = {
    {SHML_ENOTSHML, "SHML_ENOTSHML"}, {SHML_EVERSION, "SHML_EVERSION"},
    {SHML_ECORRUPT, "SHML_ECORRUPT"}, {SHML_EWRONGKIND, "SHML_EWRONGKIND"},
    {SHML_ETRUNCATED, "SHML_ETRUNCATED"},
};
#define N_CODES (sizeof shml_codes / sizeof shml_codes[0])

TEST(strerror_shmlink_codes)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *neg = shml_strerror(-shml_codes[i].code);
        const char *pos = shml_strerror(shml_codes[i].code);
        ASSERT_NOT_NULL(neg);
        ASSERT_NOT_NULL(pos);
        ASSERT_TRUE(neg[0] != '\0');
        /* Either sign, the same text. */
        ASSERT_STR_EQ(neg, pos);
        /* In shmlink's terms, not the C library's ("Wrong medium type" means nothing here). */
        char libc[256];
        snprintf(libc, sizeof libc, "%s", strerror(shml_codes[i].code));
        if (strcmp(neg, libc) == 0)
            shmt_fail(__FILE__, __LINE__, "shml_strerror(-%s) is the C library's text \"%s\"",
                      shml_codes[i].name, neg);
    }
}

TEST(strerror_codes_distinct)
{
    for (size_t i = 0; i < N_CODES; i++)
        for (size_t j = i + 1; j < N_CODES; j++)
            if (strcmp(shml_strerror(-shml_codes[i].code), shml_strerror(-shml_codes[j].code)) == 0)
                shmt_fail(__FILE__, __LINE__, "%s and %s have the same text \"%s\"",
                          shml_codes[i].name, shml_codes[j].name,
                          shml_strerror(-shml_codes[i].code));
}

TEST(strerror_system_codes)
{
    static const int codes[] = {ENOENT, EINVAL, EEXIST, ENOSPC, EACCES, ETIMEDOUT, ENOMEM,
                                EFBIG, EOVERFLOW, ERANGE, EBADF, ENOTSUP, EAGAIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *neg = shml_strerror(-codes[i]);
        ASSERT_NOT_NULL(neg);
        ASSERT_TRUE(neg[0] != '\0');
        ASSERT_STR_EQ(neg, shml_strerror(codes[i]));
    }
    /* Distinct codes, distinct texts. */
    ASSERT_TRUE(strcmp(shml_strerror(-ENOENT), shml_strerror(-EINVAL)) != 0);
}

TEST(strerror_odd_values)
{
    static const int odd[] = {0, 4095, -4095, 99999, -99999, INT32_MAX, INT32_MIN, INT32_MIN + 1};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = shml_strerror(odd[i]);
        ASSERT_NOT_NULL(s);
        ASSERT_TRUE(s[0] != '\0');
    }
}

TEST(strerror_thread_local_not_needed)
{
    /* A static string: two calls with different codes keep both texts valid. */
    const char *a = shml_strerror(-SHML_ECORRUPT);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", a);
    const char *b = shml_strerror(-ENOENT);
    ASSERT_STR_EQ(a, copy);
    ASSERT_TRUE(strcmp(a, b) != 0);
}

TEST(version_string)
{
    ASSERT_STR_EQ(shml_version(), SHML_VERSION_STRING);
    ASSERT_STR_EQ(SHML_VERSION_STRING, "0.1.0");
}

TEST(last_error_and_free)
{
    const char *e = shml_last_error();
    ASSERT_NOT_NULL(e);
    shml_free(NULL);
}
