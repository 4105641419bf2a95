/*
 * bridge.h - what `shmlink bridge` (cmd_bridge.c, the verb and its options) hands to the code
 * that moves messages (bridge_nats.c with the NATS C client; bridge_none.c in a build without
 * it, which says so).
 */
#ifndef SHML_CLI_BRIDGE_H
#define SHML_CLI_BRIDGE_H

#include "shmlink.h"

#include "bridge_url.h"

#include <stdbool.h>
#include <stdint.h>

/* The headers a bridge puts on every message it publishes (docs/BRIDGE.md). */
#define BRIDGE_HDR_KIND  "Shmlink-Kind"  /* queue, bus, latest, rpc (names.h) */
#define BRIDGE_HDR_TYPE  "Shmlink-Type"  /* typed channels: "ITEMSIZE;SHAPE;FORMAT" */
#define BRIDGE_HDR_EPOCH "Shmlink-Epoch" /* the publishing bridge's run: 16 hex digits */
#define BRIDGE_HDR_SEQ   "Shmlink-Seq"   /* 1, 2, ... within an epoch */
#define BRIDGE_HDR_ERROR "Shmlink-Error" /* rpc: a reply that says why there is none */
/* A batch (bridge out --batch): the payload holds this many messages, each a 4-byte
   little-endian length and its bytes; Shmlink-Seq is the first one's sequence. */
#define BRIDGE_HDR_COUNT "Shmlink-Count"

struct bridge_args {
    const char *verb; /* "bridge out" or "bridge in", for messages */
    bool out;         /* out: the local channel to NATS; in: NATS to the local channel */
    const char *addr; /* the local channel */
    struct bridge_url url;
    const char *group;   /* queue and rpc in: the NATS queue group */
    const char *creds;   /* --creds: a credentials file (user JWT and NKey seed) */
    const char *nkey;    /* --nkey: a file holding an NKey seed */
    const char *tls_ca;  /* --tls-ca: CA certificates (PEM) to trust */
    const char *tls_cert; /* --tls-cert and --tls-key: the client's certificate */
    const char *tls_key;
    const char *name;    /* --name: the connection's name on the server */
    int64_t timeout_ns;  /* rpc: how long a request waits for its reply */
    const char *bucket;  /* latest: the key-value bucket (the subject is the key) */
    bool batch;          /* --batch: out, queue and bus: what the channel holds, in one NATS
                            message (BRIDGE_HDR_COUNT) */
    bool jetstream;      /* --jetstream: queue and bus through a stream, at least once */
    const char *stream;  /* --stream: its name (derived from the subject when NULL) */
    int replicas;        /* --replicas: the stream's, when a bridge makes it */
    const char *durable; /* --durable: a bridge in's consumer (derived when NULL) */
    int64_t ack_wait_ns; /* --ack-wait: how long the server waits for an acknowledgement */
};

/* The stream a subject's messages are kept in when --stream is not given: "SHMLINK_" and the
   subject, each character a stream name may not hold ('.', '*', '>', ...) made '_'. */
void cli_bridge_stream_name(const char *subject, char *out, size_t cap);

/* Run the bridge until a stop signal or a failure; returns the tool's exit status. */
int cli_bridge_run(const struct bridge_args *a);

/* The "Shmlink-Type" text of a type ("" for untyped). */
void cli_bridge_type_text(const struct shml_channel_type *t, char *out, size_t cap);

#endif /* SHML_CLI_BRIDGE_H */
