/*
 * shmlink/segment.h - named shared-memory segments over every backend Linux offers.
 *
 * One address string names a segment and its backend:
 *
 *   name, posix:name, posix:/name   POSIX shm_open("/name") (the default backend)
 *   sysv:1234, sysv:0x4d2           System V key
 *   sysv:/path/to/file#102          System V key from ftok(path, 102): the id is any number
 *                                   1 to INT_MAX whose low 8 bits (all ftok() uses) are not
 *                                   0, so #0x6666 means #102 (the canonical address says #102)
 *   sysv:id=32769                   an existing System V segment by id (what ipcs shows)
 *   file:/path/to/file              a regular file mapped MAP_SHARED; msync on demand and on close
 *   memfd:name                      anonymous memory (memfd_create), shared by fd inheritance
 *                                   or by passing the fd over a Unix socket
 *   win:name, win:Local\name        Windows named file mapping (Windows builds only)
 *
 * POSIX and memfd names are 1 to SHML_NAME_MAX bytes of printable ASCII or well-formed UTF-8,
 * except '/' (a name is flat, never a path) and '\' (Windows' namespace separator); no control
 * characters; not "." and no "..". A relative
 * file path is made absolute against the working directory at the call. A bad address fails
 * with -EINVAL and shml_last_error() says why.
 *
 * A *managed* segment (the default) starts with a header page described byte by byte in
 * docs/FORMAT.md: magic, layout version, kind, logical size, creator, an attach table. The
 * caller's bytes start page-aligned after it. A *raw* segment (SHML_RAW) is any object mapped
 * as plain bytes with no header: this is how shmlink reads what other programs made.
 *
 * fork(): a child may use the handles it inherits (the mapping is the same bytes), but they
 * stay the parent's: closing one in the child (or the child's exit) only unmaps it, and the
 * parent's attach entry stays. A child that wants to be seen attached opens the segment
 * again.
 *
 * SIGBUS: mapping a segment installs the library's SIGBUS handler (README "Truncated objects
 * and SIGBUS"; SHML_NO_SIGBUS_GUARD=1 opts out). If another process truncates the object, an
 * access to a page it no longer has does not kill the process: the whole mapping becomes
 * zero pages (shml_segment_data() reads zeros from then on) and every call on the segment
 * returns -SHML_ETRUNCATED. Faults outside shmlink's mappings go to the handler that was
 * there before, or to the default action.
 *
 * Concurrency: a shml_segment handle is process-local and not thread-safe by itself: a thread
 * may use a handle only while no other thread closes it. Several threads may read
 * shml_segment_data()/shml_segment_size() concurrently. Any number of processes may open the
 * same segment; the bytes themselves carry no synchronisation (see the sync API).
 */
#ifndef SHMLINK_SEGMENT_H
#define SHMLINK_SEGMENT_H

#include "shmlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shml_segment shml_segment; /* opaque, process-local */

/* Longest POSIX or memfd name, in bytes, without the leading '/' (the file name limit). */
#define SHML_NAME_MAX 255
/* Longest canonical address string, including the terminating NUL. */
#define SHML_ADDR_MAX 4200
/* Length of the label field in a managed header, including the terminating NUL. */
#define SHML_LABEL_MAX 64

/* Flags for struct shml_segment_opts.flags. */
#define SHML_RDONLY         0x0001u /* map read-only; writes fault */
#define SHML_RAW            0x0002u /* no header: map the object as plain bytes */
#define SHML_OPEN_OR_CREATE 0x0004u /* create: open the segment instead if it already exists */
#define SHML_HUGEPAGES      0x0008u /* back with huge pages (sysv: and memfd: backends) */
#define SHML_PREFAULT       0x0010u /* fault every page in at map time (no first-touch faults) */
#define SHML_NOATTACH       0x0020u /* open: do not record this process in the attach table */
#define SHML_WAIT           0x0080u /* open: wait for a segment that does not exist yet, up
                                       to opts->timeout_ns (see shml_segment_open()) */
#define SHML_OWNED          0x0040u /* create: the segment belongs to its creator; shml_gc()
                                       removes it once the creator and every process attached
                                       are gone (without it, it lives until removed) */

