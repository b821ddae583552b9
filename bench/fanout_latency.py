"""Cold merged-record time vs the slowest source, and vs asking the sources one by one.

Sandbox upstreams get per-request latency (portal 300 ms, processor 200 ms, ERP 100 ms,
POS 50 ms). Each figure is the median of --runs cold runs (no cache) measured in one process.
Target: merged / slowest source <= 1.15. Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugin.app import create_app  # noqa: E402
from plugin.connectors.registry import build_client  # noqa: E402
from plugin.core.model import OrderRef, SourceName  # noqa: E402
from plugin.core.reconcile import reconcile  # noqa: E402
from plugin.installations import Installations, connector_configs  # noqa: E402
from plugin.sandbox.faults import FaultSpec  # noqa: E402
from plugin.sandbox.seed import SANDBOX_KEY  # noqa: E402
from plugin.sandbox.server import SandboxServer  # noqa: E402

DELAYS_MS = {"portal": 300, "processor": 200, "erp": 100, "pos": 50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--order", default="1001", help="sandbox order (default: clean)")
    args = parser.parse_args()

    server = SandboxServer()
    server.start()
    for source, ms in DELAYS_MS.items():
        server.state.faults.set(source, FaultSpec(delay_ms=ms))
    tmp = tempfile.mkdtemp()
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "SOURCE_CACHE_SECONDS": 0,
                      "SANDBOX_URL": server.url, "FANOUT_DEADLINE_SECONDS": 10,
                      "SECRET_KEY": "bench"})
    service = app.extensions["order_truth"]
    order = OrderRef(args.order, f"#{args.order}")
    with app.app_context():
        with app.extensions["store"].session() as session:
            tenant = Installations(session, app.extensions["secret_box"]).find(SANDBOX_KEY)
        configs = connector_configs(tenant, app.config)

        def solo(source: SourceName) -> float:
            system, cfg = configs[source]
            client = build_client(system, cfg, service.session)
            t0 = time.perf_counter()
            client.fetch(order)
            return time.perf_counter() - t0

        def merged() -> float:
            t0 = time.perf_counter()
            truth = service.lookup(tenant, order, refresh=True)
            took = time.perf_counter() - t0
            bad = [s for s, r in truth.sources.items() if not r.status.answered]
            if bad:
                raise SystemExit(f"sources did not answer: {bad}")
            return took

        def sequential() -> float:
            from plugin.fanout import FanOut

            t0 = time.perf_counter()
            facts = {}
            for source in SourceName:
                system, cfg = configs[source]
                client = build_client(system, cfg, service.session)
                one = FanOut(1)
                asked = one.start(order, {source: (system, client)}, deadline=30)
                facts[source] = dict(asked.as_completed())[source]
                one.shutdown()
            from plugin.core.model import SourceResults

            reconcile(order, SourceResults(**{s.value: facts[s] for s in SourceName}),
                      datetime.now(UTC))
            return time.perf_counter() - t0

        merged()  # warm imports, pools and connections once; every measured run is cache-cold
        per_source = {s: statistics.median(solo(s) for _ in range(args.runs)) for s in SourceName}
        merged_s = statistics.median(merged() for _ in range(args.runs))
        seq_s = statistics.median(sequential() for _ in range(args.runs))

    server.stop()
    service.close()
    slowest_source, slowest = max(per_source.items(), key=lambda kv: kv[1])
    print(f"order #{args.order}, {args.runs} runs each, per-request latency "
          + ", ".join(f"{k} {v} ms" for k, v in DELAYS_MS.items()))
    for source, took in per_source.items():
        print(f"  source {source.value:<9} alone      {took * 1000:7.1f} ms")
    print(f"  merged record (parallel, cold) {merged_s * 1000:7.1f} ms")
    print(f"  sequential (one by one)        {seq_s * 1000:7.1f} ms")
    print(f"  ratio merged / slowest source ({slowest_source.value}) = {merged_s / slowest:.3f}"
          "  (target <= 1.15)")
    print(f"  ratio sequential / merged = {seq_s / merged_s:.2f}x")


if __name__ == "__main__":
    main()
