"""Two hosts simulated with network namespaces (`ip netns`): each has its own nats-server
(with JetStream), the two servers form a cluster over a veth link, and channels of every kind
are bridged from one host to the other, each bridge talking to its own host's server, as docs/BRIDGE.md's walk-through
does on two machines. (/dev/shm stays shared between namespaces: the hosts' channels have
names of their own.) Needs root, as CI has; skipped otherwise."""
import os
import subprocess
import threading
import time

import pytest

import shmlink

from conftest import CLI, NATS_SERVER, run, wait_until

ADDR = {"a": "10.77.0.1", "b": "10.77.0.2"}


@pytest.fixture
def hosts(tmp):
    """Two namespaces joined by a veth pair, each with a nats-server in the cluster; yields
    a function that runs a command on a host. Everything is removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tag = os.getpid() % 100000
    ns = {h: f"shmlt{h}{tag}" for h in "ab"}
    veth = {h: f"vsh{h}{tag}" for h in "ab"}
    procs = []
    made = []

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    def on(h, *cmd, log=None):
        out = open(log, "wb") if log else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", ns[h], *cmd], stdout=out,
                             stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        for h in "ab":
            try:
                ip("netns", "add", ns[h])
            except subprocess.CalledProcessError as e:
                pytest.skip(f"ip netns add: {e.stderr.decode().strip()}")
            made.append(ns[h])
        ip("link", "add", veth["a"], "type", "veth", "peer", "name", veth["b"])
        for h in "ab":
            ip("link", "set", veth[h], "netns", ns[h])
            ip("-n", ns[h], "addr", "add", ADDR[h] + "/24", "dev", veth[h])
            ip("-n", ns[h], "link", "set", veth[h], "up")
            ip("-n", ns[h], "link", "set", "lo", "up")
        for h, other in (("a", "b"), ("b", "a")):
            on(h, NATS_SERVER, "-a", ADDR[h], "-p", "4222", "--cluster_name", "hosts",
               "--cluster", f"nats://{ADDR[h]}:6222", "--routes", f"nats://{ADDR[other]}:6222",
               "--name", f"host-{h}", "-js", "-sd", os.path.join(tmp, f"js-{h}"),
               log=os.path.join(tmp, f"nats-{h}.log"))

        def listening(h):
            r = subprocess.run(["ip", "netns", "exec", ns[h], "/usr/bin/python3", "-c",
                                f"import socket; socket.create_connection(('{ADDR[h]}', 4222), "
                                "timeout=0.5)"], capture_output=True, timeout=30)
            return r.returncode == 0

        for h in "ab":
            wait_until(f"nats-server on host {h}", lambda: listening(h), 20)
        on.ns = ns
        yield on
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for n in made:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=30)


class HostBridge:
    def __init__(self, on, h, tmp, *args):
        self.log = os.path.join(tmp, f"bridge-{h}-{len(os.listdir(tmp))}.log")
        self.proc = on(h, CLI, "bridge", *args, log=self.log)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_for(self, needle, timeout=20):
        def seen():
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited {self.proc.returncode}: {self.text()}")
            return needle in self.text()
        wait_until(f"bridge to say {needle!r}", seen, timeout)


def url(h, subject):
    return f"nats://{ADDR[h]}:4222/{subject}"


def through_cluster(send, recv, timeout=20):
    """Send until the first message comes out on the other host (the route carries the far
    subscription shortly after it is made), then return what was sent."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        send()
        try:
            return recv(0.2)
        except TimeoutError:
            continue
    raise TimeoutError("nothing crossed the cluster")


