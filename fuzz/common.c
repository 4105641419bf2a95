/*
 * common.c - see common.h.
 */
#include "common.h"

#include <shmlink.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files of earlier runs that crashed, and so never removed theirs: those of processes that no
   longer exist. */
static void remove_stale(const char *tag)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shml-fuzz-%s.", tag);
    size_t plen = strlen(prefix);
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int pid, k;
        if (strncmp(e->d_name, prefix, plen) != 0 ||
            sscanf(e->d_name + plen, "%d.%d", &pid, &k) != 2 || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/dev/shm/%.250s", e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

void fuzz_tmpfile(const char *tag, int n, char *path, size_t path_cap, char *addr,
                  size_t addr_cap)
{
    static bool cleaned;
    if (!cleaned) {
        remove_stale(tag);
        cleaned = true;
    }
    snprintf(path, path_cap, "/dev/shm/shml-fuzz-%s.%d.%d", tag, (int)getpid(), n);
    snprintf(addr, addr_cap, "posix:/shml-fuzz-%s.%d.%d", tag, (int)getpid(), n);
}

void fuzz_on_finding(void *ctx, int repaired, const char *finding)
{
    (void)ctx;
    (void)repaired;
    if (!finding)
        abort();
    (void)strlen(finding);
}

void fuzz_env_fail(const char *what, const char *addr)
{
    fprintf(stderr, "%s %s: %s\n", what, addr, shml_last_error());
    abort();
}
