/*
 * _shmlink.c - the CPython extension over the shmlink C API.
 *
 * Types: Segment (a mapped segment that exports its bytes through the buffer protocol),
 * Mutex, Event, Semaphore (placed at an offset of a Segment), Channel (one endpoint of a
 * queue, bus, latest or rpc channel) and Message (a zero-copy claim or peek of a channel,
 * used as a context manager). The pure-Python package `shmlink` builds its classes on these.
 *
 * Memory safety: every pointer into shared memory handed to Python goes through a buffer
 * export that is counted. A Segment refuses to close while exports are alive (BufferError),
 * sync objects and Messages hold an export of their segment or a reference to their channel,
 * a channel refuses to close while a Message is open, and a channel closed while views of
 * finished messages (a slice, a numpy array kept after its `with` block) are alive keeps its
 * endpoint and mapping until the last of them is released. So no Python object can ever see
 * an unmapped address. (A mapping whose object another process truncated can still fault:
 * Segment.read/write copy through the fd instead; see python/README.md.)
 *
 * Cancellation: a channel call run by a worker thread (arecv/asend) stops before its next
 * attempt once _cancel() is called from the event loop's thread (wait_loop_c).
 *
 * Blocking: every wait first tries without waiting while holding the GIL (the fast path),
 * then waits in slices of at most SLICE_NS with the GIL released, running the signal handlers
 * (PyErr_CheckSignals) between slices, so Ctrl-C raises KeyboardInterrupt within one slice.
 *
 * Threads: a C handle is used by one thread at a time. A Channel is marked busy while one of
 * its calls runs with the GIL released; a second thread calling it meanwhile gets
 * RuntimeError rather than undefined behaviour.
 *
 * The extension never imports numpy: typed messages are exported with their PEP 3118 format
 * and shape, which numpy (in the Python layer) reads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <shmlink.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest wait with the GIL released before signal handlers run: bounds Ctrl-C latency. */
#define SLICE_NS ((int64_t)50000000)
/* Returned by wait_loop() when a Python exception (from a signal handler) is set. */
#define WAIT_PYERR ((ssize_t)INT_MIN)

/* ---- module state: the exception classes ---- */

static PyObject *Error;          /* shmlink.Error(OSError) */
static PyObject *OwnerDied;      /* a mutex's holder died; the lock is held */
static PyObject *NotRecoverable; /* a mutex nobody made consistent */
static PyObject *Corrupt;        /* header or channel corrupt */
static PyObject *NotShmlink;     /* not a shmlink segment (open it raw) */
static PyObject *WrongKind;      /* a segment of another kind */
static PyObject *VersionError;   /* layout version unknown */
static PyObject *Truncated;      /* another process shrank the object under the mapping */

/* The exception class for a negative errno value from the library. */
static PyObject *exc_for(int err)
{
    switch (-err) {
    case ENOENT: return PyExc_FileNotFoundError;
    case EEXIST: return PyExc_FileExistsError;
    case EACCES:
    case EPERM: return PyExc_PermissionError;
    case ETIMEDOUT: return PyExc_TimeoutError;
    case EINVAL:
    case EMSGSIZE:
    case ERANGE: return PyExc_ValueError;
    case ECONNRESET: return PyExc_ConnectionResetError;
    case ENOTCONN: return PyExc_ConnectionError;
    case ECHILD: return PyExc_ChildProcessError;
    case EOWNERDEAD: return OwnerDied;
    case ENOTRECOVERABLE: return NotRecoverable;
    case SHML_ECORRUPT: return Corrupt;
    case SHML_ENOTSHML: return NotShmlink;
    case SHML_EWRONGKIND: return WrongKind;
    case SHML_EVERSION: return VersionError;
    case SHML_ETRUNCATED: return Truncated;
    default: return PyExc_OSError;
    }
}

/*
 * Raise the exception for `err` (negative errno) from operation `what` on `addr` (may be
 * NULL). The message names the address and carries shml_last_error(), which must be read
 * right after the failing call, in the same thread: callers do not call the library between.
 * ValueError has no errno: it gets the message only. Always returns NULL.
 */
static PyObject *raise_err(int err, const char *what, const char *addr)
{
    const char *detail = shml_last_error();
    PyObject *cls = exc_for(err);
    PyObject *msg = PyUnicode_FromFormat("%s %s: %s%s%s%s", what, addr ? addr : "",
                                         shml_strerror(err), detail[0] ? " (" : "", detail,
                                         detail[0] ? ")" : "");
    if (!msg)
        return NULL;
    PyObject *exc;
    if (cls == PyExc_ValueError)
        exc = PyObject_CallOneArg(cls, msg);
    else if (addr)
        exc = PyObject_CallFunction(cls, "iOs", -err, msg, addr);
    else
        exc = PyObject_CallFunction(cls, "iO", -err, msg);
    Py_DECREF(msg);
    if (exc) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* ---- timeouts and waits ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Convert a Python timeout (None: forever; seconds >= 0) to nanoseconds. 0 or -1 (error). */
static int parse_timeout(PyObject *o, int64_t *ns)
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

/* Map a string argument to one of `values` by its name in `names`; None leaves *out. */
static int parse_choice(PyObject *o, const char *what, const char *const *names,
                        const uint32_t *values, size_t n, uint32_t *out)
{
    if (o == NULL || o == Py_None)
        return 0;
    const char *s = PyUnicode_AsUTF8(o);
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = values[i];
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown %s %R", what, o);
    return -1;
}

/* One attempt of a blocking operation, waiting at most timeout_ns. */
typedef ssize_t (*wait_op)(void *ctx, int64_t timeout_ns);

/*
 * Run `op` until it returns something other than -ETIMEDOUT/-EINTR or timeout_ns passes:
 * once without waiting with the GIL held, then in slices of at most SLICE_NS with the GIL
 * released, checking for signals between slices. `cancel` (NULL: none) is a channel's
 * cancellation request (Channel._cancel(), from a cancelled asyncio call): it is read before
 * every attempt, and the canceller also interrupts the wait in progress, so no attempt starts
 * after the request is seen. Returns what op returned, -ETIMEDOUT, -ECANCELED, or WAIT_PYERR
 * with the exception a signal handler raised.
 */
static ssize_t wait_loop_c(wait_op op, void *ctx, int64_t timeout_ns, atomic_int *cancel)
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

static ssize_t wait_loop(wait_op op, void *ctx, int64_t timeout_ns)
{
    return wait_loop_c(op, ctx, timeout_ns, NULL);
}

/* ---- Segment ---- */

typedef struct {
    PyObject_HEAD
    shml_segment *seg; /* NULL once closed */
    char *addr;        /* canonical address (kept after close, for messages and unlink) */
    bool readonly, raw, created;
    Py_ssize_t exports; /* live buffer exports of the bytes */
} SegmentObject;

static PyTypeObject Segment_Type;

static int segment_check_open(SegmentObject *self)
{
    if (!self->seg) {
        PyErr_Format(PyExc_ValueError, "segment %s is closed", self->addr ? self->addr : "");
        return -1;
    }
    return 0;
}

/* An open that waits (SHML_WAIT) for its object, one slice of wait_loop() at a time. */
struct open_ctx {
    const char *addr;
    void *opts; /* struct shml_segment_opts or struct shml_channel_opts */
    unsigned role;
    void *out;  /* shml_segment ** or shml_channel ** */
};

/* Not there yet counts as a slice that timed out, so that wait_loop() goes on. */
static ssize_t segment_open_op(void *ctx, int64_t t)
{
    struct open_ctx *c = ctx;
    struct shml_segment_opts *o = c->opts;
    o->timeout_ns = t;
    int r = shml_segment_open(c->addr, o, c->out);
    return r == -ENOENT ? -ETIMEDOUT : r;
}

static ssize_t channel_open_op(void *ctx, int64_t t)
{
    struct open_ctx *c = ctx;
    struct shml_channel_opts *o = c->opts;
    o->timeout_ns = t;
    int r = shml_channel_open(c->addr, c->role, o, c->out);
    return r == -ENOENT ? -ETIMEDOUT : r;
}

/* Segment(create=True, init=fn): fn(segment) runs before anyone else can open it. */
struct segment_init_ctx {
    SegmentObject *self;
    PyObject *fn;
    bool raised; /* fn raised: its exception is set */
};

/*
 * The library's init callback (shml_segment_create_init), in the creating thread with the GIL
 * held: the Segment object holds the new handle while fn runs, so fn uses it as any segment
 * (buf, Mutex(seg, ...), declare). If fn raises and no view of the bytes it made survives,
 * the creation is undone; if one does, the bytes must stay mapped: the segment is published
 * and the caller removes it (Segment_init).
 */
static int segment_init_cb(shml_segment *seg, void *arg)
{
    struct segment_init_ctx *c = arg;
    c->self->seg = seg;
    c->self->created = true;
    PyObject *res = PyObject_CallOneArg(c->fn, (PyObject *)c->self);
    if (res) {
        Py_DECREF(res);
        return 0;
    }
    c->raised = true;
    if (c->self->exports > 0)
        return 0;
    c->self->seg = NULL; /* the library closes it */
    return -ECANCELED;
}

static int Segment_init(SegmentObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "create", "size", "mode", "readonly", "raw", "owned",
                             "timeout", "init", NULL};
    const char *addr;
    int create = 0, readonly = 0, raw = 0, owned = 0;
    Py_ssize_t size = 0;
    unsigned int mode = 0600;
    PyObject *timeout = NULL, *init = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pnIpp$pOO:Segment", kwlist, &addr, &create,
                                     &size, &mode, &readonly, &raw, &owned, &timeout, &init))
        return -1;
    if (init == Py_None)
        init = NULL;
    if (init && (!create || raw || !PyCallable_Check(init))) {
        PyErr_Format(PyExc_ValueError, "%s %s: init is a callable, for create of a segment with "
                                       "a header (not raw)", create ? "create" : "open", addr);
        return -1;
    }
    int64_t wait_ns = 0;
    if (timeout && parse_timeout(timeout, &wait_ns) < 0)
        return -1;
    if (owned && !create) {
        PyErr_Format(PyExc_ValueError, "open %s: owned is decided at create", addr);
        return -1;
    }
    if (self->seg) {
        PyErr_SetString(PyExc_RuntimeError, "Segment already initialised");
        return -1;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return -1;
    }
    if (create && size == 0) {
        PyErr_Format(PyExc_ValueError, "create %s: size must be > 0", addr);
        return -1;
    }
    if (create && readonly) {
        PyErr_Format(PyExc_ValueError, "create %s: a created segment cannot be read-only", addr);
        return -1;
    }
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = mode;
    o.flags = (readonly ? SHML_RDONLY : 0u) | (raw ? SHML_RAW : 0u) | (owned ? SHML_OWNED : 0u);
    shml_segment *seg = NULL;
    int r;
    if (!create && wait_ns != 0) {
        o.flags |= SHML_WAIT;
        struct open_ctx c = {addr, &o, 0, &seg};
        /* Through wait_loop(), so that Ctrl-C is seen while it waits. */
        ssize_t w = wait_loop(segment_open_op, &c, wait_ns);
        if (w == WAIT_PYERR)
            return -1;
        r = (int)w;
    } else if (init) {
        /* The GIL stays held: init calls Python, in this thread. */
        free(self->addr);
        self->addr = strdup(addr);
        struct segment_init_ctx c = {self, init, false};
        r = shml_segment_create_init(addr, (size_t)size, &o, segment_init_cb, &c, &seg);
        if (c.raised) {
            if (r == 0) {
                /* A view init made is alive: keep the mapping, remove the name. */
                PyObject *type, *value, *tb;
                PyErr_Fetch(&type, &value, &tb);
                shml_segment_unlink(shml_segment_address(seg));
                PyErr_Restore(type, value, tb);
                self->seg = seg;
            }
            return -1;
        }
    } else {
        Py_BEGIN_ALLOW_THREADS
        r = create ? shml_segment_create(addr, (size_t)size, &o, &seg)
                   : shml_segment_open(addr, &o, &seg);
        Py_END_ALLOW_THREADS
    }
    if (r < 0) {
        raise_err(r, create ? "create" : "open", addr);
        return -1;
    }
    if (!create && size > 0 && shml_segment_size(seg) < (size_t)size) {
        PyErr_Format(PyExc_ValueError, "open %s: segment has %zu bytes, %zd asked", addr,
                     shml_segment_size(seg), size);
        shml_segment_close(seg);
        return -1;
    }
    char *copy = strdup(shml_segment_address(seg));
    if (!copy) {
        shml_segment_close(seg);
        PyErr_NoMemory();
        return -1;
    }
    free(self->addr);
    self->addr = copy;
    self->seg = seg;
    self->readonly = readonly;
    self->raw = raw;
    self->created = create;
    return 0;
}

