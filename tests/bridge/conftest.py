"""Fixtures for the bridge tests: real nats-server processes on 127.0.0.1 and free ports,
bridges (`shmlink bridge`) as subprocesses, unique channel addresses; every server, bridge and
channel a test starts or makes is stopped or removed at its end."""
import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

import shmlink

CLI = os.environ.get("SHML_CLI", "")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise TimeoutError(what)


class NatsServer:
    """One nats-server on 127.0.0.1. start() waits until it accepts connections."""

    def __init__(self, tmp, *args, port=None):
        self.port = port or free_port()
        self.args = list(args)
        self.log = os.path.join(tmp, f"nats-{self.port}.log")
        self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT)

        def accepting():
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {open(self.log).read()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until("nats-server to listen", accepting)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class Bridge:
    """A `shmlink bridge` subprocess; its stderr goes to a file read by lines()."""

    def __init__(self, tmp, *args):
        self.args = list(args)
        self.log = os.path.join(tmp, f"bridge-{uuid.uuid4().hex[:8]}.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([CLI, "bridge", *self.args], stdout=log,
                                         stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_for(self, needle, timeout=15.0):
        def seen():
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited {self.proc.returncode}: {self.text()}")
            return False

        wait_until(f"bridge to say {needle!r}", seen, timeout)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture
def cli():
    if not CLI or not os.access(CLI, os.X_OK):
        pytest.skip("the shmlink tool is not built (SHML_CLI unset)")
    return CLI


@pytest.fixture
def tmp(tmp_path):
    return str(tmp_path)


@pytest.fixture
def servers(tmp):
    """servers(*args) starts a nats-server; all are stopped at the end."""
    started = []

    def start(*args, port=None):
        s = NatsServer(tmp, *args, port=port).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def bridges(tmp, cli):
    """bridges(*args) starts `shmlink bridge ARGS`; all are stopped at the end."""
    started = []

    def start(*args):
        b = Bridge(tmp, *args)
        started.append(b)
        return b

    yield start
    for b in started:
        if b.proc.poll() is None:
            b.proc.kill()
        b.proc.wait(timeout=10)


@pytest.fixture
def addr():
    """A fresh POSIX address; whatever exists under it at the end is removed."""
    names = []

    def make(tag="b"):
        a = f"brt-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        names.append(a)
        return a

    yield make
    for a in names:
        try:
            shmlink.unlink(a)
        except FileNotFoundError:
            pass


def run(cmd, timeout=30, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def crc16(data):
    """The CRC-16 (XMODEM) that ends an NKey's encoding."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# NKey prefixes: the first base32 letter of a public key says what it is.
NKEY_OPERATOR, NKEY_ACCOUNT, NKEY_USER = 14 << 3, 0, 20 << 3


def nkey_pair(tmp, kind=NKEY_USER):
    """A NATS NKey made from an Ed25519 key by openssl: (seed, public key, the key's PEM file,
    with which sign() signs)."""
    pem = os.path.join(tmp, f"k-{uuid.uuid4().hex[:8]}.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", pem], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    pub = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    seed_prefix = 18 << 3
    raw = bytes([seed_prefix | (kind >> 5), (kind & 31) << 3]) + der[-32:]
    seed = base64.b32encode(raw + crc16(raw).to_bytes(2, "little")).decode().rstrip("=")
    raw = bytes([kind]) + pub[-32:]
    public = base64.b32encode(raw + crc16(raw).to_bytes(2, "little")).decode().rstrip("=")
    return seed, public, pem


def sign(pem, data):
    """Data's Ed25519 signature by the key in pem (openssl, which signs a file: one shot)."""
    path = pem + ".data"
    with open(path, "wb") as f:
        f.write(data)
    return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", path],
                          capture_output=True, check=True).stdout
