"""Every source × every way an upstream misbehaves: the record is still served, on time, in words.

For each (source, fault) the source's connection is pointed at a local socket server that
misbehaves that way; the other three stay on the sandbox. The record must come back within
deadline × 1.10, with that source's problem said in plain words, never a 500, and every
worker free again within the deadline.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conftest import repo_of

SOURCES = {"portal": "loop", "processor": "stripe", "erp": "netsuite", "pos": "shopify_pos"}
JSON = b"Content-Type: application/json\r\n"


def _respond(status: str, body: bytes, headers: bytes = JSON) -> bytes:
    return (f"HTTP/1.1 {status}\r\n".encode() + headers
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def _huge(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + JSON + b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"1," * 32768
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(800):
        if stop.is_set():
            return
        conn.sendall(chunk)


def _drip(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + JSON + b"Content-Length: 100000\r\n\r\n{")
    while not stop.wait(0.05):
        conn.sendall(b" ")


def _blackhole(conn, stop):
    stop.wait(10)


FAULTS = {
    "blackhole": _blackhole,
    "drip": _drip,
    "500": lambda c, s: c.sendall(_respond("500 Internal Server Error", b'{"error": "boom"}')),
    "429": lambda c, s: c.sendall(_respond("429 Too Many Requests", b'{"error": "slow down"}',
                                           JSON + b"Retry-After: 1\r\n")),
    "malformed": lambda c, s: c.sendall(_respond("200 OK", b'{"data": [{"id": ')),
    "wrong shape": lambda c, s: c.sendall(_respond("200 OK", b'{"unexpected": [1, 2, 3]}')),
    "empty": lambda c, s: c.sendall(_respond("200 OK", b"")),
    "huge": _huge,
    "html": lambda c, s: c.sendall(_respond("200 OK", b"<html><body>Maintenance</body></html>",
                                            b"Content-Type: text/html\r\n")),
    "redirect": lambda c, s: c.sendall(_respond("302 Found", b"",
                                                b"Location: https://elsewhere.example/\r\n")),
}


class FaultServer:
    """Serves whichever fault is current, on 127.0.0.1."""

    def __init__(self):
        self.fault = FAULTS["500"]
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed: the module is done with it
                return
            threading.Thread(target=self._one, args=(conn, self.fault), daemon=True).start()

    def _one(self, conn, fault):
        try:
            conn.settimeout(2)
            conn.recv(65536)
            fault(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def fault_server():
    server = FaultServer()
    yield server
    server.close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens


@pytest.mark.parametrize("fault", ["refused", *FAULTS])
@pytest.mark.parametrize("source", list(SOURCES))
def test_a_misbehaving_source_never_breaks_the_record(app, client, fault_server, source,
                                                      fault):
    base = _refused_url() if fault == "refused" else fault_server.url
    fault_server.fault = FAULTS.get(fault, FAULTS["500"])
    with repo_of(app) as repo:
        tenant = repo.find("sandbox")
        stored = tenant.connections[source]
        repo.save_connection(tenant.id, source=source, system=stored.system, base_url=base,
                             credentials=stored.credentials, options=stored.options)
    deadline = app.config["FANOUT_DEADLINE_SECONDS"]
    t0 = time.monotonic()
    resp = client.get("/api/v1/orders/1002?installation=sandbox&refresh=1")
    took = time.monotonic() - t0
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert took <= deadline * 1.10 + 0.15, f"{source}/{fault} took {took:.2f} s"
    report = resp.get_json()["sources"][source]
    assert report["status"] in ("error", "timeout"), report
    said = report["error"] or ""
    assert said and "Traceback" not in said and "_schema" not in said, said
    others = [s for s in SOURCES if s != source]
    assert all(resp.get_json()["sources"][s]["status"] in ("ok", "not_found") for s in others)
    # Workers are free again within the deadline (a dripping or silent upstream holds none).
    fan = app.extensions["order_truth"].fanout
    until = time.monotonic() + deadline
    while fan.running and time.monotonic() < until:
        time.sleep(0.02)
    assert fan.running == 0, f"{source}/{fault}: {fan.running} workers still busy"
