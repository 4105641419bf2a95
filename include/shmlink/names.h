/*
 * shmlink/names.h - the words every face of shmlink prints for its codes.
 *
 * Kinds, roles, policies, wait modes, backends, declared object types, mutex states and
 * liveness each have one table here (an X-macro, as libuv's UV_ERRNO_MAP), and the functions
 * below read them. The `shmlink` tool prints these words (`info`, `info --json`, `ls`, `top`)
 * and the Python module is to print the same ones, so a word means one thing everywhere.
 *
 * Every function returns a static string, or NULL for a value the table does not hold (a
 * caller shows such a value by its number, as the tool's `kind#7`). Thread-safe; no call
 * reads shared memory.
 */
#ifndef SHMLINK_NAMES_H
#define SHMLINK_NAMES_H

#include "shmlink/common.h"
#include "shmlink/segment.h"
#include "shmlink/sync.h"
#include "shmlink/channel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(value, name). Segment kinds (SHML_KIND_PLAIN, and the channel kinds of channel.h). */
#define SHML_KIND_MAP(XX)                                                                          \
    XX(SHML_KIND_PLAIN, "plain")                                                                   \
    XX(SHML_QUEUE, "queue")                                                                        \
    XX(SHML_BUS, "bus")                                                                            \
    XX(SHML_LATEST, "latest")                                                                      \
    XX(SHML_RPC, "rpc")

/*
 * XX(kind, sender, receiver): an endpoint's role in the words of its channel kind. The sender
 * side is SHML_PRODUCER (rpc: SHML_CLIENT), the receiver side SHML_CONSUMER (rpc: SHML_SERVER).
 * Segments of other kinds use the queue's words.
 */
#define SHML_ROLE_WORDS_MAP(XX)                                                                    \
    XX(SHML_QUEUE, "producer", "consumer")                                                         \
    XX(SHML_BUS, "publisher", "subscriber")                                                        \
    XX(SHML_LATEST, "writer", "reader")                                                            \
    XX(SHML_RPC, "client", "server")

/* XX(value, name). Attach-table roles other than a channel endpoint's (SHML_ROLE_*). */
#define SHML_ATTACH_ROLE_MAP(XX)                                                                   \
    XX(SHML_ROLE_USER, "user")                                                                     \
    XX(SHML_ROLE_CREATOR, "creator")

/* XX(value, name). Channel policies (SHML_BLOCK, SHML_OVERWRITE). */
#define SHML_POLICY_MAP(XX)                                                                        \
    XX(SHML_BLOCK, "block")                                                                        \
    XX(SHML_OVERWRITE, "overwrite")

/* XX(value, name). How an endpoint waits (SHML_WAIT_ADAPTIVE, _SPIN, _BLOCK). */
#define SHML_WAIT_MAP(XX)                                                                          \
    XX(SHML_WAIT_ADAPTIVE, "adaptive")                                                             \
    XX(SHML_WAIT_SPIN, "spin")                                                                     \
    XX(SHML_WAIT_BLOCK, "block")

/* XX(value, name). Backends (SHML_BACKEND_*), as addresses spell them. */
#define SHML_BACKEND_MAP(XX)                                                                       \
    XX(SHML_BACKEND_POSIX, "posix")                                                                \
    XX(SHML_BACKEND_SYSV, "sysv")                                                                  \
    XX(SHML_BACKEND_FILE, "file")                                                                  \
    XX(SHML_BACKEND_MEMFD, "memfd")                                                                \
    XX(SHML_BACKEND_WINDOWS, "win")

/* XX(value, name). Types of declared objects (SHML_DECL_*). */
#define SHML_DECL_TYPE_MAP(XX)                                                                     \
    XX(SHML_DECL_MUTEX, "mutex")                                                                   \
    XX(SHML_DECL_EVENT, "event")                                                                   \
    XX(SHML_DECL_SEM, "sem")

/* XX(value, name). Mutex states (SHML_MUTEX_* of sync.h). */
#define SHML_MUTEX_STATE_MAP(XX)                                                                   \
    XX(SHML_MUTEX_FREE, "free")                                                                    \
    XX(SHML_MUTEX_HELD, "held")                                                                    \
    XX(SHML_MUTEX_OWNER_DEAD, "owner_dead")                                                        \
    XX(SHML_MUTEX_NOT_RECOVERABLE, "not_recoverable")                                              \
    XX(SHML_MUTEX_REPAIRING, "repairing")

/* XX(value, name). What shml_gc() would do with a segment (SHML_GC_* of segment.h). */
#define SHML_GC_VERDICT_MAP(XX)                                                                    \
    XX(SHML_GC_KEEP_FOREIGN, "foreign")                                                            \
    XX(SHML_GC_KEEP_PERSISTENT, "persistent")                                                      \
    XX(SHML_GC_KEEP_IN_USE, "in_use")                                                              \
    XX(SHML_GC_KEEP_UNKNOWN, "unknown")                                                            \
    XX(SHML_GC_REMOVE_ORPHANED, "orphaned")                                                        \
    XX(SHML_GC_REMOVE_UNFINISHED, "unfinished")

/* XX(value, name). Liveness of a process (a creator, an attach entry, an endpoint). */
#define SHML_ALIVE_MAP(XX)                                                                         \
    XX(1, "alive")                                                                                 \
    XX(0, "dead")

/* "plain", "queue", "bus", "latest", "rpc"; NULL for another kind. */
SHML_API const char *shml_kind_name(uint32_t kind);

/*
 * An endpoint's role (SHML_PRODUCER, SHML_CONSUMER, or both ORed) in the words of its channel
 * kind: queue "producer"/"consumer", bus "publisher"/"subscriber", latest "writer"/"reader",
 * rpc "client"/"server"; both roles "producer+consumer", "publisher+subscriber", ... A kind
 * that is not a channel's uses the queue's words. NULL for role 0 or another bit.
 */
SHML_API const char *shml_role_name(uint32_t kind, uint32_t role);

/*
 * A role recorded in a segment's attach table (SHML_ROLE_*) for a segment of `kind`: "user",
 * "creator", and for a channel endpoint the words of shml_role_name() (SHML_ROLE_PRODUCER of a
 * bus is "publisher", SHML_ROLE_CONSUMER "subscriber", SHML_ROLE_ENDPOINT
 * "publisher+subscriber"). NULL for an application-defined role.
 */
SHML_API const char *shml_attach_role_name(uint32_t kind, uint32_t role);

/* "block", "overwrite"; NULL for another policy. */
SHML_API const char *shml_policy_name(uint32_t policy);

/* "adaptive", "spin", "block"; NULL for another wait mode. */
SHML_API const char *shml_wait_name(uint32_t wait);

/* "posix", "sysv", "file", "memfd", "win"; NULL for another backend. */
SHML_API const char *shml_backend_name(int backend);

/* "mutex", "event", "sem"; NULL for another type. */
SHML_API const char *shml_decl_type_name(uint32_t type);

/* "free", "held", "owner_dead", "not_recoverable", "repairing"; NULL for another state. */
SHML_API const char *shml_mutex_state_name(int state);

/*
 * What shml_gc_verdict() says: "foreign", "persistent", "in_use", "unknown" (kept);
 * "orphaned", "unfinished" (removed). NULL for another value.
 */
SHML_API const char *shml_gc_verdict_name(int verdict);
/* "alive" (1), "dead" (0); NULL for unknown (-1) or another value. */
SHML_API const char *shml_alive_name(int alive);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_NAMES_H */
