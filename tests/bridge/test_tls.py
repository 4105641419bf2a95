"""`shmlink bridge` over TLS: a nats-server that requires TLS and a client certificate, with a
CA, server and client certificates made by openssl for the test; what a bridge without the
right certificates says."""
import os
import shutil
import subprocess

import pytest

import shmlink

from conftest import run


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d, name):
    """A CA (NAME-ca.pem) and, signed by it, a certificate and key for 127.0.0.1
    (NAME-server.pem/.key) and one for a client (NAME-client.pem/.key)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name} test CA", "-keyout", f"{name}-ca.key",
            "-out", f"{name}-ca.pem", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name} {who}",
                "-keyout", f"{name}-{who}.key", "-out", f"{name}-{who}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}-{who}.csr", "-CA", f"{name}-ca.pem",
                "-CAkey", f"{name}-ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", "san.cnf", "-out", f"{name}-{who}.pem", cwd=d)
    return lambda f: os.path.join(d, f"{name}-{f}")


@pytest.fixture
def pki(tmp):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    return make_pki(tmp, "good"), make_pki(tmp, "other")


def test_tls_with_client_certificates(servers, bridges, addr, tmp, pki, cli):
    good, other = pki
    s = servers("--tls", "--tlscert", good("server.pem"), "--tlskey", good("server.key"),
                "--tlscacert", good("ca.pem"), "--tlsverify")
    url = f"tls://127.0.0.1:{s.port}/secure.jobs"
    cert = ["--tls-ca", good("ca.pem"), "--tls-cert", good("client.pem"), "--tls-key",
            good("client.key")]
    a, b = addr("tla"), addr("tlb")
    with shmlink.Queue(a, create=True, max_msg=64), \
            shmlink.Queue(b, create=True, max_msg=64) as c:
        bridges("in", url, b, *cert).wait_for("forwarding from")
        bridges("out", a, url, *cert).wait_for("forwarding to")
        with shmlink.Queue(a, role="producer") as p:
            for i in range(50):
                p.send(b"%d" % i, timeout=10)
        assert [c.recv(10) for _ in range(50)] == [b"%d" % i for i in range(50)]

    # Without a client certificate, or trusting another CA: one line, exit status 1.
    q = addr("tlq")
    assert run([cli, "mk", "queue", q]).returncode == 0
    for args in (["--tls-ca", good("ca.pem")],
                 ["--tls-ca", other("ca.pem"), "--tls-cert", good("client.pem"), "--tls-key",
                  good("client.key")],
                 ["--tls-ca", good("ca.pem"), "--tls-cert", other("client.pem"), "--tls-key",
                  other("client.key")]):
        r = run([cli, "bridge", "out", q, url, *args], timeout=60)
        assert r.returncode == 1, (args, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot connect to" in lines[0], (args, r.stderr)
        if len(args) == 2:
            assert "client certificate" in lines[0], lines[0]
    # A certificate file that is not there is said before any connection.
    r = run([cli, "bridge", "out", q, url, "--tls-ca", os.path.join(tmp, "missing.pem")])
    assert r.returncode == 1 and "missing.pem" in r.stderr, r
