/*
 * cmd_bridge.c - `shmlink bridge out ADDR URL` and `shmlink bridge in URL ADDR`: the verb, its
 * options and their checks. The bridge itself is in bridge_nats.c (bridge.h).
 */
#include "shmlink.h"

#include "bridge.h"
#include "cmd_channel.h"
#include "verb.h"
#include "args.h"
#include "fmt.h"

#include <stdio.h>
#include <string.h>

void cli_bridge_type_text(const struct shml_channel_type *t, char *out, size_t cap)
{
    if (!t->format[0]) {
        if (cap)
            out[0] = '\0';
        return;
    }
    size_t o = 0;
    int n = snprintf(out, cap, "%llu;", (unsigned long long)t->itemsize);
    o = n > 0 ? (size_t)n : 0;
    for (uint32_t i = 0; i < t->ndim && o < cap; i++) {
        n = snprintf(out + o, cap - o, "%s%llu", i ? "," : "", (unsigned long long)t->shape[i]);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < cap)
        snprintf(out + o, cap - o, ";%s", t->format);
}

void cli_bridge_stream_name(const char *subject, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "SHMLINK_");
    for (; *subject && o + 1 < cap; subject++) {
        char c = *subject;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        out[o++] = ok ? c : '_';
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* A stream or consumer name as JetStream takes them here: letters, digits, '-' and '_'. */
static bool js_name_ok(const char *s)
{
    if (!*s || strlen(s) > 200)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static int run(const struct cli_verb *verb, int argc, char **argv)
{
    const char *group = NULL, *creds = NULL, *nkey = NULL, *tls_ca = NULL, *tls_cert = NULL,
               *tls_key = NULL, *name = NULL, *timeout = NULL, *bucket = NULL, *stream = NULL,
               *replicas = NULL, *durable = NULL, *ack_wait = NULL;
    bool jetstream = false, batch = false;
    const struct cli_opt opts[] = {
        {"group", "NAME", NULL, &group},       {"creds", "FILE", NULL, &creds},
        {"nkey", "FILE", NULL, &nkey},         {"tls-ca", "FILE", NULL, &tls_ca},
        {"tls-cert", "FILE", NULL, &tls_cert}, {"tls-key", "FILE", NULL, &tls_key},
        {"name", "NAME", NULL, &name},         {"timeout", "DURATION", NULL, &timeout},
        {"bucket", "NAME", NULL, &bucket},     {"jetstream", NULL, &jetstream, NULL},
        {"stream", "NAME", NULL, &stream},     {"replicas", "N", NULL, &replicas},
        {"durable", "NAME", NULL, &durable},   {"ack-wait", "DURATION", NULL, &ack_wait},
        {"batch", NULL, &batch, NULL},
    };
    const char *pos[4] = {0};
    size_t npos = 0;
    int rc = cli_parse(verb, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 3, 3,
                       "out|in ADDR|URL URL|ADDR", &npos);
    if (rc != CLI_RUN)
        return rc;
    struct bridge_args a;
    memset(&a, 0, sizeof a);
    const char *url;
    if (strcmp(pos[0], "out") == 0) {
        a.out = true;
        a.verb = "bridge out";
        a.addr = pos[1];
        url = pos[2];
    } else if (strcmp(pos[0], "in") == 0) {
        a.verb = "bridge in";
        url = pos[1];
        a.addr = pos[2];
    } else {
        char shown[128];
        return cli_usage_error(verb, "the direction is 'out' (ADDR URL) or 'in' (URL ADDR), not %s",
                               cli_quote(pos[0], shown, sizeof shown));
    }
    char why[256];
    if (bridge_url_parse(url, &a.url, why, sizeof why) < 0)
        return cli_usage_error(verb, "%s", why);
    if (a.url.wildcard && a.out)
        return cli_usage_error(verb, "subject '%s': a bridge out publishes to one subject, "
                                     "without wildcards ('*', '>')",
                               a.url.subject);
    if (group && !group[0])
        return cli_usage_error(verb, "--group needs a name");
    if (group && a.out)
        return cli_usage_error(verb, "--group is for a bridge in (the queue group it joins)");
    if ((tls_cert != NULL) != (tls_key != NULL))
        return cli_usage_error(verb, "--tls-cert and --tls-key go together");
    if (creds && nkey)
        return cli_usage_error(verb, "--creds and --nkey are two ways to authenticate: give one");
    if ((creds || nkey) && a.url.user[0])
        return cli_usage_error(verb, "a user in the URL and --%s are two ways to authenticate: "
                                     "give one",
                               creds ? "creds" : "nkey");
    const char *js_only = stream ? "stream" : replicas ? "replicas" : durable ? "durable"
                          : ack_wait ? "ack-wait" : NULL;
    if (js_only && !jetstream)
        return cli_usage_error(verb, "--%s is for a bridge through JetStream (--jetstream)",
                               js_only);
    if (stream && !js_name_ok(stream))
        return cli_usage_error(verb, "--stream '%s': a stream's name takes letters, digits, '-' "
                                     "and '_'",
                               stream);
    if (durable && !js_name_ok(durable))
        return cli_usage_error(verb, "--durable '%s': a consumer's name takes letters, digits, "
                                     "'-' and '_'",
                               durable);
    if (durable && a.out)
        return cli_usage_error(verb, "--durable is for a bridge in (the consumer it reads with)");
    if (batch && !a.out)
        return cli_usage_error(verb, "--batch is for a bridge out (a bridge in takes batches as "
                                     "they come)");
    if (batch && jetstream)
        return cli_usage_error(verb, "--batch is for core NATS: through JetStream each message "
                                     "is stored and acknowledged on its own");
    if (jetstream && a.url.wildcard && !stream)
        return cli_usage_error(verb, "subject '%s' has wildcards: name the stream that holds "
                                     "its messages (--stream)",
                               a.url.subject);
    a.replicas = 1;
    if (replicas) {
        uint64_t n = 0;
        if (cli_parse_count(replicas, &n) < 0 || n > 5)
            return cli_usage_error(verb, "--replicas takes 1 to 5, not '%s'", replicas);
        a.replicas = (int)n;
    }
    a.jetstream = jetstream;
    a.batch = batch;
    a.stream = stream;
    a.durable = durable;
    a.ack_wait_ns = (int64_t)30 * 1000 * 1000 * 1000;
    const char *bad = NULL;
    if (ack_wait && cli_parse_duration(ack_wait, &a.ack_wait_ns, &bad) < 0)
        return cli_usage_error(verb, "--ack-wait '%s': %s", ack_wait, bad);
    if (a.ack_wait_ns < (int64_t)1000 * 1000 * 1000)
        return cli_usage_error(verb, "--ack-wait must be at least 1s");
    a.group = group ? group : "shmlink";
    a.creds = creds;
    a.nkey = nkey;
    a.tls_ca = tls_ca;
    a.tls_cert = tls_cert;
    a.tls_key = tls_key;
    a.name = name;
    a.bucket = bucket ? bucket : "shmlink";
    a.timeout_ns = (int64_t)5 * 1000 * 1000 * 1000;
    if ((rc = cli_parse_timeout(a.verb, a.addr, timeout, &a.timeout_ns)) != 0)
        return rc;
    if (a.timeout_ns <= 0)
        return cli_fail(a.verb, a.addr, "--timeout must be more than 0");
    return cli_bridge_run(&a);
}

const struct cli_verb cli_verb_bridge = {
    "bridge",
    "out ADDR URL | in URL ADDR [--group NAME] [--creds FILE | --nkey FILE] [--tls-ca FILE] "
    "[--tls-cert FILE --tls-key FILE] [--name NAME] [--timeout DURATION] [--bucket NAME] "
    "[--batch] [--jetstream [--stream NAME] [--replicas N] [--durable NAME] "
    "[--ack-wait DURATION]]",
    "Carry a channel between machines through a NATS server (docs/BRIDGE.md).\n"
    "\n"
    "  bridge out ADDR URL   take what the local channel ADDR delivers and publish it to URL\n"
    "  bridge in URL ADDR    subscribe to URL and send what arrives into the local channel ADDR\n"
    "\n"
    "URL is nats://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/SUBJECT (tls:// for TLS;\n"
    "the port defaults to 4222). The local channel must exist (shmlink mk). Each kind maps\n"
    "to NATS as follows:\n"
    "  queue   out: a consumer of ADDR publishes each message to SUBJECT;\n"
    "          in: a member of the queue group (--group, default shmlink) on SUBJECT sends\n"
    "          each message it gets into ADDR, so each message goes to one bridge in\n"
    "  bus     out: a subscriber of ADDR publishes each message to SUBJECT;\n"
    "          in: a subscriber of SUBJECT publishes each message into ADDR\n"
    "  rpc     out: a server of ADDR sends each local client's request to SUBJECT as a NATS\n"
    "          request and gives it the reply; a request nobody answers (no responders,\n"
    "          --timeout, an error reply) is refused: its client's receive fails at once;\n"
    "          in: a member of the queue group on SUBJECT asks the local servers of ADDR,\n"
    "          as a client, and publishes their reply (or an error reply) to the requester\n"
    "  latest  out: a reader of ADDR puts each newest value under the key SUBJECT of a\n"
    "          JetStream key-value bucket (--bucket); in: a writer of ADDR writes the key's\n"
    "          value, the one the bucket holds first, then each new one\n"
    "A bridge in may subscribe to a wildcard subject ('*' a token, '>' the rest).\n"
    "Delivery is at most once: a message in flight when a connection breaks may be lost. A\n"
    "bridge in counts what it knows it missed (gaps in the publishing bridge's sequence, and\n"
    "messages its NATS client dropped for a slow consumer) as drops of its endpoint.\n"
    "\n"
    "With --batch, a queue or bus bridge out publishes what its channel holds at once (up to\n"
    "1024 messages, about 60 KiB) as one NATS message (header Shmlink-Count: each message a\n"
    "4-byte little-endian length and its bytes), which a bridge in takes apart again: many\n"
    "times the throughput for small messages, and nothing waits for a batch to fill. Only\n"
    "bridges read such messages: leave it off when other NATS programs read the subject.\n"
    "\n"
    "With --jetstream, a queue or bus goes through a JetStream stream, at least once: a\n"
    "bridge out lets the channel have a message back only once the stream has stored it,\n"
    "publishing it again under the same id (Nats-Msg-Id: the channel's creation time and\n"
    "the message's position, de-duplicated by the stream) when the acknowledgement does not\n"
    "come; it is a durable endpoint of its channel, so a bridge out started after one was\n"
    "killed takes its place and its message. A bridge in reads with a durable consumer and\n"
    "acknowledges each message after sending it into its channel, so a bridge in killed and\n"
    "started again loses nothing. It is a durable producer of its channel that marks each\n"
    "message with its stream sequence: the bridge in that takes a killed one's place does\n"
    "not send again the message the killed one sent but did not acknowledge.\n"
    "\n"
    "Messages carry the headers Shmlink-Kind, Shmlink-Epoch, Shmlink-Seq and, for a typed\n"
    "channel, Shmlink-Type: a bridge in refuses (and counts) a message whose type is not its\n"
    "channel's. A bridge out refuses to start when the channel's largest message does not fit\n"
    "in the server's max_payload.\n"
    "\n"
    "When the server cannot be reached, at the start or later, the bridge says so on stderr and\n"
    "reconnects with backoff for as long as it runs. A bridge out takes nothing from its\n"
    "channel while disconnected: under block the local producers wait, under overwrite the\n"
    "bridge's subscriber is lapped and its drops are counted. SIGINT or SIGTERM ends the\n"
    "bridge between two messages.\n"
    "\n"
    "Options:\n"
    "  --group NAME          bridge in, queue or rpc: the NATS queue group to join (default\n"
    "                        shmlink)\n"
    "  --creds FILE          authenticate with a NATS credentials file (JWT and NKey seed)\n"
    "  --nkey FILE           authenticate with the NKey seed in FILE\n"
    "  --tls-ca FILE         trust the CA certificates in FILE (PEM); implies TLS\n"
    "  --tls-cert FILE       the client's certificate chain (PEM), with --tls-key\n"
    "  --tls-key FILE        the client's private key (PEM)\n"
    "  --name NAME           the connection's name, as the server shows it\n"
    "  --timeout DURATION    rpc: how long a request waits for its reply (default 5s)\n"
    "  --bucket NAME         latest: the key-value bucket (default shmlink; made with history\n"
    "                        1 if missing; the server needs JetStream)\n"
    "  --batch               bridge out, queue and bus: many messages to a NATS message\n"
    "  --jetstream           queue and bus: through a JetStream stream, at least once\n"
    "  --stream NAME         the stream (default SHMLINK_ and the subject, '.' made '_'; made\n"
    "                        on disk if missing; needed for a wildcard subject)\n"
    "  --replicas N          copies of a stream the bridge makes, 1 to 5 (default 1)\n"
    "  --durable NAME        bridge in: its durable consumer (default: the queue group for a\n"
    "                        queue, shmlink_HOST_ADDR for a bus)\n"
    "  --ack-wait DURATION   bridge in: how long the server waits for an acknowledgement\n"
    "                        before it delivers a message again (default 30s, at least 1s)\n"
    "\n"
    "Exit status: 130 or 143 once stopped by SIGINT or SIGTERM, 1 when the bridge cannot run\n"
    "(no such channel, authentication refused, messages too large for the server), 2 for a\n"
    "malformed command line.",
    run,
};
