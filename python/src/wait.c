/*
 * wait.c - timeouts and waits: a Python timeout turned into nanoseconds, and the wait every
 * blocking call goes through.
 *
 * A blocking call first tries without waiting, with the GIL held (the fast path). Then it
 * waits in one library call, for the whole of its timeout, with the GIL released. What ends
 * that wait besides its own outcome:
 *
 * - Signals, in the main thread (where Python runs its signal handlers). The main thread's
 *   waits are bound to a cancellation token (sync.h) made with SHML_CANCEL_SIGNALS: a signal
 *   whose handler interrupts the sleep fires it, and the wait returns -ECANCELED. The loop
 *   then runs the Python handlers (PyErr_CheckSignals): KeyboardInterrupt, or any exception
 *   a handler raises, ends the call; otherwise the wait goes on with what is left of the
 *   timeout. A signal that lands after the handlers ran and before the wait sleeps would
 *   interrupt nothing; for SIGINT the handler is therefore chained (below) so that it fires
 *   the token itself, and the kernel, which compares the token's word before it sleeps,
 *   refuses to sleep: Ctrl-C is never missed. A mutex lock, whose sleep is the C library's,
 *   sees the token within 20 ms.
 *
 * - A channel's cancellation request (Channel._cancel(), from a cancelled asyncio call run
 *   by a worker thread): the request is a flag plus shml_channel_interrupt(), so the wait
 *   returns -EINTR and the loop returns -ECANCELED before it tries again.
 *
 * The SIGINT chain: before a wait in the main thread, if SIGINT's handler at the C level is
 * a function other than ours (Python's, at start-up or after every signal.signal()), ours
 * is installed in its place, and calls it after firing the token. SIG_DFL and SIG_IGN are
 * left alone. The token is made at import and never freed, since a handler may fire it at
 * any time.
 */
#include "_shmlink.h"

#include <signal.h>

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

/* ---- the main thread's token and the SIGINT chain ---- */

static shml_cancel *main_token;      /* NULL if it could not be made: waits then ignore signals */
static unsigned long main_ident;     /* the main thread's PyThread_get_thread_ident() */
/* The SIGINT handler ours calls after firing the token (one of the two is set). */
static void (*volatile chained_handler)(int);
static void (*volatile chained_action)(int, siginfo_t *, void *);

static void on_sigint(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    shml_cancel_fire(main_token); /* async-signal-safe by contract */
    errno = saved;
    void (*action)(int, siginfo_t *, void *) = chained_action;
    void (*handler)(int) = chained_handler;
    if (action)
        action(sig, info, uctx);
    else if (handler)
        handler(sig);
}

/* Put on_sigint in front of SIGINT's handler if another function is there. GIL held. */
static void chain_sigint(void)
{
    struct sigaction cur;
    if (sigaction(SIGINT, NULL, &cur) < 0)
        return;
    if (cur.sa_flags & SA_SIGINFO) {
        if (cur.sa_sigaction == on_sigint)
            return;
        chained_handler = NULL;
        chained_action = cur.sa_sigaction;
    } else {
        if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)
            return;
        chained_action = NULL;
        chained_handler = cur.sa_handler;
    }
    struct sigaction ours = cur;
    ours.sa_sigaction = on_sigint;
    ours.sa_flags = (cur.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    sigaction(SIGINT, &ours, NULL);
}

int shmlpy_wait_init(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (!threading)
        return -1;
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (!main)
        return -1;
    PyObject *ident = PyObject_GetAttrString(main, "ident");
    Py_DECREF(main);
    if (!ident)
        return -1;
    main_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return -1;
    if (!main_token && shml_cancel_create(&main_token, SHML_CANCEL_SIGNALS) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* ---- the wait ---- */

ssize_t shmlpy_wait_loop_c(wait_op op, void *ctx, int64_t timeout_ns, atomic_int *cancel)
{
    /* seq_cst: pairs with the store in Channel__cancel(), made before it interrupts. */
    if (cancel && atomic_load(cancel))
        return -ECANCELED;
    ssize_t r = op(ctx, 0);
    if ((r != -ETIMEDOUT && r != -EINTR) || timeout_ns == 0)
        return r;
    int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
    shml_cancel *token = PyThread_get_thread_ident() == main_ident ? main_token : NULL;
    if (token)
        chain_sigint();
    for (;;) {
        /* Reset before the handlers run: a signal from here on fires the token again. */
        if (token)
            shml_cancel_reset(token);
        if (PyErr_CheckSignals() < 0)
            return WAIT_PYERR;
        if (cancel && atomic_load(cancel)) /* seq_cst, as above */
            return -ECANCELED;
        int64_t left = SHML_FOREVER;
        if (deadline >= 0) {
            left = deadline - now_ns();
            if (left <= 0)
                return -ETIMEDOUT;
        }
        Py_BEGIN_ALLOW_THREADS
        shml_cancel *before = shml_cancel_bind(token);
        r = op(ctx, left);
        shml_cancel_bind(before);
        Py_END_ALLOW_THREADS
        /* -EINTR: the channel's interrupt; -ECANCELED with the token: a signal. */
        if (r != -EINTR && !(r == -ECANCELED && token))
            return r;
    }
}

ssize_t shmlpy_wait_loop(wait_op op, void *ctx, int64_t timeout_ns)
{
    return shmlpy_wait_loop_c(op, ctx, timeout_ns, NULL);
}
