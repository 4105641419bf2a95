/*
 * bridge_url.h - the NATS side of `shmlink bridge`: nats://[USER[:PASSWORD]@]HOST[:PORT]
 * [,HOST[:PORT]...]/SUBJECT (tls:// for TLS), parsed and checked before anything connects.
 *
 * Pure text: no NATS library here, so the checks and their messages are the same whether or
 * not the tool was built with the bridge.
 */
#ifndef SHML_CLI_BRIDGE_URL_H
#define SHML_CLI_BRIDGE_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "sys.h"

#define BRIDGE_SERVERS_MAX 16
#define BRIDGE_HOST_MAX    256
#define BRIDGE_CRED_MAX    256
#define BRIDGE_SUBJECT_MAX 256

struct bridge_url {
    bool tls;                                               /* tls:// */
    size_t nservers;                                        /* 1..BRIDGE_SERVERS_MAX */
    char servers[BRIDGE_SERVERS_MAX][BRIDGE_HOST_MAX + 16]; /* "nats://host:port" each */
    char user[BRIDGE_CRED_MAX];                             /* "" without; percent-decoded */
    char password[BRIDGE_CRED_MAX];                         /* "" without; percent-decoded */
    bool has_password;
    char subject[BRIDGE_SUBJECT_MAX];
    bool wildcard; /* the subject has a `*` or `>` token */
};

/*
 * Parse `text` into *u. Returns 0, or -1 with a one-line reason in err (what is wrong and
 * where: "no subject after the server list", "port 70000 is out of range", ...). The port
 * defaults to 4222. A subject is tokens of printable ASCII separated by dots, none empty; `*`
 * as a whole token matches one token and `>` as the last token matches the rest (u->wildcard
 * says whether there is one: the caller decides where one is allowed).
 */
int bridge_url_parse(const char *text, struct bridge_url *u, char *err, size_t errcap);

/* Write a one-line reason into err (vsnprintf) and return -1: how the bridge's checkers
   (this file's, bridge_nkey.c's) fail. */
int bridge_fail(char *err, size_t cap, const char *fmt, ...) CLI_PRINTF(3, 4);

/* The URL without its password ("nats://user:***@host:4222/subject"), for messages. */
void bridge_url_show(const struct bridge_url *u, char *out, size_t cap);

#endif /* SHML_CLI_BRIDGE_URL_H */
