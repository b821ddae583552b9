"""A support floor against the app as the Procfile runs it: throughput, tails, single-flight, CPU.

Starts the simulated upstreams in their own process and gunicorn (`gunicorn -c
gunicorn.conf.py app:app`, two gevent workers) with Redis when one answers on --redis-url,
then drives agents from this process and prints one row per measure with its goal. Ratios
are measured in one run; the machine is shared and noisy, so read them as figures, not
verdicts. It asserts nothing.

    .venv/bin/python bench/floor.py            # the full table (about two minutes)
    .venv/bin/python bench/floor.py --quick    # shorter runs, same rows (CI)
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("portal", "processor", "erp", "pos")
# The simulated upstreams on gevent's WSGI server: it keeps connections alive, as the
# vendors' APIs do (werkzeug's development server closes every one).
UPSTREAMS = """
from gevent import monkey
monkey.patch_all()
import socket
from gevent.pywsgi import WSGIHandler, WSGIServer
from plugin.sandbox.state import SandboxState
from plugin.sandbox.upstreams import create_upstreams_app
class NoDelay(WSGIHandler):  # headers and body go out as written: no 40 ms delayed-ACK stall
    def __init__(self, sock, *args, **kwargs):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, *args, **kwargs)
server = WSGIServer(("127.0.0.1", 0), create_upstreams_app(SandboxState()), log=None,
                    handler_class=NoDelay)
server.start()
print(f"http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.3).ping())
    except Exception:
        return False


class Rig:
    """The upstreams process and the gunicorn app, and how to poke them."""

    def __init__(self, redis_url: str | None, deadline: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="ot-floor-"))
        self.up = subprocess.Popen([sys.executable, "-c", UPSTREAMS], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        assert self.up.stdout is not None
        self.upstreams = self.up.stdout.readline().strip()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.deadline = deadline
        env = {**os.environ, "PORT": str(port),
               "ORDER_TRUTH_DATABASE_URL": f"sqlite:///{self.tmp / 'floor.db'}",
               "ORDER_TRUTH_SANDBOX_URL": self.upstreams,
               "ORDER_TRUTH_FANOUT_DEADLINE_SECONDS": str(deadline),
               "ORDER_TRUTH_SOURCE_CACHE_SECONDS": "300"}
        if redis_url:
            env["ORDER_TRUTH_REDIS_URL"] = redis_url
            env["ORDER_TRUTH_CACHE_KEY_PREFIX"] = f"ot-floor-{port}:"
        self.log = (self.tmp / "gunicorn.log").open("w")
        self.app = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app",
             "--access-logfile", "/dev/null"], cwd=ROOT, env=env, stdout=self.log,
            stderr=subprocess.STDOUT)
        for _ in range(150):
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok and len(self.workers()) >= 1:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"the app did not start; see {self.log.name}")
        time.sleep(1.0)  # let every worker boot

    def close(self) -> None:
        for proc in (self.app, self.up):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.app.pid)], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> list[float]:
        peaks = []
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
        return peaks

    def latency(self, ms: dict[str, int]) -> None:
        body = {s: ({"delay_ms": ms[s]} if ms.get(s) else None) for s in SOURCES}
        requests.post(f"{self.upstreams}/_sandbox/faults", json=body, timeout=5).raise_for_status()

    def calls(self) -> Counter[str]:
        got = requests.get(f"{self.upstreams}/_sandbox/stats", timeout=5).json()["requests"]
        return Counter(got)


def lookup(session: requests.Session, rig: Rig, order: str, **params: str) -> tuple[float, int]:
    took, code, _ = timed_lookup(session, rig, order, **params)
    return took, code


def timed_lookup(session: requests.Session, rig: Rig, order: str,
                 **params: str) -> tuple[float, int, float]:
    """(seconds this client waited, HTTP status, seconds the app says it took)."""
    t0 = time.monotonic()
    resp = session.get(f"{rig.url}/api/v1/orders/{order}",
                       params={"installation": "sandbox", **params}, timeout=30)
    took = time.monotonic() - t0
    match = re.search(r"app;dur=([0-9.]+)", resp.headers.get("Server-Timing", ""))
    return took, resp.status_code, float(match.group(1)) / 1000 if match else float("nan")