static void Segment_dealloc(SegmentObject *self)
{
    /* No export can be alive: each holds a reference to self. */
    shml_segment_close(self->seg);
    free(self->addr);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Segment_getbuffer(SegmentObject *self, Py_buffer *view, int flags)
{
    if (segment_check_open(self) < 0) {
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, shml_segment_data(self->seg),
                          (Py_ssize_t)shml_segment_size(self->seg), self->readonly, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void Segment_releasebuffer(SegmentObject *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static PyBufferProcs Segment_as_buffer = {(getbufferproc)Segment_getbuffer,
                                          (releasebufferproc)Segment_releasebuffer};

/* close(): unmap. BufferError while views of the bytes are alive; closing twice is fine. */
static PyObject *Segment_close(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->seg)
        Py_RETURN_NONE;
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close %s: %zd exported view(s) of its bytes are alive "
                     "(release them first, e.g. memoryview.release() or del)",
                     self->addr, self->exports);
        return NULL;
    }
    shml_segment *seg = self->seg;
    self->seg = NULL;
    int r = shml_segment_close(seg);
    if (r < 0)
        return raise_err(r, "close", self->addr);
    Py_RETURN_NONE;
}

/* unlink(): remove the segment's name (the mapping stays usable until close). */
static PyObject *Segment_unlink(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->addr) {
        PyErr_SetString(PyExc_ValueError, "segment not initialised");
        return NULL;
    }
    int r = shml_segment_unlink(self->addr);
    if (r < 0)
        return raise_err(r, "unlink", self->addr);
    Py_RETURN_NONE;
}

static PyObject *Segment_enter(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (segment_check_open(self) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *Segment_exit(SegmentObject *self, PyObject *args)
{
    (void)args;
    PyObject *r = Segment_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* Pickling re-attaches by address: Segment(address, readonly=..., raw=...), never create. */
static PyObject *Segment_reduce(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (segment_check_open(self) < 0)
        return NULL;
    if (shml_segment_backend(self->seg) == SHML_BACKEND_MEMFD) {
        PyErr_Format(PyExc_TypeError, "cannot pickle %s: memfd segments have no name to "
                                      "re-open (pass the fd instead)", self->addr);
        return NULL;
    }
    return Py_BuildValue("O(sOnIOO)", (PyObject *)Py_TYPE(self), self->addr, Py_False,
                         (Py_ssize_t)0, 0600u, self->readonly ? Py_True : Py_False,
                         self->raw ? Py_True : Py_False);
}

static PyObject *Segment_get_buf(SegmentObject *self, void *c)
{
    (void)c;
    if (segment_check_open(self) < 0)
        return NULL;
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *Segment_get_address(SegmentObject *self, void *c)
{
    (void)c;
    if (!self->addr)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->addr);
}

static PyObject *Segment_get_size(SegmentObject *self, void *c)
{
    (void)c;
    if (segment_check_open(self) < 0)
        return NULL;
    return PyLong_FromSize_t(shml_segment_size(self->seg));
}

static PyObject *Segment_get_closed(SegmentObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->seg == NULL);
}

static PyObject *Segment_get_flag(SegmentObject *self, void *c)
{
    const char *which = c;
    if (which[0] == 'r' && which[1] == 'e')
        return PyBool_FromLong(self->readonly);
    if (which[0] == 'r')
        return PyBool_FromLong(self->raw);
    if (which[0] == 'c')
        return PyBool_FromLong(self->created);
    return PyLong_FromSsize_t(self->exports);
}

static PyObject *Segment_fileno(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (segment_check_open(self) < 0)
        return NULL;
    int fd = shml_segment_fd(self->seg);
    if (fd < 0)
        return raise_err(fd, "fileno", self->addr);
    return PyLong_FromLong(fd);
}

/*
 * Check an (offset, n) pair against the segment's size before any copy, so that the error
 * names the request (the library would say -ERANGE too, without the numbers).
 */
static int segment_range(SegmentObject *self, Py_ssize_t offset, Py_ssize_t n, const char *what)
{
    size_t size = shml_segment_size(self->seg);
    if (offset < 0 || n < 0 || (size_t)offset > size || (size_t)n > size - (size_t)offset) {
        PyErr_Format(PyExc_ValueError, "%s %s: %zd bytes at offset %zd do not fit in %zu", what,
                     self->addr, n, offset, size);
        return -1;
    }
    return 0;
}

/* read(offset, n) -> bytes, through shml_segment_read: a truncated object raises Truncated,
   never SIGBUS. */
static PyObject *Segment_read(SegmentObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"offset", "n", NULL};
    Py_ssize_t offset, n;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nn:read", kwlist, &offset, &n) ||
        segment_check_open(self) < 0 || segment_range(self, offset, n, "read") < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out)
        return NULL;
    ssize_t r;
    Py_BEGIN_ALLOW_THREADS
    r = shml_segment_read(self->seg, (size_t)offset, PyBytes_AS_STRING(out), (size_t)n);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        Py_DECREF(out);
        return raise_err((int)r, "read", self->addr);
    }
    return out;
}

/* write(offset, data) -> bytes written, through shml_segment_write (Truncated, not SIGBUS). */
static PyObject *Segment_write(SegmentObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"offset", "data", NULL};
    Py_ssize_t offset;
    Py_buffer b;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ny*:write", kwlist, &offset, &b))
        return NULL;
    if (segment_check_open(self) < 0 || segment_range(self, offset, b.len, "write") < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    if (self->readonly) {
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_PermissionError, "write %s: the segment is mapped read-only",
                     self->addr);
        return NULL;
    }
    ssize_t r;
    Py_BEGIN_ALLOW_THREADS
    r = shml_segment_write(self->seg, (size_t)offset, b.buf, (size_t)b.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (r < 0)
        return raise_err((int)r, "write", self->addr);
    return PyLong_FromSsize_t(r);
}

/* check(): None while the object still covers the mapping, Truncated once it does not. */
static PyObject *Segment_check(SegmentObject *self, PyObject *unused)
{
    (void)unused;
    if (segment_check_open(self) < 0)
        return NULL;
    int r = shml_segment_check(self->seg);
    if (r < 0)
        return raise_err(r, "check", self->addr);
    Py_RETURN_NONE;
}

/* declare(name, type, offset): record a 'mutex', 'event' or 'semaphore' at offset in the
   header, so `shmlink info` and shmlink.info() show its state (shml_segment_declare). */
static PyObject *Segment_declare(SegmentObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "type", "offset", NULL};
    static const char *const names[] = {"mutex", "event", "semaphore"};
    static const uint32_t values[] = {SHML_DECL_MUTEX, SHML_DECL_EVENT, SHML_DECL_SEM};
    const char *name;
    PyObject *type;
    Py_ssize_t offset;
    uint32_t t = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sOn:declare", kwlist, &name, &type, &offset) ||
        segment_check_open(self) < 0)
        return NULL;
    if (type == Py_None || offset < 0) {
        PyErr_SetString(PyExc_ValueError, "declare: type is 'mutex', 'event' or 'semaphore', "
                                          "offset >= 0");
        return NULL;
    }
    if (parse_choice(type, "declared type", names, values, 3, &t) < 0)
        return NULL;
    int r = shml_segment_declare(self->seg, name, t, (size_t)offset);
    if (r < 0)
        return raise_err(r, "declare in", self->addr);
    Py_RETURN_NONE;
}

static PyObject *Segment_repr(SegmentObject *self)
{
    return PyUnicode_FromFormat("<shmlink.Segment %s%s>", self->addr ? self->addr : "?",
                                self->seg ? "" : " (closed)");
}

