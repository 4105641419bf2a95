#!/usr/bin/python3
"""Helpers for the CLI golden tests, called from cases/*.t as `shmltest VERB ...`.

    shmltest json ls|info|gc|check
                                 parse stdin as JSON, check its keys, print it normalised
                                 (volatile values replaced; ls and gc keep only entries whose
                                 address contains $SEG, $KEY or $KEY2)
    shmltest json recv           parse stdin as JSON Lines (recv --json), check each line's
                                 keys and that its message has its size, print the messages
    shmltest foreign NAME TEXT [--mp]
                                 create the POSIX object /dev/shm/NAME holding TEXT as a
                                 foreign program would: os.open, or with --mp
                                 multiprocessing.shared_memory (\\n, \\xNN escapes are
                                 understood in TEXT, and in NAME without --mp)
    shmltest pattern N           write N bytes of a repeating pattern to stdout
    shmltest truncate PATH SIZE  truncate a file or /dev/shm object
    shmltest cat-truncated ADDR PATH NEWSIZE
                                 run `shmlink cat ADDR`, and once it has written its first
                                 bytes (it is then blocked writing to the pipe), truncate PATH
                                 to NEWSIZE; report how cat ended (exit status or signal)
    shmltest recv-truncated ADDR PATH NEWSIZE
                                 run `shmlink recv ADDR -n 1 --timeout 20s` on an empty
                                 channel, and once it has mapped PATH (it is then waiting),
                                 truncate PATH to NEWSIZE; report how recv ended
    shmltest stamp PATH NS       set a managed header's created_ns (offset 56) to NS and seal
                                 it again (check: FNV-1a 32 of bytes 0..155, at 156), as a
                                 hostile peer with write access would (docs/FORMAT.md)
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time

# Keys of a segment in ls, info and gc output, in the order the tool writes them.
SEGMENT_KEYS = [
    "address", "backend", "sysv_key", "sysv_id", "status", "status_text", "managed", "kind", "kind_name", "version",
    "header_size", "flags", "size", "object_size", "mode", "uid", "user", "creator_pid",
    "creator_start", "creator_alive", "attached", "attach_dead", "untracked", "created_ns",
    "created", "age_s", "other_boot", "label", "gc",
]
# Keys of a segment's "gc": what gc would do with it, and why.
GC_KEYS = ["verdict", "remove", "why"]
ATTACH_KEYS = ["pid", "role", "role_name", "start_time", "since_ns", "since", "alive"]
# Keys of a declared object in info output.
DECLARED_KEYS = ["name", "type", "offset", "status", "status_text", "state", "state_text",
                 "owner_tid", "owner_pid", "owner_alive", "waiters", "generation", "value"]
# Values that differ from run to run: shown as their type only.
VOLATILE = {"sysv_id", "uid", "user", "creator_pid", "creator_start", "created_ns", "created", "age_s",
            "pid", "start_time", "since_ns", "since", "owner_tid", "owner_pid", "sleeps"}


def fail(msg):
    print("shmltest: " + msg)
    sys.exit(1)


CHANNEL_KEYS = ["kind", "kind_name", "spsc", "policy", "slots", "slot_size", "max_msg", "type",
                "endpoints", "attached", "sent", "received", "bytes_sent", "bytes_received",
                "queued", "lost", "drops", "sleeps", "endpoint_table"]
ENDPOINT_KEYS = ["index", "pid", "role", "role_name", "alive", "messages", "bytes", "drops",
                 "sleeps", "lag", "bridge", "durable", "reconnects", "redelivered"]
CHECK_KEYS = ["address", "repair", "findings", "repaired", "left", "healthy"]
FINDING_KEYS = ["finding", "repaired", "repairable"]
# Keys of a message in recv --json output.
RECV_KEYS = ["channel", "size", "text", "base64", "values", "missed"]

def check_keys(obj, keys, what):
    if not isinstance(obj, dict):
        fail("%s is not an object" % what)
    if list(obj) != keys:
        fail("%s keys differ: missing %s, unexpected %s, order %s" % (
            what, [k for k in keys if k not in obj], [k for k in obj if k not in keys],
            list(obj)))


def scrub(value, key=None):
    if isinstance(value, dict):
        return {k: scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if key in VOLATILE and value is not None:
        return "<%s>" % type(value).__name__
    return value


def cmd_json_recv(text):
    """recv --json: one object per line; exactly one of text, base64 and values is given."""
    import base64
    for n, line in enumerate(text.splitlines(), 1):
        try:
            msg = json.loads(line)
        except ValueError as e:
            fail("line %d is not JSON: %s\n%s" % (n, e, line))
        check_keys(msg, RECV_KEYS, "message %d" % n)
        given = [k for k in ("text", "base64", "values") if msg[k] is not None]
        if len(given) != 1:
            fail("message %d: %s given, where one of text, base64 and values is" % (n, given))
        if msg["text"] is not None:
            data = msg["text"].encode("utf-8")
        elif msg["base64"] is not None:
            data = base64.b64decode(msg["base64"], validate=True)
        else:
            data = None
        if data is not None and len(data) != msg["size"]:
            fail("message %d: %d bytes, size says %d" % (n, len(data), msg["size"]))
        shown = msg["values"] if data is None else data
        print("%s: %r (missed %d)" % (msg["channel"], shown, msg["missed"]))


def cmd_json(kind):
    text = sys.stdin.read()
    if kind == "recv":
        cmd_json_recv(text)
        return
    try:
        doc = json.loads(text)
    except ValueError as e:
        fail("not JSON: %s\n%s" % (e, text))
    ours = (os.environ["SEG"], os.environ["KEY"], os.environ["KEY2"])

    def mine(s):
        return any(o in s["address"] for o in ours)

    if kind == "ls":
        check_keys(doc, ["segments"], "ls output")
        for s in doc["segments"]:
            check_keys(s, SEGMENT_KEYS, "segment")
            check_keys(s["gc"], GC_KEYS, "segment gc")
        doc["segments"] = [s for s in doc["segments"] if mine(s)]
    elif kind == "gc":
        check_keys(doc, ["dry_run", "removed"], "gc output")
        for s in doc["removed"]:
            check_keys(s, SEGMENT_KEYS, "segment")
            check_keys(s["gc"], GC_KEYS, "segment gc")
        doc["removed"] = [s for s in doc["removed"] if mine(s)]
    elif kind == "info":
        keys = SEGMENT_KEYS + ["attach", "declared"]
        if "channel" in doc:  # a segment of a channel kind: its counters come last
            keys.append("channel")
            if "error" not in doc["channel"]:
                check_keys(doc["channel"], CHANNEL_KEYS, "channel")
                for e in doc["channel"]["endpoint_table"]:
                    check_keys(e, ENDPOINT_KEYS, "endpoint")
        check_keys(doc, keys, "info output")
        check_keys(doc["gc"], GC_KEYS, "segment gc")
        for a in doc["attach"]:
            check_keys(a, ATTACH_KEYS, "attach entry")
        for d in doc["declared"] or []:
            check_keys(d, DECLARED_KEYS, "declared object")
    elif kind == "check":
        check_keys(doc, CHECK_KEYS, "check output")
        for f in doc["findings"]:
            check_keys(f, FINDING_KEYS, "finding")
    else:
        fail("unknown json kind %r" % kind)
    print(json.dumps(scrub(doc), indent=2, ensure_ascii=False))


def unescape(text):
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


def cmd_foreign(name, text, mp):
    data = unescape(text)
    if mp:
        from multiprocessing import resource_tracker, shared_memory
        shm = shared_memory.SharedMemory(name=name, create=True, size=len(data))
        shm.buf[:len(data)] = data
        # The tracker would unlink it when this process exits; the test wants it to persist,
        # as a long-running Python producer's segment does.
        resource_tracker.unregister(shm._name, "shared_memory")
        shm.close()
        return
    fd = os.open(os.path.join(b"/dev/shm", unescape(name)),
                 os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def cmd_pattern(n):
    unit = bytes(range(32, 127))
    out = (unit * (n // len(unit) + 1))[:n]
    sys.stdout.buffer.write(out)


def cmd_cat_truncated(addr, path, newsize):
    p = subprocess.Popen(["shmlink", "cat", addr], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.read(1)
    os.truncate(path, newsize)
    rest = p.stdout.read()
    err = p.stderr.read().decode(errors="backslashreplace")
    p.wait()
    got = len(first) + len(rest)
    if p.returncode < 0:
        how = "killed by %s" % signal.Signals(-p.returncode).name
    else:
        how = "exit %d" % p.returncode
    print("cat: %s after %d bytes" % (how, got))
    sys.stdout.write(err)


def ended(p):
    if p.returncode < 0:
        return "killed by %s" % signal.Signals(-p.returncode).name
    return "exit %d" % p.returncode


def cmd_recv_truncated(addr, path, newsize):
    p = subprocess.Popen(["shmlink", "recv", addr, "-n", "1", "--timeout", "20s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    real = os.path.realpath(path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with open("/proc/%d/maps" % p.pid) as f:
                if any(line.rstrip("\n").endswith(real) for line in f):
                    break
        except OSError:
            pass
        time.sleep(0.01)
    os.truncate(path, newsize)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    print("recv: %s" % ended(p))
    sys.stdout.write(out.decode(errors="backslashreplace"))
    sys.stdout.write(err.decode(errors="backslashreplace"))


def cmd_stamp(path, ns):
    with open(path, "r+b") as f:
        head = bytearray(f.read(160))
        head[56:64] = struct.pack("<q", ns)
        h = 0x811C9DC5
        for b in head[:156]:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        head[156:160] = struct.pack("<I", h)
        f.seek(0)
        f.write(head)


def main(argv):
    if len(argv) < 2:
        fail("usage: see helper.py")
    verb, args = argv[1], argv[2:]
    if verb == "json" and len(args) == 1:
        cmd_json(args[0])
    elif verb == "foreign" and len(args) in (2, 3):
        cmd_foreign(args[0], args[1], args[2:] == ["--mp"])
    elif verb == "pattern" and len(args) == 1:
        cmd_pattern(int(args[0]))
    elif verb == "truncate" and len(args) == 2:
        os.truncate(args[0], int(args[1]))
    elif verb == "stamp" and len(args) == 2:
        cmd_stamp(args[0], int(args[1]))
    elif verb == "recv-truncated" and len(args) == 3:
        cmd_recv_truncated(args[0], args[1], int(args[2]))
    elif verb == "cat-truncated" and len(args) == 3:
        cmd_cat_truncated(args[0], args[1], int(args[2]))
    else:
        fail("bad arguments: %r" % argv[1:])


if __name__ == "__main__":
    main(sys.argv)
