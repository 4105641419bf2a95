/*
 * depth.c - the README's C -> Python example: a depth camera writes 100 frames of 480x640
 * float32 into a typed latest-value channel "depth"; examples/depth.py reads them as numpy.
 */
#include <shmlink.h>

int main(void)
{
    struct shml_channel_type t = {.format = "<f", .itemsize = 4, .ndim = 2, .shape = {480, 640}};
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_LATEST;
    o.type = &t;
    shml_channel *ch;
    if (shml_channel_create("depth", &o, &ch) < 0)
        return 1;
    for (int i = 0; i < 100; i++) {
        float *img;
        shml_claim(ch, sizeof(float) * 480 * 640, (void **)&img, SHML_FOREVER);
        for (int k = 0; k < 480 * 640; k++)
            img[k] = (float)i;
        shml_commit(ch, sizeof(float) * 480 * 640); /* written in place: no copy */
    }
    shml_channel_close(ch); /* the channel stays until shml_segment_unlink("depth") */
    return 0;
}