static PyMethodDef Segment_methods[] = {
    {"close", (PyCFunction)Segment_close, METH_NOARGS,
     "close()\n\nUnmap the segment. BufferError while exported views are alive."},
    {"unlink", (PyCFunction)Segment_unlink, METH_NOARGS,
     "unlink()\n\nRemove the segment's name; the mapping stays valid until close()."},
    {"read", (PyCFunction)(void (*)(void))Segment_read, METH_VARARGS | METH_KEYWORDS,
     "read(offset, n) -> bytes\n\nCopy n bytes at offset, safely: if another process truncated "
     "the object,\nraise shmlink.Truncated instead of crashing (posix, file, memfd are read "
     "through the fd).\nValueError if the range is past size."},
    {"write", (PyCFunction)(void (*)(void))Segment_write, METH_VARARGS | METH_KEYWORDS,
     "write(offset, data) -> int\n\nCopy a bytes-like object to offset, safely (shmlink.Truncated "
     "if the object\nwas truncated); ValueError past size, PermissionError if read-only."},
    {"check", (PyCFunction)Segment_check, METH_NOARGS,
     "check()\n\nRaise shmlink.Truncated if another process shrank the object below the "
     "mapping,\nor if touching .buf faulted since (the mapping reads zeros then). A check, "
     "not a guarantee: racy by nature."},
    {"declare", (PyCFunction)(void (*)(void))Segment_declare, METH_VARARGS | METH_KEYWORDS,
     "declare(name, type, offset)\n\nName a 'mutex', 'event' or 'semaphore' at offset in the "
     "header, so that\n`shmlink info` and shmlink.info() show its state. Managed segments "
     "only."},
    {"fileno", (PyCFunction)Segment_fileno, METH_NOARGS,
     "fileno()\n\nThe fd behind a posix, file or memfd segment (owned by the segment)."},
    {"__enter__", (PyCFunction)Segment_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Segment_exit, METH_VARARGS, NULL},
    {"__reduce__", (PyCFunction)Segment_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Segment_getset[] = {
    {"buf", (getter)Segment_get_buf, NULL, "A new memoryview of the bytes.", NULL},
    {"address", (getter)Segment_get_address, NULL, "The canonical address.", NULL},
    {"size", (getter)Segment_get_size, NULL, "Bytes of user data.", NULL},
    {"closed", (getter)Segment_get_closed, NULL, "True after close().", NULL},
    {"readonly", (getter)Segment_get_flag, NULL, "Mapped read-only.", "readonly"},
    {"raw", (getter)Segment_get_flag, NULL, "Mapped without a header.", "raw"},
    {"created", (getter)Segment_get_flag, NULL, "Created by this object.", "created"},
    {"exports", (getter)Segment_get_flag, NULL, "Live buffer exports.", "exports"},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Segment_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Segment",
    .tp_basicsize = sizeof(SegmentObject),
    .tp_dealloc = (destructor)Segment_dealloc,
    .tp_repr = (reprfunc)Segment_repr,
    .tp_as_buffer = &Segment_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Segment(addr, create=False, size=0, mode=0o600, readonly=False, raw=False)\n\n"
              "A named shared-memory segment mapped into this process.",
    .tp_methods = Segment_methods,
    .tp_getset = Segment_getset,
    .tp_init = (initproc)Segment_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Mutex, Event, Semaphore: one type each over a common placement ---- */

typedef struct {
    PyObject_HEAD
    Py_buffer buf; /* export of the segment's bytes: keeps the mapping alive */
    void *obj;     /* the primitive, inside buf; NULL until initialised or after close */
} SyncObject;

/* Place a primitive of `size` bytes aligned to `align` at `offset` of `segment`. */
static int sync_place(SyncObject *self, PyObject *segment, Py_ssize_t offset, size_t size,
                      size_t align, const char *what)
{
    if (self->obj) {
        PyErr_Format(PyExc_RuntimeError, "%s already initialised", what);
        return -1;
    }
    if (!PyObject_TypeCheck(segment, &Segment_Type)) {
        PyErr_Format(PyExc_TypeError, "%s: segment must be a shmlink.Segment", what);
        return -1;
    }
    if (PyObject_GetBuffer(segment, &self->buf, PyBUF_WRITABLE) < 0)
        return -1;
    const char *addr = ((SegmentObject *)segment)->addr;
    char *p = (char *)self->buf.buf + offset;
    if (offset < 0 || (size_t)offset > (size_t)self->buf.len ||
        (size_t)self->buf.len - (size_t)offset < size) {
        PyErr_Format(PyExc_ValueError, "%s at offset %zd of %s: past the end (%zd bytes)", what,
                     offset, addr, self->buf.len);
        PyBuffer_Release(&self->buf);
        return -1;
    }
    if ((uintptr_t)p % align != 0) {
        PyErr_Format(PyExc_ValueError, "%s at offset %zd of %s: must be %zu-byte aligned", what,
                     offset, addr, align);
        PyBuffer_Release(&self->buf);
        return -1;
    }
    self->obj = p;
    return 0;
}

static void Sync_dealloc(SyncObject *self)
{
    if (self->obj)
        PyBuffer_Release(&self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *sync_addr(SyncObject *self)
{
    return self->buf.obj ? ((SegmentObject *)self->buf.obj)->addr : "";
}

static int sync_check(SyncObject *self)
{
    if (!self->obj) {
        PyErr_SetString(PyExc_ValueError, "synchronisation object is closed");
        return -1;
    }
    return 0;
}

/* close(): drop the reference to the segment's bytes (the primitive itself stays). */
static PyObject *Sync_close(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (self->obj) {
        self->obj = NULL;
        PyBuffer_Release(&self->buf);
    }
    Py_RETURN_NONE;
}

static PyObject *Sync_get_segment(SyncObject *self, void *c)
{
    (void)c;
    if (!self->obj)
        Py_RETURN_NONE;
    return Py_NewRef(self->buf.obj);
}

static int Mutex_init(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"segment", "offset", "create", NULL};
    PyObject *segment;
    Py_ssize_t offset;
    int create = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "On|p:Mutex", kwlist, &segment, &offset, &create))
        return -1;
    if (sync_place(self, segment, offset, sizeof(shml_mutex), 8, "Mutex") < 0)
        return -1;
    if (create) {
        int r = shml_mutex_init(self->obj);
        if (r < 0) {
            raise_err(r, "Mutex init in", sync_addr(self));
            Sync_close(self, NULL);
            return -1;
        }
    }
    return 0;
}

struct lock_ctx {
    void *obj;
};

static ssize_t mutex_lock_op(void *ctx, int64_t t)
{
    return shml_mutex_lock(((struct lock_ctx *)ctx)->obj, t);
}

/* lock(timeout=None): True; OwnerDied (held) if the holder died; TimeoutError. */
static PyObject *Mutex_lock(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:lock", kwlist, &to) ||
        parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
        return NULL;
    struct lock_ctx c = {self->obj};
    ssize_t r = wait_loop(mutex_lock_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, "Mutex.lock in", sync_addr(self));
    Py_RETURN_TRUE;
}

static PyObject *Mutex_unlock(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_mutex_unlock(self->obj);
    if (r < 0)
        return raise_err(r, "Mutex.unlock in", sync_addr(self));
    Py_RETURN_NONE;
}

static PyObject *Mutex_consistent(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_mutex_consistent(self->obj);
    if (r < 0)
        return raise_err(r, "Mutex.consistent in", sync_addr(self));
    Py_RETURN_NONE;
}

static PyObject *Mutex_enter(SyncObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = Mutex_lock(self, PyTuple_New(0), NULL);
    return r;
}

static PyObject *Mutex_exit(SyncObject *self, PyObject *args)
{
    (void)args;
    PyObject *r = Mutex_unlock(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *Mutex_state(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    struct shml_mutex_state st;
    int r = shml_mutex_inspect(self->obj, &st);
    if (r < 0)
        return raise_err(r, "Mutex.state in", sync_addr(self));
    static const char *const names[] = {"free", "held", "owner_dead", "not_recoverable",
                                        "repairing"};
    const char *name = st.state >= 0 && st.state <= 4 ? names[st.state] : "?";
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:O}", "state", name, "owner", (int)st.owner, "pid",
                         (int)st.pid, "alive", st.alive, "waiters",
                         st.waiters ? Py_True : Py_False);
}

static PyMethodDef Mutex_methods[] = {
    {"lock", (PyCFunction)(void (*)(void))Mutex_lock, METH_VARARGS | METH_KEYWORDS,
     "lock(timeout=None) -> True\n\nLock, waiting at most timeout seconds (None: for ever); "
     "TimeoutError;\nOwnerDied (lock held: repair, then consistent())."},
    {"unlock", (PyCFunction)Mutex_unlock, METH_NOARGS, "unlock()"},
    {"consistent", (PyCFunction)Mutex_consistent, METH_NOARGS,
     "consistent()\n\nMark the data repaired after OwnerDied (while holding the lock)."},
    {"state", (PyCFunction)Mutex_state, METH_NOARGS, "state() -> dict (a snapshot)"},
    {"close", (PyCFunction)Sync_close, METH_NOARGS, "close()\n\nRelease the segment."},
    {"__enter__", (PyCFunction)Mutex_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Mutex_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Sync_getset[] = {
    {"segment", (getter)Sync_get_segment, NULL, "The Segment it lives in.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Mutex_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Mutex",
    .tp_basicsize = sizeof(SyncObject),
    .tp_dealloc = (destructor)Sync_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Mutex(segment, offset, create=False)\n\nA robust process-shared mutex (64 "
              "bytes, 8-aligned) at `offset` of `segment`; create=True initialises it.",
    .tp_methods = Mutex_methods,
    .tp_getset = Sync_getset,
    .tp_init = (initproc)Mutex_init,
    .tp_new = PyType_GenericNew,
};

static int Event_init(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"segment", "offset", "create", NULL};
    PyObject *segment;
    Py_ssize_t offset;
    int create = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "On|p:Event", kwlist, &segment, &offset, &create))
        return -1;
    if (sync_place(self, segment, offset, sizeof(shml_event), 32, "Event") < 0)
        return -1;
    if (create) {
        int r = shml_event_init(self->obj);
        if (r < 0) {
            raise_err(r, "Event init in", sync_addr(self));
            Sync_close(self, NULL);
            return -1;
        }
    }
    return 0;
}

struct event_ctx {
    void *obj;
    uint32_t seen;
};

static ssize_t event_wait_op(void *ctx, int64_t t)
{
    struct event_ctx *c = ctx;
    return shml_event_wait_flags(c->obj, c->seen, t, SHML_WAIT_EINTR);
}

/* wait(seen=None, timeout=None) -> new generation; waits until it differs from `seen`
   (default: the generation at the call). The order is C's: shml_event_wait(e, seen, t). */
static PyObject *Event_wait(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"seen", "timeout", NULL};
    PyObject *to = Py_None, *seen = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:wait", kwlist, &seen, &to) ||
        parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
        return NULL;
    struct event_ctx c = {self->obj, 0};
    if (seen == Py_None) {
        c.seen = shml_event_read(self->obj);
    } else {
        unsigned long v = PyLong_AsUnsignedLongMask(seen);
        if (v == (unsigned long)-1 && PyErr_Occurred())
            return NULL;
        c.seen = (uint32_t)v;
    }
    ssize_t r = wait_loop(event_wait_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, "Event.wait in", sync_addr(self));
    return PyLong_FromUnsignedLong(shml_event_read(self->obj));
}

static PyObject *Event_notify(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"all", NULL};
    int all = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:notify", kwlist, &all) || sync_check(self) < 0)
        return NULL;
    int r = shml_event_notify(self->obj, all ? SHML_WAKE_ALL : SHML_WAKE_ONE);
    if (r < 0)
        return raise_err(r, "Event.notify in", sync_addr(self));
    return PyLong_FromLong(r);
}

static PyObject *Event_get_generation(SyncObject *self, void *c)
{
    (void)c;
    if (sync_check(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(shml_event_read(self->obj));
}

static PyMethodDef Event_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))Event_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(seen=None, timeout=None) -> generation\n\nWait until the generation differs from "
     "`seen` (default: its value now), as C's\nshml_event_wait(e, seen, timeout_ns). timeout: "
     "seconds, None waits for ever; TimeoutError."},
    {"notify", (PyCFunction)(void (*)(void))Event_notify, METH_VARARGS | METH_KEYWORDS,
     "notify(all=True) -> waiters woken"},
    {"close", (PyCFunction)Sync_close, METH_NOARGS, "close()\n\nRelease the segment."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Event_getset[] = {
    {"segment", (getter)Sync_get_segment, NULL, "The Segment it lives in.", NULL},
    {"generation", (getter)Event_get_generation, NULL, "The current generation.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Event_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Event",
    .tp_basicsize = sizeof(SyncObject),
    .tp_dealloc = (destructor)Sync_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Event(segment, offset, create=False)\n\nA process-shared event (32 bytes, "
              "32-aligned): a generation counter to wait on.",
    .tp_methods = Event_methods,
    .tp_getset = Event_getset,
    .tp_init = (initproc)Event_init,
    .tp_new = PyType_GenericNew,
};

static int Sem_init(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"segment", "offset", "value", "create", NULL};
    PyObject *segment;
    Py_ssize_t offset;
    unsigned int value = 0;
    int create = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "On|Ip:Semaphore", kwlist, &segment, &offset,
                                     &value, &create))
        return -1;
    if (sync_place(self, segment, offset, sizeof(shml_sem), 32, "Semaphore") < 0)
        return -1;
    if (create) {
        int r = shml_sem_init(self->obj, value);
        if (r < 0) {
            raise_err(r, "Semaphore init in", sync_addr(self));
            Sync_close(self, NULL);
            return -1;
        }
    }
    return 0;
}

static ssize_t sem_wait_op(void *ctx, int64_t t)
{
    return shml_sem_wait_flags(((struct lock_ctx *)ctx)->obj, t, SHML_WAIT_EINTR);
}

static PyObject *Sem_wait(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &to) ||
        parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
        return NULL;
    struct lock_ctx c = {self->obj};
    ssize_t r = wait_loop(sem_wait_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, "Semaphore.wait in", sync_addr(self));
    Py_RETURN_TRUE;
}

static PyObject *Sem_post(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_sem_post(self->obj);
    if (r < 0)
        return raise_err(r, "Semaphore.post in", sync_addr(self));
    Py_RETURN_NONE;
}

