/*
 * bridge_url.c - see bridge_url.h.
 */
#include "bridge_url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bridge_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s + n) into out (a NUL-ended string of at most cap - 1 bytes). */
static int decode(const char *s, size_t n, char *out, size_t cap, const char *what, char *err,
                  size_t errcap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return bridge_fail(err, errcap, "bad %%-escape in the %s (%%XX, two hex digits)",
                                   what);
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return bridge_fail(err, errcap, "the %s has a NUL byte", what);
        if (o + 1 >= cap)
            return bridge_fail(err, errcap, "the %s is longer than %zu bytes", what, cap - 1);
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* One "host[:port]" of the list, [s, s + n), into u->servers[u->nservers]. */
static int add_server(struct bridge_url *u, const char *s, size_t n, char *err, size_t errcap)
{
    if (n == 0)
        return bridge_fail(err, errcap,
                           "an empty server in the list (two commas, or a comma at an end)");
    if (u->nservers == BRIDGE_SERVERS_MAX)
        return bridge_fail(err, errcap, "more than %d servers", BRIDGE_SERVERS_MAX);
    const char *host = s, *colon = NULL;
    size_t hlen = n;
    if (s[0] == '[') {
        /* [IPv6]:port */
        const char *close = memchr(s, ']', n);
        if (!close)
            return bridge_fail(err, errcap, "an IPv6 address without its closing ']'");
        if ((size_t)(close - s) + 1 < n) {
            if (close[1] != ':')
                return bridge_fail(err, errcap, "unexpected text after ']' (expected :PORT)");
            colon = close + 1;
        }
        hlen = (size_t)(close - s) + 1;
    } else {
        colon = memchr(s, ':', n);
        if (colon)
            hlen = (size_t)(colon - s);
    }
    if (hlen == 0)
        return bridge_fail(err, errcap, "a server without a host");
    if (hlen > BRIDGE_HOST_MAX)
        return bridge_fail(err, errcap, "a host name longer than %d bytes", BRIDGE_HOST_MAX);
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#')
            return bridge_fail(err, errcap, "bad character '%c' in host '%.*s'", c > ' ' ? c : '?',
                               (int)hlen, host);
    }
    long port = 4222;
    if (colon) {
        const char *p = colon + 1;
        size_t plen = n - (size_t)(p - s);
        if (plen == 0 || plen > 5)
            return bridge_fail(err, errcap, "bad port '%.*s' (1..65535)", (int)plen, p);
        port = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return bridge_fail(err, errcap, "bad port '%.*s' (1..65535)", (int)plen, p);
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return bridge_fail(err, errcap, "port %ld is out of range (1..65535)", port);
    }
    snprintf(u->servers[u->nservers++], sizeof u->servers[0], "%s://%.*s:%ld",
             u->tls ? "tls" : "nats", (int)hlen, host, port);
    return 0;
}

static int check_subject(struct bridge_url *u, char *err, size_t errcap)
{
    const char *s = u->subject;
    if (!*s)
        return bridge_fail(err, errcap,
                           "no subject after the server list (nats://HOST:PORT/SUBJECT)");
    u->wildcard = false;
    for (const char *tok = s;;) {
        const char *end = strchr(tok, '.');
        size_t len = end ? (size_t)(end - tok) : strlen(tok);
        if (len == 0)
            return bridge_fail(err, errcap,
                               "subject '%s' has an empty token (two dots, or a dot at an end)", s);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)tok[i];
            if (c <= ' ' || c >= 0x7f)
                return bridge_fail(err, errcap, "subject '%s' has a space or a non-ASCII byte", s);
            if ((c == '*' || c == '>') && len != 1)
                return bridge_fail(err, errcap, "subject '%s': '%c' must be a whole token", s, c);
        }
        if (len == 1 && tok[0] == '>' && end)
            return bridge_fail(err, errcap, "subject '%s': '>' must be the last token", s);
        if (len == 1 && (tok[0] == '*' || tok[0] == '>'))
            u->wildcard = true;
        if (!end)
            break;
        tok = end + 1;
    }
    return 0;
}

int bridge_url_parse(const char *text, struct bridge_url *u, char *err, size_t errcap)
{
    memset(u, 0, sizeof *u);
    const char *rest;
    if (strncmp(text, "nats://", 7) == 0) {
        rest = text + 7;
    } else if (strncmp(text, "tls://", 6) == 0) {
        u->tls = true;
        rest = text + 6;
    } else {
        return bridge_fail(err, errcap,
                           "'%s' is not a NATS URL (nats://HOST:PORT/SUBJECT or tls://...)", text);
    }
    const char *slash = strchr(rest, '/');
    const char *auth_end = NULL;
    for (const char *p = rest; *p && (!slash || p < slash); p++)
        if (*p == '@')
            auth_end = p; /* the last '@' before the path: a password may hold '@' escaped */
    const char *hosts = rest;
    if (auth_end) {
        const char *colon = memchr(rest, ':', (size_t)(auth_end - rest));
        size_t ulen = colon ? (size_t)(colon - rest) : (size_t)(auth_end - rest);
        if (decode(rest, ulen, u->user, sizeof u->user, "user name", err, errcap) < 0)
            return -1;
        if (!u->user[0])
            return bridge_fail(err, errcap, "an empty user name before '@'");
        if (colon) {
            u->has_password = true;
            if (decode(colon + 1, (size_t)(auth_end - colon - 1), u->password, sizeof u->password,
                       "password", err, errcap) < 0)
                return -1;
        }
        hosts = auth_end + 1;
    }
    if (!slash)
        return bridge_fail(err, errcap,
                           "no subject after the server list (nats://HOST:PORT/SUBJECT)");
    for (const char *p = hosts; p <= slash; p++) {
        const char *q = p;
        while (q < slash && *q != ',')
            q++;
        if (add_server(u, p, (size_t)(q - p), err, errcap) < 0)
            return -1;
        p = q;
    }
    const char *subj = slash + 1;
    if (strchr(subj, '?') || strchr(subj, '#'))
        return bridge_fail(err, errcap,
                           "the URL has a query or fragment: options are flags (--creds ...)");
    if (strlen(subj) >= sizeof u->subject)
        return bridge_fail(err, errcap, "the subject is longer than %zu bytes",
                           sizeof u->subject - 1);
    strcpy(u->subject, subj);
    return check_subject(u, err, errcap);
}

void bridge_url_show(const struct bridge_url *u, char *out, size_t cap)
{
    size_t o = 0;
    int n = snprintf(out, cap, "%s://", u->tls ? "tls" : "nats");
    o = n > 0 ? (size_t)n : 0;
    if (o < cap && u->user[0]) {
        n = snprintf(out + o, cap - o, "%s%s@", u->user, u->has_password ? ":***" : "");
        o += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < u->nservers && o < cap; i++) {
        const char *hp = strstr(u->servers[i], "://");
        n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", hp ? hp + 3 : u->servers[i]);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < cap)
        snprintf(out + o, cap - o, "/%s", u->subject);
}
