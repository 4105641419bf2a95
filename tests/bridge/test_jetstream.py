"""`shmlink bridge --jetstream`: queue and bus through a JetStream stream, at least once, against
real nats-server processes (one with JetStream, and a three-server cluster with the stream
replicated three times); bridges and servers killed with SIGKILL mid-stream."""
import json
import os
import socket
import threading
import time

import pytest

import shmlink

from conftest import CLI, free_port, run, wait_until


def drain(c, got):
    """Take what the consumer c holds now into got (ints)."""
    while True:
        try:
            got.append(int(c.recv(0)))
        except TimeoutError:
            return


def collect(c, got, want, timeout):
    """Receive into got until it holds every number of want (a set), or fail."""
    def all_there():
        drain(c, got)
        return want <= set(got)
    wait_until(f"{len(want)} messages (have {len(set(got) & want)})", all_there, timeout)
    time.sleep(0.3)  # a duplicate would come right after: let it show
    drain(c, got)


def endpoint(addr, bridge_only=True):
    doc = json.loads(run([CLI, "info", addr, "--json"]).stdout)
    return [e for e in doc["channel"]["endpoint_table"] if e["bridge"] or not bridge_only]


def js_server(servers, tmp):
    return servers("-js", "-sd", os.path.join(tmp, "js"))


def test_queue_through_a_stream(servers, bridges, addr, tmp, cli):
    """Each message once and in order, through a stream the first bridge makes; a second bridge
    in of the same group shares the consumer (each message to one of them)."""
    s = js_server(servers, tmp)
    a, b1, b2 = addr("ja"), addr("jb1"), addr("jb2")
    url = f"{s.url}/orders.new"
    n = 300
    with shmlink.Queue(a, create=True, max_msg=64), \
            shmlink.Queue(b1, create=True, max_msg=64, capacity=1 << 16) as c1, \
            shmlink.Queue(b2, create=True, max_msg=64, capacity=1 << 16) as c2:
        out = bridges("out", a, url, "--jetstream")
        out.wait_for("forwarding to stream SHMLINK_orders_new")
        assert "made stream SHMLINK_orders_new for orders.new (1 replica)" in out.text()
        for b in (b1, b2):
            bridges("in", url, b, "--jetstream").wait_for("(consumer shmlink)")
        with shmlink.Queue(a, role="producer") as p:
            for i in range(n):
                p.send(b"%d" % i, timeout=10)
        got1, got2 = [], []

        def all_there():
            drain(c1, got1)
            drain(c2, got2)
            return len(got1) + len(got2) >= n
        wait_until("every message", all_there, 30)
        time.sleep(0.3)
        drain(c1, got1)
        drain(c2, got2)
        assert sorted(got1 + got2) == list(range(n))  # each once
        assert got1 == sorted(got1) and got2 == sorted(got2)
        assert got1 and got2


def test_bus_each_durable_gets_everything(servers, bridges, addr, tmp):
    """Two bridges in with their own durable consumers: each gets every message; one started
    after the messages were stored gets them from the stream."""
    s = js_server(servers, tmp)
    a, b1, b2 = addr("jba"), addr("jbb1"), addr("jbb2")
    url = f"{s.url}/cam.frames"
    n = 100
    with shmlink.Bus(a, create=True, max_msg=64), \
            shmlink.Queue(b1, create=True, max_msg=64, capacity=1 << 16) as c1, \
            shmlink.Queue(b2, create=True, max_msg=64, capacity=1 << 16) as c2:
        bridges("out", a, url, "--jetstream").wait_for("forwarding to stream")
        bridges("in", url, b1, "--jetstream", "--durable", "one").wait_for("(consumer one)")
        time.sleep(0.2)  # the bridge out's subscriber is attached: it said so
        with shmlink.Bus(a, role="publisher") as p:
            for i in range(n):
                p.send(b"%d" % i)
        got1 = []
        collect(c1, got1, set(range(n)), 30)
        assert got1 == list(range(n))
        # Later, and on a bus with none of them left: the stream still has them.
        bridges("in", url, b2, "--jetstream", "--durable", "two").wait_for("(consumer two)")
        got2 = []
        collect(c2, got2, set(range(n)), 30)
        assert got2 == list(range(n))


