"""`shmlink bridge` against real nats-server processes: each kind end to end (bridge out, NATS,
bridge in) with C (the shmlink tool) and Python endpoints, typed channels, a server that is
not there yet or goes away mid-stream, back-pressure, authentication, and bad input."""
import base64
import json
import os
import time
import uuid

import numpy as np
import pytest

import shmlink

from conftest import CLI, NKEY_ACCOUNT, NKEY_OPERATOR, NKEY_USER, nkey_pair, run, sign, wait_until


def pair(bridges, src, dst, url, kind_args=()):
    """A bridge out of src and a bridge in to dst through url, both subscribed and ready."""
    into = bridges("in", url, dst, *kind_args)
    into.wait_for("forwarding from")
    out = bridges("out", src, url)
    out.wait_for("forwarding to")
    return out, into


def test_queue_python_to_c(servers, bridges, addr, cli):
    s = servers()
    a, b = addr("qa"), addr("qb")
    n = 300
    with shmlink.Queue(a, create=True, max_msg=256), shmlink.Queue(b, create=True, max_msg=256):
        pair(bridges, a, b, f"{s.url}/t.queue")
        with shmlink.Queue(a, role="producer") as p:
            for i in range(n):
                p.send(b"m%d" % i, timeout=10)
        r = run([cli, "recv", b, "-n", str(n), "--timeout", "20"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["m%d" % i for i in range(n)]


def test_queue_group_shares_the_work(servers, bridges, addr):
    """Two bridges in of one queue group: each message reaches exactly one of them."""
    s = servers()
    a, b1, b2 = addr("ga"), addr("gb1"), addr("gb2")
    url = f"{s.url}/t.work"
    n = 400
    with shmlink.Queue(a, create=True, max_msg=64), \
            shmlink.Queue(b1, create=True, max_msg=64, capacity=1 << 16) as c1, \
            shmlink.Queue(b2, create=True, max_msg=64, capacity=1 << 16) as c2:
        for b in (b1, b2):
            bridges("in", url, b, "--group", "workers").wait_for("queue group workers")
        bridges("out", a, url).wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            for i in range(n):
                p.send(b"%d" % i, timeout=10)
        got = []

        def drain():
            for c in (c1, c2):
                while True:
                    try:
                        got.append(int(c.recv(0)))
                    except TimeoutError:
                        break
            return len(got) >= n

        wait_until("every message", drain, 20)
        assert sorted(got) == list(range(n))


def test_bus_c_to_python_subscribers(servers, bridges, addr, cli):
    """A bus: every bridge in gets every message, and publishes it to its local subscribers."""
    s = servers()
    a, b1, b2 = addr("ba"), addr("bb1"), addr("bb2")
    url = f"{s.url}/t.bus"
    with shmlink.Bus(a, create=True, max_msg=128), shmlink.Bus(b1, create=True, max_msg=128), \
            shmlink.Bus(b2, create=True, max_msg=128), \
            shmlink.Bus(b1, role="subscriber") as s1, shmlink.Bus(b2, role="subscriber") as s2:
        for b in (b1, b2):
            bridges("in", url, b).wait_for("forwarding from")
        bridges("out", a, url).wait_for("forwarding to")
        words = ["w%d" % i for i in range(50)]
        r = run([cli, "send", a, *words])
        assert r.returncode == 0, r.stderr
        for sub in (s1, s2):
            assert [sub.recv(10).decode() for _ in words] == words


def test_wildcard_subscription(servers, bridges, addr):
    s = servers()
    a1, a2, b = addr("w1"), addr("w2"), addr("wb")
    with shmlink.Bus(a1, create=True), shmlink.Bus(a2, create=True), \
            shmlink.Bus(b, create=True), shmlink.Bus(b, role="subscriber") as sub:
        bridges("in", f"{s.url}/sensors.>", b).wait_for("forwarding from")
        bridges("out", a1, f"{s.url}/sensors.left").wait_for("forwarding to")
        bridges("out", a2, f"{s.url}/sensors.right.front").wait_for("forwarding to")
        with shmlink.Bus(a1, role="publisher") as p1, shmlink.Bus(a2, role="publisher") as p2:
            p1.send(b"L")
            assert sub.recv(10) == b"L"
            p2.send(b"R")
            assert sub.recv(10) == b"R"


def test_typed_stays_typed(servers, bridges, addr):
    """A typed channel's messages carry their type; a bridge in takes only its own type."""
    s = servers()
    a, b, other = addr("ta"), addr("tb"), addr("to")
    dt = np.dtype([("seq", "<u8"), ("v", "<f8")])
    url = f"{s.url}/t.typed"
    with shmlink.Queue(a, create=True, dtype=dt, shape=(4,)) as p, \
            shmlink.Queue(b, create=True, dtype=dt, shape=(4,)) as c, \
            shmlink.Queue(other, create=True, dtype="<f4", shape=(8,)) as wrong:
        bridges("in", url, b).wait_for("forwarding from")
        mismatch = bridges("in", f"{s.url}/t.typed.copy", other)
        mismatch.wait_for("forwarding from")
        out = bridges("out", a, url)
        out.wait_for("forwarding to")
        x = np.zeros(4, dtype=dt)
        x["seq"] = [1, 2, 3, 4]
        x["v"] = [0.5, 1.5, 2.5, 3.5]
        p.send_array(x, timeout=5)
        y = c.recv_array(timeout=10)
        assert y.dtype == dt and (y == x).all()
        # The same bytes to a channel of another type (same size, 32 bytes): refused, counted.
        assert out.stop() == 130  # a queue: the next message must go to the other bridge
        copy = bridges("out", a, f"{s.url}/t.typed.copy")
        copy.wait_for("forwarding to")
        p.send_array(x, timeout=5)
        mismatch.wait_for("dropping messages of type")
        with pytest.raises(TimeoutError):
            wrong.recv(0.2)
        assert mismatch.stop() == 130
        assert "0 forwarded, 1 dropped" in mismatch.text()


def test_batches(servers, bridges, addr):
    """bridge out --batch: what the channel holds goes as one NATS message, which the bridges
    in take apart: every message, in order, sizes 0 to the largest; a bus's two bridges in
    each get all of them."""
    s = servers()
    a, b, bus, c1, c2 = addr("xa"), addr("xb"), addr("xbus"), addr("xc1"), addr("xc2")
    n = 3000
    sizes = [0, 1, 7, 64, 1000, 4096]
    msgs = [(b"%d:" % i).ljust(sizes[i % 6], b"x")[:sizes[i % 6]] for i in range(n)]
    with shmlink.Queue(a, create=True, max_msg=4096, capacity=1 << 20), \
            shmlink.Queue(b, create=True, max_msg=4096, capacity=1 << 24) as q:
        bridges("in", f"{s.url}/t.batch", b).wait_for("forwarding from")
        out = bridges("out", a, f"{s.url}/t.batch", "--batch")
        out.wait_for("forwarding to nats://127.0.0.1:%d/t.batch in batches" % s.port)
        with shmlink.Queue(a, role="producer") as p:
            for m in msgs:
                p.send(m, timeout=10)
        got = [q.recv(20) for _ in range(n)]
        assert got == msgs
        assert out.stop() == 130
        assert f"{n} forwarded, 0 dropped" in out.text()
    with shmlink.Bus(bus, create=True, max_msg=64, capacity=1 << 16), \
            shmlink.Bus(c1, create=True, max_msg=64), shmlink.Bus(c2, create=True, max_msg=64), \
            shmlink.Bus(c1, role="subscriber") as r1, shmlink.Bus(c2, role="subscriber") as r2:
        for c in (c1, c2):
            bridges("in", f"{s.url}/t.batch.bus", c).wait_for("forwarding from")
        bridges("out", bus, f"{s.url}/t.batch.bus", "--batch").wait_for("in batches")
        with shmlink.Bus(bus, role="publisher") as pub:
            for i in range(n):
                pub.send(b"%d" % i)
        for r in (r1, r2):
            assert [int(r.recv(20)) for _ in range(n)] == list(range(n))


def raw_hpub(port, subject, headers, payload):
    """Publish one message with headers to the server on 127.0.0.1:port over the NATS
    protocol itself (a program other than a bridge)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.recv(4096)  # INFO
        hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % kv for kv in headers) + b"\r\n"
        sock.sendall(b'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\n'
                     b"HPUB %s %d %d\r\n%s%s\r\nPING\r\n"
                     % (subject, len(hdr), len(hdr) + len(payload), hdr, payload))
        reply = b""
        while b"PONG" not in reply:
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
        assert b"-ERR" not in reply, reply


def test_malformed_batch_dropped(servers, bridges, addr):
    """A batch whose lengths do not fill it as its count says: its messages dropped, counted,
    said once; one whose count its payload cannot hold: dropped as one message; a good batch
    made by hand passes; a batch of another type is dropped whole."""
    s = servers()
    b = addr("mb")
    with shmlink.Queue(b, create=True, max_msg=64) as q:
        into = bridges("in", f"{s.url}/t.bad", b)
        into.wait_for("forwarding from")
        raw_hpub(s.port, b"t.bad", [(b"Shmlink-Count", b"2")],
                 b"\x02\x00\x00\x00hi\x05\x00\x00\x00")
        raw_hpub(s.port, b"t.bad", [(b"Shmlink-Count", b"1048576")], b"\x00\x00\x00\x00")
        good = b"\x01\x00\x00\x00A\x00\x00\x00\x00\x02\x00\x00\x00BC"
        raw_hpub(s.port, b"t.bad", [(b"Shmlink-Count", b"3")], good)
        assert [q.recv(10) for _ in range(3)] == [b"A", b"", b"BC"]
        into.wait_for("dropping a batch whose messages do not fill it")
        # A batch of another channel's type: its 2 messages dropped, counted.
        raw_hpub(s.port, b"t.bad", [(b"Shmlink-Count", b"2"), (b"Shmlink-Type", b"4;;<f")],
                 b"\x04\x00\x00\x00abcd\x04\x00\x00\x00efgh")
        into.wait_for("dropping messages of type '4;;<f'")
        assert into.stop() == 130
        assert "3 forwarded, 5 dropped" in into.text()  # 2, 1 and 2


def test_too_large_for_the_channel_in(servers, bridges, addr):
    """A message larger than the bridge in's channel takes: dropped, counted, said once."""
    s = servers()
    a, b = addr("sa"), addr("sb")
    with shmlink.Queue(a, create=True, max_msg=256), \
            shmlink.Queue(b, create=True, max_msg=16) as c:
        out, into = pair(bridges, a, b, f"{s.url}/t.size")
        with shmlink.Queue(a, role="producer") as p:
            p.send(b"x" * 100, timeout=5)
            p.send(b"fits", timeout=5)
        assert c.recv(10) == b"fits"
        into.stop()
        assert "dropping a message of 100 bytes" in into.text()
        assert "1 forwarded, 1 dropped" in into.text()


def test_cluster_of_two_servers(servers, bridges, addr):
    """Two clustered servers (the two-machine walk-through of docs/BRIDGE.md on one
    machine): a bridge out on one, a bridge in on the other."""
    from conftest import free_port
    r1, r2 = free_port(), free_port()
    s1 = servers("--cluster", f"nats://127.0.0.1:{r1}", "--routes", f"nats://127.0.0.1:{r2}",
                 "--cluster_name", "c")
    s2 = servers("--cluster", f"nats://127.0.0.1:{r2}", "--routes", f"nats://127.0.0.1:{r1}",
                 "--cluster_name", "c")
    a, b = addr("ca"), addr("cb")
    with shmlink.Queue(a, create=True), shmlink.Queue(b, create=True) as c:
        bridges("in", f"{s2.url}/cam.frames", b).wait_for("forwarding from")
        bridges("out", a, f"{s1.url}/cam.frames").wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            # The route carries the subscription to s1 shortly after it is made on s2.
            def arrived():
                p.send(b"frame", timeout=5)
                try:
                    return c.recv(0.2) == b"frame"
                except TimeoutError:
                    return False
            wait_until("a message across the cluster", arrived, 20)


def test_bridge_killed_and_restarted(servers, bridges, addr):
    """A bridge out killed (SIGKILL) mid-stream: the channel's books balance (sent = received
    + lost + queued), a new bridge goes on, and what arrives arrives once and in order. (What
    the killed bridge had taken but not yet handed to the server is lost: at most once.)"""
    s = servers()
    a, b = addr("ka"), addr("kb")
    url = f"{s.url}/t.kill"
    with shmlink.Queue(a, create=True, max_msg=64, capacity=1 << 16) as q, \
            shmlink.Queue(b, create=True, max_msg=64, capacity=1 << 16) as c:
        out, into = pair(bridges, a, b, url)
        got = []
        with shmlink.Queue(a, role="producer") as p:
            for i in range(200):
                p.send(b"%d" % i, timeout=5)
            out.proc.kill()
            out.proc.wait(timeout=10)
            for i in range(200, 300):
                p.send(b"%d" % i, timeout=5)
            bridges("out", a, url).wait_for("forwarding to")
            st = {}

            def last_arrived():
                while True:
                    try:
                        got.append(int(c.recv(0)))
                    except TimeoutError:
                        break
                return got and got[-1] == 299

            wait_until("the last message, after the restart", last_arrived, 30)
            # A message the killed bridge held in the channel (peeked) is settled as lost by
            # whoever needs its slot, or by a repair: then the books balance.
            r = run([CLI, "info", a, "--repair"])
            assert r.returncode in (0, 3), r.stderr
            st.update(q.stats())
        assert st["sent"] == 300 and st["sent"] == st["received"] + st["lost"] + st["queued"]
        assert got == sorted(set(got))
        assert set(range(200, 300)) <= set(got)  # all sent after the kill


def test_server_not_there_at_start(servers, bridges, addr, tmp):
    """No server yet: the bridges say so, retry, and forward once it comes."""
    from conftest import free_port
    port = free_port()
    url = f"nats://127.0.0.1:{port}/t.late"
    a, b = addr("la"), addr("lb")
    with shmlink.Queue(a, create=True), shmlink.Queue(b, create=True) as c:
        into = bridges("in", url, b)
        out = bridges("out", a, url)
        for br in (into, out):
            br.wait_for("cannot reach")
        assert "retrying" in out.text()
        servers(port=port)
        into.wait_for("forwarding from")
        out.wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            p.send(b"late but there", timeout=5)
        assert c.recv(15) == b"late but there"


def test_server_restart_mid_stream(servers, bridges, addr):
    """The server goes away and comes back: both bridges say so, reconnect, and go on; a bus
    bridge in counts the messages that never arrived (the publishing bridge's sequence)."""
    s = servers()
    a, b = addr("ra"), addr("rb")
    url = f"{s.url}/t.restart"
    with shmlink.Bus(a, create=True, capacity=1 << 16), shmlink.Bus(b, create=True), \
            shmlink.Bus(b, role="subscriber") as sub:
        out, into = pair(bridges, a, b, url)
        with shmlink.Bus(a, role="publisher") as p:
            p.send(b"before")
            assert sub.recv(10) == b"before"
            s.stop()
            for br in (out, into):
                br.wait_for("disconnected from")
            servers(port=s.port)
            for br in (out, into):
                br.wait_for("reconnected to")
            # The subscription is renewed on reconnection; a message published before the
            # bridge in's renewal reaches nobody (at most once): send until one arrives.
            got = None
            for i in range(100):
                p.send(b"after %d" % i)
                try:
                    got = sub.recv(0.1)
                    break
                except TimeoutError:
                    pass
            assert got is not None and got.startswith(b"after ")
            first = int(got.split()[1])
            p.send(b"last")
            while sub.recv(10) != b"last":
                pass
        # Each bridge is an endpoint of its channel: info and top show it and its counters.
        for ch, role in ((a, "subscriber"), (b, "publisher")):
            def counted():
                doc = json.loads(run([CLI, "info", ch, "--json"]).stdout)
                eps = [e for e in doc["channel"]["endpoint_table"] if e["bridge"]]
                return len(eps) == 1 and eps[0]["reconnects"] == 1 and eps[0]
            wait_until("the reconnection counted", counted, 10)
            assert counted()["role_name"] == role
            text = run([CLI, "info", ch]).stdout
            assert f"{role} (bridge)" in text and "RECONNECTS" in text, text
            top = run([CLI, "top", ch, "--once", "--interval", "10ms"]).stdout
            assert "1 bridge: 1 reconnects, 0 redelivered" in top, top
        into_drops = [e for e in json.loads(run([CLI, "info", b, "--json"]).stdout)
                      ["channel"]["endpoint_table"] if e["bridge"]][0]["drops"]
        assert into_drops == first
        into.stop()
        out.stop()
        # The messages published before the renewal are the gap the bridge in counted.
        assert "dropped" in into.text()
        counted = int(into.text().split(" forwarded, ")[1].split(" dropped")[0])
        assert counted == first


def test_back_pressure_while_disconnected(servers, bridges, addr):
    """Under block, a bridge out takes nothing while the server is down: the local producer
    waits, and the channel drains once the server is back. (What the bridge out publishes
    before the bridge in has subscribed again reaches nobody: at most once.)"""
    s = servers()
    a, b = addr("pa"), addr("pb")
    url = f"{s.url}/t.press"
    with shmlink.Queue(a, create=True, max_msg=64, capacity=8 * 128) as q, \
            shmlink.Queue(b, create=True, capacity=1 << 16) as c:
        out, into = pair(bridges, a, b, url)
        s.stop()
        out.wait_for("disconnected from")
        into.wait_for("disconnected from")
        sent = 0
        with shmlink.Queue(a, role="producer") as p:
            while True:
                try:
                    p.send(b"%d" % sent, timeout=0.3)
                    sent += 1
                except TimeoutError:
                    break
                assert sent < 1000, "the bridge kept taking messages while disconnected"
            # All of them waited in the channel, but for one the bridge may have taken as the
            # connection broke (the client holds it for the next connection).
            assert sent - 1 <= q.stats()["queued"] <= sent
            servers(port=s.port)
            wait_until("the channel to drain", lambda: q.stats()["queued"] == 0, 30)
            into.wait_for("reconnected to")
            p.send(b"%d" % sent, timeout=5)
            got = []
            wait_until("the last message", lambda: got.append(int(c.recv(10))) or
                       got[-1] == sent, 30)
        assert got == sorted(set(got))  # in order, none twice


def test_user_and_password(servers, bridges, addr):
    s = servers("--user", "alice", "--pass", "s3cret:@/")
    a, b = addr("ua"), addr("ub")
    good = f"nats://alice:s3cret%3A%40%2F@127.0.0.1:{s.port}/t.auth"
    with shmlink.Queue(a, create=True), shmlink.Queue(b, create=True) as c:
        pair(bridges, a, b, good)
        with shmlink.Queue(a, role="producer") as p:
            p.send(b"signed in", timeout=5)
        assert c.recv(10) == b"signed in"
        bad = bridges("out", a, f"nats://alice:wrong@127.0.0.1:{s.port}/t.auth")
        assert bad.proc.wait(timeout=20) == 1
        lines = bad.text().strip().splitlines()
        assert len(lines) == 1 and "Authorization Violation" in lines[0], lines
        assert "wrong" not in lines[0]  # the password is never shown


def test_nkey(servers, bridges, addr, tmp):
    seed, public, _ = nkey_pair(tmp)
    conf = os.path.join(tmp, "nkey.conf")
    with open(conf, "w") as f:
        f.write("authorization { users = [ { nkey: %s } ] }\n" % public)
    seed_file = os.path.join(tmp, "user.nk")
    with open(seed_file, "w") as f:
        f.write(seed + "\n")
    s = servers("-c", conf)
    a, b = addr("na"), addr("nb")
    url = f"{s.url}/t.nkey"
    with shmlink.Queue(a, create=True), shmlink.Queue(b, create=True) as c:
        bridges("in", url, b, "--nkey", seed_file).wait_for("forwarding from")
        bridges("out", a, url, "--nkey", seed_file).wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            p.send(b"by nkey", timeout=5)
        assert c.recv(10) == b"by nkey"
        other_seed, _, _ = nkey_pair(tmp)
        with open(seed_file, "w") as f:
            f.write(other_seed + "\n")
        bad = bridges("out", a, url, "--nkey", seed_file)
        assert bad.proc.wait(timeout=20) == 1
        assert "Authorization Violation" in bad.text()
        with open(seed_file, "w") as f:
            f.write("SUnotaseed\n")
        bad = bridges("out", a, url, "--nkey", seed_file)
        assert bad.proc.wait(timeout=20) == 1
        assert "no NKey seed in the file" in bad.text()


def jwt(issuer, subject, nats, name):
    """A NATS JWT (v2) of subject, signed by issuer: an (seed, public, pem) NKey each."""
    def b64(data):
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    claims = {"jti": uuid.uuid4().hex.upper(), "iat": int(time.time()), "iss": issuer[1],
              "name": name, "sub": subject[1], "nats": dict(nats, version=2)}
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(sign(issuer[2], f'{head}.{body}'.encode()))}"


def test_creds(servers, bridges, addr, tmp):
    """A server in operator mode (an operator, an account, a user: JWTs made here); the
    bridges sign in with the user's credentials file; another user's is refused."""
    op, acct, user = (nkey_pair(tmp, k) for k in (NKEY_OPERATOR, NKEY_ACCOUNT, NKEY_USER))
    unlimited = {"subs": -1, "data": -1, "payload": -1}
    op_jwt = jwt(op, op, {"type": "operator"}, "op")
    acct_jwt = jwt(op, acct, {"type": "account", "limits": dict(
        unlimited, imports=-1, exports=-1, wildcards=True, conn=-1, leaf=-1)}, "acct")
    with open(os.path.join(tmp, "op.jwt"), "w") as f:
        f.write(op_jwt)
    conf = os.path.join(tmp, "op.conf")
    with open(conf, "w") as f:
        f.write(f'operator: "{os.path.join(tmp, "op.jwt")}"\nresolver: MEMORY\n'
                f'resolver_preload: {{ {acct[1]}: "{acct_jwt}" }}\n')

    def creds(name, key, issuer):
        path = os.path.join(tmp, f"{name}.creds")
        with open(path, "w") as f:
            f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                    "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                    % (jwt(issuer, key, dict(unlimited, type="user", pub={}, sub={}), name),
                       key[0]))
        return path

    good = creds("alice", user, acct)
    s = servers("-c", conf)
    a, b = addr("jwa"), addr("jwb")
    url = f"{s.url}/t.creds"
    with shmlink.Queue(a, create=True), shmlink.Queue(b, create=True) as c:
        bridges("in", url, b, "--creds", good).wait_for("forwarding from")
        bridges("out", a, url, "--creds", good).wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            p.send(b"by credentials", timeout=5)
        assert c.recv(10) == b"by credentials"
        # A user signed by a key the server does not know.
        stranger = nkey_pair(tmp, NKEY_ACCOUNT)
        bad = bridges("out", a, url, "--creds", creds("mallory", nkey_pair(tmp), stranger))
        assert bad.proc.wait(timeout=20) == 1
        lines = bad.text().strip().splitlines()
        assert len(lines) == 1 and "Authorization Violation" in lines[0], lines


