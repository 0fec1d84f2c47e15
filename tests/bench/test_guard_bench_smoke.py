"""bench/guard_bench.py: every variant answers correctly before anything is timed (no timing)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from .scripts import load_script

bench = load_script("guard_bench")


@pytest.mark.parametrize("variant", ["unguarded", "dependency", "guarded", "cached", "redis"])
def test_each_variant_answers_the_token_and_refuses_without_it(
    variant: str, tmp_path: Path
) -> None:
    token = bench._fixture(tmp_path)
    prefix = f"test:guard-bench:{uuid.uuid4().hex}:"
    app = bench.build_app(variant, tmp_path, prefix)
    try:
        with TestClient(app) as client:
            good = client.get("/orders", headers={"Authorization": f"Bearer {token}"})
            assert good.status_code == 200
            if variant in ("unguarded", "dependency"):
                assert good.json()["sub"] is None
            else:
                assert good.json()["sub"] == "ada"
                assert client.get("/orders").status_code == 401
    finally:
        revocation = getattr(app.state, "revocation", None)
        if revocation is not None:
            revocation.close()


def test_python_driver_counts_requests_against_a_real_server(tmp_path: Path) -> None:
    from tests.guard.servers import UvicornThread

    token = bench._fixture(tmp_path)
    server = UvicornThread(bench.build_app("cached", tmp_path, "unused:")).start()
    try:
        result = bench.drive(server.url + "/orders", token, seconds=0.3, connections=2)
    finally:
        server.stop()
    assert result["rps"] > 0 and result["p50_ms"] > 0


def test_table_reports_ratios_to_unguarded() -> None:
    results = {
        "unguarded": {"rps": 1000.0, "p50_ms": 1.0, "p50_1c_ms": 0.2},
        "guarded": {"rps": 800.0, "p50_ms": 1.2, "p50_1c_ms": 0.3},
        "cached": {"rps": 950.0, "p50_ms": 1.1, "p50_1c_ms": 0.21},
        "redis": {"rps": 940.0, "p50_ms": 1.1, "p50_1c_ms": 0.22},
    }
    table = bench.table(results, "python", 32, 3)
    assert "| guarded, ES256, no cache | 800 | 80% |" in table
    assert "+0.010 ms" in table
