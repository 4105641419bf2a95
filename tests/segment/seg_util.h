/*
 * seg_util.h - what the segment tests share: an address of each backend (named uniquely and
 * registered for cleanup), the path of the object behind an address, a hand-made managed
 * header (written from src/layout.h, as a foreign program would), and a stat() shortcut.
 */
#ifndef SHMT_SEG_UTIL_H
#define SHMT_SEG_UTIL_H

#include "harness.h"

#include "layout.h"

enum bk {
    BK_POSIX,
    BK_SYSV_KEY,
    BK_SYSV_FTOK,
    BK_FILE,
};

/* A fresh address of backend `b`, nothing there yet; removed after the test. */
const char *new_addr(enum bk b);
/* The SHML_BACKEND_* of b. */
int bk_backend(enum bk b);
/* posix and file addresses: the path of the object ("/dev/shm/NAME", the file). */
const char *object_path(const char *addr);
/* sysv key and ftok addresses: the key; sysv:id= of the segment behind it (-1 if none). */
int32_t addr_sysv_key(const char *addr);
int32_t addr_sysv_id(const char *addr);

/* FNV-1a 32 of bytes 0..155, the header's `check` (docs/FORMAT.md). */
uint32_t hdr_check(const struct shml_hdr *h);
/* Fill `h` as a creator would for `size` user bytes, with the given creator; state INIT. */
void hdr_make(struct shml_hdr *h, uint64_t size, int32_t creator_pid, uint64_t creator_start);
/* The map_size of a managed segment of `size` bytes with a 4 KiB header. */
uint64_t managed_map_size(uint64_t size);

/* shml_segment_stat() that must succeed; attach entries in `att` (up to 128). */
void stat_ok_at(const char *file, int line, const char *addr, struct shml_segment_info *info,
                struct shml_attach_info *att, size_t *att_n);
#define STAT_OK(addr, info, att, att_n) stat_ok_at(__FILE__, __LINE__, (addr), (info), (att), (att_n))
#define MAX_ATT 128
/* The entry of `pid` in att[0..n), or NULL. */
const struct shml_attach_info *find_att(const struct shml_attach_info *att, size_t n, pid_t pid);

/* Sum of live pages of /dev/shm that can be used (statvfs). */
uint64_t devshm_free(void);

/* Wait for the fork()ed child `pid` for up to timeout_ms; returns its wait status. A child
   still running then is killed, and the test fails ("child hung"). */
int wait_child(pid_t pid, int timeout_ms);

/* Open options with a timeout and flags (zeroed otherwise: kind any, role user). */
struct shml_segment_opts opts_of(uint32_t flags);

#endif
