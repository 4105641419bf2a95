"""ls(), info(), gc(): the facts `shmlink ls/info/gc --json` print, with the same keys."""
import os
import pwd
import time

from . import _shmlink

_BACKENDS = {1: "posix", 2: "sysv", 3: "file", 4: "memfd", 5: "win"}
_KINDS = {1: "plain", 2: "queue", 3: "bus", 4: "latest", 5: "rpc"}
_ROLES = {0: "user", 1: "creator", 2: "producer", 3: "consumer", 4: "endpoint"}
_MUTEX_STATES = {0: "free", 1: "held", 2: "owner dead", 3: "not recoverable", 4: "repairing"}
_DECL_TYPES = {1: "mutex", 2: "event", 3: "semaphore"}


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
    kind = _KINDS.get(s["kind"], "kind#%d" % s["kind"]) if m else "raw"
    return {
        "address": s["address"],
        "backend": _BACKENDS.get(s["backend"], "?"),
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
    """What `shmlink info --json ADDR` prints: the segment, its attach table, declared objects
    and, for a channel, its counters and endpoint table under "channel"."""
    now = time.time_ns()
    s, attach, declared, channel = _shmlink._stat(addr)
    d = _segment(s, now)
    d["attach"] = [{"pid": a["pid"], "role": a["role"],
                    "role_name": _ROLES.get(a["role"], "role#%d" % a["role"]),
                    "start_time": a["start_time"], "since_ns": a["since_ns"],
                    "since": _time(a["since_ns"]),
                    "alive": None if a["alive"] < 0 else a["alive"] > 0} for a in attach]
    d["declared"] = [dict(x, type_name=_DECL_TYPES.get(x["type"], "?"),
                          state_text=_MUTEX_STATES.get(x["state"], "?")) for x in declared]
    if channel is not None:
        if "error" not in channel:
            ch = dict(channel)
            ch["kind_name"] = _KINDS.get(ch["kind"], "?")
            ch["policy"] = "overwrite" if ch["policy"] == 1 else "block"
            channel = ch
        d["channel"] = channel
    return d
