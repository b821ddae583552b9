"""A production install may leave the sandbox package out: the app must not need it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = textwrap.dedent("""
    import json, sys
    sys.modules["plugin.sandbox"] = None  # as if the package were not installed
    from plugin.app import create_app

    app = create_app({
        "DATABASE_URL": "sqlite:///" + sys.argv[1],
        "SECRET_KEY": "probe",
        "ENCRYPTION_KEY": "pZb0Qm0c0s3W9rQyqgk2b2bKXw8Q0x6x4vH9k3mJ8nA=",
        "SANDBOX_ENABLED": False, "API_TOKEN": "probe-token",
        "LOOP_API_KEY": "loop-key", "LOOP_BASE_URL": "http://127.0.0.1:9/api/v1",
    })
    client = app.test_client()
    home = client.get("/")
    lookup = client.get("/api/v1/orders/1001",
                        headers={"Authorization": "Bearer probe-token"})
    loaded = sorted(m for m, mod in sys.modules.items()
                    if m.startswith("plugin.sandbox") and mod is not None)
    print(json.dumps({
        "home": [home.status_code, home.get_json()],
        "healthz": client.get("/healthz").status_code,
        "lookup": lookup.status_code,
        "sources": {k: v["status"] for k, v in lookup.get_json()["sources"].items()},
        "commands": sorted(app.cli.list_commands(None)),
        "loaded": loaded,
    }))
""")


def test_app_runs_with_the_sandbox_package_absent(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "prod.db")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["home"] == [200, {"service": "order-truth", "status": "ok"}]
    assert seen["healthz"] == 200
    assert seen["loaded"] == []
    assert "sandbox" not in seen["commands"]
    assert {"truth", "installations", "connectors"} <= set(seen["commands"])
    # The env-configured installation still answers (its upstream is unreachable here).
    assert seen["lookup"] == 200
    assert seen["sources"]["portal"] != "not_configured"
    assert seen["sources"]["processor"] == "not_configured"
