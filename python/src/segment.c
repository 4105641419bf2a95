/*
 * segment.c - the Segment type: a named shared-memory segment mapped into this process,
 * created or opened (waiting for it with a timeout, or created with an init callback that runs
 * before anyone else can open it), whose bytes are exported through the buffer protocol with
 * every export counted so that close() refuses while one is alive; safe read/write/check
 * through the fd for a mapping another process may truncate, declare(), fileno() and
 * pickling by address.
 */
#include "_shmlink.h"

static int segment_check_open(SegmentObject *self)
{
    if (!self->seg) {
        PyErr_Format(PyExc_ValueError, "segment %s is closed", self->addr ? self->addr : "");
        return -1;
    }
    return 0;
}

/* Not there yet, on the first attempt (timeout 0), is a wait that timed out: it goes on. */
static ssize_t segment_open_op(void *ctx, int64_t t)
{
    struct open_ctx *c = ctx;
    struct shml_segment_opts *o = c->opts;
    o->timeout_ns = t;
    int r = shml_segment_open(c->addr, o, c->out);
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
    if (timeout && shmlpy_parse_timeout(timeout, &wait_ns) < 0)
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
        /* Through shmlpy_wait_loop(), so that Ctrl-C ends the wait. */
        ssize_t w = shmlpy_wait_loop(segment_open_op, &c, wait_ns);
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
        shmlpy_raise_err(r, create ? "create" : "open", addr);
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
        return shmlpy_raise_err(r, "close", self->addr);
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
        return shmlpy_raise_err(r, "unlink", self->addr);
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
        return shmlpy_raise_err(fd, "fileno", self->addr);
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
        return shmlpy_raise_err((int)r, "read", self->addr);
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
        return shmlpy_raise_err((int)r, "write", self->addr);
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
        return shmlpy_raise_err(r, "check", self->addr);
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
    if (shmlpy_parse_choice(type, "declared type", names, values, 3, &t) < 0)
        return NULL;
    int r = shml_segment_declare(self->seg, name, t, (size_t)offset);
    if (r < 0)
        return shmlpy_raise_err(r, "declare in", self->addr);
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

PyTypeObject shmlpy_Segment_Type = {
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
