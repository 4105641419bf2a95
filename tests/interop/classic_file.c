/*
 * classic_file - a memory-mapped file program written the textbook way (open, ftruncate,
 * mmap MAP_SHARED), without shmlink.
 */
#include "classic.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return classic_usage(argv[0], "PATH");
    const char *path = argv[2];
    if (strcmp(argv[1], "write") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
            perror("classic_file: open/ftruncate");
            return 1;
        }
        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            perror("classic_file: mmap");
            return 1;
        }
        classic_fill(p, size, (unsigned)atoi(argv[4]));
        msync(p, size, MS_SYNC);
        munmap(p, size);
        close(fd);
        return 0;
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror("classic_file: open");
        return 1;
    }
    const uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("classic_file: mmap");
        return 1;
    }
    if (strcmp(argv[1], "read") == 0 && argc == 5) {
        size_t size = strtoul(argv[3], NULL, 10);
        if ((size_t)st.st_size != size) {
            fprintf(stderr, "classic_file: file has %lld bytes, want %zu\n",
                    (long long)st.st_size, size);
            return 1;
        }
        return classic_verify("classic_file", p, size, (unsigned)atoi(argv[4]));
    }
    if (strcmp(argv[1], "read-managed") == 0 && argc == 4) {
        uint64_t off, size;
        if (classic_header("classic_file", p, (uint64_t)st.st_size, &off, &size))
            return 1;
        return classic_verify("classic_file", p + off, size, (unsigned)atoi(argv[3]));
    }
    return classic_usage(argv[0], "PATH");
}
