/*
 * module.c - the module shmlink._shmlink itself: the exception classes and the errno to
 * exception mapping every type raises through, the argument-choice helper the types share, the
 * functions of the module that belong to no type (unlink, strerror, name; the inspection ones
 * are in inspect.c, type_probe in typed.c), and PyInit__shmlink, which readies every type and
 * adds the types, exceptions and constants to the module.
 */
#include "_shmlink.h"

/* ---- module state: the exception classes ---- */

/* What each one means: _shmlink.h. PyInit__shmlink creates them. */
PyObject *shmlpy_Error;
PyObject *shmlpy_OwnerDied;
PyObject *shmlpy_NotRecoverable;
PyObject *shmlpy_Corrupt;
PyObject *shmlpy_NotShmlink;
PyObject *shmlpy_WrongKind;
PyObject *shmlpy_VersionError;
PyObject *shmlpy_Truncated;

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
    case EOWNERDEAD: return shmlpy_OwnerDied;
    case ENOTRECOVERABLE: return shmlpy_NotRecoverable;
    case SHML_ECORRUPT: return shmlpy_Corrupt;
    case SHML_ENOTSHML: return shmlpy_NotShmlink;
    case SHML_EWRONGKIND: return shmlpy_WrongKind;
    case SHML_EVERSION: return shmlpy_VersionError;
    case SHML_ETRUNCATED: return shmlpy_Truncated;
    default: return PyExc_OSError;
    }
}

PyObject *shmlpy_raise_err(int err, const char *what, const char *addr)
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

int shmlpy_parse_choice(PyObject *o, const char *what, const char *const *names,
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

/* ---- functions of the module ---- */

static PyObject *mod_unlink(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *addr;
    if (!PyArg_ParseTuple(args, "s:unlink", &addr))
        return NULL;
    int r = shml_segment_unlink(addr);
    if (r < 0)
        return shmlpy_raise_err(r, "unlink", addr);
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
    {"_list", shmlpy_mod_list, METH_VARARGS, "_list(all=False) -> list of dicts (C fields)"},
    {"_gc", shmlpy_mod_gc, METH_VARARGS, "_gc(dry_run) -> list of dicts (C fields)"},
    {"_stat", shmlpy_mod_stat, METH_VARARGS, "_stat(addr) -> (info, attach, declared, channel)"},
    {"type_probe", shmlpy_mod_type_probe, METH_VARARGS,
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
    PyTypeObject *types[] = {&shmlpy_Segment_Type, &shmlpy_Mutex_Type,   &shmlpy_Event_Type,
                             &shmlpy_Sem_Type,     &shmlpy_Channel_Type, &shmlpy_Message_Type,
                             &shmlpy_Probe_Type,   &shmlpy_WaitSet_Type};
    const char *names[] = {"Segment", "Mutex", "Event", "Semaphore", "Channel", "Message",
                           "TypeProbe", "WaitSet"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    if (shmlpy_wait_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            goto fail;
    if (add_exc(m, &shmlpy_Error, "Error", PyExc_OSError, "Base of shmlink's own errors.") < 0 ||
        add_exc(m, &shmlpy_OwnerDied, "OwnerDied", shmlpy_Error,
                "A mutex's holder died: the lock is now held by the caller; repair the data, "
                "then call consistent().") < 0 ||
        add_exc(m, &shmlpy_NotRecoverable, "NotRecoverable", shmlpy_Error,
                "A mutex whose dead holder's data nobody repaired.") < 0 ||
        add_exc(m, &shmlpy_Corrupt, "Corrupt", shmlpy_Error,
                "A header or channel failed validation.") < 0 ||
        add_exc(m, &shmlpy_NotShmlink, "NotShmlink", shmlpy_Error,
                "Not a shmlink segment: open it with raw=True.") < 0 ||
        add_exc(m, &shmlpy_WrongKind, "WrongKind", shmlpy_Error,
                "A segment of another kind.") < 0 ||
        add_exc(m, &shmlpy_VersionError, "VersionError", shmlpy_Error,
                "An unknown layout version.") < 0 ||
        add_exc(m, &shmlpy_Truncated, "Truncated", shmlpy_Error,
                "Another process truncated the object under the mapping: the segment (or "
                "channel) is lost, and its calls raise this from then on.") < 0)
        goto fail;
    if (PyModule_AddIntConstant(m, "QUEUE", SHML_QUEUE) < 0 ||
        PyModule_AddIntConstant(m, "BUS", SHML_BUS) < 0 ||
        PyModule_AddIntConstant(m, "LATEST", SHML_LATEST) < 0 ||
        PyModule_AddIntConstant(m, "RPC", SHML_RPC) < 0 ||
        PyModule_AddIntConstant(m, "READABLE", SHML_READABLE) < 0 ||
        PyModule_AddIntConstant(m, "WRITABLE", SHML_WRITABLE) < 0 ||
        PyModule_AddStringConstant(m, "library_version", shml_version()) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
