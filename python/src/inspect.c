/*
 * inspect.c - inspection: the facts `shmlink ls/info/gc` show, as dicts of the C fields
 * (segment info, attachments, declared primitives, a channel's stats and endpoint table) for the
 * Python layer to name and format, and the module functions _list, _gc and _stat that return
 * them.
 */
#include "_shmlink.h"

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

PyObject *shmlpy_stats_dict(const struct shml_channel_stats *st)
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
PyObject *shmlpy_mod_list(PyObject *mod, PyObject *args)
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
        return shmlpy_raise_err(r, "list", "segments");
    PyObject *list = info_list(v, n);
    shml_free(v);
    return list;
}

/* _gc(dry_run) -> list of raw info dicts of what was (or would be) removed */
PyObject *shmlpy_mod_gc(PyObject *mod, PyObject *args)
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
        return shmlpy_raise_err(r, "gc", "segments");
    PyObject *list = info_list(v, n);
    shml_free(v);
    return list;
}

/* _stat(addr) -> (info dict, [attach dicts], [declared dicts], channel dict or None) */
PyObject *shmlpy_mod_stat(PyObject *mod, PyObject *args)
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
        shmlpy_raise_err(r, "info", addr);
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
                    "{s:I,s:i,s:I,s:O,s:K,s:K,s:K,s:K,s:K,s:O,s:O,s:I,s:K}", "index", e->index,
                    "pid", (int)e->pid, "role", e->role, "alive",
                    e->alive ? Py_True : Py_False, "messages", (unsigned long long)e->messages,
                    "bytes", (unsigned long long)e->bytes, "drops",
                    (unsigned long long)e->drops, "sleeps", (unsigned long long)e->sleeps,
                    "lag", (unsigned long long)e->lag, "bridge",
                    (e->flags & SHML_BRIDGE) ? Py_True : Py_False, "durable",
                    (e->flags & SHML_DURABLE) ? Py_True : Py_False, "reconnects", e->reconnects,
                    "redelivered", (unsigned long long)e->redelivered);
                if (!x || PyList_Append(el, x) < 0) {
                    Py_XDECREF(x);
                    Py_DECREF(el);
                    goto out;
                }
                Py_DECREF(x);
            }
            chd = shmlpy_stats_dict(&st);
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
