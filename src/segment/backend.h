/*
 * backend.h - what segment.c needs from each backend (posix, sysv, file, memfd, win32), and the
 * parsed form of an address. One backend per file; the build picks the files of the platform.
 */
#ifndef SHML_SEGMENT_BACKEND_H
#define SHML_SEGMENT_BACKEND_H

#include "internal.h"
#include "layout.h"
#include "shmlink/segment.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* A parsed address (see shmlink/segment.h for the syntax). */
struct shml__addr {
    int backend;                   /* SHML_BACKEND_* */
    char name[SHML_NAME_MAX + 8];  /* posix: "/name"; memfd: the name; win: "Local\\name" or
                                      "Global\\name", the kernel object's name */
    char path[PATH_MAX];           /* file: the path; sysv ftok: the path */
    int proj;                      /* sysv ftok: project id 1..255 (the low 8 bits given) */
    bool has_key;                  /* sysv: key given (number or ftok) */
    int32_t key;                   /* sysv: the key (resolved at open for ftok) */
    bool has_id;                   /* sysv: id= given */
    int32_t shmid;                 /* sysv: the id */
    char canon[SHML_ADDR_MAX];     /* canonical address */
};

/*
 * Parse `s` into `a`. Returns 0 or -EINVAL (with the reason recorded). Pure: touches no system
 * object (ftok keys are resolved by the backend) and accepts every backend's syntax on every
 * platform; a backend this build lacks is -ENOTSUP when a call tries to use it.
 */
SHML_INTERNAL int shml__addr_parse(const char *s, struct shml__addr *a);

/*
 * Parse `s` as shml__addr_parse() does, then make a relative file path absolute against the
 * working directory, so the canonical address means the same thing from any directory.
 */
SHML_INTERNAL int shml__addr_resolve(const char *s, struct shml__addr *a);

/*
 * The System V key a key or ftok address names (ftok() is asked for the latter). Returns 0,
 * or the -errno of ftok() (the path is missing, say). Defined by the System V backend.
 */
SHML_INTERNAL int shml__sysv_key(const struct shml__addr *a, int32_t *key);

/*
 * An OS object opened by a backend. Its fields are the backends'; the core goes through the
 * helpers below, which a platform with other handles defines for its own.
 */
struct shml__obj {
    int fd;              /* posix, file, memfd: the descriptor; -1 for sysv */
    int shmid;           /* sysv: the id; -1 otherwise */
    void *section;       /* Windows: the file mapping object's handle; NULL otherwise */
    void *file;          /* Windows, file: the file's handle; NULL otherwise */
    void *marker;        /* Windows, win: the creation marker of a managed segment this call
                            made (win32_segment.c); NULL otherwise */
    bool created;        /* made by this call */
    char tmp[PATH_MAX];  /* created hidden: the temporary name until published, else "" */
};

/* An object nothing is opened in yet: what every struct shml__obj starts as. */
#define SHML__OBJ_CLOSED {.fd = -1, .shmid = -1}

/* Does `o` hold an opened object? */
static inline bool shml__obj_is_open(const struct shml__obj *o)
{
    return o->fd >= 0 || o->shmid >= 0 || o->section != NULL || o->file != NULL;
}

/* The object's id where it has one (sysv), else -1 (describe_unopened's `id`). */
static inline int32_t shml__obj_id(const struct shml__obj *o)
{
    return o->shmid;
}

/*
 * The descriptor of an fd-backed object (what shml_segment_fd() and shml_segment_send()
 * hand out), or -1 for an object that has none.
 */
static inline int shml__obj_fd(const struct shml__obj *o)
{
    return o->fd;
}

/* Make `o` the object behind descriptor `fd`, which it owns from now on. */
static inline void shml__obj_adopt_fd(struct shml__obj *o, int fd)
{
    o->fd = fd;
}

/* Temporary objects of creators at work are named PREFIX-PID-N (in /dev/shm, or beside the
   file); shml_gc() removes those whose PID is dead. */
#define SHML_TMP_PREFIX ".shml-tmp"

/* What a backend knows of its object without mapping it. */
struct shml__objstat {
    uint64_t size;     /* bytes the object has now */
    uint32_t mode;     /* permission bits */
    uint32_t uid;      /* owner */
    int64_t ctime_ns;  /* last status change, CLOCK_REALTIME ns */
    int32_t cpid;      /* sysv: creator pid, else 0 */
    int32_t nattch;    /* sysv: attach count, else -1 */
    uint64_t unbacked; /* bytes known to have no memory behind them (sparse on tmpfs), else 0 */
    int32_t sysv_id;   /* sysv: the segment's id and key; -1 and 0 otherwise */
    uint32_t sysv_key;
};

/*
 * What a backend's list finds, one object at a time: `a` its address, `shown` the address a
 * listing gives it, and `outside` a description made without opening it (for an object not
 * worth opening: a name shmlink would never make), or NULL. A non-zero return stops the list.
 */
