/*
 * address.c - one string names a segment and its backend (the table is in shmlink/segment.h).
 *
 * Parsing is pure: no system object is touched, so it is safe to run on hostile input (it is
 * fuzzed) and an error always says which rule the address broke.
 */
#include "segment/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

/*
 * Check a POSIX/memfd/win32 name; `what` names the backend in the reason. Everything a file
 * name may hold is accepted except what would make it a path or disturb a terminal, so that
 * every object other programs made in /dev/shm can be named.
 */
static int check_name(const char *name, const char *what)
{
    size_t len = strlen(name);
    if (len == 0)
        return shml__fail(EINVAL, "%s address has an empty name", what);
    if (len > SHML_NAME_MAX)
        return shml__fail(EINVAL, "%s name is %zu bytes long; at most %d are allowed", what, len,
                          SHML_NAME_MAX);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return shml__fail(EINVAL, "%s name contains control character 0x%02x", what, c);
        if (c == '/')
            return shml__fail(EINVAL, "%s name contains '/': names are flat, not paths", what);
        if (c == '\\')
            return shml__fail(EINVAL, "%s name contains '\\' (a namespace separator on Windows)",
                              what);
        size_t n = utf8_len((const unsigned char *)name + i);
        if (n == 0)
            return shml__fail(EINVAL, "%s name is not valid UTF-8 at byte %zu (0x%02x)", what, i,
                              c);
        i += n;
    }
    if (strcmp(name, ".") == 0 || strstr(name, "..") != NULL)
        return shml__fail(EINVAL, "%s name may not be '.' or contain '..'", what);
    return 0;
}

/* Parse an unsigned number (decimal, or hex with 0x) that must fit `max`; -EINVAL otherwise. */
static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == '\0')
            return -EINVAL;
    }
    uint64_t v = 0;
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            return -EINVAL;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > max)
            return -ERANGE;
    }
    *out = (uint32_t)v;
    return 0;
}

static int check_path(const char *path, const char *what)
{
    size_t len = strlen(path);
    if (len == 0)
        return shml__fail(EINVAL, "%s address has an empty path", what);
    if (len >= PATH_MAX)
        return shml__fail(EINVAL, "%s path is %zu bytes long; at most %d are allowed", what, len,
                          PATH_MAX - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f)
            return shml__fail(EINVAL, "%s path contains control character 0x%02x", what, c);
    }
    return 0;
}

static int parse_sysv(const char *rest, struct shml__addr *a)
{
    uint32_t v;
    int r;
    if (strncmp(rest, "id=", 3) == 0) {
        r = parse_u32(rest + 3, INT32_MAX, &v);
        if (r < 0)
            return shml__fail(EINVAL, "sysv id '%s' is not a number from 0 to %d", rest + 3,
                              INT32_MAX);
        a->has_id = true;
        a->shmid = (int32_t)v;
        snprintf(a->canon, sizeof(a->canon), "sysv:id=%u", v);
        return 0;
    }
    const char *hash = strrchr(rest, '#');
    if (rest[0] == '/' || rest[0] == '.' || hash != NULL) {
        if (!hash)
            return shml__fail(EINVAL, "sysv ftok address needs '#PROJ' after the path, as in "
                                      "sysv:/path/to/file#102");
        size_t plen = (size_t)(hash - rest);
        if (plen == 0)
            return shml__fail(EINVAL, "sysv ftok address has an empty path");
        if (plen >= sizeof(a->path))
            return shml__fail(EINVAL, "sysv ftok path is too long");
        memcpy(a->path, rest, plen);
        a->path[plen] = '\0';
        r = check_path(a->path, "sysv");
        if (r < 0)
            return r;
        /* What ftok() takes: an int, of which it keeps only the low 8 bits (0x6666 is 0x66). */
        if (parse_u32(hash + 1, INT32_MAX, &v) < 0)
            return shml__fail(EINVAL, "sysv ftok project id '%s' is not a number (decimal or 0x "
                                      "hex) from 1 to %d",
                              hash + 1, INT32_MAX);
        /* POSIX leaves ftok() unspecified then; glibc gives a key whose top byte is 0, which
           for some files is 0 itself: IPC_PRIVATE, a new segment at every call. */
        if ((v & 0xff) == 0)
            return shml__fail(EINVAL, "sysv ftok project id '%s' has 0 in its low 8 bits, the "
                                      "only ones ftok() uses: use 1 to 255",
                              hash + 1);
        a->proj = (int)(v & 0xff);
        a->has_key = true;
        snprintf(a->canon, sizeof(a->canon), "sysv:%s#%u", a->path, v & 0xff);
        return 0;
    }
    r = parse_u32(rest, UINT32_MAX, &v);
    if (r < 0)
        return shml__fail(EINVAL, "sysv key '%s' is not a number (decimal or 0x hex) from 1 to "
                                  "0xffffffff",
                          rest);
    if (v == 0)
        return shml__fail(EINVAL, "sysv key 0 is IPC_PRIVATE, which no other process can open; "
                                  "use sysv:id=N for an existing private segment");
    a->has_key = true;
    a->key = (int32_t)v;
    snprintf(a->canon, sizeof(a->canon), "sysv:0x%08x", v);
    return 0;
}

