#include "seg_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bk_backend(enum bk b)
{
    switch (b) {
    case BK_POSIX:
        return SHML_BACKEND_POSIX;
    case BK_SYSV_KEY:
    case BK_SYSV_FTOK:
        return SHML_BACKEND_SYSV;
    case BK_FILE:
        return SHML_BACKEND_FILE;
    }
    return -1;
}

/* An ftok key for a fresh file, with a project id that no segment uses yet. */
static const char *ftok_addr(void)
{
    const char *dir = shmt_tmpdir();
    const char *path = shmt_fmt("%s/ftok", dir);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_SYS(fd);
    close(fd);
    for (int i = 0; i < 255; i++) {
        int proj = 1 + (int)((getpid() + i) % 255);
        key_t key = ftok(path, proj);
        ASSERT_SYS(key);
        if (shmget(key, 0, 0) == -1 && errno == ENOENT) {
            shmt_cleanup_sysv_key(key);
            return shmt_fmt("sysv:%s#%d", path, proj);
        }
    }
    shmt_fail(__FILE__, __LINE__, "no free ftok key for %s", path);
}

const char *new_addr(enum bk b)
{
    switch (b) {
    case BK_POSIX:
        return shmt_addr();
    case BK_SYSV_KEY:
        return shmt_fmt("sysv:0x%x", (unsigned)shmt_sysv_key());
    case BK_SYSV_FTOK:
        return ftok_addr();
    case BK_FILE:
        return shmt_fmt("file:%s/seg", shmt_tmpdir());
    }
    shmt_fail(__FILE__, __LINE__, "bad backend %d", (int)b);
}

const char *object_path(const char *addr)
{
    if (strncmp(addr, "posix:/", 7) == 0)
        return shmt_fmt("/dev/shm/%s", addr + 7);
    if (strncmp(addr, "file:", 5) == 0)
        return addr + 5;
    shmt_fail(__FILE__, __LINE__, "%s has no path", addr);
}

int32_t addr_sysv_key(const char *addr)
{
    if (strncmp(addr, "sysv:", 5) != 0)
        shmt_fail(__FILE__, __LINE__, "%s is not a sysv address", addr);
    const char *hash = strrchr(addr, '#');
    if (addr[5] == '/' && hash) {
        char path[4096];
        snprintf(path, sizeof path, "%.*s", (int)(hash - addr - 5), addr + 5);
        key_t key = ftok(path, atoi(hash + 1));
        ASSERT_SYS(key);
        return key;
    }
    return (int32_t)strtoul(addr + 5, NULL, 0);
}

int32_t addr_sysv_id(const char *addr)
{
    return shmget(addr_sysv_key(addr), 0, 0);
}

uint32_t hdr_check(const struct shml_hdr *h)
{
    const uint8_t *b = (const uint8_t *)h;
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < SHML_HDR_CHECKED_LEN; i++) {
        x ^= b[i];
        x *= 16777619u;
    }
    return x;
}

uint64_t managed_map_size(uint64_t size)
{
    return 4096 + ((size + 4095) & ~(uint64_t)4095);
}

static void read_boot_id(uint8_t out[16])
{
    memset(out, 0, 16);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    char s[64] = "";
    if (fgets(s, sizeof s, f)) {
        int n = 0;
        for (const char *p = s; *p && n < 32; p++) {
            int v;
            if (*p >= '0' && *p <= '9')
                v = *p - '0';
            else if (*p >= 'a' && *p <= 'f')
                v = *p - 'a' + 10;
            else
                continue;
            out[n / 2] = (uint8_t)(out[n / 2] | (n % 2 ? v : v << 4));
            n++;
        }
    }
    fclose(f);
}

void hdr_make(struct shml_hdr *h, uint64_t size, int32_t creator_pid, uint64_t creator_start)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, SHML_MAGIC_BYTES, SHML_MAGIC_LEN);
    h->version = SHML_LAYOUT_VERSION;
    h->header_size = 4096;
    h->kind = SHML_KIND_PLAIN;
    h->flags = 0;
    h->size = size;
    h->map_size = managed_map_size(size);
    h->creator_pid = creator_pid;
    h->owner_uid = (uint32_t)geteuid();
    h->creator_start = creator_start;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    read_boot_id(h->boot_id);
    snprintf(h->label, sizeof h->label, "hand-made");
    h->attach_off = SHML_ATTACH_OFF;
    h->attach_cap = SHML_ATTACH_CAP;
    h->attach_size = SHML_ATTACH_SIZE;
    h->check = hdr_check(h);
    atomic_store_explicit(&h->state, SHML_STATE_INIT, memory_order_relaxed);
}

void stat_ok_at(const char *file, int line, const char *addr, struct shml_segment_info *info,
                struct shml_attach_info *att, size_t *att_n)
{
    memset(info, 0xa5, sizeof *info);
    int r = shml_segment_stat(addr, info, att, att ? MAX_ATT : 0, att_n);
    if (r < 0)
        shmt_fail(file, line, "shml_segment_stat(%s) = %d (-%s): %s -- %s", addr, r,
                  shmt_errname(r), shml_strerror(r), shml_last_error());
}

const struct shml_attach_info *find_att(const struct shml_attach_info *att, size_t n, pid_t pid)
{
    if (n > MAX_ATT)
        n = MAX_ATT;
    for (size_t i = 0; i < n; i++)
        if (att[i].pid == pid)
            return &att[i];
    return NULL;
}

uint64_t devshm_free(void)
{
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) != 0)
        return 0;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

struct shml_segment_opts opts_of(uint32_t flags)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = flags;
    return o;
}

int wait_child(pid_t pid, int timeout_ms)
{
    int st;
    int64_t deadline = shmt_now_ms() + timeout_ms;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (shmt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            shmt_fail(__FILE__, __LINE__, "child hung");
        }
        shmt_sleep_ms(5);
    }
    return st;
}