static PyObject *Sem_get_value(SyncObject *self, void *c)
{
    (void)c;
    if (sync_check(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(shml_sem_value(self->obj));
}

static PyMethodDef Sem_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))Sem_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> True\n\nDecrement, waiting for a positive count at most timeout "
     "seconds\n(None: for ever); TimeoutError."},
    {"post", (PyCFunction)Sem_post, METH_NOARGS, "post()\n\nIncrement and wake one waiter."},
    {"close", (PyCFunction)Sync_close, METH_NOARGS, "close()\n\nRelease the segment."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Sem_getset[] = {
    {"segment", (getter)Sync_get_segment, NULL, "The Segment it lives in.", NULL},
    {"value", (getter)Sem_get_value, NULL, "The current count (a snapshot).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Sem_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Semaphore",
    .tp_basicsize = sizeof(SyncObject),
    .tp_dealloc = (destructor)Sync_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Semaphore(segment, offset, value=0, create=False)\n\nA process-shared counting "
              "semaphore (32 bytes, 32-aligned).",
    .tp_methods = Sem_methods,
    .tp_getset = Sem_getset,
    .tp_init = (initproc)Sem_init,
    .tp_new = PyType_GenericNew,
};

/* ---- typed channels: only plain data reaches numpy ---- */

/*
 * A channel's type format comes from shared memory: any process with write access to the
 * segment chose it. A PEP 3118 'O' makes numpy (or memoryview) read message bytes as
 * PyObject pointers, so a peer could have every Python receiver dereference an address it
 * wrote. So the format is parsed against a whitelist before it is exported or turned into a
 * dtype: byte orders (@ = < > ! ^), integer, bool, float and complex codes, bytes 's' and 'c',
 * UCS4 text 'w' (numpy's 'U': code points, never pointers), padding 'x', repeat counts,
 * sub-array shapes '(n,m)', structs 'T{...}' and ':name:' field names. Anything else (objects
 * 'O', pointers '&' and 'P', functions 'X{}', UCS2 'u', Pascal strings 'p', bits 't') is
 * refused. The parse also yields the element's size, which must be the stored itemsize: for
 * a struct (or several items) only a lower bound, as native '@' alignment padding is not
 * counted and a C writer may leave a struct's trailing padding implicit, so there the size
 * must not exceed the itemsize (an element would be read past its bytes).
 */

#define FMT_DEPTH_MAX 16          /* nested T{} */
#define FMT_SIZE_MAX ((uint64_t)1 << 40)

typedef struct {
    const char *s, *start;
    bool native; /* '@' or '^' in force (native sizes), else standard sizes */
    bool exact;  /* one item and no struct: the size is exact (nothing to align or pad) */
    int items;   /* at the top level */
    char why[96];
} FmtParse;

static int fmt_fail(FmtParse *p, const char *what)
{
    snprintf(p->why, sizeof p->why, "'%c' at offset %d %s", *p->s ? *p->s : ' ',
             (int)(p->s - p->start), what);
    return -1;
}

/* A decimal count at p->s (1 if none); -1 past FMT_SIZE_MAX. */
static int64_t fmt_count(FmtParse *p)
{
    if (*p->s < '0' || *p->s > '9')
        return 1;
    uint64_t n = 0;
    while (*p->s >= '0' && *p->s <= '9') {
        n = n * 10 + (uint64_t)(*p->s++ - '0');
        if (n > FMT_SIZE_MAX)
            return -1;
    }
    return (int64_t)n;
}

/* Byte order prefixes at p->s: the last one sets native or standard sizes. Whether any. */
static bool fmt_order(FmtParse *p)
{
    const char *from = p->s;
    for (; *p->s && strchr("@=<>!^", *p->s); p->s++)
        p->native = *p->s == '@' || *p->s == '^';
    return p->s != from;
}

/* Bytes of one scalar code (without its count), 0 if the code is not plain data. */
static uint64_t fmt_scalar(char c, bool native)
{
    switch (c) {
    case '?': case 'b': case 'B': case 'c': case 's': case 'x': return 1;
    case 'h': case 'H': case 'e': return 2;
    case 'i': case 'I': case 'f': return 4;
    case 'l': case 'L': return native ? sizeof(long) : 4;
    case 'q': case 'Q': case 'd': return 8;
    case 'n': case 'N': return sizeof(size_t);
    case 'g': return sizeof(long double);
    case 'w': return 4;
    default: return 0;
    }
}

/* Items up to `end` ('}' in a struct, NUL at the top); adds their size to *size. */
static int fmt_items(FmtParse *p, char end, int depth, uint64_t *size)
{
    while (*p->s != end) {
        if (!*p->s)
            return fmt_fail(p, "ends an unclosed struct");
        if (fmt_order(p))
            continue;
        uint64_t mult = 1;
        if (*p->s == '(') { /* a sub-array shape */
            p->s++;
            for (;;) {
                int64_t d = fmt_count(p);
                if (d < 0 || mult > FMT_SIZE_MAX / (uint64_t)(d ? d : 1))
                    return fmt_fail(p, "makes too large a sub-array");
                mult *= (uint64_t)d;
                if (*p->s == ',') {
                    p->s++;
                    continue;
                }
                if (*p->s != ')')
                    return fmt_fail(p, "is not a sub-array dimension");
                p->s++;
                break;
            }
            fmt_order(p); /* "(3)<f": the byte order may follow the shape */
        }
        int64_t n = fmt_count(p);
        if (n < 0)
            return fmt_fail(p, "ends too large a count");
        uint64_t one;
        if (p->s[0] == 'T' && p->s[1] == '{') {
            if (depth >= FMT_DEPTH_MAX)
                return fmt_fail(p, "nests structs too deeply");
            p->exact = false;
            p->s += 2;
            one = 0;
            if (fmt_items(p, '}', depth + 1, &one) < 0)
                return -1;
            p->s++;
        } else if (*p->s == 'Z') {
            p->s++;
            if (*p->s != 'f' && *p->s != 'd' && *p->s != 'g')
                return fmt_fail(p, "is not a complex code (Zf, Zd, Zg)");
            one = 2 * fmt_scalar(*p->s++, p->native);
        } else {
            one = fmt_scalar(*p->s, p->native);
            if (!one)
                return fmt_fail(p, "is not plain data (Python objects, pointers and "
                                   "functions never reach numpy)");
            p->s++;
        }
        if (mult > FMT_SIZE_MAX / (uint64_t)(n ? n : 1) ||
            (one && mult * (uint64_t)n > (FMT_SIZE_MAX - *size) / one))
            return fmt_fail(p, "makes too large an element");
        *size += one * mult * (uint64_t)n;
        if (depth == 0 && ++p->items > 1)
            p->exact = false;
        if (*p->s == ':') { /* a field name */
            const char *close = strchr(p->s + 1, ':');
            if (!close)
                return fmt_fail(p, "opens a field name that never ends");
            p->s = close + 1;
        }
    }
    return 0;
}

/*
 * 0 if type `t` is plain data whose size fits its itemsize (above); else raise shmlink.Corrupt
 * naming the channel `addr`, the format and the offending code (or, with addr NULL, a
 * ValueError: a format that comes from the caller, not from a channel), and return -1.
 */
static int check_type(const struct shml_channel_type *t, const char *addr)
{
    FmtParse p = {.s = t->format, .start = t->format, .native = true, .exact = true};
    uint64_t size = 0;
    int r = fmt_items(&p, '\0', 0, &size);
    if (r == 0 && (size > t->itemsize || (p.exact && size != t->itemsize))) {
        snprintf(p.why, sizeof p.why, "it describes %s%llu bytes, the itemsize is %llu",
                 p.exact ? "" : "at least ", (unsigned long long)size,
                 (unsigned long long)t->itemsize);
        r = -1;
    }
    if (r == 0)
        return 0;
    if (!addr) {
        PyErr_Format(PyExc_ValueError, "type format '%s' refused: %s", t->format, p.why);
        return -1;
    }
    PyObject *msg = PyUnicode_FromFormat("typed channel %s: stored type format '%s' refused: %s",
                                         addr, t->format, p.why);
    if (!msg)
        return -1;
    PyObject *exc = PyObject_CallFunction(Corrupt, "iOs", SHML_ECORRUPT, msg, addr);
    Py_DECREF(msg);
    if (exc) {
        PyErr_SetObject(Corrupt, exc);
        Py_DECREF(exc);
    }
    return -1;
}

/* ---- Channel ---- */

typedef struct MessageObject MessageObject;

typedef struct {
    PyObject_HEAD
    shml_channel *ch; /* NULL once closed */
    char *addr;
    uint32_t kind;
    size_t max_msg;
    bool busy;            /* a call runs with the GIL released */
    MessageObject *open;  /* the open claim or peek (borrowed; it holds a reference to us) */
    char *scratch;        /* receive buffer of max_msg bytes, allocated on first recv */
    struct shml_channel_type type; /* read at open: a later change in shared memory is unseen */
    bool type_plain;      /* `type` passed check_type() once (it never changes after open) */
    Py_ssize_t orphans;   /* exports of finished messages still alive (arrays kept after their
                             `with` block): the mapping must outlive them */
    bool close_pending;   /* close() came while orphans lived: the endpoint closes when the
                             last of them is released (Message_releasebuffer) */
    atomic_int cancel;    /* set by _cancel() (a cancelled arecv/asend), cleared by _uncancel()
                             once its call has returned: waits stop before their next attempt */
} ChannelObject;

/* A zero-copy message: a claim (writable) or a peek (read-only), exported as a buffer. */
struct MessageObject {
    PyObject_HEAD
    ChannelObject *chan;
    bool claim;      /* claim (send side) or peek (receive side) */
    bool typed;      /* export with the channel's format and shape */
    bool aborted;    /* a claim whose block raised: discard it, never publish it */
    int state;       /* MSG_NEW, MSG_OPEN, MSG_DONE */
    int64_t timeout; /* for __enter__ */
    void *ptr;
    size_t len;        /* claimed or peeked length */
    size_t commit_len; /* claim: what commit at exit publishes */
    Py_ssize_t exports;
    bool orphaned;     /* finished while exports were alive: they count in chan->orphans */
    PyObject *view;    /* the memoryview __enter__ returned */
    Py_ssize_t shape[SHML_TYPE_NDIM_MAX + 1];
};

#define MSG_NEW      0
#define MSG_OPEN     1
#define MSG_DONE     3

static PyTypeObject Channel_Type;
static PyTypeObject Message_Type;

/* check_type() of the channel's type, once per handle: 0, or -1 with Corrupt raised. */
static int channel_type_plain(ChannelObject *self)
{
    if (!self->type_plain && check_type(&self->type, self->addr) < 0)
        return -1;
    self->type_plain = true;
    return 0;
}

static int parse_role(PyObject *o, uint32_t kind, uint32_t *out)
{
    static const char *const names[] = {"producer",  "consumer", "both",   "publisher",
                                        "subscriber", "writer",  "reader", "client",
                                        "server"};
    static const uint32_t values[] = {SHML_PRODUCER, SHML_CONSUMER, SHML_PRODUCER | SHML_CONSUMER,
                                      SHML_PRODUCER, SHML_CONSUMER, SHML_PRODUCER,
                                      SHML_CONSUMER, SHML_CLIENT,   SHML_SERVER};
    uint32_t r = 0;
    if (parse_choice(o, "role", names, values, sizeof values / sizeof values[0], &r) < 0)
        return -1;
    if (r == (SHML_PRODUCER | SHML_CONSUMER) && kind == SHML_RPC) {
        PyErr_SetString(PyExc_ValueError, "an rpc endpoint is a client or a server, not both");
        return -1;
    }
    *out = r;
    return 0;
}

static int parse_size_arg(PyObject *o, const char *what, size_t *out)
{
    if (o == NULL || o == Py_None)
        return 0;
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v <= 0) {
        PyErr_Format(PyExc_ValueError, "%s must be > 0", what);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/*
 * Channel(addr, kind, create=False, *, capacity=None, max_msg=None, policy='block',
 *         wait='adaptive', mode=0o600, role=None, endpoints=None, spsc=False,
 *         format=None, itemsize=0, shape=None)
 */
static int Channel_init(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr",   "kind",   "create",   "capacity", "max_msg",
                             "policy", "wait",   "mode",     "role",     "endpoints",
                             "spsc",   "format", "itemsize", "shape",    "owned",
                             "timeout", NULL};
    const char *addr, *format = NULL;
    unsigned int kind, mode = 0600;
    int create = 0, spsc = 0, owned = 0;
    PyObject *capacity = Py_None, *max_msg = Py_None, *policy = Py_None, *wait = Py_None;
    PyObject *role = Py_None, *endpoints = Py_None, *shape = Py_None, *timeout = NULL;
    Py_ssize_t itemsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sI|p$OOOOIOOpznOpO:Channel", kwlist, &addr,
                                     &kind, &create, &capacity, &max_msg, &policy, &wait, &mode,
                                     &role, &endpoints, &spsc, &format, &itemsize, &shape,
                                     &owned, &timeout))
        return -1;
    int64_t wait_ns = 0;
    if (timeout && parse_timeout(timeout, &wait_ns) < 0)
        return -1;
    if ((owned && !create) || (wait_ns != 0 && create)) {
        PyErr_Format(PyExc_ValueError, "%s %s: owned is decided at create, timeout is for open",
                     create ? "create channel" : "open channel", addr);
        return -1;
    }
    if (self->ch) {
        PyErr_SetString(PyExc_RuntimeError, "Channel already initialised");
        return -1;
    }
    if (kind < SHML_QUEUE || kind > SHML_RPC) {
        PyErr_SetString(PyExc_ValueError, "unknown channel kind");
        return -1;
    }
    struct shml_channel_opts o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.mode = mode;
    size_t eps = 0;
    static const char *const pol_names[] = {"block", "overwrite"};
    static const uint32_t pol_values[] = {SHML_BLOCK, SHML_OVERWRITE};
    static const char *const wait_names[] = {"adaptive", "spin", "block"};
    static const uint32_t wait_values[] = {SHML_WAIT_ADAPTIVE, SHML_WAIT_SPIN, SHML_WAIT_BLOCK};
    uint32_t r_role = 0;
    if (parse_size_arg(capacity, "capacity", &o.capacity) < 0 ||
        parse_size_arg(max_msg, "max_msg", &o.max_msg) < 0 ||
        parse_size_arg(endpoints, "endpoints", &eps) < 0 ||
        parse_choice(policy, "policy", pol_names, pol_values, 2, &o.policy) < 0 ||
        parse_choice(wait, "wait", wait_names, wait_values, 3, &o.wait) < 0 ||
        parse_role(role, kind, &r_role) < 0)
        return -1;
    if (eps > 4096) {
        PyErr_SetString(PyExc_ValueError, "endpoints must be 1 to 4096");
        return -1;
    }
    o.endpoints = (uint32_t)eps;
    o.flags = (spsc ? SHML_SPSC : 0u) | (owned ? SHML_OWNED : 0u);
    struct shml_channel_type t;
    memset(&t, 0, sizeof t);
    if (format && format[0]) {
        if (strlen(format) >= SHML_TYPE_FORMAT_MAX) {
            PyErr_Format(PyExc_ValueError, "type format longer than %u bytes",
                         SHML_TYPE_FORMAT_MAX - 1);
            return -1;
        }
        if (itemsize <= 0) {
            PyErr_SetString(PyExc_ValueError, "itemsize must be > 0 for a typed channel");
            return -1;
        }
        strcpy(t.format, format);
        t.itemsize = (uint64_t)itemsize;
        if (shape != Py_None) {
            PyObject *seq = PySequence_Fast(shape, "shape must be a sequence of ints");
            if (!seq)
                return -1;
            Py_ssize_t nd = PySequence_Fast_GET_SIZE(seq);
            if (nd > (Py_ssize_t)SHML_TYPE_NDIM_MAX) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_ValueError, "shape has more than %u dimensions",
                             SHML_TYPE_NDIM_MAX);
                return -1;
            }
            for (Py_ssize_t i = 0; i < nd; i++) {
                Py_ssize_t d = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
                if (d < 0) {
                    Py_DECREF(seq);
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_ValueError, "shape dimensions must be >= 0");
                    return -1;
                }
                t.shape[i] = (uint64_t)d;
            }
            t.ndim = (uint32_t)nd;
            Py_DECREF(seq);
        }
        o.type = &t;
    }
    shml_channel *ch = NULL;
    int r;
    if (create) {
        o.role = r_role;
        Py_BEGIN_ALLOW_THREADS
        r = shml_channel_create(addr, &o, &ch);
        Py_END_ALLOW_THREADS
    } else {
        if (!r_role)
            r_role = kind == SHML_BUS     ? SHML_CONSUMER
                     : kind == SHML_RPC   ? SHML_CLIENT
                     : kind == SHML_LATEST ? SHML_CONSUMER
                                           : SHML_PRODUCER | SHML_CONSUMER;
        if (wait_ns != 0) {
            /* SHML_WAIT: for the channel to appear, and (rpc client) for a server. */
            o.flags |= SHML_WAIT;
            struct open_ctx c = {addr, &o, r_role, &ch};
            ssize_t w = wait_loop(channel_open_op, &c, wait_ns);
            if (w == WAIT_PYERR)
                return -1;
            r = (int)w;
        } else {
            Py_BEGIN_ALLOW_THREADS
            r = shml_channel_open(addr, r_role, &o, &ch);
            Py_END_ALLOW_THREADS
        }
    }
    if (r < 0) {
        raise_err(r, create ? "create channel" : "open channel", addr);
        return -1;
    }
    struct shml_channel_stats st;
    self->type_plain = false; /* a new type: checked on first use */
    if ((r = shml_channel_get_stats(ch, &st)) < 0 ||
        (r = shml_channel_get_type(ch, &self->type)) < 0) {
        raise_err(r, "stats of", addr);
        shml_channel_close(ch);
        return -1;
    }
    if (st.kind != kind) {
        PyErr_Format(WrongKind, "open channel %s: it is of another kind", addr);
        shml_channel_close(ch);
        return -1;
    }
    char *copy = strdup(shml_segment_address(shml_channel_segment(ch)));
    if (!copy) {
        shml_channel_close(ch);
        PyErr_NoMemory();
        return -1;
    }
    free(self->addr);
    self->addr = copy;
    self->ch = ch;
    self->kind = kind;
    self->max_msg = (size_t)st.max_msg;
    return 0;
}