/* Segment kinds stored in a managed header. Channels add their own kinds. */
#define SHML_KIND_ANY   0u /* open: accept any kind */
#define SHML_KIND_PLAIN 1u /* a plain block of bytes */

/* Roles recorded in the attach table (free for applications above 0xff). */
#define SHML_ROLE_USER     0u
#define SHML_ROLE_CREATOR  1u
#define SHML_ROLE_PRODUCER 2u /* a channel endpoint that sends */
#define SHML_ROLE_CONSUMER 3u /* a channel endpoint that receives */
#define SHML_ROLE_ENDPOINT 4u /* a channel endpoint that does both */

/* Backends. */
#define SHML_BACKEND_POSIX 1
#define SHML_BACKEND_SYSV  2
#define SHML_BACKEND_FILE  3
#define SHML_BACKEND_MEMFD 4
#define SHML_BACKEND_WINDOWS 5

/* How long shml_segment_open() waits by default for a creator still initialising. */
#define SHML_OPEN_TIMEOUT_DEFAULT ((int64_t)1000000000)

/*
 * Options for creating and opening segments. `opts` may always be NULL for the defaults, which
 * are also what SHML_SEGMENT_OPTS_INIT gives:
 *   mode 0600 (0 also means 0600), no flags, timeout SHML_OPEN_TIMEOUT_DEFAULT, any kind,
 *   role SHML_ROLE_USER, no label.
 * Start from the macro and set fields: `size` and `reserved` follow the rule for structs
 * that can grow (common.h); a struct from `= {0}` has size 0 and is refused with -EINVAL.
 */
struct shml_segment_opts {
    uint32_t size;      /* sizeof(struct shml_segment_opts): SHML_SEGMENT_OPTS_INIT sets it */
    uint32_t mode;      /* permission bits for create (umask does not apply); 0 = 0600 */
    uint32_t flags;     /* SHML_RDONLY, SHML_RAW, ... */
    int64_t timeout_ns; /* open: how long to wait for a creator mid-initialisation, and with
                           SHML_WAIT for the segment to appear */
    uint32_t kind;      /* create: kind to record (0 = PLAIN); open: kind required (0 = any) */
    uint32_t role;      /* role recorded in the attach table */
    const char *label;  /* create: free-form schema/label text, < SHML_LABEL_MAX bytes */
    uint64_t reserved[11]; /* room for fields to come; zero */
};
#define SHML_SEGMENT_OPTS_INIT                                                                     \
    {(uint32_t)sizeof(struct shml_segment_opts), 0600u, 0u, SHML_OPEN_TIMEOUT_DEFAULT, 0u, 0u,     \
     NULL, {0}}

/*
 * Create a segment of `size` user bytes at `addr` and map it read-write.
 *
 * Managed segments are created with their header; memory is reserved up front so a full
 * /dev/shm (or file system) is reported here, never by a SIGBUS later. With SHML_RAW the object
 * is created with exactly `size` bytes and no header. With SHML_OPEN_OR_CREATE an existing
 * segment is opened instead (its size must be >= `size`), if the caller owns it (effective
 * uid): another user's is refused with -EACCES, since it may have been put there to receive
 * what the caller writes (shml_segment_open() opens it knowingly).
 *
 * Errors: -EINVAL bad address, size 0 or options (see shml_last_error()); -EEXIST exists;
 * -ENOSPC not enough room in /dev/shm or the file system, or (sysv) past SHMMAX/SHMALL;
 * -EFBIG past RLIMIT_FSIZE (file backend; checked before any byte is written, so SIGXFSZ is
 * not raised); -EOVERFLOW size too large to represent; -EACCES, -EPERM; -ENOMEM (huge pages:
 * none reserved); -ENOTSUP backend not available here; other -errno from the system.
 * On error nothing is left behind: a partly created object is removed.
 *
 * Ownership: on success *out is a new handle the caller closes with shml_segment_close().
 * Lifetime: by default a segment outlives its creator, like a file: it persists until
 * shml_segment_unlink() (memfd segments vanish with their last fd), and shml_gc() never
 * removes it, so one program may write it and exit and another read it later. With SHML_OWNED
 * (managed segments only) it belongs to its creator: once the creator and every process
 * attached to it are gone, shml_gc() removes it (temporary segments). Either way, a segment
 * whose creator died before finishing it is removed by shml_gc().
 */
