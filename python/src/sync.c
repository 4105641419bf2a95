/*
 * sync.c - Mutex, Event and Semaphore: one type each over a common placement (SyncObject,
 * an export of the segment's bytes that keeps the mapping alive, and the primitive at an
 * offset inside it, checked for bounds and alignment). Blocking calls (lock, wait) go through
 * the wait loop of wait.c.
 */
#include "_shmlink.h"

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
    if (!PyObject_TypeCheck(segment, &shmlpy_Segment_Type)) {
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
            shmlpy_raise_err(r, "Mutex init in", sync_addr(self));
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
        shmlpy_parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
        return NULL;
    struct lock_ctx c = {self->obj};
    ssize_t r = shmlpy_wait_loop(mutex_lock_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, "Mutex.lock in", sync_addr(self));
    Py_RETURN_TRUE;
}

static PyObject *Mutex_unlock(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_mutex_unlock(self->obj);
    if (r < 0)
        return shmlpy_raise_err(r, "Mutex.unlock in", sync_addr(self));
    Py_RETURN_NONE;
}

static PyObject *Mutex_consistent(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_mutex_consistent(self->obj);
    if (r < 0)
        return shmlpy_raise_err(r, "Mutex.consistent in", sync_addr(self));
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
        return shmlpy_raise_err(r, "Mutex.state in", sync_addr(self));
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

PyTypeObject shmlpy_Mutex_Type = {
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
            shmlpy_raise_err(r, "Event init in", sync_addr(self));
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
    return shml_event_wait(c->obj, c->seen, t);
}

/* wait(seen=None, timeout=None) -> new generation; waits until it differs from `seen`
   (default: the generation at the call). The order is C's: shml_event_wait(e, seen, t). */
static PyObject *Event_wait(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"seen", "timeout", NULL};
    PyObject *to = Py_None, *seen = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:wait", kwlist, &seen, &to) ||
        shmlpy_parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
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
    ssize_t r = shmlpy_wait_loop(event_wait_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, "Event.wait in", sync_addr(self));
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
        return shmlpy_raise_err(r, "Event.notify in", sync_addr(self));
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

PyTypeObject shmlpy_Event_Type = {
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
            shmlpy_raise_err(r, "Semaphore init in", sync_addr(self));
            Sync_close(self, NULL);
            return -1;
        }
    }
    return 0;
}

static ssize_t sem_wait_op(void *ctx, int64_t t)
{
    return shml_sem_wait(((struct lock_ctx *)ctx)->obj, t);
}

static PyObject *Sem_wait(SyncObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &to) ||
        shmlpy_parse_timeout(to, &ns) < 0 || sync_check(self) < 0)
        return NULL;
    struct lock_ctx c = {self->obj};
    ssize_t r = shmlpy_wait_loop(sem_wait_op, &c, ns);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, "Semaphore.wait in", sync_addr(self));
    Py_RETURN_TRUE;
}

static PyObject *Sem_post(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (sync_check(self) < 0)
        return NULL;
    int r = shml_sem_post(self->obj);
    if (r < 0)
        return shmlpy_raise_err(r, "Semaphore.post in", sync_addr(self));
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

PyTypeObject shmlpy_Sem_Type = {
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
