"""Every module of the package imports on its own, first, in a fresh interpreter: no import
cycle hides behind the order in which the test suite happens to import things (one did: the
route classes and the admin package imported each other)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "tessera").rglob("*.py")
    if "migrations" not in path.parts
)


def test_every_module_is_listed() -> None:
    assert {"tessera.jose", "tessera.idp.http.answers", "tessera.cli.main"} <= set(MODULES)


def _imports_first(module: str) -> str | None:
    imported = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    if imported.returncode == 0:
        return None
    return f"{module}: {imported.stderr.strip().splitlines()[-1]}"


@pytest.mark.slow
def test_every_module_imports_first() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [failure for failure in pool.map(_imports_first, MODULES) if failure]
    assert failures == []


def test_the_provider_loads_no_http_or_redis_client_it_does_not_use() -> None:
    """httpx (with the CLI libraries it pulls in) and redis cost the provider ~15 MB of its
    memory; they load when a JWKS fetcher, a back-channel logout or a Redis URL needs them."""
    probe = (
        "import sys, tessera.idp.http.app, tessera.guard\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'redis', 'rich'}))\n"
        "from tessera.guard import AsyncRemoteJwks, RemoteJwks\n"
        "print(RemoteJwks.__module__, AsyncRemoteJwks.__module__, 'httpx' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert ran.stdout.splitlines() == [
        "[]",
        "tessera.guard.remote tessera.guard.remote True",
    ]