SHML_API int shml_segment_create(const char *addr, size_t size, const struct shml_segment_opts *opts,
                                 shml_segment **out);

/*
 * Fills a new segment's data before anyone can open it: `seg` is the new segment, whose data
 * (shml_segment_data(), shml_segment_size() bytes) are zero; use it as any handle (write the
 * data, initialise a mutex in it, shml_segment_declare()), but do not close it. `arg` is what
 * was passed to shml_segment_create_init(). Return 0, or a negative -errno to abandon the
 * creation (which then returns that value, and the handle is gone).
 */
typedef int (*shml_segment_init_fn)(shml_segment *seg, void *arg);

/*
 * As shml_segment_create() for a managed segment, but `init` writes the data (a structure
 * with a mutex in it, say) before the segment is published: no opener can see the data
 * before init has returned (a POSIX segment gets its name only afterwards; on every backend
 * the header is marked ready only afterwards, so openers wait for it, up to their timeout).
 * init runs once, in the calling thread. If it returns < 0 nothing is left behind and that
 * value is returned. Errors as shml_segment_create(), and -EINVAL if init is NULL or
 * SHML_RAW is given (a raw segment has no header to publish it by).
 */
SHML_API int shml_segment_create_init(const char *addr, size_t size,
                                      const struct shml_segment_opts *opts,
                                      shml_segment_init_fn init, void *arg, shml_segment **out);

/*
 * Open an existing segment at `addr` and map it (read-only with SHML_RDONLY).
 *
 * A managed segment's header is validated completely before any offset in it is trusted. If
 * its creator is still initialising, open waits up to opts->timeout_ns. With SHML_WAIT, a
 * segment that does not exist yet is waited for too (a consumer started before its producer):
 * open looks again, every 1 ms at first and every 50 ms at most, until it appears; both waits
 * together last at most opts->timeout_ns (SHML_FOREVER: no limit; 0: no wait), and past it
 * open fails with -ETIMEDOUT. With SHML_RAW the whole
 * object is mapped as bytes, sized from the object itself. Unless SHML_NOATTACH is given, the
 * calling process is recorded in the attach table until close (a full table is not an error:
 * the attach is counted as untracked).
 *
 * Errors: -EINVAL bad address or options (see shml_last_error()), or the object there is not
 * a regular file (a FIFO or a device someone put at the name: refused at once, never waited
 * on); -ENOENT no such segment;
 * -EACCES permission denied; -SHML_ENOTSHML not a shmlink segment (open it with SHML_RAW);
 * -SHML_EVERSION layout version unknown to this library; -SHML_ECORRUPT header corrupt or
 * object truncated (or its creator died mid-initialisation); -SHML_ETRUNCATED the object is
 * sparse (on tmpfs, fewer pages than its size: made outside shmlink, it would fault once the
 * file system is full; not checked with SHML_RAW), or it was truncated while being opened;
 * -SHML_EWRONGKIND not the kind asked for; -ETIMEDOUT the creator did not finish
 * initialising in time (with SHML_WAIT: or the segment did not appear); -ECANCELED the
 * calling thread's cancellation token fired during one of those waits (sync.h);
 * -ENOTSUP memfd addresses (use shml_segment_from_fd()) or a backend not available here;
 * other -errno from the system.
 *
 * Ownership: on success *out is a new handle the caller closes with shml_segment_close().
 */
SHML_API int shml_segment_open(const char *addr, const struct shml_segment_opts *opts,
                               shml_segment **out);

/*
 * Open the segment behind a file descriptor (a memfd received from another process, or any
 * shared-memory fd). The fd is duplicated: the caller keeps ownership of `fd`.
 * Errors as shml_segment_open(); -EBADF if fd is not open.
 */
SHML_API int shml_segment_from_fd(int fd, const struct shml_segment_opts *opts,
                                  shml_segment **out);

