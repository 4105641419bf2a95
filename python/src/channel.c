/*
 * channel.c - the Channel type: one endpoint of a queue, bus, latest or rpc channel, created
 * or opened (waiting for it with a timeout), and its calls: send and recv (one message or a
 * batch, copied), claim and recv_view (which make a Message, message.c), commit, the stats and
 * type, the descriptor for event loops (fileno, and the non-blocking calls asyncio uses),
 * interrupt and close (deferred while views of finished messages are alive).
 */
#include "_shmlink.h"

/* As segment_open_op (segment.c): not there yet, on the first attempt, is a timeout. */
static ssize_t channel_open_op(void *ctx, int64_t t)
{
    struct open_ctx *c = ctx;
    struct shml_channel_opts *o = c->opts;
    o->timeout_ns = t;
    int r = shml_channel_open(c->addr, c->role, o, c->out);
    return r == -ENOENT ? -ETIMEDOUT : r;
}

int shmlpy_channel_type_plain(ChannelObject *self)
{
    if (!self->type_plain && shmlpy_check_type(&self->type, self->addr) < 0)
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
    if (shmlpy_parse_choice(o, "role", names, values, sizeof values / sizeof values[0], &r) < 0)
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
 *         format=None, itemsize=0, shape=None, owned=False, timeout=0, durable=None)
 */
static int Channel_init(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr",   "kind",   "create",   "capacity", "max_msg",
                             "policy", "wait",   "mode",     "role",     "endpoints",
                             "spsc",   "format", "itemsize", "shape",    "owned",
                             "timeout", "durable", NULL};
    const char *addr, *format = NULL, *durable = NULL;
    unsigned int kind, mode = 0600;
    int create = 0, spsc = 0, owned = 0;
    PyObject *capacity = Py_None, *max_msg = Py_None, *policy = Py_None, *wait = Py_None;
    PyObject *role = Py_None, *endpoints = Py_None, *shape = Py_None, *timeout = NULL;
    Py_ssize_t itemsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sI|p$OOOOIOOpznOpOz:Channel", kwlist, &addr,
                                     &kind, &create, &capacity, &max_msg, &policy, &wait, &mode,
                                     &role, &endpoints, &spsc, &format, &itemsize, &shape,
                                     &owned, &timeout, &durable))
        return -1;
    int64_t wait_ns = 0;
    if (timeout && shmlpy_parse_timeout(timeout, &wait_ns) < 0)
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
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    o.mode = mode;
    o.durable = durable;
    size_t eps = 0;
    static const char *const pol_names[] = {"block", "overwrite"};
    static const uint32_t pol_values[] = {SHML_BLOCK, SHML_OVERWRITE};
    static const char *const wait_names[] = {"adaptive", "spin", "block"};
    static const uint32_t wait_values[] = {SHML_WAIT_ADAPTIVE, SHML_WAIT_SPIN, SHML_WAIT_BLOCK};
    uint32_t r_role = 0;
    if (parse_size_arg(capacity, "capacity", &o.capacity) < 0 ||
        parse_size_arg(max_msg, "max_msg", &o.max_msg) < 0 ||
        parse_size_arg(endpoints, "endpoints", &eps) < 0 ||
        shmlpy_parse_choice(policy, "policy", pol_names, pol_values, 2, &o.policy) < 0 ||
        shmlpy_parse_choice(wait, "wait", wait_names, wait_values, 3, &o.wait) < 0 ||
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
            ssize_t w = shmlpy_wait_loop(channel_open_op, &c, wait_ns);
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
        shmlpy_raise_err(r, create ? "create channel" : "open channel", addr);
        return -1;
    }
    struct shml_channel_stats st;
    self->type_plain = false; /* a new type: checked on first use */
    if ((r = shml_channel_get_stats(ch, &st)) < 0 ||
        (r = shml_channel_get_type(ch, &self->type)) < 0) {
        shmlpy_raise_err(r, "stats of", addr);
        shml_channel_close(ch);
        return -1;
    }
    if (st.kind != kind) {
        PyErr_Format(shmlpy_WrongKind, "open channel %s: it is of another kind", addr);
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

int shmlpy_channel_ready(ChannelObject *self)
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
    if (shmlpy_parse_timeout(to, &ns) < 0 || shmlpy_channel_ready(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    struct send_ctx c = {self->ch, b.buf, (size_t)b.len};
    self->busy = true;
    ssize_t r = shmlpy_wait_loop(send_op, &c, ns);
    self->busy = false;
    PyBuffer_Release(&b);
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, "send to", self->addr);
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
        shmlpy_parse_timeout(to, &ns) < 0 || shmlpy_channel_ready(self) < 0 ||
        channel_scratch(self) < 0)
        return NULL;
    struct recv_ctx c = {self->ch, self->scratch, self->max_msg};
    self->busy = true;
    ssize_t r = shmlpy_wait_loop(recv_op, &c, ns);
    self->busy = false;
    if (r == WAIT_PYERR)
        return NULL;
    if (r < 0)
        return shmlpy_raise_err((int)r, "recv from", self->addr);
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
        shmlpy_parse_timeout(to, &ns) < 0 || shmlpy_channel_ready(self) < 0)
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
    ssize_t r = shmlpy_wait_loop(send_batch_op, &c, ns);
    self->busy = false;
    if (r == WAIT_PYERR)
        goto out;
    if (r < 0) {
        shmlpy_raise_err((int)r, "send_batch to", self->addr);
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
        shmlpy_parse_timeout(to, &ns) < 0 || parse_size_arg(maxb, "max_bytes", &cap) < 0 ||
        shmlpy_channel_ready(self) < 0)
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
    ssize_t r = shmlpy_wait_loop(recv_batch_op, &c, ns);
    self->busy = false;
    if (r == WAIT_PYERR)
        goto out;
    if (r < 0) {
        shmlpy_raise_err((int)r, "recv_batch from", self->addr);
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

/* claim(n, timeout=None) -> Message context manager (writable view of n bytes) */
static PyObject *Channel_claim(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"n", "timeout", "typed", NULL};
    Py_ssize_t n;
    PyObject *to = Py_None;
    int typed = 0;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|Op:claim", kwlist, &n, &to, &typed) ||
        shmlpy_parse_timeout(to, &ns) < 0 || shmlpy_channel_ready(self) < 0)
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    return (PyObject *)shmlpy_message_new(self, true, typed, ns, (size_t)n);
}

