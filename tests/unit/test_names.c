/*
 * The name table (shmlink/names.h): the words every face prints, and NULL for a value it does
 * not know. The words are a contract (`shmlink info --json`, the Python module): a change here
 * is a change of output.
 */
#include "harness.h"

TEST(names_kinds_policies_backends)
{
    ASSERT_STR_EQ(shml_kind_name(SHML_KIND_PLAIN), "plain");
    ASSERT_STR_EQ(shml_kind_name(SHML_QUEUE), "queue");
    ASSERT_STR_EQ(shml_kind_name(SHML_BUS), "bus");
    ASSERT_STR_EQ(shml_kind_name(SHML_LATEST), "latest");
    ASSERT_STR_EQ(shml_kind_name(SHML_RPC), "rpc");
    ASSERT_NULL(shml_kind_name(SHML_KIND_ANY));
    ASSERT_NULL(shml_kind_name(77));
    ASSERT_STR_EQ(shml_policy_name(SHML_BLOCK), "block");
    ASSERT_STR_EQ(shml_policy_name(SHML_OVERWRITE), "overwrite");
    ASSERT_NULL(shml_policy_name(2));
    ASSERT_STR_EQ(shml_wait_name(SHML_WAIT_ADAPTIVE), "adaptive");
    ASSERT_STR_EQ(shml_wait_name(SHML_WAIT_SPIN), "spin");
    ASSERT_STR_EQ(shml_wait_name(SHML_WAIT_BLOCK), "block");
    ASSERT_NULL(shml_wait_name(3));
    ASSERT_STR_EQ(shml_backend_name(SHML_BACKEND_POSIX), "posix");
    ASSERT_STR_EQ(shml_backend_name(SHML_BACKEND_SYSV), "sysv");
    ASSERT_STR_EQ(shml_backend_name(SHML_BACKEND_FILE), "file");
    ASSERT_STR_EQ(shml_backend_name(SHML_BACKEND_MEMFD), "memfd");
    ASSERT_STR_EQ(shml_backend_name(SHML_BACKEND_WINDOWS), "win");
    ASSERT_NULL(shml_backend_name(0));
}

TEST(names_roles_in_words_of_the_kind)
{
    ASSERT_STR_EQ(shml_role_name(SHML_QUEUE, SHML_PRODUCER), "producer");
    ASSERT_STR_EQ(shml_role_name(SHML_QUEUE, SHML_CONSUMER), "consumer");
    ASSERT_STR_EQ(shml_role_name(SHML_QUEUE, SHML_PRODUCER | SHML_CONSUMER),
                  "producer+consumer");
    ASSERT_STR_EQ(shml_role_name(SHML_BUS, SHML_PRODUCER), "publisher");
    ASSERT_STR_EQ(shml_role_name(SHML_BUS, SHML_CONSUMER), "subscriber");
    ASSERT_STR_EQ(shml_role_name(SHML_LATEST, SHML_PRODUCER | SHML_CONSUMER), "writer+reader");
    ASSERT_STR_EQ(shml_role_name(SHML_RPC, SHML_CLIENT), "client");
    ASSERT_STR_EQ(shml_role_name(SHML_RPC, SHML_SERVER), "server");
    ASSERT_STR_EQ(shml_role_name(SHML_KIND_PLAIN, SHML_CONSUMER), "consumer");
    ASSERT_NULL(shml_role_name(SHML_BUS, 0));
    ASSERT_NULL(shml_role_name(SHML_BUS, 4));
    /* The attach table: a bus subscriber is a subscriber there too. */
    ASSERT_STR_EQ(shml_attach_role_name(SHML_BUS, SHML_ROLE_CONSUMER), "subscriber");
    ASSERT_STR_EQ(shml_attach_role_name(SHML_BUS, SHML_ROLE_PRODUCER), "publisher");
    ASSERT_STR_EQ(shml_attach_role_name(SHML_QUEUE, SHML_ROLE_ENDPOINT), "producer+consumer");
    ASSERT_STR_EQ(shml_attach_role_name(SHML_KIND_PLAIN, SHML_ROLE_USER), "user");
    ASSERT_STR_EQ(shml_attach_role_name(SHML_BUS, SHML_ROLE_CREATOR), "creator");
    ASSERT_NULL(shml_attach_role_name(SHML_KIND_PLAIN, 0x100));
}

TEST(names_states)
{
    ASSERT_STR_EQ(shml_decl_type_name(SHML_DECL_MUTEX), "mutex");
    ASSERT_STR_EQ(shml_decl_type_name(SHML_DECL_EVENT), "event");
    ASSERT_STR_EQ(shml_decl_type_name(SHML_DECL_SEM), "sem");
    ASSERT_NULL(shml_decl_type_name(0));
    ASSERT_STR_EQ(shml_mutex_state_name(SHML_MUTEX_FREE), "free");
    ASSERT_STR_EQ(shml_mutex_state_name(SHML_MUTEX_HELD), "held");
    ASSERT_STR_EQ(shml_mutex_state_name(SHML_MUTEX_OWNER_DEAD), "owner_dead");
    ASSERT_STR_EQ(shml_mutex_state_name(SHML_MUTEX_NOT_RECOVERABLE), "not_recoverable");
    ASSERT_STR_EQ(shml_mutex_state_name(SHML_MUTEX_REPAIRING), "repairing");
    ASSERT_NULL(shml_mutex_state_name(-1));
    ASSERT_STR_EQ(shml_alive_name(1), "alive");
    ASSERT_STR_EQ(shml_alive_name(0), "dead");
    ASSERT_NULL(shml_alive_name(-1));
    ASSERT_STR_EQ(shml_gc_verdict_name(SHML_GC_KEEP_PERSISTENT), "persistent");
    ASSERT_STR_EQ(shml_gc_verdict_name(SHML_GC_KEEP_IN_USE), "in_use");
    ASSERT_STR_EQ(shml_gc_verdict_name(SHML_GC_REMOVE_ORPHANED), "orphaned");
    ASSERT_STR_EQ(shml_gc_verdict_name(SHML_GC_REMOVE_UNFINISHED), "unfinished");
    ASSERT_NULL(shml_gc_verdict_name(-1));
}
