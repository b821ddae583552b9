"""The bench scripts CI runs must at least start: their imports follow the code they measure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_script_starts(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_the_one_agent_bench_runs_to_its_figures():
    out = subprocess.run([sys.executable, str(BENCH / "fanout_latency.py"), "--runs", "1"],
                         capture_output=True, text=True, timeout=120, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr
    assert "ratio merged / slowest source" in out.stdout
