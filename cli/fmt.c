/*
 * fmt.c - parsing and formatting of what people type and read: byte counts, modes, ages,
 * times, user names, the words for kinds, roles and policies, and text from shared memory
 * made safe for a terminal.
 */
#include "shmlink.h"

#include "fmt.h"
#include "sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct size_suffix {
    const char *text;
    unsigned shift;
};

/*
 * Binary multiples only: "K" is 1024 as in dd, ls -h and the kernel's own size= options.
 * "KB" is refused rather than guessed, because some tools read it as 1000.
 */
static const struct size_suffix size_suffixes[] = {
    {"", 0},   {"k", 10},   {"kib", 10}, {"m", 20},   {"mib", 20},
    {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40},
};

int cli_parse_size(const char *s, bool allow_zero, uint64_t *out, const char **why)
{
    static const char garbage[] =
        "expected a number of bytes with an optional K, M, G or T suffix (powers of 1024)";
    const char *p = s;
    uint64_t v = 0;

    if (*p == '\0') {
        *why = "empty";
        return -1;
    }
    if (*p == '-') {
        *why = isdigit((unsigned char)p[1]) ? "must not be negative" : garbage;
        return -1;
    }
    if (!isdigit((unsigned char)*p)) {
        *why = garbage;
        return -1;
    }
    bool too_large = false;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            too_large = true;
        else
            v = v * 10 + d;
    }
    const struct size_suffix *suffix = NULL;
    for (size_t i = 0; i < sizeof size_suffixes / sizeof size_suffixes[0]; i++) {
        if (strcasecmp(p, size_suffixes[i].text) == 0) {
            suffix = &size_suffixes[i];
            break;
        }
    }
    if (!suffix) {
        *why = garbage;
        return -1;
    }
    /* Checked after the suffix so "99999999999999999999x" is garbage, not "too large". */
    if (too_large || v > (uint64_t)SIZE_MAX >> suffix->shift) {
        *why = "too large (more than SIZE_MAX bytes)";
        return -1;
    }
    v <<= suffix->shift;
    if (v == 0 && !allow_zero) {
        *why = "must be at least 1 byte";
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_mode(const char *s, uint32_t *out, const char **why)
{
    static const char bad[] = "expected octal permission bits such as 0640";
    uint32_t v = 0;
    const char *p = s;

    if (*p == '\0' || strlen(p) > 5) {
        *why = bad;
        return -1;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '7') {
            *why = bad;
            return -1;
        }
        v = v * 8 + (uint32_t)(*p - '0');
    }
    if (v > 0777) {
        *why = "only permission bits (at most 0777) are allowed";
        return -1;
    }
    if (v == 0) {
        /* The library reads mode 0 as "default" (0600), so 0 cannot mean "no access". */
        *why = "mode 0 is not supported (the library takes 0 to mean the default 0600)";
        return -1;
    }
    *out = v;
    return 0;
}

void cli_fmt_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char units[] = "KMGTPE";
    if (bytes < 1024) {
        snprintf(buf, cap, "%lluB", (unsigned long long)bytes);
        return;
    }
    unsigned u = 0;
    while (u + 1 < sizeof units - 1 && bytes >> (10 * (u + 2)) != 0)
        u++;
    unsigned shift = 10 * (u + 1);
    if ((bytes & (((uint64_t)1 << shift) - 1)) == 0)
        snprintf(buf, cap, "%llu%c", (unsigned long long)(bytes >> shift), units[u]);
    else
        snprintf(buf, cap, "%.1f%c", (double)bytes / (double)((uint64_t)1 << shift), units[u]);
}

/* "3 messages", "1 message". */
const char *cli_plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

int64_t cli_age_s(int64_t stamp_ns, int64_t now_ns)
{
    /*
     * A stamp in the future (clock stepped back, another host's file) reads as brand new. The
     * difference is taken unsigned: a stamp a hostile header sets to INT64_MIN must not
     * overflow (it fits in 64 unsigned bits, and its seconds in 63).
     */
    if (now_ns <= stamp_ns)
        return 0;
    return (int64_t)(((uint64_t)now_ns - (uint64_t)stamp_ns) / 1000000000u);
}