def test_bridge_in_killed_and_restarted(servers, bridges, addr, tmp):
    """A bridge in killed (SIGKILL) mid-stream, then started again: nothing is lost (what it
    had not acknowledged is delivered again, counted REDELIVERED), and nothing arrives twice
    (the message it had sent but not acknowledged is its channel's mark)."""
    s = js_server(servers, tmp)
    a, b = addr("kia"), addr("kib")
    url = f"{s.url}/t.kill.in"
    n = 400
    with shmlink.Queue(a, create=True, max_msg=64, capacity=1 << 16), \
            shmlink.Queue(b, create=True, max_msg=64, capacity=1 << 16) as c:
        bridges("out", a, url, "--jetstream").wait_for("forwarding to stream")
        into = bridges("in", url, b, "--jetstream", "--ack-wait", "1s")
        into.wait_for("forwarding from stream")
        got = []
        with shmlink.Queue(a, role="producer") as p:
            for i in range(n):
                p.send(b"%d" % i, timeout=10)
                if i == n // 4:
                    wait_until("messages flowing", lambda: (drain(c, got), len(got) > 20)[1])
                    into.proc.kill()
                    into.proc.wait(timeout=10)
        again = bridges("in", url, b, "--jetstream", "--ack-wait", "1s")
        again.wait_for("forwarding from stream")
        collect(c, got, set(range(n)), 40)
        assert sorted(got) == list(range(n)), sorted(x for x in set(got) if got.count(x) > 1)


class AckHolder:
    """A TCP relay between a NATS client and a server on 127.0.0.1 that, once told to hold,
    stops passing what the client sends at its next JetStream acknowledgement (a publish to
    $JS.ACK.*), which the server then never gets: the client's acknowledgement hangs."""

    def __init__(self, server_port):
        self.server_port = server_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hold = threading.Event()
        self.held = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.server_port))
            self.socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src, dst, upstream):
        tail = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and self.hold.is_set():
                    at = (tail + data).find(b"PUB $JS.ACK.")
                    if at >= 0:
                        dst.sendall(data[:max(0, at - len(tail))])
                        self.held.set()
                        while src.recv(65536):  # the rest never reaches the server
                            pass
                        break
                    tail = data[-16:]
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()
        for sock in self.socks:
            sock.close()


@pytest.mark.parametrize("kind", ["queue", "bus"])
def test_bridge_in_killed_before_acknowledging(servers, bridges, addr, tmp, kind):
    """A bridge in killed after sending a message into its channel (a queue, a bus) and before
    the server got its acknowledgement: the bridge in started in its place finds the message's
    stream sequence as its channel's mark, and acknowledges the redelivery without sending it
    again."""
    s = js_server(servers, tmp)
    a, b = addr("kaa"), addr("kab")
    url = f"{s.url}/t.kill.ack{kind}"
    relay = AckHolder(s.port)
    into_kind = shmlink.Queue if kind == "queue" else shmlink.Bus
    reader = {} if kind == "queue" else {"role": "subscriber"}
    try:
        with shmlink.Queue(a, create=True, max_msg=64, capacity=1 << 12), \
                into_kind(b, create=True, max_msg=64, capacity=1 << 12), \
                into_kind(b, **reader) as c, \
                shmlink.Queue(a, role="producer") as p:
            bridges("out", a, url, "--jetstream").wait_for("forwarding to stream")
            into = bridges("in", f"nats://127.0.0.1:{relay.port}/t.kill.ack{kind}", b,
                           "--jetstream", "--ack-wait", "1s")
            into.wait_for("forwarding from stream")
            got = []
            for i in range(5):
                p.send(b"%d" % i, timeout=10)
            collect(c, got, set(range(5)), 30)
            relay.hold.set()
            p.send(b"5", timeout=10)
            collect(c, got, {5}, 30)  # in the channel, its acknowledgement held
            wait_until("the acknowledgement held", relay.held.is_set)
            into.proc.kill()
            into.proc.wait(timeout=10)
            again = bridges("in", url, b, "--jetstream", "--ack-wait", "1s")
            wait_until("message 5 delivered again",
                       lambda: endpoint(b)[0]["redelivered"] >= 1, 30)
            for i in range(6, 10):
                p.send(b"%d" % i, timeout=10)
            collect(c, got, set(range(10)), 30)
            assert got == list(range(10))
            assert "stream message 6 was in the channel already" in again.text()
            assert endpoint(b)[0]["durable"] and endpoint(b)[0]["redelivered"] >= 1
    finally:
        relay.close()


