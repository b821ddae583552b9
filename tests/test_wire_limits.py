"""Upstreams that misbehave on the wire, served by a real local socket: huge and dripping answers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from plugin.connectors.base import (
    ApiClient,
    BadResponseError,
    ConnectorConfig,
    UpstreamTimeout,
)


class RawServer:
    """A one-behaviour HTTP server on 127.0.0.1: `behave(conn)` writes whatever it likes."""

    def __init__(self, behave):
        self.behave = behave
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.recv(65536)  # the request; its content doesn't matter here
            self.behave(conn, self.stopped)
        except OSError:
            pass  # the client hung up: that is the point of most of these
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


class Probe(ApiClient):
    system = "probe"

    def get(self):
        return self._request("GET", "/thing")


@pytest.fixture
def serve():
    servers = []

    def start(behave):
        server = RawServer(behave)
        servers.append(server)
        return Probe(ConnectorConfig(f"http://127.0.0.1:{server.port}", {}, read_timeout=5,
                                     max_body_bytes=1024 * 1024))

    yield start
    for server in servers:
        server.close()


def huge_chunked(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"1," * 32768
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(800):  # 50 MB if nobody stops reading
        if stopped.is_set():
            return
        conn.sendall(chunk)


def huge_declared(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 52428800\r\n\r\n[")
    stopped.wait(5)


def drip(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n[")
    for _ in range(999):
        if stopped.wait(0.05):
            return
        conn.sendall(b" ")


def test_a_huge_streamed_answer_is_refused_at_the_cap(serve):
    client = serve(huge_chunked)
    t0 = time.monotonic()
    with pytest.raises(BadResponseError, match="answer too large"):
        client.get()
    assert time.monotonic() - t0 < 2  # stopped at 1 MB, not after 50


def test_a_huge_declared_answer_is_refused_before_reading_it(serve):
    client = serve(huge_declared)
    with pytest.raises(BadResponseError, match=r"answer too large \(52,428,800 bytes"):
        client.get()


def test_a_dripping_answer_ends_at_the_deadline(serve):
    client = serve(drip)
    client.deadline_at = time.monotonic() + 0.5
    t0 = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="still arriving at the deadline"):
        client.get()
    assert time.monotonic() - t0 < 0.5 * 1.10 + 0.25


GEVENT_DRIP = r"""
from gevent import monkey
monkey.patch_all()
import socket, threading, time, sys
sys.path.insert(0, ".")
from plugin.connectors.base import ApiClient, ConnectorConfig, UpstreamTimeout

def serve(sock):
    conn, _ = sock.accept()
    conn.recv(65536)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 50:
        conn.sendall(bytes([byte]))  # the status line and headers, a byte at a time
        time.sleep(0.05)

sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(1)
threading.Thread(target=serve, args=(sock,), daemon=True).start()

class Probe(ApiClient):
    system = "probe"

client = Probe(ConnectorConfig(f"http://127.0.0.1:{sock.getsockname()[1]}", {}, read_timeout=5))
client.deadline_at = time.monotonic() + 0.5
t0 = time.monotonic()
try:
    client._request("GET", "/thing")
    print("ANSWERED")
except UpstreamTimeout as e:
    print(f"CUT {time.monotonic() - t0:.2f} {e}")
"""


def test_under_gevent_a_server_dripping_its_headers_is_cut_at_the_deadline(tmp_path):
    """Production's gevent workers: every read is in time, the whole never done."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "drip.py"
    script.write_text(GEVENT_DRIP)
    root = Path(__file__).resolve().parents[1]  # the repository
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert out.stdout.startswith("CUT "), out.stdout + out.stderr
    took = float(out.stdout.split()[1])
    assert took < 0.5 * 1.10 + 0.25, out.stdout
