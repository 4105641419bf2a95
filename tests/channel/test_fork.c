/*
 * Handles across fork(): a child inherits the parent's channel handles, but their endpoint
 * entry, claims and peeks are the parent's. Every call on one in the child is -ECHILD, and
 * the child's close (or its normal exit) leaves the parent's endpoint as it was; a channel
 * the child opens itself works.
 */
#include "chan_util.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run fn(ch) in a forked child; returns its exit status (0: every check held). */
static int in_child(int (*fn)(shml_channel *ch, const char *addr), shml_channel *ch,
                    const char *addr)
{
    pid_t c = fork();
    if (c == 0)
        _exit(fn(ch, addr));
    int status = 0;
    ASSERT_EQ(waitpid(c, &status, 0), c);
    ASSERT_TRUE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The child tries every call on the inherited handle, closes it, then opens its own. */
static int child_uses_inherited(shml_channel *ch, const char *addr)
{
    char buf[64];
    const void *p;
    size_t len;
    void *w;
    if (shml_send(ch, "child", 5, 0) != -ECHILD || shml_recv(ch, buf, sizeof buf, 0) != -ECHILD)
        return 1;
    if (shml_claim(ch, 5, &w, 0) != -ECHILD || shml_peek(ch, &p, &len, 0) != -ECHILD)
        return 2;
    if (shml_commit(ch, 5) != -ECHILD)
        return 3; /* the parent's open claim: never published by the child */
    if (shml_channel_close(ch) != 0)
        return 4;
    shml_channel *own = NULL;
    if (shml_channel_open(addr, SHML_PRODUCER, NULL, &own) != 0)
        return 5;
    if (shml_send(own, "own", 3, 0) != 3)
        return 6;
    shml_channel_close(own);
    return 0; /* a normal exit */
}

TEST(fork_child_cannot_use_or_free_the_parents_endpoint)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 4096, 64, 0);
    ASSERT_EQ(shml_send(ch, "before", 6, 0), 6);
    void *w;
    ASSERT_OK(shml_claim(ch, 5, &w, 0)); /* a claim open across the fork */
    memcpy(w, "claim", 5);
    ASSERT_EQ(in_child(child_uses_inherited, ch, addr), 0);

    /* The parent's endpoint is intact: its claim commits, its counters go on. */
    ASSERT_OK(shml_commit(ch, 5));
    char buf[64];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 6);
    ASSERT_MEM_EQ(buf, "before", 6);
    /* Queue order is claim order: the parent's claim came before the child's message. */
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 5);
    ASSERT_MEM_EQ(buf, "claim", 5);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 3);
    ASSERT_MEM_EQ(buf, "own", 3);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.attached, 1u); /* only the parent: the child's own endpoint left with it */
    ASSERT_OK(shml_channel_close(ch));
}
