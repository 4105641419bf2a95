/*
 * bridge_nkey.h - the public key of a NATS NKey seed, which the NATS C client needs beside the
 * seed file (natsOptions_SetNKeyFromSeed) and a user should not have to type: an NKey is an
 * Ed25519 key, its text form base32 of a type prefix, the key and a CRC-16 (XMODEM).
 */
#ifndef SHML_CLI_BRIDGE_NKEY_H
#define SHML_CLI_BRIDGE_NKEY_H

#include <stddef.h>

/* The public key text (56 characters) of the NKey seed in the file `path` (its first line).
   Returns 0, or -1 with a one-line reason in err. */
int bridge_nkey_public(const char *path, char *pub, size_t cap, char *err, size_t errcap);

#endif /* SHML_CLI_BRIDGE_NKEY_H */
