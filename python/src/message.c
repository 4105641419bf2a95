/*
 * message.c - the Message type: the zero-copy claim (writable, published at the end of its
 * `with` block, discarded after an exception) or peek (read-only, released at the end) of a
 * channel, exported as a buffer, typed with the channel's format and shape on request; exports
 * that outlive the block are counted as the channel's orphans, so that its mapping stays until
 * the last is released.
 */
#include "_shmlink.h"

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

MessageObject *shmlpy_message_new(ChannelObject *ch, bool claim, bool typed, int64_t timeout,
                                  size_t len)
{
    MessageObject *m = PyObject_New(MessageObject, &shmlpy_Message_Type);
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
        /* never export a format that is not plain data */
        if (shmlpy_channel_type_plain(m->chan) < 0)
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
    if (shmlpy_channel_ready(ch) < 0)
        return NULL;
    ssize_t r;
    if (m->claim) {
        struct claim_ctx c = {ch->ch, m->len, &m->ptr};
        ch->busy = true;
        r = shmlpy_wait_loop(claim_op, &c, m->timeout);
        ch->busy = false;
    } else {
        const void *p = NULL;
        struct peek_ctx c = {ch->ch, &p, &m->len};
        ch->busy = true;
        r = shmlpy_wait_loop(peek_op, &c, m->timeout);
        ch->busy = false;
        m->ptr = (void *)p;
    }
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, m->claim ? "claim in" : "recv_view from", ch->addr);
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
        return shmlpy_raise_err(r, m->claim ? "commit in" : "release in", ch->addr);
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

PyTypeObject shmlpy_Message_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.Message",
    .tp_basicsize = sizeof(MessageObject),
    .tp_dealloc = (destructor)Message_dealloc,
    .tp_as_buffer = &Message_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zero-copy claim or received message; use it in a `with` statement.",
    .tp_methods = Message_methods,
    .tp_getset = Message_getset,
};
