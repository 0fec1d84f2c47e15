"""The ``tessera`` entry point: the installed console script runs the app end to end."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

TESSERA = Path(sys.executable).parent / "tessera"
PLAIN_TERMINAL = {
    name: value
    for name, value in os.environ.items()
    if name not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
}


def tessera(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESSERA), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=PLAIN_TERMINAL,
    )


def test_installed_executable_generates_signs_verifies_and_refuses(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.jwk"

    generated = tessera("keys", "generate", "--alg", "ES256", "--out", str(key_file))
    assert generated.returncode == 0, generated.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    encoded = tessera(
        "token", "encode", "--key", str(key_file), "--claims", '{"sub": "ada"}', "--exp", "5m"
    )
    assert encoded.returncode == 0, encoded.stderr
    token = encoded.stdout.strip()

    verified = tessera(
        "token", "verify", "-", "--key", str(key_file), "--alg", "ES256", "--json", stdin=token
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["claims"]["sub"] == "ada"

    refused = tessera(
        "token", "verify", "-", "--key", str(key_file), "--alg", "ES256", "--iss", "x", stdin=token
    )
    assert refused.returncode == 1
    assert "missing_claim" in refused.stderr
    assert token.split(".")[2] not in refused.stdout + refused.stderr


def test_installed_executable_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    result = tessera("token", "encode", "--key", str(tmp_path / "missing.jwk"), "--claims", "{}")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == f"error: cannot read key file '{tmp_path / 'missing.jwk'}': No such file or directory"
    )


def test_installed_executable_shows_its_version_and_commands() -> None:
    version = tessera("--version")
    help_text = tessera("--help")

    assert version.returncode == 0
    assert version.stdout.startswith("tessera ")
    assert "keys" in help_text.stdout
    assert "token" in help_text.stdout
