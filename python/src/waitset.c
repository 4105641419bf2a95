/*
 * waitset.c - the WaitSet type: shml_waitset over channels and anything with a descriptor
 * (an int, or an object with fileno()), for programs that wait without an event loop.
 * shmlink.wait() (_channel.py) is built on it.
 *
 * Members are kept in a dict (the object -> the fd it was added with, None for a channel),
 * which also keeps them alive: the C set's user pointer is the object itself. The wait goes
 * through shmlpy_wait_loop(), so Ctrl-C and other signals end it in the main thread as they
 * end every other wait of the module.
 */
#include "_shmlink.h"

typedef struct {
    PyObject_HEAD
    shml_waitset *ws;
    PyObject *members; /* dict: object -> fd (int), or None for a channel */
} WaitSetObject;

static int WaitSet_init(WaitSetObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":WaitSet", kwlist))
        return -1;
    if (self->ws)
        return 0;
    int r = shml_waitset_create(&self->ws);
    if (r < 0) {
        shmlpy_raise_err(r, "wait set", NULL);
        return -1;
    }
    self->members = PyDict_New();
    return self->members ? 0 : -1;
}

static void WaitSet_dealloc(WaitSetObject *self)
{
    shml_waitset_destroy(self->ws);
    Py_XDECREF(self->members);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int usable(WaitSetObject *self)
{
    if (!self->ws) {
        PyErr_SetString(PyExc_ValueError, "the wait set is closed");
        return -1;
    }
    return 0;
}

static bool is_channel(PyObject *o)
{
    return PyObject_TypeCheck(o, &shmlpy_Channel_Type);
}

/* add(obj, events=READABLE): a channel, or an object with a descriptor. */
static PyObject *WaitSet_add(WaitSetObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"obj", "events", NULL};
    PyObject *o;
    unsigned int events = SHML_READABLE;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|I:add", kwlist, &o, &events) || usable(self) < 0)
        return NULL;
    int r;
    PyObject *val;
    if (is_channel(o)) {
        ChannelObject *c = (ChannelObject *)o;
        if (events != SHML_READABLE) {
            PyErr_SetString(PyExc_ValueError, "a channel is waited for as READABLE only (it is "
                                              "ready when it can make progress)");
            return NULL;
        }
        if (shmlpy_channel_ready(c) < 0)
            return NULL;
        r = shml_waitset_add(self->ws, c->ch, o);
        val = Py_NewRef(Py_None);
        if (r < 0) {
            Py_DECREF(val);
            return shmlpy_raise_err(r, "add to a wait set:", c->addr);
        }
    } else {
        int fd = PyObject_AsFileDescriptor(o);
        if (fd < 0)
            return NULL;
        r = shml_waitset_add_fd(self->ws, fd, events, o);
        if (r < 0)
            return shmlpy_raise_err(r, "add to a wait set: descriptor", NULL);
        val = PyLong_FromLong(fd);
        if (!val)
            return NULL;
    }
    r = PyDict_SetItem(self->members, o, val);
    Py_DECREF(val);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* remove(obj) */
static PyObject *WaitSet_remove(WaitSetObject *self, PyObject *o)
{
    if (usable(self) < 0)
        return NULL;
    PyObject *val = PyDict_GetItemWithError(self->members, o);
    if (!val) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "not in the wait set");
        return NULL;
    }
    if (val == Py_None) {
        ChannelObject *c = (ChannelObject *)o;
        if (c->ch) /* a closed channel left the C set when it closed */
            shml_waitset_remove(self->ws, c->ch);
    } else {
        shml_waitset_remove_fd(self->ws, (int)PyLong_AsLong(val));
    }
    if (PyDict_DelItem(self->members, o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

#define READY_MAX 64

struct wait_ctx {
    shml_waitset *ws;
    struct shml_waitset_event ev[READY_MAX];
};

static ssize_t waitset_op(void *ctx, int64_t t)
{
    struct wait_ctx *c = ctx;
    /* -EINTR (a signal handler ran) and -ECANCELED (the main thread's token): the loop runs
       Python's handlers and waits again. */
    return shml_waitset_wait(c->ws, c->ev, READY_MAX, t);
}

/* wait(timeout=None) -> list of (obj, events); [] when the timeout passes. */
static PyObject *WaitSet_wait(WaitSetObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &to) ||
        shmlpy_parse_timeout(to, &ns) < 0 || usable(self) < 0)
        return NULL;
    struct wait_ctx *c = PyMem_Malloc(sizeof(*c));
    if (!c)
        return PyErr_NoMemory();
    c->ws = self->ws;
    /* The members stay alive while we wait (the dict holds them; a second reference to the
       dict keeps it even if the set is closed from another thread meanwhile). */
    PyObject *members = Py_NewRef(self->members);
    ssize_t n = shmlpy_wait_loop(waitset_op, c, ns);
    PyObject *out = NULL;
    if (n == WAIT_PYERR)
        goto done;
    if (n == -ETIMEDOUT) {
        out = PyList_New(0);
        goto done;
    }
    if (n < 0) {
        shmlpy_raise_err((int)n, "wait set", NULL);
        goto done;
    }
    out = PyList_New(0);
    for (ssize_t i = 0; out && i < n; i++) {
        PyObject *o = c->ev[i].user;
        if (!PyDict_Contains(members, o))
            continue;
        PyObject *t = Py_BuildValue("(OI)", o, c->ev[i].events);
        if (!t || PyList_Append(out, t) < 0)
            Py_CLEAR(out);
        Py_XDECREF(t);
    }
done:
    Py_DECREF(members);
    PyMem_Free(c);
    return out;
}

