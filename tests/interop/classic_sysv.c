/*
 * classic_sysv - a System V shared memory program written the textbook way (shmget, shmat),
 * without shmlink. `write` prints the new segment's id.
 */
#include "classic.h"

#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return classic_usage(argv[0], "KEY");
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    if (strcmp(argv[1], "write") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
        if (id < 0) {
            perror("classic_sysv: shmget");
            return 1;
        }
        printf("%d\n", id);
        uint8_t *p = shmat(id, NULL, 0);
        if (p == (void *)-1) {
            perror("classic_sysv: shmat");
            return 1;
        }
        classic_fill(p, size, (unsigned)atoi(argv[4]));
        shmdt(p);
        return 0;
    }
    int id = shmget(key, 0, 0);
    struct shmid_ds ds;
    if (id < 0 || shmctl(id, IPC_STAT, &ds) != 0) {
        perror("classic_sysv: shmget");
        return 1;
    }
    const uint8_t *p = shmat(id, NULL, SHM_RDONLY);
    if (p == (void *)-1) {
        perror("classic_sysv: shmat");
        return 1;
    }
    int rc;
    if (strcmp(argv[1], "read") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        if (ds.shm_segsz != size) {
            fprintf(stderr, "classic_sysv: segment has %zu bytes, want %zu\n",
                    (size_t)ds.shm_segsz, size);
            return 1;
        }
        rc = classic_verify("classic_sysv", p, size, (unsigned)atoi(argv[4]));
    } else if (strcmp(argv[1], "read-managed") == 0 && argc == 4) {
        uint64_t off, size;
        rc = classic_header("classic_sysv", p, ds.shm_segsz, &off, &size) ||
             classic_verify("classic_sysv", p + off, size, (unsigned)atoi(argv[3]));
    } else {
        rc = classic_usage(argv[0], "KEY");
    }
    shmdt(p);
    return rc;
}