def test_max_payload_refused(servers, bridges, addr, tmp):
    conf = os.path.join(tmp, "small.conf")
    with open(conf, "w") as f:
        f.write("max_payload: 2048\n")
    s = servers("-c", conf)
    a = addr("ma")
    with shmlink.Queue(a, create=True, max_msg=4096):
        b = bridges("out", a, f"{s.url}/t.big")
        assert b.proc.wait(timeout=20) == 1
        text = b.text()
        assert "max_payload" in text and "4096" in text and "2048" in text, text


@pytest.mark.parametrize("args, why", [
    (["out", "CH", "nats://127.0.0.1:4222"], "no subject"),
    (["out", "CH", "http://127.0.0.1/x"], "is not a NATS URL"),
    (["out", "CH", "nats://127.0.0.1:0/x"], "out of range"),
    (["out", "CH", "nats://127.0.0.1:4222/a.*"], "without wildcards"),
    (["in", "nats://127.0.0.1:4222/a.>.b", "CH"], "must be the last token"),
    (["in", "nats://127.0.0.1:4222/a b", "CH"], "space"),
    (["in", "nats://127.0.0.1:4222/a..b", "CH"], "empty token"),
    (["in", "nats://u:%zz@127.0.0.1/a", "CH"], "bad %-escape"),
    (["sideways", "CH", "nats://127.0.0.1/a"], "the direction is"),
    (["out", "CH", "nats://127.0.0.1/a", "--tls-cert", "c.pem"], "go together"),
    (["out", "CH", "nats://127.0.0.1/a", "--group", "g"], "--group is for a bridge in"),
    (["in", "nats://127.0.0.1/a", "CH", "--batch"], "--batch is for a bridge out"),
    (["out", "CH", "nats://127.0.0.1/a", "--batch", "--jetstream"], "--batch is for core NATS"),
])
def test_bad_command_lines(cli, args, why):
    r = run([cli, "bridge", *args])
    assert r.returncode == 2, r
    assert why in r.stderr.splitlines()[0], r.stderr