def js_request(port, subject, payload=b""):
    """A JetStream API request over the NATS protocol itself; returns the reply's payload."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.recv(4096)  # INFO
        sock.sendall(b'CONNECT {"verbose":false,"protocol":1}\r\nSUB _INBOX.t 1\r\n'
                     b"PUB %s _INBOX.t %d\r\n%s\r\n" % (subject, len(payload), payload))
        got = b""
        while b"MSG _INBOX.t" not in got or not got.endswith(b"\r\n") or got.count(b"\r\n") < 2:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        return got.split(b"\r\n", 2)[1] if got.startswith(b"MSG") else got


def test_mark_of_a_stream_made_again_is_not_used(servers, bridges, addr, tmp):
    """A bridge in killed after a message, its stream deleted and made again (sequences start
    again): the restarted bridge in does not take the channel's mark for the new stream's."""
    s = js_server(servers, tmp)
    a, b = addr("rma"), addr("rmb")
    url = f"{s.url}/t.remade"
    with shmlink.Queue(a, create=True, max_msg=64), \
            shmlink.Queue(b, create=True, max_msg=64) as c, \
            shmlink.Queue(a, role="producer") as p:
        out = bridges("out", a, url, "--jetstream")
        out.wait_for("forwarding to stream")
        into = bridges("in", url, b, "--jetstream")
        into.wait_for("forwarding from stream")
        p.send(b"0", timeout=10)
        assert c.recv(20) == b"0"
        into.proc.kill()
        into.proc.wait(timeout=10)
        assert out.stop() == 130  # the bridge out has let its message go
        reply = js_request(s.port, b"$JS.API.STREAM.DELETE.SHMLINK_t_remade")
        assert b'"success":true' in reply, reply
        again = bridges("in", url, b, "--jetstream")
        again.wait_for("forwarding from stream")
        assert "made stream SHMLINK_t_remade" in again.text()
        assert "the channel's mark is of another stream than SHMLINK_t_remade" in again.text()
        bridges("out", a, url, "--jetstream").wait_for("forwarding to stream")
        p.send(b"1", timeout=10)
        assert c.recv(20) == b"1"


def test_bridge_out_killed_and_restarted(servers, bridges, addr, tmp):
    """A bridge out killed (SIGKILL) mid-stream, then started again: it is a durable endpoint of
    its channel, so the new one takes the killed one's place and gets the message it held
    again, under the same id (the channel's creation time and the message's position), which
    the stream keeps once: nothing lost, nothing twice, the channel's books balance."""
    s = js_server(servers, tmp)
    a, b = addr("koa"), addr("kob")
    url = f"{s.url}/t.kill.out"
    with shmlink.Queue(a, create=True, max_msg=64, capacity=1 << 16) as q, \
            shmlink.Queue(b, create=True, max_msg=64, capacity=1 << 16) as c:
        out = bridges("out", a, url, "--jetstream")
        out.wait_for("forwarding to stream")
        bridges("in", url, b, "--jetstream").wait_for("forwarding from stream")
        got = []
        with shmlink.Queue(a, role="producer") as p:
            for i in range(200):
                p.send(b"%d" % i, timeout=10)
            wait_until("messages flowing", lambda: (drain(c, got), len(got) > 20)[1])
            out.proc.kill()
            out.proc.wait(timeout=10)
            for i in range(200, 300):
                p.send(b"%d" % i, timeout=10)
        again = bridges("out", a, url, "--jetstream")
        again.wait_for("forwarding to stream")
        collect(c, got, set(range(300)), 30)
        assert sorted(got) == list(range(300)), sorted(set(range(300)) - set(got))
        assert got == sorted(got)  # and in order
        st = q.stats()
        assert st["sent"] == 300 and st["lost"] == 0
        assert st["sent"] == st["received"] + st["queued"]
        eps = endpoint(a)
        assert len(eps) == 1 and eps[0]["alive"], eps  # the new bridge, in the killed one's entry
        assert eps[0]["durable"] and eps[0]["bridge"]
        assert "consumer (bridge, durable)" in run([CLI, "info", a]).stdout