/*
 * Unmap and release a handle: removes this process from the attach table and, for the file
 * backend, flushes the mapping to the file (msync) first. NULL is fine (returns 0).
 * Returns 0, or the -errno of a failed msync (the handle is released all the same).
 * The segment itself stays; see shml_segment_unlink(). Windows: a `win:` segment lives only
 * while some process has a handle to it (the tool's holder keeps those it creates), so closing
 * the last handle removes it.
 */
SHML_API int shml_segment_close(shml_segment *seg);

/*
 * Remove the segment named by `addr`. Processes that have it mapped keep their mapping; new
 * opens fail with -ENOENT. Errors: -EINVAL, -ENOENT, -EACCES, -EPERM, -ENOTSUP (memfd:
 * nothing to remove). Windows, `win:`: a section cannot be removed, only let go; unlink tells
 * the segment's holder (if the tool started one) to let go, and returns 0 when the name went
 * with it, or -EBUSY while other handles (the caller's own included) keep it: it goes with the
 * last of them, and opens succeed until then.
 */
SHML_API int shml_segment_unlink(const char *addr);

/* The caller's bytes (after the header when managed). Valid until close. */
SHML_API void *shml_segment_data(const shml_segment *seg);
/* Number of caller's bytes: the logical size (managed) or the object's size at open (raw). */
SHML_API size_t shml_segment_size(const shml_segment *seg);
/* The canonical address, e.g. "posix:/cam0", "sysv:id=32769", "file:/tmp/x", "memfd:buf". */
SHML_API const char *shml_segment_address(const shml_segment *seg);
/* SHML_BACKEND_* of the segment. */
SHML_API int shml_segment_backend(const shml_segment *seg);
/* true when the segment has a shmlink header (was not opened raw). */
SHML_API bool shml_segment_is_managed(const shml_segment *seg);

/*
 * The file descriptor behind the segment (posix, file, memfd backends), owned by the handle:
 * do not close it. Pass it to another process with shml_fd_send(). Returns the fd, or
 * -ENOTSUP for System V segments and on Windows (where shml_fd_send() and shml_fd_recv() are
 * -ENOTSUP too: another process opens the segment by its name).
 */
SHML_API int shml_segment_fd(const shml_segment *seg);

/*
 * Copy `len` bytes at `offset` of the caller's bytes into `buf` (read) or from `buf` (write),
 * safely even if another process shrinks the object meanwhile: posix, file and memfd segments
 * are read and written through the fd, so a truncated object gives -SHML_ETRUNCATED instead of
 * a SIGBUS. Bounds are checked first: offset + len past shml_segment_size() is -ERANGE and
 * nothing is copied. Returns len, or -ERANGE, -SHML_ETRUNCATED, -EBADF (write to a read-only
 * handle), -errno. Not atomic with respect to concurrent writers.
 */
SHML_API ssize_t shml_segment_read(const shml_segment *seg, size_t offset, void *buf, size_t len);
SHML_API ssize_t shml_segment_write(shml_segment *seg, size_t offset, const void *buf,
                                    size_t len);

/*
 * Check that the object is still as large as the mapping (another process may have truncated
 * it), and that no access faulted since (the library's SIGBUS handler then replaced the
 * mapping with zeros: README "Truncated objects and SIGBUS"). Returns 0, -SHML_ETRUNCATED, or
 * -errno. Racy by nature: a check, not a guarantee. Once an access faulted, this and every
 * other call on the segment return -SHML_ETRUNCATED.
 */
SHML_API int shml_segment_check(const shml_segment *seg);

/* Flush a file-backed segment to its file (msync MS_SYNC); 0 on other backends. */
SHML_API int shml_segment_sync(shml_segment *seg);

/*
 * Send the fd of `seg` over the connected Unix socket `sock` (SCM_RIGHTS), with the segment's
 * address so the receiver can name it. Returns 0 or -errno (-ENOTSUP for System V segments).
 */
SHML_API int shml_segment_send(int sock, const shml_segment *seg);
/*
 * Receive a segment sent with shml_segment_send() on `sock` and open it (as
 * shml_segment_from_fd() with `opts`). Waits up to timeout_ns for it. Returns 0 or -errno:
 * -ETIMEDOUT, -EPROTO (the peer sent something else), -ECONNRESET (the peer closed).
 */
