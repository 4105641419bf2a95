/*
 * wait.c - timeouts and waits: a Python timeout turned into nanoseconds, and the wait loop
 * every blocking call goes through (a first attempt with the GIL held, then slices of at most
 * SLICE_NS with the GIL released and the signal handlers run between them, stopping before the
 * next attempt once a channel's cancellation is requested).
 */
#include "_shmlink.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int shmlpy_parse_timeout(PyObject *o, int64_t *ns)
{
    if (o == NULL || o == Py_None) {
        *ns = SHML_FOREVER;
        return 0;
    }
    double s = PyFloat_AsDouble(o);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (!(s >= 0)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be None or a number of seconds >= 0");
        return -1;
    }
    *ns = s > 9.2e9 ? SHML_FOREVER : (int64_t)(s * 1e9);
    return 0;
}

ssize_t shmlpy_wait_loop_c(wait_op op, void *ctx, int64_t timeout_ns, atomic_int *cancel)
{
    /* seq_cst: pairs with the store in Channel__cancel(), made before it interrupts. */
    if (cancel && atomic_load(cancel))
        return -ECANCELED;
    ssize_t r = op(ctx, 0);
    if ((r != -ETIMEDOUT && r != -EINTR) || timeout_ns == 0)
        return r;
    int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
    for (;;) {
        if (PyErr_CheckSignals() < 0)
            return WAIT_PYERR;
        if (cancel && atomic_load(cancel))
            return -ECANCELED;
        int64_t slice = SLICE_NS;
        if (deadline >= 0) {
            int64_t left = deadline - now_ns();
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < slice)
                slice = left;
        }
        Py_BEGIN_ALLOW_THREADS
        r = op(ctx, slice);
        Py_END_ALLOW_THREADS
        if (r != -ETIMEDOUT && r != -EINTR)
            return r;
    }
}

ssize_t shmlpy_wait_loop(wait_op op, void *ctx, int64_t timeout_ns)
{
    return shmlpy_wait_loop_c(op, ctx, timeout_ns, NULL);
}