/* recv_view(timeout=None) -> Message context manager (read-only view of the next message) */
static PyObject *Channel_recv_view(ChannelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", "typed", NULL};
    PyObject *to = Py_None;
    int typed = 0;
    int64_t ns;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op:recv_view", kwlist, &to, &typed) ||
        shmlpy_parse_timeout(to, &ns) < 0 || shmlpy_channel_ready(self) < 0)
        return NULL;
    return (PyObject *)shmlpy_message_new(self, false, typed, ns, 0);
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
   is not plain data (shmlpy_check_type), so no dtype is ever built from such a format. */
static PyObject *Channel_get_type(ChannelObject *self, void *c)
{
    (void)c;
    if (!self->type.format[0])
        Py_RETURN_NONE;
    if (shmlpy_channel_type_plain(self) < 0)
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
        return shmlpy_raise_err(r, "stats of", self->addr);
    return shmlpy_stats_dict(&st);
}

/* fileno() -> int: the endpoint's descriptor (shml_channel_fd()), made at the first call. */
static PyObject *Channel_fileno(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (shmlpy_channel_ready(self) < 0)
        return NULL;
    int fd = shml_channel_fd(self->ch);
    if (fd < 0)
        return shmlpy_raise_err(fd, "descriptor of", self->addr);
    return PyLong_FromLong(fd);
}

/* _fd_timeout() -> float | None: seconds until a call should look again although the
   descriptor is not readable (shml_channel_fd_timeout()), or None. */
