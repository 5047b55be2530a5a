"""`python -m bench --quick` works end to end: every target starts, is measured and stopped.

No figure is asserted (this machine is shared and slow): only that the harness runs, prints
its table, and ends with the issue's one line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"bench: edge/naive deliveries ratio \S+ at \d+ clients; p99 \S+ ms; "
    r"cpu/delivery \S+ us; \S+ KiB/conn"
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_bench_measures_every_target_and_ends_with_the_summary_line(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert SUMMARY.fullmatch(lines[-1]), lines[-1]
    rows = json.loads((tmp_path / "results.json").read_text())
    measured = {(r["scenario"], r["target"]) for r in rows if r["status"] == "ok"}
    for target in ("naive", "nats-ws"):
        assert {("fanout", target), ("latency", target), ("idle", target)} <= measured
    ok = {(r["scenario"], r["target"]): r for r in rows if r["status"] == "ok"}
    for scenario in ("fanout", "latency"):
        for target in ("naive", "nats-ws"):
            row = ok[(scenario, target)]
            assert row["deliveries_per_s"] > 0
            assert row["silent_clients"] == 0
    started = json.loads((tmp_path / "processes.json").read_text())
    assert {name for name, _ in started} >= {"broker", "load", "pub", "nats-ws"}
    still_running = [(name, pid) for name, pid in started if Path(f"/proc/{pid}").exists()]
    assert not still_running