def floor(rig: Rig, agents: int, seconds: float) -> dict[str, float]:
    """`agents` each looking up a new order after the last answer, for `seconds`."""
    lat: list[float] = []
    app_lat: list[float] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop = time.monotonic() + seconds
    prefix = str(int(time.time() * 1000) % 10**6)

    def agent(_: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                with lock:
                    n = next(counter)
                took, code, app_took = timed_lookup(s, rig, f"9{prefix}{n:06d}")
                with lock:
                    lat.append(took)
                    app_lat.append(app_took)
                    codes[code] += 1

    t0 = time.monotonic()
    with ThreadPoolExecutor(agents) as pool:
        list(pool.map(agent, range(agents)))
    wall = time.monotonic() - t0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {"rate": codes[200] / wall, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "max": lat[-1] if lat else float("nan"), "n": len(lat),
            "late": sum(1 for x in lat if x > rig.deadline * 1.10),
            "app_late": sum(1 for x in app_lat if x > rig.deadline * 1.10),
            "app_max": max(app_lat, default=float("nan")), "shed": codes[503],
            "other": sum(v for k, v in codes.items() if k not in (200, 503))}


def uncontended(rig: Rig, runs: int = 5) -> float:
    """One agent's cold lookup time (connectors chain some calls, so it exceeds one call)."""
    with requests.Session() as s:
        prefix = str(int(time.time() * 1000) % 10**6)
        return statistics.median(lookup(s, rig, f"8{prefix}{n:03d}")[0] for n in range(runs))


def single_flight(rig: Rig, agents: int = 50) -> float:
    """Upstream lookups per source when `agents` open one (uncached) order at once."""
    rig.latency({s: 300 for s in SOURCES})
    order = "1003"
    before = rig.calls()
    with ThreadPoolExecutor(agents) as pool:
        list(pool.map(lambda _: lookup(requests.Session(), rig, order), range(agents)))
    burst = rig.calls() - before
    before = rig.calls()
    lookup(requests.Session(), rig, order, refresh="1")  # exactly one lookup, for scale
    one = rig.calls() - before
    return max(burst[s] / one[s] for s in SOURCES if one[s])


def second_over_first(rig: Rig, orders: int) -> float:
    """The same order twice on fresh connections (either worker may answer each)."""
    rig.latency({s: 200 for s in SOURCES})
    ratios = []
    for n in range(orders):
        order = ("1001", "1002", "1004", "1005", "1006", "1007", "1008", "1009")[n % 8]
        first, _ = lookup(requests.Session(), rig, order, refresh="1")
        second, _ = lookup(requests.Session(), rig, order)
        ratios.append(second / first)
    return statistics.median(ratios)


def cpu_per_lookup(rig: Rig, count: int) -> tuple[float, float]:
    """App CPU (both workers, user+system) per cold and per cached lookup, in ms."""
    rig.latency({})
    with requests.Session() as s:
        lookup(s, rig, "1003")
        c0 = rig.cpu_seconds()
        for _ in range(count):
            lookup(s, rig, "1003", refresh="1")
        cold = (rig.cpu_seconds() - c0) / count * 1000
        c0 = rig.cpu_seconds()
        for _ in range(count):
            lookup(s, rig, "1003")
        cached = (rig.cpu_seconds() - c0) / count * 1000
    return cold, cached


def first_paint(rig: Rig, slow_ms: int) -> dict[str, float]:
    """The sidebar's streamed record with the ERP slow: when the frame and each part arrive."""
    rig.latency({"portal": 100, "processor": 100, "erp": slow_ms, "pos": 100})
    with requests.Session() as s:
        page = s.get(f"{rig.url}/sandbox/launch/103", timeout=10).text
        action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        sidebar = s.post(f"{rig.url}{action}", data={"token": token}, timeout=10).text
        bearer = re.search(r'data-session="([^"]+)"', sidebar).group(1)  # type: ignore[union-attr]
        stream = re.search(r'data-stream-url="([^"]+)"', sidebar).group(1)  # type: ignore[union-attr]
        t0 = time.monotonic()
        resp = s.get(f"{rig.url}{stream}", params={"ticket_id": "103", "order_id": "1003",
                                                   "refresh": "1"},
                     headers={"Authorization": f"Bearer {bearer}"}, stream=True, timeout=30)
        times: dict[str, float] = {}
        for line in resp.iter_lines():
            if not line:
                continue
            part = json.loads(line)
            times[part.get("source") or part["type"]] = time.monotonic() - t0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (CI)")
    parser.add_argument("--redis-url", default=os.environ.get("ORDER_TRUTH_BENCH_REDIS_URL",
                                                              "redis://127.0.0.1:6379/14"))
    parser.add_argument("--deadline", type=float, default=2.5)
    args = parser.parse_args()
    secs = 4.0 if args.quick else 12.0
    redis_url = args.redis_url if redis_up(args.redis_url) else None
    rig = Rig(redis_url, args.deadline)
    cores = os.cpu_count()
    print(f"app: gunicorn -c gunicorn.conf.py app:app ({len(rig.workers())} workers, gevent), "
          f"cache: {'Redis' if redis_url else 'in-process (no Redis reachable)'}, "
          f"upstreams: separate process, load: this process; {cores} cores; "
          f"deadline {args.deadline:g} s; {secs:g} s per load row")
    print("| measure | figure | goal |")
    print("|---|---|---|")
    try:
        for agents, ms, goal in ((32, 200, "≥ 80 %, p99 ≤ 2 × the slowest source"),
                                 (64, 1000, "≥ 80 %")):
            rig.latency({s: ms for s in SOURCES})
            floor(rig, 8, 1.0)  # warm up connections and code paths
            one = uncontended(rig)
            r = floor(rig, agents, max(secs, 2 * one + 2))
            bound, honest = agents / (ms / 1000), agents / one
            print(f"| {agents} agents, distinct orders, every upstream call {ms} ms (one "
                  f"uncontended lookup: {one * 1000:.0f} ms): throughput ÷ bound | "
                  f"{r['rate']:.0f}/s = {r['rate'] / bound:.0%} of {agents}÷{ms / 1000:g} s "
                  f"= {bound:.0f}/s; {r['rate'] / honest:.0%} of {agents}÷{one:.2f} s = "
                  f"{honest:.0f}/s (p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms "
                  f"= {r['p99'] / one:.2f} × one lookup) | {goal} |")
        rig.latency({s: 200 for s in SOURCES})
        r = floor(rig, 128, secs)
        print(f"| 128 agents, sources at 200 ms | {r['rate']:.0f}/s; p50 {r['p50'] * 1000:.0f} "
              f"/ p95 {r['p95'] * 1000:.0f} / p99 {r['p99'] * 1000:.0f} / max "
              f"{r['max'] * 1000:.0f} ms; past deadline × 1.10 ({args.deadline * 1.1:.2f} s): "
              f"{r['late']} of {r['n']} as this client saw them, {r['app_late']} as the app "
              f"timed them (its slowest {r['app_max'] * 1000:.0f} ms); {r['shed']} shed "
              f"(503) | none past deadline × 1.10 |")
        print(f"| 50 agents open one order at once: upstream lookups per source | "
              f"{single_flight(rig):.2f} | 1 |")
        print(f"| same order twice, {len(rig.workers())} workers: second ÷ first (median of "
              f"{4 if args.quick else 8}) | {second_over_first(rig, 4 if args.quick else 8):.3f}"
              f" | ≤ 0.05 |")
        cold, cached = cpu_per_lookup(rig, 20 if args.quick else 60)
        print(f"| app CPU per lookup (both workers, user+system) | cold {cold:.1f} ms, cached "
              f"{cached:.1f} ms | ≤ 6 ms cold |")
        t = first_paint(rig, 1500)
        parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.items()
                          if k not in ("start", "record"))
        print(f"| widget with the ERP at 1.5 s (others 100 ms): frame / sections / record | "
              f"frame {t.get('start', float('nan')) * 1000:.0f} ms; {parts}; record "
              f"{t.get('record', float('nan')) * 1000:.0f} ms | frame at once; each section "
              f"as it answers |")
        peaks = rig.peak_rss_mb()
        print(f"| peak RSS per worker | {', '.join(f'{p:.0f} MB' for p in peaks)} | — |")
    finally:
        rig.close()


if __name__ == "__main__":
    main()