def test_queue_bus_and_rpc_between_two_hosts(hosts, addr, tmp):
    qa, qb, ba, bb, ra, rb = (addr(x) for x in ("qa", "qb", "ba", "bb", "ra", "rb"))
    # Host a produces into a queue and a bus and has rpc clients; host b consumes, subscribes
    # and serves.
    with shmlink.Queue(qa, create=True, max_msg=64, role="producer") as q_out, \
            shmlink.Queue(qb, create=True, max_msg=64, capacity=1 << 14, role="consumer") as q_in, \
            shmlink.Bus(ba, create=True, max_msg=64) as b_out, \
            shmlink.Bus(bb, create=True, max_msg=64, capacity=1 << 14), \
            shmlink.Bus(bb, role="subscriber") as b_in:
        for a in (ra, rb):
            assert run([CLI, "mk", "rpc", a, "--max-msg", "64"]).returncode == 0
        bridges = [
            HostBridge(hosts, "b", tmp, "in", url("b", "jobs"), qb),
            HostBridge(hosts, "b", tmp, "in", url("b", "news"), bb),
            HostBridge(hosts, "b", tmp, "in", url("b", "ask"), rb),
        ]
        for br in bridges:
            br.wait_for("from nats://10.77.0.2")
        for args in (("out", qa, url("a", "jobs")), ("out", ba, url("a", "news")),
                     ("out", ra, url("a", "ask"))):
            HostBridge(hosts, "a", tmp, *args).wait_for("to nats://10.77.0.1")

        first = through_cluster(lambda: q_out.send(b"job", timeout=5), q_in.recv)
        assert first == b"job"
        for i in range(100):
            q_out.send(b"job %d" % i, timeout=5)
        got = []
        while len(got) < 100:
            m = q_in.recv(10)
            if m != b"job":
                got.append(m)
        assert got == [b"job %d" % i for i in range(100)]

        assert through_cluster(lambda: b_out.send(b"hello"), b_in.recv) == b"hello"
        for i in range(50):
            b_out.send(b"news %d" % i)
        got = []
        while len(got) < 50:
            m = b_in.recv(10)
            if m != b"hello":
                got.append(m)
        assert got == [b"news %d" % i for i in range(50)]

        stop = threading.Event()

        def serve():
            with shmlink.RPC(rb, role="server") as srv:
                while not stop.is_set():
                    try:
                        srv.send(srv.recv(0.1)[::-1])
                    except TimeoutError:
                        pass

        t = threading.Thread(target=serve)
        t.start()
        try:
            with shmlink.RPC(ra, role="client") as c:
                def answered():
                    c.send(b"ping", timeout=5)
                    try:
                        return c.recv(10) == b"gnip"
                    except OSError:  # refused: the route did not carry the subscription yet
                        time.sleep(0.1)
                        return False
                wait_until("a reply across the hosts", answered, 20)
                c.send(b"abc", timeout=5)
                assert c.recv(10) == b"cba"
        finally:
            stop.set()
            t.join(10)


def test_latest_and_jetstream_between_two_hosts(hosts, addr, tmp):
    """latest through a key-value bucket, and a queue at least once through a stream: the
    stream keeps what host a sends before host b's bridge exists, so nothing is lost."""
    la, lb, qa, qb = (addr(x) for x in ("jla", "jlb", "jqa", "jqb"))
    with shmlink.Latest(la, create=True, max_msg=64) as w, \
            shmlink.Latest(lb, create=True, max_msg=64, role="writer"), \
            shmlink.Latest(lb, role="reader") as r, \
            shmlink.Queue(qa, create=True, max_msg=64, role="producer") as q_out, \
            shmlink.Queue(qb, create=True, max_msg=64, capacity=1 << 14, role="consumer") as q_in:
        HostBridge(hosts, "a", tmp, "out", la, url("a", "arm.pose"), "--bucket",
                   "hosts").wait_for("forwarding to key", 60)
        HostBridge(hosts, "a", tmp, "out", qa, url("a", "orders"), "--jetstream").wait_for(
            "forwarding to stream", 60)
        for i in range(100):
            q_out.send(b"order %d" % i, timeout=10)
        w.send(b"pose 1")
        HostBridge(hosts, "b", tmp, "in", url("b", "arm.pose"), lb, "--bucket",
                   "hosts").wait_for("forwarding from key", 60)
        HostBridge(hosts, "b", tmp, "in", url("b", "orders"), qb, "--jetstream").wait_for(
            "forwarding from stream", 60)
        assert [q_in.recv(20) for _ in range(100)] == [b"order %d" % i for i in range(100)]

        def newest_is(v):
            def check():
                try:
                    return r.recv(0.2) == v
                except TimeoutError:
                    return False
            return check
        wait_until("the value the bucket held", newest_is(b"pose 1"), 20)
        w.send(b"pose 2")
        wait_until("the next value", newest_is(b"pose 2"), 20)