def test_bus_bridge_out_killed_misses_nothing(servers, bridges, addr, tmp):
    """A bus's bridge out killed and started again goes on from the killed one's position: what
    was published meanwhile reaches the stream too."""
    s = js_server(servers, tmp)
    a, b = addr("kba"), addr("kbb")
    url = f"{s.url}/t.kill.bus"
    with shmlink.Bus(a, create=True, max_msg=64, capacity=1 << 16) as pub, \
            shmlink.Queue(b, create=True, max_msg=64, capacity=1 << 16) as c:
        out = bridges("out", a, url, "--jetstream")
        out.wait_for("forwarding to stream")
        bridges("in", url, b, "--jetstream").wait_for("forwarding from stream")
        time.sleep(0.2)
        got = []
        for i in range(100):
            pub.send(b"%d" % i)
        wait_until("messages flowing", lambda: (drain(c, got), len(got) > 10)[1])
        out.proc.kill()
        out.proc.wait(timeout=10)
        for i in range(100, 150):
            pub.send(b"%d" % i)
        bridges("out", a, url, "--jetstream").wait_for("forwarding to stream")
        collect(c, got, set(range(150)), 30)
        assert got == list(range(150))


def three_servers(servers, tmp):
    """Three clustered servers with JetStream, ready once a stream of 3 replicas can be made."""
    routes = [free_port() for _ in range(3)]
    started = []
    for i in range(3):
        others = ",".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i)
        started.append(servers("-js", "-sd", os.path.join(tmp, f"js{i}"), "--name", f"n{i}",
                               "--cluster_name", "r3", "--cluster",
                               f"nats://127.0.0.1:{routes[i]}", "--routes", others))
    return started


def test_r3_cluster_loses_a_server(servers, bridges, addr, tmp):
    """A stream of three replicas on three clustered servers; one server killed (SIGKILL)
    mid-stream: every message arrives, once and in order."""
    srv = three_servers(servers, tmp)
    hosts = ",".join(f"127.0.0.1:{x.port}" for x in srv)
    url = f"nats://{hosts}/plant.line1"
    a, b = addr("r3a"), addr("r3b")
    n = 600
    with shmlink.Queue(a, create=True, max_msg=64, capacity=1 << 16), \
            shmlink.Queue(b, create=True, max_msg=64, capacity=1 << 16) as c:
        out = bridges("out", a, url, "--jetstream", "--replicas", "3")
        out.wait_for("forwarding to stream", 60)  # the cluster elects its leaders first
        into = bridges("in", url, b, "--jetstream")
        into.wait_for("forwarding from stream", 60)
        got = []
        with shmlink.Queue(a, role="producer") as p:
            for i in range(n):
                p.send(b"%d" % i, timeout=30)
                if i == n // 3:
                    wait_until("messages flowing", lambda: (drain(c, got), len(got) > 50)[1],
                               30)
                    srv[0].stop(sig=9)
                if i % 50 == 0:
                    drain(c, got)
        collect(c, got, set(range(n)), 90)
        assert got == list(range(n)), (len(got), len(set(got)))
        for br in (out, into):
            assert br.proc.poll() is None, br.text()


def test_refusals(cli, addr):
    """What --jetstream does not take is said in one line, before any connection."""
    rp, lt, q = addr("jrp"), addr("jlt"), addr("jq")
    for kind, x in (("rpc", rp), ("latest", lt), ("queue", q)):
        assert run([cli, "mk", kind, x]).returncode == 0
    r = run([cli, "bridge", "out", rp, "nats://127.0.0.1:9/x", "--jetstream"])
    assert r.returncode == 1 and "--jetstream is for queue and bus" in r.stderr, r
    r = run([cli, "bridge", "in", "nats://127.0.0.1:9/x", lt, "--jetstream"])
    assert r.returncode == 1 and "key-value bucket" in r.stderr, r
    for args, why in (
            (["in", "nats://127.0.0.1:9/x.*", q, "--jetstream"], "name the stream"),
            (["in", "nats://127.0.0.1:9/x", q, "--durable", "d"], "--jetstream"),
            (["out", q, "nats://127.0.0.1:9/x", "--jetstream", "--durable", "d"], "bridge in"),
            (["out", q, "nats://127.0.0.1:9/x", "--jetstream", "--replicas", "7"], "1 to 5"),
            (["out", q, "nats://127.0.0.1:9/x", "--jetstream", "--stream", "a.b"], "letters"),
            (["in", "nats://127.0.0.1:9/x", q, "--jetstream", "--ack-wait", "10ms"], "1s")):
        r = run([cli, "bridge", *args])
        assert r.returncode == 2 and why in r.stderr, (args, r)
