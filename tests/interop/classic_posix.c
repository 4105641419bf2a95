/*
 * classic_posix - a POSIX shared memory program written the textbook way (shm_open, ftruncate,
 * mmap), without shmlink, to show that shmlink reads what such programs make and the reverse.
 */
#include "classic.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return classic_usage(argv[0], "NAME");
    char name[300];
    snprintf(name, sizeof name, "/%s", argv[2]);
    if (strcmp(argv[1], "write") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
            perror("classic_posix: shm_open/ftruncate");
            return 1;
        }
        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            perror("classic_posix: mmap");
            return 1;
        }
        classic_fill(p, size, (unsigned)atoi(argv[4]));
        munmap(p, size);
        close(fd);
        return 0;
    }
    int fd = shm_open(name, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror("classic_posix: shm_open");
        return 1;
    }
    const uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("classic_posix: mmap");
        return 1;
    }
    if (strcmp(argv[1], "read") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        if ((size_t)st.st_size != size) {
            fprintf(stderr, "classic_posix: object has %lld bytes, want %zu\n",
                    (long long)st.st_size, size);
            return 1;
        }
        return classic_verify("classic_posix", p, size, (unsigned)atoi(argv[4]));
    }
    if (strcmp(argv[1], "read-managed") == 0 && argc == 4) {
        uint64_t off, size;
        if (classic_header("classic_posix", p, (uint64_t)st.st_size, &off, &size))
            return 1;
        return classic_verify("classic_posix", p + off, size, (unsigned)atoi(argv[3]));
    }
    return classic_usage(argv[0], "NAME");
}