void cli_fmt_age(int64_t stamp_ns, int64_t now_ns, char *buf, size_t cap)
{
    if (stamp_ns == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    int64_t s = cli_age_s(stamp_ns, now_ns);
    if (s < 60)
        snprintf(buf, cap, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm", (long long)(s / 60));
    else if (s < 86400)
        snprintf(buf, cap, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, cap, "%lldd", (long long)(s / 86400));
}

void cli_fmt_time(int64_t stamp_ns, char *buf, size_t cap)
{
    if (stamp_ns == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    /* Floor division, so a stamp before 1970 still names the right second. */
    int64_t s = stamp_ns / 1000000000;
    if (stamp_ns % 1000000000 < 0)
        s--;
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
}

void cli_fmt_user(uint32_t uid, char *buf, size_t cap)
{
    char name[256];
    cli_sys_user_name(uid, name, sizeof name);
    cli_display(name, buf, cap);
}

const char *cli_name(const char *name, const char *what, long long value, char *buf, size_t cap)
{
    if (name)
        return name;
    snprintf(buf, cap, "%s#%lld", what, value);
    return buf;
}

const char *cli_role_name(uint32_t kind, uint32_t role, char *buf, size_t cap)
{
    return cli_name(shml_role_name(kind, role), "role", role, buf, cap);
}

const char *cli_policy_name(uint32_t policy, char *buf, size_t cap)
{
    return cli_name(shml_policy_name(policy), "policy", policy, buf, cap);
}

const char *cli_backend_name(int backend)
{
    const char *name = shml_backend_name(backend);
    return name ? name : "?";
}

void cli_fmt_kind(uint32_t kind, char *buf, size_t cap)
{
    char num[32];
    snprintf(buf, cap, "%s", cli_name(shml_kind_name(kind), "kind", kind, num, sizeof num));
}

const char *cli_alive_name(int alive)
{
    const char *name = shml_alive_name(alive > 0 ? 1 : alive);
    return name ? name : "?";
}

size_t cli_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

size_t cli_escape_bytes(const void *data, size_t n, bool backslash, char *buf, size_t cap,
                        size_t *out_len)
{
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    while (i < n) {
        char piece[8];
        size_t plen;
        uint32_t cp;
        size_t seq = cli_utf8_seq(p + i, n - i, &cp);
        if (seq == 1 && backslash && cp == '\\') {
            plen = (size_t)snprintf(piece, sizeof piece, "\\\\");
        } else if (seq == 1 && cp >= 0x20 && cp != 0x7f) {
            piece[0] = (char)cp;
            plen = 1;
        } else if (seq > 1 && !(cp >= 0x80 && cp <= 0x9f)) {
            memcpy(piece, p + i, seq);
            plen = seq;
        } else {
            /* A control character, C1 control or a byte that is not UTF-8: show it, inertly. */
            unsigned char c = p[i];
            if (c == '\n')
                plen = (size_t)snprintf(piece, sizeof piece, "\\n");
            else if (c == '\t')
                plen = (size_t)snprintf(piece, sizeof piece, "\\t");
            else if (c == '\r')
                plen = (size_t)snprintf(piece, sizeof piece, "\\r");
            else
                plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", c);
            seq = 1;
        }
        if (o + plen > cap)
            break;
        memcpy(buf + o, piece, plen);
        o += plen;
        i += seq;
    }
    *out_len = o;
    return i;
}

const char *cli_display(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s), o;

    if (cap < 8) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    if (n == 0) {
        snprintf(buf, cap, "\"\"");
        return buf;
    }
    /* Keep room for "..." and the terminating NUL. */
    if (cli_escape_bytes(s, n, false, buf, cap - 4, &o) < n) {
        memcpy(buf + o, "...", 4);
        return buf;
    }
    buf[o] = '\0';
    return buf;
}

const char *cli_quote(const char *s, char *buf, size_t cap)
{
    if (cap < 10) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    buf[0] = '\'';
    if (*s)
        cli_display(s, buf + 1, cap - 2);
    else
        buf[1] = '\0';
    size_t n = strlen(buf);
    buf[n] = '\'';
    buf[n + 1] = '\0';
    return buf;
}

int cli_parse_duration(const char *s, int64_t *out_ns, const char **why)
{
    static const char garbage[] =
        "not a number with a unit (ns, us, ms, s, m, h), such as 0.5 or 250ms, or 'forever'";
    static const struct {
        const char *suffix;
        int64_t ns;
    } units[] = {{"", 1000000000}, {"s", 1000000000}, {"ms", 1000000}, {"us", 1000},
                 {"ns", 1},        {"m", 60000000000}, {"h", 3600000000000}};
    if (strcmp(s, "forever") == 0) {
        *out_ns = SHML_FOREVER;
        return 0;
    }
    if (*s == '\0') {
        *why = "empty";
        return -1;
    }
    if (*s == '-') {
        *why = "negative";
        return -1;
    }
    const char *p = s;
    if (*p < '0' || *p > '9') {
        *why = garbage;
        return -1;
    }
    uint64_t whole = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (uint64_t)INT64_MAX / 10) {
            *why = "too large";
            return -1;
        }
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    /* A fraction, kept as nanos of the unit (9 digits; finer digits are below 1ns a second). */
    uint64_t frac9 = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            *why = garbage;
            return -1;
        }
        uint64_t scale = 100000000;
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac9 += (uint64_t)(*p - '0') * scale;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        uint64_t unit = (uint64_t)units[i].ns;
        /* Units of whole seconds divide exactly; smaller ones keep the product small. */
        uint64_t part = unit >= 1000000000 ? unit / 1000000000 * frac9 : unit * frac9 / 1000000000;
        if (whole > ((uint64_t)INT64_MAX - part) / unit) {
            *why = "too large";
            return -1;
        }
        *out_ns = (int64_t)(whole * unit + part);
        return 0;
    }
    *why = garbage;
    return -1;
}