typedef int (*shml__list_fn)(void *ctx, const struct shml__addr *a, const char *shown,
                             const struct shml_segment_info *outside);
/* What a backend's gc of temporaries removed (or would): the address and the dead pid. */
typedef int (*shml__tmp_fn)(void *ctx, const char *addr, int32_t pid);

struct shml__backend {
    const char *name;
    /*
     * Create the object with exactly `size` bytes, memory reserved (fallocate or the system's
     * equivalent), `mode` permissions. -EEXIST if it exists. On error nothing is left. With
     * `hidden` (only asked of backends that have publish), the object is made under a
     * temporary name that no opener looks for, and appears under its own name at publish.
     */
    int (*create)(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                  bool hidden, struct shml__obj *o);
    /*
     * Give a hidden object its name, atomically: openers see nothing, then the finished
     * object. -EEXIST if the name is taken (the hidden object stays, for discard). NULL for
     * backends whose objects are visible from creation (sysv) or never named (memfd).
     */
    int (*publish)(const struct shml__addr *a, struct shml__obj *o);
    /* Open the existing object. */
    int (*open)(const struct shml__addr *a, bool rdonly, struct shml__obj *o);
    int (*stat)(const struct shml__obj *o, struct shml__objstat *st);
    /* Map `len` bytes from offset 0. */
    int (*map)(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags, void **base);
    void (*unmap)(const struct shml__obj *o, void *base, size_t len);
    /*
     * Copy bytes at object offset `off` without touching the mapping where the backend can
     * (so a truncated object gives -SHML_ETRUNCATED, not SIGBUS). `base` is the mapping (may be
     * NULL when nothing is mapped yet, for backends that do not need it).
     */
    ssize_t (*pread)(const struct shml__obj *o, void *base, uint64_t off, void *buf, size_t len);
    ssize_t (*pwrite)(const struct shml__obj *o, void *base, uint64_t off, const void *buf,
                      size_t len);
    /* Flush to backing store (file backend); NULL when meaningless. */
    int (*sync)(const struct shml__obj *o, void *base, size_t len);
    int (*unlink)(const struct shml__addr *a);
    /* Remove a just-created object (hidden or not) after a failure later in create. */
    void (*discard)(const struct shml__addr *a, const struct shml__obj *o);
    /*
     * gc: remove the object named by `a` only if it is still `o` (opened earlier, and judged
     * abandoned): never a newer object made under the same name meanwhile. Returns 0 removed,
     * -ESTALE the name holds another object now (left alone), -errno. NULL for backends gc
     * never lists (file, memfd).
     */
    int (*remove_same)(const struct shml__addr *a, const struct shml__obj *o);
    void (*release)(struct shml__obj *o);

    /* ---- inspection (inspect.c); NULL where the backend has nothing to offer ---- */
    /*
     * Enumerate the objects of this backend that exist now (shml_segment_list()), calling
     * each() for every one. Returns 0, each()'s first non-zero return, or -errno when the
     * objects cannot be enumerated.
     */
    int (*list)(shml__list_fn each, void *ctx);
    /*
     * Describe into `info`, with status `err`, an object the caller may not open or stat,
     * from what the system shows anyone (a directory entry, the kernel's table); `id` is the
     * object's id where it has one and it is known (sysv), else -1. Returns 0, or `err` when
     * not even that can be found.
     */
    int (*describe_unopened)(const struct shml__addr *a, int32_t id,
                             struct shml_segment_info *info, int err);
    /*
     * Does any process map the object at `a`? Asks the system, which also sees untracked
     * openers. 1 yes, 0 no, -1 cannot tell.
     */
    int (*mapped)(const struct shml__addr *a);
    /*
     * Remove (unless dry_run) the temporary objects of creators that died before publishing
     * (SHML_TMP_PREFIX), calling each() for every one. 0, or each()'s first non-zero return.
     */
    int (*gc_temporaries)(bool dry_run, shml__tmp_fn each, void *ctx);
};

/* The backend of SHML_BACKEND_* `backend` on this platform, or NULL; 1..SHML__BACKEND_LAST. */
SHML_INTERNAL const struct shml__backend *shml__backend_get(int backend);
#define SHML__BACKEND_LAST SHML_BACKEND_WINDOWS

/* Backends of this platform (NULL where the build has none). */
extern SHML_INTERNAL const struct shml__backend shml__backend_posix;
extern SHML_INTERNAL const struct shml__backend shml__backend_sysv;
extern SHML_INTERNAL const struct shml__backend shml__backend_file;
extern SHML_INTERNAL const struct shml__backend shml__backend_memfd;
extern SHML_INTERNAL const struct shml__backend shml__backend_win;

/*
 * shml_segment_create(), calling init(seg, ctx) on the fresh (all-zero) data of a
 * managed segment before it is published READY, so that no opener ever sees the data before
 * the creator's layout is in it (channels build their control block this way). An init that
 * returns < 0 undoes the creation.
 */
