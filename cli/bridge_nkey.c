/*
 * bridge_nkey.c - see bridge_nkey.h. The Ed25519 arithmetic is OpenSSL's (libcrypto, which
 * the NATS C client links for TLS anyway).
 */
#include "bridge_nkey.h"

#include "bridge_url.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_SEED (18u << 3) /* 'S' */
#define RAW_KEY     32u

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Base32 (RFC 4648, no padding) text to bytes; the number of bytes, or -1. */
static int b32_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *at = strchr(B32, s[i]);
        if (!at || !s[i])
            return -1;
        acc = (acc << 5) | (uint32_t)(at - B32);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}

static void b32_encode(const uint8_t *p, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = B32[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = B32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

int bridge_nkey_public(const char *path, char *pub, size_t cap, char *err, size_t errcap)
{
    char line[256] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return bridge_fail(err, errcap, "cannot read the NKey seed file: %s", strerror(errno));
    /* The seed is the first line that starts with 'S' (nk writes it alone; a .nk file too). */
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = line[0] == 'S';
    fclose(f);
    size_t n = strcspn(line, "\r\n \t");
    uint8_t raw[64];
    int got = found ? b32_decode(line, n, raw, sizeof raw) : -1;
    if (got != 2 + (int)RAW_KEY + 2)
        return bridge_fail(err, errcap,
                           "no NKey seed in the file (a line 'S...' of 58 base32 characters)");
    uint16_t want = (uint16_t)(raw[got - 2] | raw[got - 1] << 8);
    if (crc16(raw, (size_t)got - 2) != want)
        return bridge_fail(err, errcap, "the NKey seed's checksum is wrong (a damaged seed?)");
    if ((raw[0] & 0xf8) != PREFIX_SEED)
        return bridge_fail(err, errcap, "not an NKey seed (it does not start with 'S')");
    uint8_t type = (uint8_t)(((raw[0] & 7u) << 5) | ((raw[1] & 0xf8u) >> 3));
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 2, RAW_KEY);
    uint8_t out[1 + RAW_KEY + 2];
    size_t plen = RAW_KEY;
    int ok = k && EVP_PKEY_get_raw_public_key(k, out + 1, &plen) == 1 && plen == RAW_KEY;
    EVP_PKEY_free(k);
    memset(raw, 0, sizeof raw);
    if (!ok)
        return bridge_fail(err, errcap, "the NKey seed is not an Ed25519 key");
    out[0] = type;
    uint16_t c = crc16(out, 1 + RAW_KEY);
    out[1 + RAW_KEY] = (uint8_t)(c & 0xff);
    out[2 + RAW_KEY] = (uint8_t)(c >> 8);
    if (cap < 57)
        return bridge_fail(err, errcap, "no room for the public key");
    b32_encode(out, sizeof out, pub);
    return 0;
}