static void Channel_dealloc(ChannelObject *self)
{
    /* No Message can be alive: each holds a reference to self. */
    shml_channel_close(self->ch);
    free(self->scratch);
    free(self->addr);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Check that the channel can run a call now: open, not busy in another thread, no open
   zero-copy message. */
static int channel_ready(ChannelObject *self)
{
    if (!self->ch || self->close_pending) {
        PyErr_Format(PyExc_ValueError, "channel %s is closed", self->addr ? self->addr : "");
        return -1;
    }
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError,
                     "channel %s is in use by another thread (open one handle per thread)",
                     self->addr);
        return -1;
    }
    if (self->open) {
        PyErr_Format(PyExc_BufferError, "channel %s: a claimed or received message is still open",
                     self->addr);
        return -1;
    }
    return 0;
}

static PyObject *Channel_close(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->ch)
        Py_RETURN_NONE;
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError, "cannot close %s: a call is running in another thread",
                     self->addr);
        return NULL;
    }
    if (self->open) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close %s: a claimed or received message is still open (close "
                     "after its `with` block)", self->addr);
        return NULL;
    }
    if (self->orphans > 0) {
        /* Arrays of finished messages (`with ch.recv_view_array() as arr:` leaves `arr`
           bound) still point into the mapping: the handle is closed for use now, and the
           endpoint with its mapping when the last of them is released, so none dangles. */
        self->close_pending = true;
        Py_RETURN_NONE;
    }
    shml_channel *ch = self->ch;
    self->ch = NULL;
    shml_channel_close(ch);
    Py_RETURN_NONE;
}

struct send_ctx {
    shml_channel *ch;
    const void *p;
    size_t len;
};

static ssize_t send_op(void *ctx, int64_t t)
{
    struct send_ctx *c = ctx;
    return shml_send(c->ch, c->p, c->len, t);
}

/* send(data, timeout=None) -> None */
static PyObject *Channel_send(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "timeout", NULL};
    Py_buffer b;
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O:send", kwlist, &b, &to))
        return NULL;
    if (parse_timeout(to, &ns) < 0 || channel_ready(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    struct send_ctx c = {self->ch, b.buf, (size_t)b.len};
    self->busy = true;
    ssize_t r = wait_loop_c(send_op, &c, ns, &self->cancel);
    self->busy = false;
    PyBuffer_Release(&b);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, "send to", self->addr);
    Py_RETURN_NONE;
}

struct recv_ctx {
    shml_channel *ch;
    void *buf;
    size_t cap;
};

static ssize_t recv_op(void *ctx, int64_t t)
{
    struct recv_ctx *c = ctx;
    return shml_recv(c->ch, c->buf, c->cap, t);
}

static int channel_scratch(ChannelObject *self)
{
    if (!self->scratch) {
        self->scratch = malloc(self->max_msg ? self->max_msg : 1);
        if (!self->scratch) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

/* recv(timeout=None) -> bytes */
static PyObject *Channel_recv(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv", kwlist, &to) ||
        parse_timeout(to, &ns) < 0 || channel_ready(self) < 0 || channel_scratch(self) < 0)
        return NULL;
    struct recv_ctx c = {self->ch, self->scratch, self->max_msg};
    self->busy = true;
    ssize_t r = wait_loop_c(recv_op, &c, ns, &self->cancel);
    self->busy = false;
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, "recv from", self->addr);
    return PyBytes_FromStringAndSize(self->scratch, r);
}

struct batch_ctx {
    shml_channel *ch;
    struct shml_iov *iov;
    size_t n;
    void *buf;
    size_t cap;
    size_t *lens;
};

static ssize_t send_batch_op(void *ctx, int64_t t)
{
    struct batch_ctx *c = ctx;
    return shml_send_batch(c->ch, c->iov, c->n, t);
}

static ssize_t recv_batch_op(void *ctx, int64_t t)
{
    struct batch_ctx *c = ctx;
    return shml_recv_batch(c->ch, c->buf, c->cap, c->lens, c->n, t);
}

/* send_batch(messages, timeout=None) -> number sent (>= 1) */
static PyObject *Channel_send_batch(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"messages", "timeout", NULL};
    PyObject *msgs, *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:send_batch", kwlist, &msgs, &to) ||
        parse_timeout(to, &ns) < 0 || channel_ready(self) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(msgs, "messages must be a sequence of bytes-like objects");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0;
    PyObject *result = NULL;
    Py_buffer *bufs = PyMem_Calloc(n ? (size_t)n : 1, sizeof *bufs);
    struct shml_iov *iov = PyMem_Calloc(n ? (size_t)n : 1, sizeof *iov);
    if (!bufs || !iov) {
        PyErr_NoMemory();
        goto out;
    }
    if (n == 0) {
        result = PyLong_FromLong(0);
        goto out;
    }
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &bufs[got], PyBUF_SIMPLE) < 0)
            goto out;
        iov[got].base = bufs[got].buf;
        iov[got].len = (size_t)bufs[got].len;
    }
    struct batch_ctx c = {self->ch, iov, (size_t)n, NULL, 0, NULL};
    self->busy = true;
    ssize_t r = wait_loop_c(send_batch_op, &c, ns, &self->cancel);
    self->busy = false;
    if (r == WAIT_PYERR)
        goto out;
    if (r < 0) {
        raise_err((int)r, "send_batch to", self->addr);
        goto out;
    }
    result = PyLong_FromSsize_t(r);
out:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&bufs[i]);
    PyMem_Free(bufs);
    PyMem_Free(iov);
    Py_DECREF(seq);
    return result;
}

/* recv_batch(max_messages=64, max_bytes=None, timeout=None) -> list of bytes (>= 1) */
static PyObject *Channel_recv_batch(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max_messages", "max_bytes", "timeout", NULL};
    Py_ssize_t maxn = 64;
    PyObject *maxb = Py_None, *to = Py_None;
    int64_t ns;
    size_t cap = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|nOO:recv_batch", kwlist, &maxn, &maxb, &to) ||
        parse_timeout(to, &ns) < 0 || parse_size_arg(maxb, "max_bytes", &cap) < 0 ||
        channel_ready(self) < 0)
        return NULL;
    if (maxn <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_messages must be > 0");
        return NULL;
    }
    if (cap == 0)
        cap = (size_t)maxn * (self->max_msg < 65536 ? self->max_msg : 65536);
    if (cap < self->max_msg)
        cap = self->max_msg;
    char *buf = PyMem_Malloc(cap);
    size_t *lens = PyMem_Malloc((size_t)maxn * sizeof *lens);
    PyObject *list = NULL;
    if (!buf || !lens) {
        PyErr_NoMemory();
        goto out;
    }
    struct batch_ctx c = {self->ch, NULL, (size_t)maxn, buf, cap, lens};
    self->busy = true;
    ssize_t r = wait_loop_c(recv_batch_op, &c, ns, &self->cancel);
    self->busy = false;
    if (r == WAIT_PYERR)
        goto out;
    if (r < 0) {
        raise_err((int)r, "recv_batch from", self->addr);
        goto out;
    }
    list = PyList_New(r);
    if (!list)
        goto out;
    size_t off = 0;
    for (ssize_t i = 0; i < r; i++) {
        PyObject *b = PyBytes_FromStringAndSize(buf + off, (Py_ssize_t)lens[i]);
        if (!b) {
            Py_CLEAR(list);
            goto out;
        }
        PyList_SET_ITEM(list, i, b);
        off += lens[i];
    }
