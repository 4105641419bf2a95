/*
 * hello.c - the README's C example, whole: create a segment, write into it, open it again as
 * another process would, read it back, and remove it.
 * Usage: hello [ADDRESS]   (default posix:/hello)
 */
#include <shmlink.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "posix:/hello";
    shml_segment *seg;
    int r = shml_segment_create(addr, 4096, NULL, &seg); /* mode 0600 */
    if (r < 0) {
        fprintf(stderr, "create %s: %s (%s)\n", addr, shml_strerror(r), shml_last_error());
        return 1;
    }
    strcpy(shml_segment_data(seg), "hello from C");

    /* What any other process does: open by address, read the bytes. */
    shml_segment *peer;
    r = shml_segment_open(addr, NULL, &peer);
    if (r < 0) {
        fprintf(stderr, "open %s: %s (%s)\n", addr, shml_strerror(r), shml_last_error());
        shml_segment_close(seg);
        shml_segment_unlink(addr);
        return 1;
    }
    printf("%s holds \"%s\" (%zu bytes)\n", shml_segment_address(peer),
           (const char *)shml_segment_data(peer), shml_segment_size(peer));

    shml_segment_close(peer);
    shml_segment_close(seg);
    return shml_segment_unlink(addr) < 0;
}