def test_no_such_channel(cli):
    r = run([cli, "bridge", "out", "brt-nosuch-channel", "nats://127.0.0.1:9/x"])
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "make it first" in r.stderr


def test_rpc_both_ways(servers, bridges, addr, cli):
    """rpc: local clients (C and Python) on one side, a Python server on the other; a request
    nobody answers, or the far side cannot, is refused at once (-EHOSTUNREACH)."""
    import errno
    import threading
    s = servers()
    ra, rb = addr("ra"), addr("rb")
    url = f"{s.url}/t.rpc"
    for a in (ra, rb):
        assert run([cli, "mk", "rpc", a, "--max-msg", "256"]).returncode == 0
    stop = threading.Event()

    def serve():
        with shmlink.RPC(rb, role="server") as srv:
            while not stop.is_set():
                try:
                    req = srv.recv(0.1)
                except TimeoutError:
                    continue
                srv.send(req.upper())

    t = threading.Thread(target=serve)
    t.start()
    try:
        into = bridges("in", url, rb)
        into.wait_for("serving requests from")
        out = bridges("out", ra, url, "--timeout", "2s")
        out.wait_for("forwarding requests to")
        r = run([cli, "send", ra, "hello", "world", "--timeout", "10"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["HELLO", "WORLD"]
        with shmlink.RPC(ra, role="client") as c:
            c.send(b"from python", timeout=5)
            assert c.recv(10) == b"FROM PYTHON"
            # The far side's server goes away: its bridge in answers with an error, and the
            # client here hears it at once.
            stop.set()
            t.join(10)
            c.send(b"anyone?", timeout=5)
            t0 = time.monotonic()
            with pytest.raises(OSError) as e:
                c.recv(10)
            assert e.value.errno == errno.EHOSTUNREACH and time.monotonic() - t0 < 8
            # No bridge in at all: no responders.
            assert into.stop() == 130
            c.send(b"nobody", timeout=5)
            with pytest.raises(OSError) as e:
                c.recv(10)
            assert e.value.errno == errno.EHOSTUNREACH
        out.wait_for("refusing requests: no responders on the subject")
        assert "refusing requests:" in out.text()
        doc = json.loads(run([cli, "info", ra, "--json"]).stdout)
        bridge = [e for e in doc["channel"]["endpoint_table"] if e["bridge"]][0]
        assert bridge["role_name"] == "server" and bridge["drops"] == 2
    finally:
        stop.set()
        t.join(10)


def test_latest_through_a_key_value_bucket(servers, bridges, addr, tmp, cli):
    """latest: the newest value goes into a key of a JetStream key-value bucket, and from it
    into the channel on the other side, typed; a reader there starts with the key's value."""
    s = servers("-js", "-sd", os.path.join(tmp, "js"))
    la, lb, other = addr("la"), addr("lb"), addr("lo")
    url = f"{s.url}/robot.pose"
    dt = np.dtype([("x", "<f8"), ("y", "<f8")])
    with shmlink.Latest(la, create=True, dtype=dt) as w, \
            shmlink.Latest(lb, create=True, dtype=dt, role="writer"), \
            shmlink.Latest(other, create=True, dtype="<f4", shape=(4,), role="writer"):
        out = bridges("out", la, url, "--bucket", "poses")
        out.wait_for("forwarding to key robot.pose of bucket poses")
        v = np.zeros((), dtype=dt)
        for i in range(5):
            v["x"], v["y"] = i, -i
            w.send_array(v)
        # The bucket keeps the newest: a bridge in started later begins with it (or sees the
        # last values arrive), and ends with the newest.
        into = bridges("in", url, lb, "--bucket", "poses")
        into.wait_for("forwarding from key robot.pose of bucket poses")
        with shmlink.Latest(lb, role="reader") as r:
            def newest_is(x, y):
                def check():
                    try:
                        got = r.recv_array(timeout=0.2)
                    except TimeoutError:
                        return False
                    assert got.dtype == dt
                    return (float(got["x"]), float(got["y"])) == (x, y)
                return check
            wait_until("the newest value", newest_is(4.0, -4.0), 15)
            v["x"], v["y"] = 9, 9
            w.send_array(v)
            wait_until("the next value", newest_is(9.0, 9.0), 15)
        # Another type on the other side: refused, counted.
        mismatch = bridges("in", url, other, "--bucket", "poses")
        mismatch.wait_for("dropping values of another type")
        assert mismatch.stop() == 130 and "0 forwarded, 1 dropped" in mismatch.text()


def test_latest_needs_jetstream(servers, bridges, addr, cli):
    s = servers()
    la = addr("nj")
    assert run([cli, "mk", "latest", la]).returncode == 0
    b = bridges("out", la, f"{s.url}/k")
    assert b.proc.wait(timeout=20) == 1
    assert "the server needs JetStream" in b.text(), b.text()
    r = run([cli, "bridge", "out", la, f"{s.url}/a.*"])
    assert r.returncode == 2  # a wildcard, for any bridge out
    r = run([cli, "bridge", "in", f"{s.url}/a.*", la])
    assert r.returncode == 1 and "key-value bucket" in r.stderr, r
    r = run([cli, "bridge", "in", f"{s.url}/k", la, "--bucket", "no.dots"])
    assert r.returncode == 1 and "key-value bucket" in r.stderr, r


def test_refused_channels(cli, addr):
    """What cannot be bridged is said in one line, exit status 1, before any connection."""
    rp = addr("rp")
    assert run([cli, "mk", "rpc", rp]).returncode == 0
    r = run([cli, "bridge", "in", "nats://127.0.0.1:9/x.*", rp])
    assert r.returncode == 1 and "an rpc bridge serves one subject" in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1
    r = run([cli, "bridge", "out", rp, "nats://127.0.0.1:9/x", "--batch"])
    assert r.returncode == 1 and "--batch is for queue and bus channels" in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1
