"""ls(), info(), gc(): the facts `shmlink ls/info/gc --json` print, with the same keys."""
import errno
import pwd
import time

from . import _shmlink

_DECL_MUTEX, _DECL_EVENT, _DECL_SEM = 1, 2, 3


def _word(table, value, fallback, kind=0):
    """The library's word for a code (include/shmlink/names.h: the table the tool prints
    from too), or fallback % value for a code the table does not hold."""
    w = _shmlink.name(table, value, kind)
    return w if w is not None else fallback % value


def _role_name(kind, role):
    """An endpoint's role bits (1 sender, 2 receiver, 3 both) in the words of its kind."""
    return _word("role", role, "role#%d", kind)


def _attach_role_name(kind, role):
    """An attach entry's role (SHML_ROLE_*): user, creator, or the endpoint's words."""
    return _word("attach_role", role, "role#%d", kind)


def _alive(v):
    return _shmlink.name("alive", 1 if v > 0 else v) or "?"


def _holder(d):
    pid, tid, alive = d["owner_pid"], d["owner_tid"], _alive(d["owner_alive"])
    if pid > 0 and tid > 0 and tid != pid:
        return f"pid {pid} ({alive}), thread {tid}"
    if pid > 0:
        return f"pid {pid} ({alive})"
    if tid > 0:
        return f"thread {tid} ({alive})"
    return ""


def _state_text(d):
    """The tool's one line of state of a declared object."""
    st = d["status"]
    if st == -errno.EINVAL:
        return "unknown: not initialised"
    if st == -errno.ERANGE:
        return "unknown: past the end of the data"
    if st < 0:
        return "unknown: " + _shmlink.strerror(st)
    if d["type"] == _DECL_MUTEX:
        who, state = _holder(d), d["state"]
        by = " by " + who if who else ""
        if state == 0:
            t = "free"
        elif state == 1:
            t = "held" + by
        elif state == 2 and d["owner_pid"] > 0:
            t = "owner died (pid %d): next locker recovers" % d["owner_pid"]
        elif state == 2 and d["owner_tid"] > 0:
            t = "owner died (thread %d): next locker recovers" % d["owner_tid"]
        elif state == 2:
            t = "owner died: next locker recovers"
        elif state == 4:
            t = "held" + by + ", repairing after a holder died"
        elif state == 3:
            t = "not recoverable"
        else:
            t = "state#%d" % state
        return t + (", with waiters" if d["mutex_waiters"] else "")
    w = d["waiters"]
    waiters = "%d %s" % (w, "waiter" if w == 1 else "waiters")
    if d["type"] == _DECL_EVENT:
        return "generation %d, %s" % (d["generation"], waiters)
    if d["type"] == _DECL_SEM:
        return "value %d, %s" % (d["value"], waiters)
    return "unknown type"


def _declared(d):
    """One declared object with the keys and words of `shmlink info --json`."""
    known = d["status"] == 0
    mutex = known and d["type"] == _DECL_MUTEX
    held = mutex and d["state"] not in (0, 3)
    return {
        "name": d["name"],
        "type": _word("decl_type", d["type"], "type#%d"),
        "offset": d["offset"],
        "status": d["status"],
        "status_text": _shmlink.strerror(d["status"]) if d["status"] else None,
        "state": _shmlink.name("mutex_state", d["state"]) if mutex else None,
        "state_text": _state_text(d),
        "owner_tid": d["owner_tid"] if held and d["owner_tid"] > 0 else None,
        "owner_pid": d["owner_pid"] if held and d["owner_pid"] > 0 else None,
        "owner_alive": (d["owner_alive"] > 0) if held and (d["owner_pid"] > 0 or
                                                          d["owner_tid"] > 0)
        and d["owner_alive"] >= 0 else None,
        "waiters": (1 if d["mutex_waiters"] else 0) if mutex else
        d["waiters"] if known and d["type"] in (_DECL_EVENT, _DECL_SEM) else None,
        "generation": d["generation"] if known and d["type"] == _DECL_EVENT else None,
        "value": d["value"] if known and d["type"] == _DECL_SEM else None,
    }

def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _time(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1000000000))