SHML_API int shml_segment_recv(int sock, const struct shml_segment_opts *opts, int64_t timeout_ns,
                               shml_segment **out);

/* ---- declared objects: synchronisation objects a segment names, for tools to show ---- */

#define SHML_DECL_MUTEX    1u /* a shml_mutex */
#define SHML_DECL_EVENT    2u /* a shml_event */
#define SHML_DECL_SEM      3u /* a shml_sem */
#define SHML_DECL_MAX      8  /* entries in a header's directory */
#define SHML_DECL_NAME_MAX 24 /* bytes of a name, including the terminating NUL */

/*
 * Record in the header that the data holds a synchronisation object of `type` at `offset`
 * (bytes from shml_segment_data()), under `name`, so that `shmlink info` and
 * shml_segment_declared() can show its state (a mutex's holder and whether it is alive, an
 * event's generation, a semaphore's count). The object itself is not touched.
 * Errors: -EINVAL (raw segment, bad type, empty or too long name, offset misaligned or the
 * object past the end), -EBADF (read-only handle), -EEXIST (name declared), -ENOSPC (all
 * SHML_DECL_MAX entries used). Safe against concurrent declarations from any process.
 */
SHML_API int shml_segment_declare(shml_segment *seg, const char *name, uint32_t type,
                                  size_t offset);

/* ---- inspection: what exists, who is attached, what can be cleaned ---- */

/* One process in a managed segment's attach table. */
struct shml_attach_info {
    int32_t pid;
    uint32_t role;
    uint64_t start_time; /* process start time, clock ticks since boot (/proc/PID/stat) */
    int64_t since_ns;    /* when it attached, CLOCK_REALTIME nanoseconds */
    int alive;           /* 1 alive, 0 dead (or pid reused by another process), -1 unknown
                            (among others: a process of another pid namespace) */
    uint64_t reserved[4]; /* room for fields to come; zero today */
};

/* What shml_segment_stat() and shml_segment_list() report about one segment. */
struct shml_segment_info {
    char address[SHML_ADDR_MAX]; /* canonical address */
    int backend;                 /* SHML_BACKEND_* */
    int status;                  /* 0, or why the header could not be read (-EACCES, -SHML_*) */
    bool managed;                /* has a valid shmlink header */
    bool shmlink;                /* made by shmlink: managed, or its header failed validation
                                    (status says why: corrupt, other version, initialising) */
    uint32_t kind;               /* managed: SHML_KIND_* */
    uint32_t version;            /* managed: layout version */
    uint32_t header_size;        /* managed: bytes before the caller's data */
    uint32_t hdr_flags;          /* managed: SHML_HUGEPAGES, SHML_OWNED as created */
    uint64_t size;               /* caller's bytes: logical size, or the object's size if raw */
    uint64_t object_size;        /* bytes the object has in the system */
    uint32_t mode;               /* permission bits */
    uint32_t uid;                /* owner */
    int32_t creator_pid;         /* managed: creator; sysv: shm_cpid; else 0 */
    uint64_t creator_start;      /* managed: creator start time (ticks since boot) */
    int creator_alive;           /* 1, 0, or -1 unknown */
    uint32_t attached;           /* managed: live attach entries; sysv raw: nattch */
    uint32_t attach_dead;        /* managed: entries whose process is dead */
    uint32_t untracked;          /* managed: attaches not in the table (it was full) */
    int64_t created_ns;          /* CLOCK_REALTIME ns: header (managed) or object change time */
    bool other_boot;             /* managed: created before the last reboot (file backend) */
    char label[SHML_LABEL_MAX];  /* managed: label given at create */
    int32_t sysv_id;             /* sysv: the segment's id (what ipcs shows); else -1 */
    uint32_t sysv_key;           /* sysv: its key (an ftok address's resolved), 0 for
                                    IPC_PRIVATE; else 0 */
    uint64_t reserved[8];        /* room for fields to come; zero today */
};