static PyObject *WaitSet_close(WaitSetObject *self, PyObject *unused)
{
    (void)unused;
    shml_waitset_destroy(self->ws);
    self->ws = NULL;
    if (self->members)
        PyDict_Clear(self->members);
    Py_RETURN_NONE;
}

static PyObject *WaitSet_enter(WaitSetObject *self, PyObject *unused)
{
    (void)unused;
    if (usable(self) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *WaitSet_exit(WaitSetObject *self, PyObject *args)
{
    (void)args;
    PyObject *r = WaitSet_close(self, NULL);
    Py_XDECREF(r);
    Py_RETURN_FALSE;
}

static Py_ssize_t WaitSet_len(WaitSetObject *self)
{
    return self->members ? PyDict_Size(self->members) : 0;
}

static PyMethodDef WaitSet_methods[] = {
    {"add", (PyCFunction)(void (*)(void))WaitSet_add, METH_VARARGS | METH_KEYWORDS,
     "add(obj, events=READABLE)\n\nAdd a channel (ready when it can make progress: call it with "
     "timeout 0\nuntil TimeoutError), or a descriptor (an int, or an object with fileno()) for\n"
     "READABLE and/or WRITABLE. FileExistsError if it is a member already; a channel\nbelongs to "
     "one wait set at a time (OSError EBUSY)."},
    {"remove", (PyCFunction)WaitSet_remove, METH_O,
     "remove(obj)\n\nTake a member out (KeyError if it is none)."},
    {"wait", (PyCFunction)(void (*)(void))WaitSet_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> list of (obj, events)\n\nWait at most timeout seconds (None: for "
     "ever) for members to be ready; [] when the\ntimeout passes. Level-triggered: a member "
     "still ready is reported again. Signals\n(Ctrl-C) are handled as in every other wait."},
    {"close", (PyCFunction)WaitSet_close, METH_NOARGS,
     "close()\n\nFree the set; its channels stay open."},
    {"__enter__", (PyCFunction)WaitSet_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)WaitSet_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PySequenceMethods WaitSet_seq = {.sq_length = (lenfunc)WaitSet_len};

PyTypeObject shmlpy_WaitSet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink.WaitSet",
    .tp_basicsize = sizeof(WaitSetObject),
    .tp_dealloc = (destructor)WaitSet_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WaitSet()\n\nWait for any of many channels and descriptors at once, without an "
              "event loop\n(epoll on Linux). Methods: add, remove, wait, close; a context "
              "manager.",
    .tp_methods = WaitSet_methods,
    .tp_as_sequence = &WaitSet_seq,
    .tp_init = (initproc)WaitSet_init,
    .tp_new = PyType_GenericNew,
};
