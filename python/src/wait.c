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
 *   timeout. Interrupting the sleep is not enough: a signal that lands after the handlers ran
 *   and before the wait sleeps, or while it spins, or while a mutex lock sleeps in the C
 *   library (which resumes after a handler), would end nothing. So every signal Python
 *   handles has its handler chained (below) to fire the token itself: the kernel compares the
 *   token's word before it sleeps and refuses to, a spin looks at it, and a mutex lock looks
 *   every 20 ms. What is not a signal is not seen until the wait ends: _thread.interrupt_main()
 *   only sets Python's flag.
 *
 * The chain: before a wait in the main thread (at most every 100 ms, each look costing a
 * system call per signal), every catchable signal whose C-level handler is Python's (one
 * function for all: known from the first signal that signal.getsignal() says Python handles)
 * gets ours in its place, which fires the token and calls Python's. SIG_DFL, SIG_IGN and
 * other libraries' handlers are left alone. A handler set by signal.signal() within 100 ms of
 * the last look is chained at a later wait; until then its signal still ends a sleep (by
 * interrupting it), not the windows above. The token is made at import and never freed,
 * since a handler may fire it at any time.
 */
#include "_shmlink.h"

#include <pthread.h>
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

/* ---- the main thread's token and the signal chain ---- */

static shml_cancel *main_token;  /* NULL if it could not be made: waits then ignore signals */
static unsigned long main_ident; /* the main thread's PyThread_get_thread_ident() */
/* Python's C-level signal handler (one function for every signal Python handles), learned
   from a signal that Python says it handles; NULL until known. */
static void (*volatile python_handler)(int);
static bool scanned;    /* chain_signals() has looked at the handlers... */
static int64_t last_scan; /* ...last at this time (monotonic ns) */

/* How often chain_signals() looks at the handlers: each look is a system call per signal. */
#define RESCAN_NS ((int64_t)100 * 1000000)

/* The signals a program may catch (not the faults, whose handlers must run where they
   happen, nor the two that cannot be caught). */
static const int catchable[] = {SIGINT,    SIGTERM, SIGHUP,  SIGQUIT, SIGUSR1, SIGUSR2,
                                SIGALRM,   SIGCHLD, SIGPIPE, SIGCONT, SIGTSTP, SIGTTIN,
                                SIGTTOU,   SIGURG,  SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF,
                                SIGWINCH,  SIGIO};

static void on_signal(int sig)
{
    int saved = errno;
    shml_cancel_fire(main_token); /* async-signal-safe by contract */
    errno = saved;
    python_handler(sig); /* what was there: chain_signals() replaces only Python's handler */
}

/* Has Python a handler of its own for `sig` (signal.getsignal() gives a callable)? GIL held. */
static bool python_handles(int sig)
{
    PyObject *signal_mod = PyImport_ImportModule("signal");
    PyObject *h = signal_mod ? PyObject_CallMethod(signal_mod, "getsignal", "i", sig) : NULL;
    bool yes = h && PyCallable_Check(h);
    Py_XDECREF(h);
    Py_XDECREF(signal_mod);
    PyErr_Clear();
    return yes;
}

/*
 * Put on_signal in front of Python's handler wherever Python handles a signal (at start-up
 * SIGINT; then whatever signal.signal() installed). Only Python's own handler is replaced, so
 * another library's handler is never wrapped (and never wraps ours back into a loop). The
 * handlers are looked at again at most every RESCAN_NS. GIL held, main thread.
 */
static void chain_signals(void)
{
    int64_t now = now_ns();
    if (scanned && now - last_scan < RESCAN_NS)
        return;
    scanned = true;
    last_scan = now;
    struct sigaction cur;
    for (size_t i = 0; i < sizeof catchable / sizeof catchable[0]; i++) {
        int sig = catchable[i];
        if (sigaction(sig, NULL, &cur) < 0 || (cur.sa_flags & SA_SIGINFO) ||
            cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN ||
            cur.sa_handler == on_signal)
            continue;
        if (!python_handler && python_handles(sig))
            python_handler = cur.sa_handler;
        if (cur.sa_handler != python_handler)
            continue;
        cur.sa_handler = on_signal;
        sigaction(sig, &cur, NULL);
    }
}

/* In a child forked by any thread, that thread is the main one (Python makes it so). */
static void after_fork_child(void)
{
    main_ident = PyThread_get_thread_ident();
    scanned = false;
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
    if (!main_token) {
        if (shml_cancel_create(&main_token, SHML_CANCEL_SIGNALS) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        pthread_atfork(NULL, NULL, after_fork_child);
    }
    return 0;
}

/* ---- the wait ---- */

ssize_t shmlpy_wait_loop(wait_op op, void *ctx, int64_t timeout_ns)
{
    ssize_t r = op(ctx, 0);
    if ((r != -ETIMEDOUT && r != -EINTR) || timeout_ns == 0)
        return r;
    int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
    shml_cancel *token = PyThread_get_thread_ident() == main_ident ? main_token : NULL;
    if (token)
        chain_signals();
    for (;;) {
        /* Reset before the handlers run: a signal from here on fires the token again. */
        if (token)
            shml_cancel_reset(token);
        if (PyErr_CheckSignals() < 0)
            return WAIT_PYERR;
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
        /* -EINTR: the channel's interrupt (tried again); -ECANCELED with the token: a
           signal. */
        if (r != -EINTR && !(r == -ECANCELED && token))
            return r;
    }
}