def _segment(s, now):
    m = s["managed"]
    failed = s["shmlink"] and not m
    has_creator = m or (s["backend"] == 2 and s["creator_pid"] > 0)
    has_attached = m or s["backend"] == 2
    kind = _word("kind", s["kind"], "kind#%d") if m else "raw"
    return {
        "address": s["address"],
        "backend": _shmlink.name("backend", s["backend"]) or "?",
        # As `shmlink ls/info --json`: a System V segment's key and id, else None.
        "sysv_key": s["sysv_key"] if s["backend"] == 2 and s["sysv_id"] >= 0 else None,
        "sysv_id": s["sysv_id"] if s["backend"] == 2 and s["sysv_id"] >= 0 else None,
        "status": s["status"],
        "status_text": _shmlink.strerror(s["status"]) if s["status"] else None,
        "managed": m,
        "kind": s["kind"] if m else None,
        "kind_name": None if failed else kind,
        "version": s["version"] if m else None,
        "header_size": s["header_size"] if m else None,
        "flags": s["flags"] if m else None,
        "size": s["size"],
        "object_size": s["object_size"],
        "mode": "%04o" % (s["mode"] & 0o7777),
        "uid": s["uid"],
        "user": _user(s["uid"]),
        "creator_pid": s["creator_pid"] if has_creator else None,
        "creator_start": s["creator_start"] if m else None,
        "creator_alive": (s["creator_alive"] > 0) if has_creator and s["creator_alive"] >= 0
        else None,
        "attached": s["attached"] if has_attached else None,
        "attach_dead": s["attach_dead"] if m else None,
        "untracked": s["untracked"] if m else None,
        "created_ns": s["created_ns"] or None,
        "created": _time(s["created_ns"]) if s["created_ns"] else None,
        "age_s": max(0, (now - s["created_ns"]) // 1000000000) if s["created_ns"] else None,
        "other_boot": s["other_boot"] if m else None,
        "label": s["label"] if m else None,
        "gc": {"verdict": _shmlink.name("gc_verdict", s["gc_verdict"]) or "?",
               "remove": s["gc_verdict"] in (4, 5), "why": s["gc_why"]},
    }


def ls(all=False):
    """The segments `shmlink ls --json` lists (with all=True: `--all`), as a list of dicts."""
    now = time.time_ns()
    return [_segment(s, now) for s in _shmlink._list(all)]


def gc(dry_run=False):
    """Remove abandoned shmlink segments (`shmlink gc --json`): returns
    {"dry_run": bool, "removed": [segment dicts]}."""
    now = time.time_ns()
    return {"dry_run": bool(dry_run), "removed": [_segment(s, now) for s in _shmlink._gc(dry_run)]}


def info(addr):
    """What `shmlink info --json ADDR` prints, with the same keys and words: the segment, its
    attach table, declared objects (None for a raw segment) and, for a channel, its counters
    and endpoint table under "channel"."""
    now = time.time_ns()
    s, attach, declared, channel = _shmlink._stat(addr)
    d = _segment(s, now)
    kind = s["kind"] if s["managed"] else 0
    d["attach"] = [{"pid": a["pid"], "role": a["role"],
                    "role_name": _attach_role_name(kind, a["role"]),
                    "start_time": a["start_time"], "since_ns": a["since_ns"],
                    "since": _time(a["since_ns"]),
                    "alive": None if a["alive"] < 0 else a["alive"] > 0} for a in attach]
    d["declared"] = None if declared is None else [_declared(x) for x in declared]
    if channel is not None:
        if "error" not in channel:
            ch = dict(channel)
            ch["kind_name"] = _word("kind", ch["kind"], "kind#%d")
            ch["policy"] = _word("policy", ch["policy"], "policy#%d")
            # A subscriber (bus) or reader (latest) has a cursor, and so a lag.
            cursor = ch["kind"] in (3, 4)
            ch["endpoint_table"] = [dict(e, role_name=_role_name(ch["kind"], e["role"]),
                                         lag=e["lag"] if cursor and e["role"] & 2 else None)
                                    for e in ch["endpoint_table"]]
            channel = ch
        d["channel"] = channel
    return d
