"""Each extra installs what it imports: the wheel, installed with one extra alone in a fresh
virtualenv, imports every module that extra promises (``tessera.jose`` with no extra at all).

The Makefile installs a lock file with everything, which hides a missing dependency; this test
does not. Versions are constrained by the same lock file, so what is tested is what ships.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "dev.lock"

# extra → the modules it promises to make importable (and, for the CLI, a command that runs)
PROMISES: dict[str, list[str]] = {
    "": ["tessera", "tessera.jose"],
    "guard": ["tessera.guard", "tessera.guard.remote", "tessera.guard.discovery"],
    "starlette": ["tessera.guard.starlette"],
    "fastapi": ["tessera.guard.fastapi", "tessera.guard.starlette"],
    "flask": ["tessera.guard.flask"],
    "redis": ["tessera.guard.revocation_redis"],
    "cli": ["tessera.cli.main"],
    "idp": ["tessera.idp.http.app", "tessera.idp.provider", "tessera.cli.main"],
    "postgres": ["psycopg"],
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(ROOT)),
        ],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("tessera-*.whl")
    return built


@pytest.mark.parametrize("extra", sorted(PROMISES), ids=lambda extra: extra or "no-extra")
def test_an_extra_alone_installs_what_its_modules_import(
    wheel: Path, tmp_path: Path, extra: str
) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    requirement = f"tessera[{extra}] @ {wheel.as_uri()}" if extra else f"tessera @ {wheel.as_uri()}"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            # No bytecode: compiling every installed library was most of this test's time.
            *("--disable-pip-version-check", "--no-compile", "--constraint", str(LOCK)),
            requirement,
        ],
        check=True,
        timeout=600,
    )
    imports = "; ".join(f"import {module}" for module in PROMISES[extra])
    checked = subprocess.run(
        [str(python), "-c", imports], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, f"tessera[{extra}]: {checked.stderr.strip()[-600:]}"
    if extra in ("cli", "idp"):
        helped = subprocess.run(
            [str(environment / "bin" / "tessera"), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert helped.returncode == 0 and "Usage" in helped.stdout, helped.stderr
