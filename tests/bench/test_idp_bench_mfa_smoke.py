"""bench/idp_bench.py, the second factor: each loop really verifies fresh codes through
Tessera's services on SQLite and PostgreSQL (a refused code ends the loop with an error), and
the table reports what was measured. Correctness only: nothing here is a timing assertion."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..services import require_postgres
from .scripts import load_script

bench = load_script("idp_bench")


@pytest.mark.parametrize("mode", ["verify", "second step"])
@pytest.mark.parametrize("database", [bench.SQLITE, bench.POSTGRES])
def test_the_mfa_loop_verifies_fresh_codes_through_the_services(
    tmp_path: Path, mode: str, database: str
) -> None:
    if database == bench.POSTGRES:
        require_postgres()
    measured = bench.mfa_rate(mode, database, 0, tmp_path, cpu=None, threads=2, min_count=10)
    assert measured.count >= 10 and measured.threads == 2
    assert measured.rate > 0 and measured.cpu_micros > 0
    assert measured.database == database
    assert (measured.postgres_cpu is not None) == (database == bench.POSTGRES)


def test_the_table_compares_with_pyotp_and_judges_the_target(tmp_path: Path) -> None:
    pyotp_alone = bench.mfa_rate("pyotp", "—", 0, tmp_path, cpu=None, min_count=10)
    assert pyotp_alone.threads == 1 and pyotp_alone.count >= 10
    verified = bench.mfa_rate("verify", bench.SQLITE, 0, tmp_path, cpu=None, min_count=10)
    lines = bench.mfa_lines([pyotp_alone, verified])
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2
    assert rows[0].startswith("| pyotp") and "| 1× |" in rows[0]
    assert f"≥ {bench.TARGET_MFA}/s per core" in rows[1]
    assert rows[1].rstrip(" |").endswith(("met", "**missed**"))


def test_a_refused_code_ends_the_loop_with_an_error(tmp_path: Path) -> None:
    # A worker whose codes are always wrong: the loop must not count it as a verification.
    wrong = bench.MfaWorker(lambda at: "000000", lambda at: "", lambda at, code, _: False)
    with pytest.raises(SystemExit, match="a right code was refused"):
        bench._timed_batches({"mode": "verify", "seconds": 0, "min_count": 1}, 0, [wrong])
