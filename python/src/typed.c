/*
 * typed.c - typed channels: the whitelist a channel's PEP 3118 type format must pass before
 * any of it is exported or turned into a numpy dtype (shmlpy_check_type), and TypeProbe, a
 * zeroed read-only buffer of one message with a given format and shape from which the Python
 * layer reads the dtype (type_probe()).
 */
#include "_shmlink.h"

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

int shmlpy_check_type(const struct shml_channel_type *t, const char *addr)
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
    PyObject *exc = PyObject_CallFunction(shmlpy_Corrupt, "iOs", SHML_ECORRUPT, msg, addr);
    Py_DECREF(msg);
    if (exc) {
        PyErr_SetObject(shmlpy_Corrupt, exc);
        Py_DECREF(exc);
    }
    return -1;
}

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

PyTypeObject shmlpy_Probe_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmlink._shmlink.TypeProbe",
    .tp_basicsize = sizeof(ProbeObject),
    .tp_dealloc = (destructor)Probe_dealloc,
    .tp_as_buffer = &Probe_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zeroed, read-only buffer with a given PEP 3118 format and shape.",
};

/* type_probe(format, itemsize, shape=()) -> object exporting one zeroed element array */
PyObject *shmlpy_mod_type_probe(PyObject *mod, PyObject *args)
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
    if (shmlpy_check_type(&t, NULL) < 0) /* numpy reads this format: plain data only */
        return NULL;
    ProbeObject *p = PyObject_New(ProbeObject, &shmlpy_Probe_Type);
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