out:
    PyMem_Free(buf);
    PyMem_Free(lens);
    return list;
}

/* A new Message of channel `ch`, every field set (PyObject_New leaves them undefined). */
static MessageObject *new_message(ChannelObject *ch, bool claim, bool typed, int64_t timeout,
                                  size_t len)
{
    MessageObject *m = PyObject_New(MessageObject, &Message_Type);
    if (!m)
        return NULL;
    memset((char *)m + sizeof(PyObject), 0, sizeof(*m) - sizeof(PyObject));
    m->chan = (ChannelObject *)Py_NewRef(ch);
    m->claim = claim;
    m->typed = typed;
    m->state = MSG_NEW;
    m->timeout = timeout;
    m->len = len;
    m->commit_len = len;
    return m;
}

/* claim(n, timeout=None) -> Message context manager (writable view of n bytes) */
static PyObject *Channel_claim(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"n", "timeout", "typed", NULL};
    Py_ssize_t n;
    PyObject *to = Py_None;
    int typed = 0;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|Op:claim", kwlist, &n, &to, &typed) ||
        parse_timeout(to, &ns) < 0 || channel_ready(self) < 0)
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    return (PyObject *)new_message(self, true, typed, ns, (size_t)n);
}

/* recv_view(timeout=None) -> Message context manager (read-only view of the next message) */
static PyObject *Channel_recv_view(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", "typed", NULL};
    PyObject *to = Py_None;
    int typed = 0;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op:recv_view", kwlist, &to, &typed) ||
        parse_timeout(to, &ns) < 0 || channel_ready(self) < 0)
        return NULL;
    return (PyObject *)new_message(self, false, typed, ns, 0);
}

/* commit(n): inside `with ch.claim(N) as view`, publish only the first n bytes at exit. */
static PyObject *Channel_commit(ChannelObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    MessageObject *m = self->open;
    if (!m || !m->claim || m->state != MSG_OPEN) {
        PyErr_Format(PyExc_ValueError, "channel %s: commit() outside a `with claim()` block",
                     self->addr ? self->addr : "");
        return NULL;
    }
    if (n < 0 || (size_t)n > m->len) {
        PyErr_Format(PyExc_ValueError, "commit(%zd): the claim has %zu bytes", n, m->len);
        return NULL;
    }
    m->commit_len = (size_t)n;
    Py_RETURN_NONE;
}

static PyObject *Channel_get_gap(ChannelObject *self, void *c)
{
    (void)c;
    if (!self->ch)
        return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(shml_recv_gap(self->ch));
}

static PyObject *Channel_get_address(ChannelObject *self, void *c)
{
    (void)c;
    if (!self->addr)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->addr);
}

static PyObject *Channel_get_max_msg(ChannelObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->max_msg);
}

static PyObject *Channel_get_closed(ChannelObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->ch == NULL || self->close_pending);
}

static PyObject *Channel_get_orphans(ChannelObject *self, void *c)
{
    (void)c;
    return PyLong_FromSsize_t(self->orphans);
}

/* The type read at open: (format, itemsize, shape tuple), or None if untyped; Corrupt if it
   is not plain data (check_type), so no dtype is ever built from such a format. */
static PyObject *Channel_get_type(ChannelObject *self, void *c)
{
    (void)c;
    if (!self->type.format[0])
        Py_RETURN_NONE;
    if (channel_type_plain(self) < 0)
        return NULL;
    PyObject *shape = PyTuple_New(self->type.ndim);
    if (!shape)
        return NULL;
    for (uint32_t i = 0; i < self->type.ndim; i++) {
        PyObject *d = PyLong_FromUnsignedLongLong(self->type.shape[i]);
        if (!d) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, d);
    }
    return Py_BuildValue("(sKN)", self->type.format, (unsigned long long)self->type.itemsize,
                         shape);
}

/* A stored type as `shmlink info --json` shows it: {"format", "itemsize", "shape": [...]},
   or None for untyped bytes. */
static PyObject *type_dict(const struct shml_channel_type *t)
{
    if (!t->format[0])
        Py_RETURN_NONE;
    PyObject *shape = PyList_New(t->ndim);
    if (!shape)
        return NULL;
    for (uint32_t i = 0; i < t->ndim; i++) {
        PyObject *d = PyLong_FromUnsignedLongLong(t->shape[i]);
        if (!d) {
            Py_DECREF(shape);
            return NULL;
        }
        PyList_SET_ITEM(shape, i, d);
    }
    return Py_BuildValue("{s:s,s:K,s:N}", "format", t->format, "itemsize",
                         (unsigned long long)t->itemsize, "shape", shape);
}

static PyObject *stats_dict(const struct shml_channel_stats *st)
{
    PyObject *type = type_dict(&st->type);
    if (!type)
        return NULL;
    return Py_BuildValue(
        "{s:I,s:O,s:I,s:I,s:K,s:N,s:I,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "kind",
        st->kind, "spsc", (st->flags & SHML_SPSC) ? Py_True : Py_False, "slots", st->slots,
        "slot_size", st->slot_size, "max_msg", (unsigned long long)st->max_msg, "type", type,
        "policy", st->policy,
        "endpoints", st->endpoints, "attached", st->attached, "sent",
        (unsigned long long)st->sent, "received", (unsigned long long)st->received,
        "bytes_sent", (unsigned long long)st->bytes_sent, "bytes_received",
        (unsigned long long)st->bytes_received, "queued", (unsigned long long)st->queued,
        "lost", (unsigned long long)st->lost, "drops", (unsigned long long)st->drops, "sleeps",
        (unsigned long long)st->sleeps);
}

static PyObject *Channel_stats(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->ch || self->close_pending) {
        PyErr_Format(PyExc_ValueError, "channel %s is closed", self->addr ? self->addr : "");
        return NULL;
    }
    struct shml_channel_stats st;
    int r = shml_channel_get_stats(self->ch, &st);
    if (r < 0)
        return raise_err(r, "stats of", self->addr);
    return stats_dict(&st);
}

/*
 * _cancel(): from another thread (the event loop's), stop the call this handle is running in
 * a worker (a cancelled arecv/asend): it returns -ECANCELED before its next attempt to take
 * or send a message. An attempt already under way may still succeed; its caller then has the
 * message (see _Channel._async_call). The request stays until _uncancel().
 */
static PyObject *Channel__cancel(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    /* seq_cst: pairs with the loads in wait_loop_c(); the interrupt then wakes a wait that
       began before the store. */
    atomic_store(&self->cancel, 1);
    if (self->ch)
        shml_channel_interrupt(self->ch);
    Py_RETURN_NONE;
}

/* _uncancel(): clear the request once the cancelled call has returned. */
static PyObject *Channel__uncancel(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    atomic_store(&self->cancel, 0);
    Py_RETURN_NONE;
}

static PyObject *Channel_interrupt(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (self->ch)
        shml_channel_interrupt(self->ch);
    Py_RETURN_NONE;
}

