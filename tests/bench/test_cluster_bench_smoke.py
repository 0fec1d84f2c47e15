"""bench/cluster_bench.py: a run of a second per scenario, every answer checked, against one
node and two behind HAProxy (PostgreSQL, Redis, HAProxy and wrk are needed: without them this
fails). Correctness only — nothing here is a timing assertion."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ..services import require_postgres, require_redis
from .scripts import load_script

cluster_bench = load_script("cluster_bench")
bench = cluster_bench.bench

pytestmark = pytest.mark.slow


def test_each_scenario_runs_on_one_node_and_on_two_behind_the_balancer(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    out = tmp_path / "report.md"
    arguments = ["--duration", "1", "--warmup", "1", "--connections", "4", "--out", str(out)]
    status = cluster_bench.main(arguments)
    assert status == 0  # no wrong answer in any window
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    seen = Counter(tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows)
    setups = (cluster_bench.ONE, cluster_bench.TWO)
    expected = {(scenario, setup) for scenario in cluster_bench.SCENARIOS for setup in setups}
    assert set(seen) == expected and set(seen.values()) == {1}
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert float(cells[2].replace(",", "")) > 0 and cells[5] == "0", row
        assert cells[7].endswith("×**") == (cells[1] == cluster_bench.TWO), row


def test_the_report_puts_each_two_node_rate_over_the_one_node_rate() -> None:
    def measured(setup: str, ok: int) -> object:
        item = bench.Measured(bench.CC, setup, "wrk", ok, 1.0, 1, 2, Counter(), [])
        item.server_cpu = 90.0
        return item

    lines = cluster_bench.report(
        [measured(cluster_bench.ONE, 800), measured(cluster_bench.TWO, 1000)],
        {"a": (120.0, 130.0)},
        5.0,
    )
    two = next(line for line in lines if f"| {cluster_bench.TWO} |" in line)
    assert two.endswith("| 90 % | **1.25×** |")
    assert any("a VmRSS 120 MB (peak 130 MB)" in line for line in lines)
