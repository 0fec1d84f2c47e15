"""Shared helpers for the command-line tests: the real app, real keys, real files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tessera import jose
from tessera.cli.main import app

Invoke = Callable[..., Result]

# Output as a pipe sees it, whatever the CI machine sets: no forced colours, a fixed width.
PLAIN_TERMINAL: dict[str, str | None] = {
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "COLUMNS": "120",
}


@pytest.fixture
def invoke() -> Invoke:
    """Run ``tessera`` with these arguments (and optional stdin) in-process."""
    runner = CliRunner(env=PLAIN_TERMINAL)

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return run


@pytest.fixture
def es256_key() -> jose.Key:
    return jose.Key.generate("ES256")


@pytest.fixture
def key_file(tmp_path: Path, es256_key: jose.Key) -> Path:
    """A private ES256 JWK file."""
    path = tmp_path / "signing.jwk"
    path.write_text(jose.json.dumps(es256_key.to_jwk(private=True)).decode())
    return path


@pytest.fixture
def public_key_file(tmp_path: Path, es256_key: jose.Key) -> Path:
    """The public half of ``key_file``, as SPKI PEM."""
    path = tmp_path / "signing.pub.pem"
    path.write_bytes(es256_key.to_pem())
    return path


def _assert_clean_failure(result: Result, exit_code: int) -> None:
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def clean_failure() -> Callable[[Result, int], None]:
    """Check a failure: this exit code, nothing on stdout, one line on stderr, no traceback."""
    return _assert_clean_failure