static PyObject *Channel_enter(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->ch || self->close_pending) {
        PyErr_Format(PyExc_ValueError, "channel %s is closed", self->addr ? self->addr : "");
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *Channel_exit(ChannelObject *self, PyObject *args)
{
    (void)args;
    PyObject *r = Channel_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyMethodDef Channel_methods[] = {
    {"send", (PyCFunction)(void (*)(void))Channel_send, METH_VARARGS | METH_KEYWORDS,
     "send(data, timeout=None)\n\nSend a bytes-like message, waiting for room at most timeout "
     "seconds\n(None: for ever, 0: not at all); TimeoutError when still full."},
    {"recv", (PyCFunction)(void (*)(void))Channel_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None) -> bytes\n\nReceive the next message, waiting at most timeout seconds "
     "(None: for ever,\n0: not at all); TimeoutError when still empty."},
    {"send_batch", (PyCFunction)(void (*)(void))Channel_send_batch, METH_VARARGS | METH_KEYWORDS,
     "send_batch(messages, timeout=None) -> int\n\nSend as many as fit (at least one), waiting "
     "for room at most timeout seconds\n(None: for ever); TimeoutError."},
    {"recv_batch", (PyCFunction)(void (*)(void))Channel_recv_batch, METH_VARARGS | METH_KEYWORDS,
     "recv_batch(max_messages=64, max_bytes=None, timeout=None) -> list[bytes]\n\nThe messages "
     "waiting (at least one), waiting at most timeout seconds for the first\n(None: for ever); "
     "TimeoutError."},
    {"claim", (PyCFunction)(void (*)(void))Channel_claim, METH_VARARGS | METH_KEYWORDS,
     "claim(n, timeout=None) -> context manager giving a writable memoryview of n bytes,\n"
     "committed at the end of the block (the length set by commit(k), default n).\n"
     "Entering waits for room at most timeout seconds (None: for ever); TimeoutError.\n"
     "Overwrite bus: OSError(ESTALE) at the end if the block lasted while other publishers\n"
     "went a whole ring past it (the message is not sent; counted lost)."},
    {"recv_view", (PyCFunction)(void (*)(void))Channel_recv_view, METH_VARARGS | METH_KEYWORDS,
     "recv_view(timeout=None) -> context manager giving a read-only memoryview of the next\n"
     "message in place, released (and unusable) at the end of the block. Entering waits\n"
     "at most timeout seconds (None: for ever); TimeoutError."},
    {"commit", (PyCFunction)Channel_commit, METH_O,
     "commit(n)\n\nInside `with claim(N)`: publish only the first n bytes at the end."},
    {"stats", (PyCFunction)Channel_stats, METH_NOARGS,
     "stats() -> dict\n\nThe channel's geometry, type and counters: the numbers `shmlink info "
     "--json` shows\nunder \"channel\", without the endpoint table (policy as 0 block, "
     "1 overwrite)."},
    {"interrupt", (PyCFunction)Channel_interrupt, METH_NOARGS,
     "interrupt()\n\nMake the current or next wait of this handle return early (once)."},
    {"_cancel", (PyCFunction)Channel__cancel, METH_NOARGS,
     "_cancel()\n\nStop the call running in a worker before its next attempt (-ECANCELED)."},
    {"_uncancel", (PyCFunction)Channel__uncancel, METH_NOARGS,
     "_uncancel()\n\nClear the request of _cancel() once that call has returned."},
    {"close", (PyCFunction)Channel_close, METH_NOARGS,
     "close()\n\nClose the endpoint (BufferError inside a claim or recv_view block). If "
     "arrays of\nfinished messages are still alive, the handle is closed at once and the "
     "endpoint\nand its mapping when the last of them goes."},
    {"__enter__", (PyCFunction)Channel_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Channel_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Channel_getset[] = {
    {"gap", (getter)Channel_get_gap, NULL, "Messages skipped before the last one received.",
     NULL},
    {"address", (getter)Channel_get_address, NULL, "The canonical address.", NULL},
    {"max_msg", (getter)Channel_get_max_msg, NULL, "Largest message in bytes.", NULL},
    {"closed", (getter)Channel_get_closed, NULL, "True after close().", NULL},
    {"_type", (getter)Channel_get_type, NULL, "(format, itemsize, shape) or None.", NULL},
    {"_orphans", (getter)Channel_get_orphans, NULL,
     "Exports of finished messages still alive (close() waits for them).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Channel_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Channel",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)Channel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Channel(addr, kind, create=False, **options)\n\nOne endpoint of a channel; "
              "use shmlink.Queue, Bus, Latest or RPC.",
    .tp_methods = Channel_methods,
    .tp_getset = Channel_getset,
    .tp_init = (initproc)Channel_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Message: the zero-copy claim or peek ---- */

struct claim_ctx {
    shml_channel *ch;
    size_t len;
    void **buf;
};

static ssize_t claim_op(void *ctx, int64_t t)
{
    struct claim_ctx *c = ctx;
    return shml_claim(c->ch, c->len, c->buf, t);
}

struct peek_ctx {
    shml_channel *ch;
    const void **buf;
    size_t *len;
};

static ssize_t peek_op(void *ctx, int64_t t)
{
    struct peek_ctx *c = ctx;
    return shml_peek(c->ch, c->buf, c->len, t);
}

/* Withdraw an unpublished claim (shml_discard): nothing is sent, the room is free again. */
static void message_abort(MessageObject *m)
{
    ChannelObject *ch = m->chan;
    shml_discard(ch->ch);
    m->state = MSG_DONE;
    m->ptr = NULL;
    ch->open = NULL;
}

/* Commit or release the slot; the Message is then done. Returns the library's result. */
static int message_finish(MessageObject *m)
{
    ChannelObject *ch = m->chan;
    int r = 0;
    if (m->aborted) {
        message_abort(m);
        return 0;
    }
    if (m->claim)
        r = shml_commit(ch->ch, m->commit_len);
    else
        r = shml_release(ch->ch);
    m->state = MSG_DONE;
    m->ptr = NULL;
    ch->open = NULL;
    return r;
}

static int Message_getbuffer(MessageObject *m, Py_buffer *view, int flags)
{
    view->obj = NULL;
    if (m->state != MSG_OPEN) {
        PyErr_SetString(PyExc_ValueError, "the message view is released");
        return -1;
    }
    if (!m->claim && (flags & PyBUF_WRITABLE)) {
        PyErr_SetString(PyExc_BufferError, "a received message is read-only");
        return -1;
    }
    if (m->typed) {
        const struct shml_channel_type *t = &m->chan->type;
        size_t expect = (size_t)t->itemsize;
        for (uint32_t i = 0; i < t->ndim; i++)
            expect *= (size_t)t->shape[i];
        if (!t->format[0] || m->len != expect) {
            PyErr_Format(PyExc_ValueError,
                         "message of %zu bytes does not match the channel's type (%zu bytes)",
                         m->len, expect);
            return -1;
        }
        if (channel_type_plain(m->chan) < 0) /* never export a format that is not plain data */
            return -1;
        view->buf = m->ptr;
        view->obj = Py_NewRef(m);
        view->len = (Py_ssize_t)m->len;
        view->readonly = !m->claim;
        view->itemsize = (Py_ssize_t)t->itemsize;
        view->format = (flags & PyBUF_FORMAT) ? (char *)t->format : NULL;
        view->ndim = (int)t->ndim;
        for (uint32_t i = 0; i < t->ndim; i++)
            m->shape[i] = (Py_ssize_t)t->shape[i];
        view->shape = (flags & PyBUF_ND) == PyBUF_ND ? m->shape : NULL;
        view->strides = NULL;
        view->suboffsets = NULL;
        view->internal = NULL;
        if (t->ndim > 0 && !view->shape) {
            Py_CLEAR(view->obj);
            PyErr_SetString(PyExc_BufferError, "a typed message needs PyBUF_ND");
            return -1;
        }
    } else if (PyBuffer_FillInfo(view, (PyObject *)m, m->ptr, (Py_ssize_t)m->len, !m->claim,
                                 flags) < 0) {
        return -1;
    }
    m->exports++;
    return 0;
}

static void Message_releasebuffer(MessageObject *m, Py_buffer *view)
{
    (void)view;
    --m->exports;
    if (m->orphaned) {
        ChannelObject *ch = m->chan;
        if (--ch->orphans == 0 && ch->close_pending && ch->ch) {
            /* close() came while this export lived: finish it now (see Channel_close). */
            shml_channel *c = ch->ch;
            ch->ch = NULL;
            ch->close_pending = false;
            shml_channel_close(c);
        }
    }
}

static PyBufferProcs Message_as_buffer = {(getbufferproc)Message_getbuffer,
                                          (releasebufferproc)Message_releasebuffer};

static PyObject *Message_enter(MessageObject *m, PyObject *unused)
{
    (void)unused;
    ChannelObject *ch = m->chan;
    if (m->state != MSG_NEW) {
        PyErr_SetString(PyExc_ValueError, "a message context can be entered once");
        return NULL;
    }
    if (channel_ready(ch) < 0)
        return NULL;
    ssize_t r;
    if (m->claim) {
        struct claim_ctx c = {ch->ch, m->len, &m->ptr};
        ch->busy = true;
        r = wait_loop_c(claim_op, &c, m->timeout, &ch->cancel);
        ch->busy = false;
    } else {
        const void *p = NULL;
        struct peek_ctx c = {ch->ch, &p, &m->len};
        ch->busy = true;
        r = wait_loop_c(peek_op, &c, m->timeout, &ch->cancel);
        ch->busy = false;
        m->ptr = (void *)p;
    }
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return raise_err((int)r, m->claim ? "claim in" : "recv_view from", ch->addr);
    m->state = MSG_OPEN;
    ch->open = m;
    m->view = PyMemoryView_FromObject((PyObject *)m);
    if (!m->view) {
        /* Give the slot back at once: the claim is discarded, the peek released. */
        if (m->claim) {
            message_abort(m);
        } else {
            message_finish(m);
        }
        return NULL;
    }
    return Py_NewRef(m->view);
}

/*
 * End of the block: release the view we gave (so using it raises ValueError), then commit
 * or release the slot. Views derived from ours that are still alive (a slice, a numpy array)
 * keep pointing into the mapping, which close() keeps while they live (never a dangling
 * pointer), at a slot that may hold other messages from now on. After an exception, a claim
 * is discarded (shml_discard): nothing is sent and the room is free again.
 */
static PyObject *Message_exit(MessageObject *m, PyObject *args)
{
    PyObject *et = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    bool failed = et != Py_None;
    if (m->state != MSG_OPEN)
        Py_RETURN_FALSE;
    ChannelObject *ch = m->chan;
    if (m->view) {
        PyObject *r = PyObject_CallMethod(m->view, "release", NULL);
        if (r)
            Py_DECREF(r);
        else
            PyErr_Clear(); /* it has exports of its own: counted below */
        Py_CLEAR(m->view);
    }
    if (m->exports > 0) {
        /* An array over the message is still referenced (numpy keeps its own export; the
           `as arr` name alone does it). The slot is finished now all the same; the array
           keeps pointing into the channel's mapping, which close() keeps alive while such
           exports live (never a dangling pointer), but at a slot that may hold another
           message from now on. */
        m->orphaned = true;
        ch->orphans += m->exports;
    }
    if (m->claim && failed) {
        message_abort(m);
        Py_RETURN_FALSE;
    }
    int r = message_finish(m);
    if (r < 0 && !failed) {
        if (r == -ESTALE && !m->claim) {
            PyErr_Format(PyExc_BufferError,
                         "recv_view from %s: a publisher overwrote the message while it was "
                         "viewed (policy overwrite): what was read may be torn", ch->addr);
            return NULL;
        }
        return raise_err(r, m->claim ? "commit in" : "release in", ch->addr);
    }
    Py_RETURN_FALSE;
}

static void Message_dealloc(MessageObject *m)
{
    /* Exports hold references, so none is alive here. A message still open (entered but
       never exited, e.g. a generator abandoned) is finished now. */
    if (m->state == MSG_OPEN && m->claim)
        m->aborted = true;
    if (m->state == MSG_OPEN && m->chan->ch && !m->chan->busy)
        message_finish(m);
    else if (m->chan->open == m)
        m->chan->open = NULL;
    Py_XDECREF(m->view);
    Py_DECREF(m->chan);
    PyObject_Free(m);
}

static PyObject *Message_get_len(MessageObject *m, void *c)
{
    (void)c;
    return PyLong_FromSize_t(m->len);
}

static PyMethodDef Message_methods[] = {
    {"__enter__", (PyCFunction)Message_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Message_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Message_getset[] = {
    {"nbytes", (getter)Message_get_len, NULL, "Bytes claimed or received.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject Message_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Message",
    .tp_basicsize = sizeof(MessageObject),
    .tp_dealloc = (destructor)Message_dealloc,
    .tp_as_buffer = &Message_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zero-copy claim or received message; use it in a `with` statement.",
    .tp_methods = Message_methods,
    .tp_getset = Message_getset,
};

/* ---- a typed probe: a zeroed buffer of one message with a given format and shape ---- */

typedef struct {
    PyObject_HEAD
    char format[SHML_TYPE_FORMAT_MAX];
    Py_ssize_t itemsize, len, ndim;
    Py_ssize_t shape[SHML_TYPE_NDIM_MAX];
    char *data;
} ProbeObject;

static int Probe_getbuffer(ProbeObject *p, Py_buffer *view, int flags)
{
    view->buf = p->data;
    view->obj = Py_NewRef(p);
    view->len = p->len;
    view->readonly = 1;
    view->itemsize = p->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? p->format : NULL;
    view->ndim = (int)p->ndim;
    view->shape = p->shape;
    view->strides = NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static void Probe_dealloc(ProbeObject *p)
{
    PyMem_Free(p->data);
    PyObject_Free(p);
}

static PyBufferProcs Probe_as_buffer = {(getbufferproc)Probe_getbuffer, NULL};

static PyTypeObject Probe_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.TypeProbe",
    .tp_basicsize = sizeof(ProbeObject),
    .tp_dealloc = (destructor)Probe_dealloc,
    .tp_as_buffer = &Probe_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zeroed, read-only buffer with a given PEP 3118 format and shape.",
};

/* type_probe(format, itemsize, shape=()) -> object exporting one zeroed element array */
static PyObject *mod_type_probe(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *format;
    Py_ssize_t itemsize;
    PyObject *shape = NULL;
    if (!PyArg_ParseTuple(args, "sn|O:type_probe", &format, &itemsize, &shape))
        return NULL;
    if (strlen(format) >= SHML_TYPE_FORMAT_MAX || itemsize <= 0) {
        PyErr_SetString(PyExc_ValueError, "bad format or itemsize");
        return NULL;
    }
    struct shml_channel_type t = {.itemsize = (uint64_t)itemsize};
    strcpy(t.format, format);
    if (check_type(&t, NULL) < 0) /* numpy reads this format: plain data only */
        return NULL;
    ProbeObject *p = PyObject_New(ProbeObject, &Probe_Type);
    if (!p)
        return NULL;
    p->data = NULL;
    strcpy(p->format, format);
    p->itemsize = itemsize;
    p->ndim = 0;
    p->len = itemsize;
    if (shape && shape != Py_None) {
        PyObject *seq = PySequence_Fast(shape, "shape must be a sequence");
        if (!seq)
            goto fail;
        Py_ssize_t nd = PySequence_Fast_GET_SIZE(seq);
        if (nd > (Py_ssize_t)SHML_TYPE_NDIM_MAX) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "too many dimensions");
            goto fail;
        }
        for (Py_ssize_t i = 0; i < nd; i++) {
            Py_ssize_t d = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
            if (d < 0 || (d > 0 && p->len > PY_SSIZE_T_MAX / d)) {
                Py_DECREF(seq);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "bad shape");
                goto fail;
            }
            p->shape[i] = d;
            p->len *= d;
        }
        p->ndim = nd;
        Py_DECREF(seq);
    }
    p->data = PyMem_Calloc(1, p->len ? (size_t)p->len : 1);
    if (!p->data) {
        PyErr_NoMemory();
        goto fail;
    }
    return (PyObject *)p;
fail:
    Py_DECREF(p);
    return NULL;
}

/* ---- inspection: the facts `shmlink ls/info/gc` show, as dicts of the C fields ---- */

static PyObject *info_dict(const struct shml_segment_info *s)
{
    const char *why = "";
    int verdict = shml_gc_verdict(s, &why);
    return Py_BuildValue(
        "{s:s,s:i,s:i,s:O,s:O,s:I,s:I,s:I,s:I,s:K,s:K,s:I,s:I,s:i,s:K,s:i,s:I,s:I,s:I,s:L,"
        "s:O,s:s,s:i,s:I,s:i,s:s}",
        "address", s->address, "backend", s->backend, "status", s->status, "managed",
        s->managed ? Py_True : Py_False, "shmlink", s->shmlink ? Py_True : Py_False, "kind",
        s->kind, "version", s->version, "header_size", s->header_size, "flags", s->hdr_flags,
        "size", (unsigned long long)s->size, "object_size", (unsigned long long)s->object_size,
        "mode", s->mode, "uid", s->uid, "creator_pid", (int)s->creator_pid, "creator_start",
        (unsigned long long)s->creator_start, "creator_alive", s->creator_alive, "attached",
        s->attached, "attach_dead", s->attach_dead, "untracked", s->untracked, "created_ns",
        (long long)s->created_ns, "other_boot", s->other_boot ? Py_True : Py_False, "label",
        s->label, "sysv_id", (int)s->sysv_id, "sysv_key", s->sysv_key, "gc_verdict", verdict,
        "gc_why", why);
}

static PyObject *info_list(const struct shml_segment_info *v, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *d = info_dict(&v[i]);
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    return list;
}

/* _list(all=False) -> list of raw info dicts */
static PyObject *mod_list(PyObject *mod, PyObject *args)
{
    (void)mod;
    int all = 0;
    if (!PyArg_ParseTuple(args, "|p:_list", &all))
        return NULL;
    struct shml_segment_info *v = NULL;
    size_t n = 0;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = shml_segment_list(all ? SHML_LIST_ALL : 0u, &v, &n);
    Py_END_ALLOW_THREADS
    if (r < 0)
        return raise_err(r, "list", "segments");
    PyObject *list = info_list(v, n);
    shml_free(v);
    return list;
}

/* _gc(dry_run) -> list of raw info dicts of what was (or would be) removed */
static PyObject *mod_gc(PyObject *mod, PyObject *args)
{
    (void)mod;
    int dry = 0;
    if (!PyArg_ParseTuple(args, "p:_gc", &dry))
        return NULL;
    struct shml_segment_info *v = NULL;
    size_t n = 0;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = shml_gc(dry, &v, &n);
    Py_END_ALLOW_THREADS
    if (r < 0)
        return raise_err(r, "gc", "segments");
    PyObject *list = info_list(v, n);
    shml_free(v);
    return list;
}

/* _stat(addr) -> (info dict, [attach dicts], [declared dicts], channel dict or None) */
static PyObject *mod_stat(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *addr;
    if (!PyArg_ParseTuple(args, "s:_stat", &addr))
        return NULL;
    struct shml_segment_info *info = PyMem_Calloc(1, sizeof *info);
    struct shml_attach_info att[64];
    struct shml_decl_info decl[SHML_DECL_MAX];
    struct shml_endpoint_stats *eps = NULL;
    PyObject *d = NULL, *al = NULL, *dl = NULL, *chd = NULL, *result = NULL;
    size_t na = 0, nd = 0;
    if (!info)
        return PyErr_NoMemory();
    int r = shml_segment_stat(addr, info, att, 64, &na);
    if (r < 0) {
        raise_err(r, "info", addr);
        goto out;
    }
    if (na > 64)
        na = 64;
    if (!(d = info_dict(info)) || !(al = PyList_New(0)))
        goto out;
    for (size_t i = 0; i < na; i++) {
        PyObject *a = Py_BuildValue("{s:i,s:I,s:K,s:L,s:i}", "pid", (int)att[i].pid, "role",
                                    att[i].role, "start_time",
                                    (unsigned long long)att[i].start_time, "since_ns",
                                    (long long)att[i].since_ns, "alive", att[i].alive);
        if (!a || PyList_Append(al, a) < 0) {
            Py_XDECREF(a);
            goto out;
        }
        Py_DECREF(a);
    }
    /* As the tool: no list at all (None) where nothing can be declared or it is unreadable. */
    if (info->managed && shml_segment_declared(addr, decl, SHML_DECL_MAX, &nd) >= 0) {
        if (!(dl = PyList_New(0)))
            goto out;
        if (nd > SHML_DECL_MAX)
            nd = SHML_DECL_MAX;
        for (size_t i = 0; i < nd; i++) {
            const struct shml_decl_info *e = &decl[i];
            /* the name comes from shared memory: terminate it here */
            char name[SHML_DECL_NAME_MAX];
            memcpy(name, e->name, sizeof name);
            name[sizeof name - 1] = '\0';
            PyObject *x = Py_BuildValue(
                "{s:s,s:I,s:K,s:i,s:i,s:i,s:i,s:i,s:O,s:I,s:I,s:I}", "name", name, "type",
                e->type, "offset", (unsigned long long)e->offset, "status", e->status, "state",
                e->mutex.state, "owner_tid", (int)e->mutex.owner, "owner_pid",
                (int)e->mutex.pid, "owner_alive", e->mutex.alive, "mutex_waiters",
                e->mutex.waiters ? Py_True : Py_False, "generation", e->generation, "value",
                e->value, "waiters", e->waiters);
            if (!x || PyList_Append(dl, x) < 0) {
                Py_XDECREF(x);
                goto out;
            }
            Py_DECREF(x);
        }
    }
    if (info->managed && info->kind >= SHML_QUEUE && info->kind <= SHML_RPC) {
        struct shml_channel_stats st;
        size_t ne = 0;
        eps = PyMem_Calloc(4096, sizeof *eps);
        if (!eps) {
            PyErr_NoMemory();
            goto out;
        }
        r = shml_channel_inspect(addr, &st, eps, 4096, &ne);
        if (r < 0) {
            chd = Py_BuildValue("{s:s,s:s}", "error", shml_strerror(r), "detail",
                                shml_last_error());
        } else {
            if (ne > 4096)
                ne = 4096;
            PyObject *el = PyList_New(0);
            if (!el)
                goto out;
            for (size_t i = 0; i < ne; i++) {
                const struct shml_endpoint_stats *e = &eps[i];
                PyObject *x = Py_BuildValue(
                    "{s:I,s:i,s:I,s:O,s:K,s:K,s:K,s:K,s:K}", "index", e->index, "pid",
                    (int)e->pid, "role", e->role, "alive", e->alive ? Py_True : Py_False,
                    "messages", (unsigned long long)e->messages, "bytes",
                    (unsigned long long)e->bytes, "drops", (unsigned long long)e->drops,
                    "sleeps", (unsigned long long)e->sleeps, "lag", (unsigned long long)e->lag);
                if (!x || PyList_Append(el, x) < 0) {
                    Py_XDECREF(x);
                    Py_DECREF(el);
                    goto out;
                }
                Py_DECREF(x);
            }
            chd = stats_dict(&st);
            if (!chd || PyDict_SetItemString(chd, "endpoint_table", el) < 0) {
                Py_DECREF(el);
                goto out;
            }
            Py_DECREF(el);
        }
        if (!chd)
            goto out;
    } else {
        chd = Py_NewRef(Py_None);
    }
    result = PyTuple_Pack(4, d, al, dl ? dl : Py_None, chd);
out:
    Py_XDECREF(d);
    Py_XDECREF(al);
    Py_XDECREF(dl);
    Py_XDECREF(chd);
    PyMem_Free(eps);
    PyMem_Free(info);
    return result;
}

static PyObject *mod_unlink(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *addr;
    if (!PyArg_ParseTuple(args, "s:unlink", &addr))
        return NULL;
    int r = shml_segment_unlink(addr);
    if (r < 0)
        return raise_err(r, "unlink", addr);
    Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long e = PyLong_AsLong(arg);
    if (e == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(shml_strerror((int)e));
}

/*
 * name(table, value, kind=0): the library's word for a code (shmlink/names.h), the one every
 * face prints, or None for a value the table does not hold. Tables: "kind", "role" and
 * "attach_role" (in the words of channel kind `kind`), "policy", "wait", "backend",
 * "decl_type", "mutex_state", "alive", "gc_verdict".
 */
static PyObject *mod_name(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *table;
    long long v;
    unsigned int kind = 0;
    if (!PyArg_ParseTuple(args, "sL|I:name", &table, &v, &kind))
        return NULL;
    const char *w;
    if (!strcmp(table, "kind"))
        w = shml_kind_name((uint32_t)v);
    else if (!strcmp(table, "role"))
        w = shml_role_name(kind, (uint32_t)v);
    else if (!strcmp(table, "attach_role"))
        w = shml_attach_role_name(kind, (uint32_t)v);
    else if (!strcmp(table, "policy"))
        w = shml_policy_name((uint32_t)v);
    else if (!strcmp(table, "wait"))
        w = shml_wait_name((uint32_t)v);
    else if (!strcmp(table, "backend"))
        w = shml_backend_name((int)v);
    else if (!strcmp(table, "decl_type"))
        w = shml_decl_type_name((uint32_t)v);
    else if (!strcmp(table, "mutex_state"))
        w = shml_mutex_state_name((int)v);
    else if (!strcmp(table, "alive"))
        w = shml_alive_name((int)v);
    else if (!strcmp(table, "gc_verdict"))
        w = shml_gc_verdict_name((int)v);
    else
        return PyErr_Format(PyExc_ValueError, "no name table %s", table);
    if (!w)
        Py_RETURN_NONE;
    return PyUnicode_FromString(w);
}

static PyMethodDef module_methods[] = {
    {"name", mod_name, METH_VARARGS,
     "name(table, value, kind=0) -> the library's word for a code, or None"},
    {"_list", mod_list, METH_VARARGS, "_list(all=False) -> list of dicts (C fields)"},
    {"_gc", mod_gc, METH_VARARGS, "_gc(dry_run) -> list of dicts (C fields)"},
    {"_stat", mod_stat, METH_VARARGS, "_stat(addr) -> (info, attach, declared, channel)"},
    {"type_probe", mod_type_probe, METH_VARARGS,
     "type_probe(format, itemsize, shape=()) -> a zeroed buffer with that format and shape"},
    {"unlink", mod_unlink, METH_VARARGS, "unlink(addr)\n\nRemove the segment at addr."},
    {"strerror", mod_strerror, METH_O, "strerror(errno) -> shmlink's description"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_shmlink",
    "The C extension under the shmlink package (use `import shmlink`).", -1, module_methods,
    NULL, NULL, NULL, NULL};

static int add_exc(PyObject *m, PyObject **slot, const char *name, PyObject *base,
                   const char *doc)
{
    char full[64];
    snprintf(full, sizeof full, "shmlink.%s", name);
    *slot = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (!*slot)
        return -1;
    return PyModule_AddObjectRef(m, name, *slot);
}

PyMODINIT_FUNC PyInit__shmlink(void);

PyMODINIT_FUNC PyInit__shmlink(void)
{
    PyTypeObject *types[] = {&Segment_Type, &Mutex_Type,   &Event_Type, &Sem_Type,
                             &Channel_Type, &Message_Type, &Probe_Type};
    const char *names[] = {"Segment", "Mutex", "Event", "Semaphore", "Channel", "Message",
                           "TypeProbe"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            goto fail;
    if (add_exc(m, &Error, "Error", PyExc_OSError, "Base of shmlink's own errors.") < 0 ||
        add_exc(m, &OwnerDied, "OwnerDied", Error,
                "A mutex's holder died: the lock is now held by the caller; repair the data, "
                "then call consistent().") < 0 ||
        add_exc(m, &NotRecoverable, "NotRecoverable", Error,
                "A mutex whose dead holder's data nobody repaired.") < 0 ||
        add_exc(m, &Corrupt, "Corrupt", Error, "A header or channel failed validation.") < 0 ||
        add_exc(m, &NotShmlink, "NotShmlink", Error,
                "Not a shmlink segment: open it with raw=True.") < 0 ||
        add_exc(m, &WrongKind, "WrongKind", Error, "A segment of another kind.") < 0 ||
        add_exc(m, &VersionError, "VersionError", Error, "An unknown layout version.") < 0 ||
        add_exc(m, &Truncated, "Truncated", Error,
                "Another process truncated the object under the mapping: the segment (or "
                "channel) is lost, and its calls raise this from then on.") < 0)
        goto fail;
    if (PyModule_AddIntConstant(m, "QUEUE", SHML_QUEUE) < 0 ||
        PyModule_AddIntConstant(m, "BUS", SHML_BUS) < 0 ||
        PyModule_AddIntConstant(m, "LATEST", SHML_LATEST) < 0 ||
        PyModule_AddIntConstant(m, "RPC", SHML_RPC) < 0 ||
        PyModule_AddStringConstant(m, "library_version", shml_version()) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
