/*
 * names.c - the functions of shmlink/names.h, generated from its tables so that a word is
 * written once, in the header, for the tool, the Python module and any C program alike.
 */
#include "shmlink/names.h"

#include <stddef.h>

/* One `case` per row of a two-column table. */
#define NAME_CASE(value, name)                                                                     \
    case value:                                                                                    \
        return name;

/* A function that looks a value up in one two-column table; NULL for a value not in it. */
#define NAME_FUNCTION(function, type, map)                                                         \
    const char *function(type value)                                                              \
    {                                                                                              \
        switch (value) {                                                                           \
            map(NAME_CASE)                                                                         \
        default:                                                                                   \
            return NULL;                                                                           \
        }                                                                                          \
    }

NAME_FUNCTION(shml_kind_name, uint32_t, SHML_KIND_MAP)
NAME_FUNCTION(shml_policy_name, uint32_t, SHML_POLICY_MAP)
NAME_FUNCTION(shml_wait_name, uint32_t, SHML_WAIT_MAP)
NAME_FUNCTION(shml_backend_name, int, SHML_BACKEND_MAP)
NAME_FUNCTION(shml_decl_type_name, uint32_t, SHML_DECL_TYPE_MAP)
NAME_FUNCTION(shml_mutex_state_name, int, SHML_MUTEX_STATE_MAP)
NAME_FUNCTION(shml_alive_name, int, SHML_ALIVE_MAP)
NAME_FUNCTION(shml_gc_verdict_name, int, SHML_GC_VERDICT_MAP)

struct role_words {
    uint32_t kind;
    const char *words[3]; /* indexed by role - 1: sender, receiver, both */
};

#define ROLE_ROW(kind, snd, rcv) {kind, {snd, rcv, snd "+" rcv}},
static const struct role_words role_words[] = {SHML_ROLE_WORDS_MAP(ROLE_ROW)};

const char *shml_role_name(uint32_t kind, uint32_t role)
{
    if (role != SHML_PRODUCER && role != SHML_CONSUMER && role != (SHML_PRODUCER | SHML_CONSUMER))
        return NULL;
    /* A kind that is not a channel's speaks as a queue does: the first row. */
    const struct role_words *w = &role_words[0];
    for (size_t i = 0; i < sizeof(role_words) / sizeof(role_words[0]); i++) {
        if (role_words[i].kind == kind)
            w = &role_words[i];
    }
    return w->words[role - 1];
}

const char *shml_attach_role_name(uint32_t kind, uint32_t role)
{
    switch (role) {
        SHML_ATTACH_ROLE_MAP(NAME_CASE)
    case SHML_ROLE_PRODUCER:
        return shml_role_name(kind, SHML_PRODUCER);
    case SHML_ROLE_CONSUMER:
        return shml_role_name(kind, SHML_CONSUMER);
    case SHML_ROLE_ENDPOINT:
        return shml_role_name(kind, SHML_PRODUCER | SHML_CONSUMER);
    default:
        return NULL;
    }
}
