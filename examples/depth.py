"""depth.py - the README's Python side: read the newest frame examples/depth.c wrote."""
import shmlink

with shmlink.Latest("depth") as cam:            # a reader
    img = cam.recv_array(timeout=1.0)           # numpy float32 (480, 640), a copy
    print(img.dtype, img.shape, img.mean())     # float32 (480, 640) 99.0
    assert (img.dtype.name, img.shape, float(img.mean())) == ("float32", (480, 640), 99.0)
