/*
 * tmpfile.c - see tmpfile.h.
 */
#include "tmpfile.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
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