/*
 * Describe the segment at `addr` without attaching to it. If `att` is not NULL, up to
 * `att_cap` attach entries are copied there and *att_n (if not NULL) receives how many live
 * or dead entries the table holds. Foreign objects are described as raw (managed == false).
 * Errors: -EINVAL (also: not a regular file, as shml_segment_open()), -ENOENT, -errno.
 * Neither a managed header that fails validation nor a segment the caller may not open is an
 * error of this call: info->status says why (-EACCES:
 * described from what the system shows anyone, /dev/shm's entry or /proc/sysvipc/shm: size,
 * mode, owner; System V: creator and attach count too) and managed is false.
 */
SHML_API int shml_segment_stat(const char *addr, struct shml_segment_info *info,
                               struct shml_attach_info *att, size_t att_cap, size_t *att_n);

/* Flags for shml_segment_list() and shml_gc(). */
#define SHML_LIST_ALL 0x1u /* also foreign POSIX objects in /dev/shm and System V segments */

/*
 * List segments: shmlink's POSIX and System V segments (`shmlink` set, including those whose
 * header fails validation), those the caller may not open (status -EACCES: they may be
 * shmlink's), and with SHML_LIST_ALL every POSIX object in /dev/shm and every System V
 * segment. File and memfd segments cannot be enumerated.
 * On success *out is an array of *count entries sorted by address, which the caller frees
 * with shml_free(). Errors: -ENOMEM, -errno reading /dev/shm or /proc/sysvipc/shm.
 */
SHML_API int shml_segment_list(unsigned flags, struct shml_segment_info **out, size_t *count);

/*
 * Remove the shmlink segments that are provably abandoned, and nothing else:
 *   - owned segments (created with SHML_OWNED) whose creator is dead, whose attach table holds
 *     no live process and no untracked attach, and that no process maps (System V nattch,
 *     /proc/PID/maps);
 *   - segments whose creator died before finishing them (the header was never published, or
 *     is corrupt) that no process maps and that are older than 5 seconds;
 *   - temporary objects of creators that died mid-creation (/dev/shm/.shml-tmp-PID-N).
 * A segment made to outlive its creator (the default) is never removed, whoever is alive;
 * foreign segments and segments of other layout versions are never touched. What cannot be
 * told is kept: a caller other than root cannot read another user's /proc/PID/maps, so a
 * POSIX segment such a process could map stays. At removal the object under the name is
 * checked to be the one judged (same creator, creation time and size, still abandoned, and
 * for POSIX the same inode, by moving the name aside first; System V is removed by id), so a
 * segment made again under the same name meanwhile is never removed. With `dry_run`
 * nothing is removed. If `removed` is not NULL, *removed gets an array (free with
 * shml_free()) of the segments removed (or that would be), *n_removed their number.
 * Returns 0 or -errno (-ENOMEM; per-segment failures are skipped, not fatal).
 */
SHML_API int shml_gc(bool dry_run, struct shml_segment_info **removed, size_t *n_removed);

/* What shml_gc_verdict() says of a segment. */
#define SHML_GC_KEEP_FOREIGN    0 /* not made by shmlink: never touched */
#define SHML_GC_KEEP_PERSISTENT 1 /* made to outlive its creator: lives until removed */
#define SHML_GC_KEEP_IN_USE     2 /* owned, and its creator or an attached process is alive,
                                     or some process maps it */
#define SHML_GC_KEEP_UNKNOWN    3 /* another layout version, still being created, or not
                                     readable by the caller */
#define SHML_GC_REMOVE_ORPHANED 4 /* owned, and its creator and every attached process are gone */
#define SHML_GC_REMOVE_UNFINISHED 5 /* its creator died before finishing it */

/*
 * Would shml_gc() remove the segment `info` describes (as filled by shml_segment_stat() or
 * shml_segment_list()), and why? Returns one of SHML_GC_*: the REMOVE_ ones are what shml_gc()
 * removes. If `why` is not NULL, *why gets a static sentence saying so ("persistent: lives
 * until removed"). Looks at /proc (which processes map the segment) for the candidates only.
 * Returns -EINVAL if info is NULL. Thread-safe.
 */
SHML_API int shml_gc_verdict(const struct shml_segment_info *info, const char **why);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_SEGMENT_H */