static PyObject *Channel__fd_timeout(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    int64_t ns = self->ch ? shml_channel_fd_timeout(self->ch) : -1;
    if (ns < 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble((double)ns / 1e9);
}

/* _try_recv() -> bytes | None: recv(0) without the exception when nothing waits (which
   arms the descriptor: the asyncio path, _channel.py). */
static PyObject *Channel__try_recv(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (shmlpy_channel_ready(self) < 0 || channel_scratch(self) < 0)
        return NULL;
    ssize_t r = shml_recv(self->ch, self->scratch, self->max_msg, 0);
    if (r == -ETIMEDOUT)
        Py_RETURN_NONE;
    if (r < 0)
        return shmlpy_raise_err((int)r, "recv from", self->addr);
    return PyBytes_FromStringAndSize(self->scratch, r);
}

/* _try_send(data) -> bool: send(data, 0), False instead of TimeoutError when full. */
static PyObject *Channel__try_send(ChannelObject *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if (shmlpy_channel_ready(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    ssize_t r = shml_send(self->ch, b.buf, (size_t)b.len, 0);
    PyBuffer_Release(&b);
    if (r == -ETIMEDOUT)
        Py_RETURN_FALSE;
    if (r < 0)
        return shmlpy_raise_err((int)r, "send to", self->addr);
    Py_RETURN_TRUE;
}

/* refuse(): rpc server: answer the request received last with a failure (shml_refuse()). */
static PyObject *Channel_refuse(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (shmlpy_channel_ready(self) < 0)
        return NULL;
    int r = shml_refuse(self->ch);
    if (r < 0)
        return shmlpy_raise_err(r, "refuse on", self->addr);
    Py_RETURN_NONE;
}

/* set_mark() and mark() on a handle that has no marks: ValueError, NULL. */
static PyObject *no_marks(ChannelObject *self)
{
    return PyErr_Format(PyExc_ValueError,
                        "channel %s: marks are for a durable producer or publisher", self->addr);
}

/* set_mark(n): a durable queue producer's or bus publisher's mark for the messages it sends
   from now on (shml_channel_set_mark()). */
static PyObject *Channel_set_mark(ChannelObject *self, PyObject *arg)
{
    if (shmlpy_channel_ready(self) < 0)
        return NULL;
    unsigned long long mark = PyLong_AsUnsignedLongLong(arg);
    if (mark == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (shml_channel_set_mark(self->ch, (uint64_t)mark) < 0)
        return no_marks(self);
    Py_RETURN_NONE;
}

/* mark() -> int | None: the mark of the last message published (shml_channel_mark()). */
static PyObject *Channel_mark(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (shmlpy_channel_ready(self) < 0)
        return NULL;
    uint64_t mark;
    int r = shml_channel_mark(self->ch, &mark);
    if (r == -ENOENT)
        Py_RETURN_NONE;
    return r < 0 ? no_marks(self) : PyLong_FromUnsignedLongLong(mark);
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
    {"refuse", (PyCFunction)Channel_refuse, METH_NOARGS,
     "refuse()\n\nrpc server: answer the request received last with a failure instead of a "
     "reply\n(a server that cannot answer it): its client's recv() raises OSError with errno"
     "\nEHOSTUNREACH at once. The request counts as received, and as dropped by this "
     "server.\nOSError EPROTO when no request awaits a reply (or not a server)."},
    {"set_mark", (PyCFunction)Channel_set_mark, METH_O,
     "set_mark(n)\n\nDurable Queue producer or Bus publisher: the messages sent from now on carry the mark n "
     "(an\nunsigned 64-bit number), which becomes the endpoint's as each is published.\n"
     "ValueError for any other endpoint."},
    {"mark", (PyCFunction)Channel_mark, METH_NOARGS,
     "mark() -> int | None\n\nDurable Queue producer or Bus publisher: the mark of the last message it, or the "
     "killed one whose\nplace it took, published; None when not known (nothing published, or "
     "a kill\nwhile publishing left it unclear: send again). ValueError for any other "
     "endpoint."},
    {"interrupt", (PyCFunction)Channel_interrupt, METH_NOARGS,
     "interrupt()\n\nMake the current or next wait of this handle return early (once)."},
    {"fileno", (PyCFunction)Channel_fileno, METH_NOARGS,
     "fileno() -> int\n\nA descriptor readable while this endpoint may make progress (a "
     "message waits,\nor room), for selectors, select and event loops; it stays readable until "
     "a call\nwith timeout 0 raises TimeoutError. The channel's: never close it."},
    {"_fd_timeout", (PyCFunction)Channel__fd_timeout, METH_NOARGS,
     "_fd_timeout() -> float | None\n\nSeconds until a call should look again anyway."},
    {"_try_recv", (PyCFunction)Channel__try_recv, METH_NOARGS,
     "_try_recv() -> bytes | None\n\nrecv(0), None when nothing waits."},
    {"_try_send", (PyCFunction)Channel__try_send, METH_O,
     "_try_send(data) -> bool\n\nsend(data, 0), False when full."},
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

PyTypeObject shmlpy_Channel_Type = {
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
