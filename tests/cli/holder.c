/*
 * holder.c - a process that stays attached to segments, for the CLI's golden tests.
 *
 * The tool itself never stays attached (it opens with SHML_NOATTACH and exits), so to show a
 * live or a dead attach entry, and to keep gc off a segment, the tests need a peer that opens
 * segments the ordinary way and holds them: `holder ADDR...` opens each, prints "ready", and
 * closes them when stdin reaches EOF. Killed with SIGKILL instead, it leaves dead entries.
 */
#include "shmlink.h"

#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    shml_segment *segs[64] = {0};
    int n = argc - 1;
    if (n < 1 || n > 64) {
        fprintf(stderr, "usage: holder ADDR... (1 to 64)\n");
        return 2;
    }
    for (int i = 0; i < n; i++) {
        int rc = shml_segment_open(argv[i + 1], NULL, &segs[i]);
        if (rc < 0) {
            fprintf(stderr, "holder: open %s: %s (%s)\n", argv[i + 1], shml_strerror(rc),
                    shml_last_error());
            for (int k = 0; k < i; k++)
                shml_segment_close(segs[k]);
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0)
        ;
    for (int i = 0; i < n; i++)
        shml_segment_close(segs[i]);
    return 0;
}
