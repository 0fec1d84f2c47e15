"""Every module of the package imports on its own, first, in a fresh interpreter: no import
cycle hides behind the order in which the test suite happens to import things (one did: the
route classes and the admin package imported each other)."""

from __future__ import annotations

import subprocess
import sys
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


# The libraries the package is built on, loaded once by the interpreter that forks a child per
# module: a child then imports only Tessera's own modules, and the module under test first of
# them (what an import cycle among them depends on), at a tenth of a fresh interpreter's cost.
LIBRARIES = (
    "alembic",
    "argon2",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "fastapi",
    "flask",
    "httpx",
    "jinja2",
    "orjson",
    "prometheus_client",
    "psycopg",
    "pydantic_settings",
    "pyotp",
    "redis",
    "rich",
    "sqlalchemy.orm",
    "typer",
    "uvicorn",
)
FORKING = """
import os, sys
for library in sys.argv[1].split(","):
    __import__(library)
assert not [name for name in sys.modules if name.split(".")[0] == "tessera"]
failed = 0
for module in sys.argv[2].split(","):
    child = os.fork()
    if child == 0:
        try:
            __import__(module)
        except BaseException as error:
            print(f"{module}: {type(error).__name__}: {error}", flush=True)
            os._exit(1)
        os._exit(0)
    failed += os.waitpid(child, 0)[1] != 0
sys.exit(1 if failed else 0)
"""


@pytest.mark.slow
def test_every_module_imports_first() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", FORKING, ",".join(LIBRARIES), ",".join(MODULES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


def test_a_module_that_cannot_import_first_is_reported() -> None:
    """The check itself: a module that fails on import is named, with its error."""
    ran = subprocess.run(
        [sys.executable, "-c", FORKING, "orjson", "tessera.jose,tessera.no_such_module"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 1
    assert ran.stdout.startswith("tessera.no_such_module: ModuleNotFoundError")


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