int shml__addr_parse(const char *s, struct shml__addr *a)
{
    memset(a, 0, sizeof(*a));
    a->shmid = -1;
    if (s == NULL || *s == '\0')
        return shml__fail(EINVAL, "missing address");
    size_t slen = strnlen(s, SHML_ADDR_MAX);
    if (slen >= SHML_ADDR_MAX)
        return shml__fail(EINVAL, "address longer than %d bytes", SHML_ADDR_MAX - 1);

    const char *colon = strchr(s, ':');
    const char *rest = s;
    a->backend = SHML_BACKEND_POSIX;
    if (colon) {
        size_t plen = (size_t)(colon - s);
        rest = colon + 1;
        if (plen == 5 && strncmp(s, "posix", 5) == 0)
            a->backend = SHML_BACKEND_POSIX;
        else if (plen == 4 && strncmp(s, "sysv", 4) == 0)
            a->backend = SHML_BACKEND_SYSV;
        else if (plen == 4 && strncmp(s, "file", 4) == 0)
            a->backend = SHML_BACKEND_FILE;
        else if (plen == 5 && strncmp(s, "memfd", 5) == 0)
            a->backend = SHML_BACKEND_MEMFD;
        else if (plen == 3 && strncmp(s, "win", 3) == 0)
            a->backend = SHML_BACKEND_WINDOWS;
        else
            return shml__fail(EINVAL, "unknown backend '%.*s' (known: posix, sysv, file, memfd, "
                                      "win)",
                              (int)(plen > 32 ? 32 : plen), s);
    }

    int r;
    switch (a->backend) {
    case SHML_BACKEND_POSIX:
        if (*rest == '/')
            rest++;
        r = check_name(rest, "posix");
        if (r < 0)
            return r;
        a->name[0] = '/';
        memcpy(a->name + 1, rest, strlen(rest) + 1);
        snprintf(a->canon, sizeof(a->canon), "posix:%s", a->name);
        return 0;
    case SHML_BACKEND_MEMFD:
        r = check_name(rest, "memfd");
        if (r < 0)
            return r;
        memcpy(a->name, rest, strlen(rest) + 1);
        snprintf(a->canon, sizeof(a->canon), "memfd:%s", a->name);
        return 0;
    case SHML_BACKEND_WINDOWS: {
        /*
         * An optional namespace, then a flat name. No namespace means the session's own, as
         * for CreateFileMapping("name") in a program: `name` and `Local\name` are one object,
         * so they get one canonical address (the short one), and the kernel's name always
         * carries the namespace.
         */
        const char *name = rest;
        bool global = false;
        if (strncmp(rest, "Local\\", 6) == 0) {
            name = rest + 6;
        } else if (strncmp(rest, "Global\\", 7) == 0) {
            name = rest + 7;
            global = true;
        }
        r = check_name(name, "win");
        if (r < 0)
            return r;
        snprintf(a->name, sizeof(a->name), "%s%s", global ? "Global\\" : "Local\\", name);
        snprintf(a->canon, sizeof(a->canon), "win:%s%s", global ? "Global\\" : "", name);
        return 0;
    }
    case SHML_BACKEND_FILE:
        r = check_path(rest, "file");
        if (r < 0)
            return r;
        memcpy(a->path, rest, strlen(rest) + 1);
        snprintf(a->canon, sizeof(a->canon), "file:%s", a->path);
        return 0;
    default:
        return parse_sysv(rest, a);
    }
}