typedef shml_segment_init_fn shml__init_fn;
/* The kind recorded in a managed segment's header; 0 for a raw one. */
SHML_INTERNAL uint32_t shml__segment_kind(const shml_segment *seg);
/*
 * 0, or -SHML_ETRUNCATED (said) once a fault in the mapping showed that the object shrank under
 * it (os.h, shml__os_guard_add): the mapping holds zeros since, and every call on the segment
 * and its channels reports this.
 */
SHML_INTERNAL int shml__segment_lost(const shml_segment *seg);
/* The permission bits of the segment's object (0600 if the backend cannot tell). */
SHML_INTERNAL uint32_t shml__segment_mode(const shml_segment *seg);
SHML_INTERNAL int shml__segment_create_with(const char *addr, size_t size,
                                            const struct shml_segment_opts *opts,
                                            shml__init_fn init, void *ctx, shml_segment **out);

/* Huge pages enough for `size` bytes are free, or -ENOMEM saying how to reserve them. */
SHML_INTERNAL int shml__hugepages_check(uint64_t size);

/* Shared by the fd-based backends (fd_common.c). */
SHML_INTERNAL int shml__fd_stat(const struct shml__obj *o, struct shml__objstat *st);
SHML_INTERNAL int shml__fd_map(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags,
                               void **base);
SHML_INTERNAL void shml__fd_unmap(const struct shml__obj *o, void *base, size_t len);
SHML_INTERNAL ssize_t shml__fd_pread(const struct shml__obj *o, void *base, uint64_t off,
                                     void *buf, size_t len);
SHML_INTERNAL ssize_t shml__fd_pwrite(const struct shml__obj *o, void *base, uint64_t off,
                                      const void *buf, size_t len);
SHML_INTERNAL void shml__fd_release(struct shml__obj *o);
/*
 * Describe the object at file system path `path` from its directory entry (size, mode,
 * owner, change time) into `info`, with status `err` (a describe_unopened for fd backends).
 * Returns 0, or `err` when the entry says nothing.
 */
SHML_INTERNAL int shml__fd_describe_path(const char *path, struct shml_segment_info *info,
                                         int err);
/*
 * Check an object opened by name with O_NONBLOCK: a FIFO (or a device) that someone put at the
 * name would block open() until a writer came, and cannot be mapped anyway. Returns 0 for a
 * regular file, whose O_NONBLOCK is then cleared, or -EINVAL saying "PATH is a FIFO, not
 * EXPECTED" (a character device, a directory, ...). The caller closes `fd` on error.
 */
SHML_INTERNAL int shml__fd_check_regular(int fd, const char *path, const char *expected);
/* A fresh temporary name "BEFORE.shml-tmp-PID-RANDOM" into buf; 0 or -ENAMETOOLONG. */
SHML_INTERNAL int shml__tmp_name(char *buf, size_t cap, const char *before);
/* How many fresh temporary names create tries before it gives up (each taken: -EEXIST). */
#define SHML_TMP_TRIES 8
/*
 * Prepare a new fd-backed object: set its mode (the umask must not apply), size it and reserve
 * its memory; `what` names it in error details.
 */
SHML_INTERNAL int shml__fd_setup(int fd, uint32_t mode, uint64_t size, const char *what);

/* ---- the managed header (header.c) ---- */

/* Fill a fresh header (state stays INIT; check computed). */
SHML_INTERNAL void shml__hdr_init(struct shml_hdr *h, uint32_t kind, uint32_t flags,
                                  uint32_t header_size, uint64_t size, uint64_t map_size,
                                  const char *label);
/* FNV-1a 32 over the checked bytes. */
SHML_INTERNAL uint32_t shml__hdr_checksum(const struct shml_hdr *h);
/*
 * Validate a header image of `len` bytes read from an object of `object_size` bytes. Reads the
 * image only; never follows an offset before checking it. Returns 0, -SHML_ENOTSHML,
 * -SHML_EVERSION, -SHML_ECORRUPT (reason recorded), or -EAGAIN if the header is still being
 * initialised (blank or state INIT).
 */
SHML_INTERNAL int shml__hdr_validate(const void *image, size_t len, uint64_t object_size);
/* Round up to a multiple of `align` (a power of two); 0 on overflow. */
SHML_INTERNAL uint64_t shml__round_up(uint64_t v, uint64_t align);

/* ---- attach table (header.c) ---- */

/* Record (pid, start, role) in a free entry; returns the slot or -ENOSPC (table full). */
SHML_INTERNAL int shml__attach_add(struct shml_hdr *h, int32_t pid, uint64_t start, uint32_t role);
SHML_INTERNAL void shml__attach_remove(struct shml_hdr *h, int slot, int32_t pid);
/* Free entries whose process is dead; returns how many were reclaimed. */
SHML_INTERNAL int shml__attach_reap(struct shml_hdr *h);

#endif /* SHML_SEGMENT_BACKEND_H */
