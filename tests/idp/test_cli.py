"""The provider's commands: ``tessera db upgrade``, ``tessera keys rotate|list`` in-process on
both databases, and ``tessera serve`` as a real process: first start, banner, the grant its curl
line describes, restart."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner, Result

from tessera import jose
from tessera.cli.main import app

from ..services import free_port

TESSERA = Path(sys.executable).parent / "tessera"
Invoke = Callable[..., Result]


@pytest.fixture
def environment(database_url: str, tmp_path: Path) -> dict[str, str | None]:
    """The settings a deployment passes: database, master key file, nothing else."""
    return {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_MASTER_KEY_FILE": str(tmp_path / "secrets" / "master.key"),
        "TESSERA_MASTER_KEY": None,
        "TESSERA_ISSUER": "https://id.example",
        "TESSERA_CONFIG": None,
        "COLUMNS": "200",
        "FORCE_COLOR": None,
    }


@pytest.fixture
def invoke(environment: dict[str, str | None]) -> Invoke:
    runner = CliRunner(env=environment)

    def run(*args: str, **env: str) -> Result:
        return runner.invoke(app, list(args), env=env or None)

    return run


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def key_list(invoke: Invoke) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(ok(invoke("keys", "list", "--json")).stdout)["keys"]
    return keys


@pytest.mark.unmigrated
def test_db_upgrade_migrates_and_is_idempotent(invoke: Invoke, database_url: str) -> None:
    first = ok(invoke("db", "upgrade"))
    assert first.stdout.strip() == f"database at head: {database_url}"
    again = ok(invoke("db", "upgrade", "--json"))
    assert json.loads(again.stdout) == {"upgraded": True, "database": database_url}
    engine = create_engine(database_url)
    try:
        assert {"signing_keys", "refresh_tokens", "alembic_version"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_keys_list_starts_with_one_active_key_and_a_private_master_key_file(
    invoke: Invoke, tmp_path: Path
) -> None:
    (key,) = key_list(invoke)
    assert (key["alg"], key["state"]) == ("ES256", "active")
    assert key["activates_at"] < key["retires_at"] < key["expires_at"]
    master_key = tmp_path / "secrets" / "master.key"
    assert stat.S_IMODE(master_key.stat().st_mode) == 0o600
    text = ok(invoke("keys", "list")).stdout
    assert key["kid"] in text and "active" in text


def test_keys_rotate_prepublishes_and_immediate_switches(invoke: Invoke) -> None:
    (original,) = key_list(invoke)

    rotated = ok(invoke("keys", "rotate"))
    kid = rotated.stdout.strip().removeprefix("new signing key ")
    states = {key["kid"]: key["state"] for key in key_list(invoke)}
    assert states == {original["kid"]: "active", kid: "next"}

    answer = json.loads(ok(invoke("keys", "rotate", "--immediate", "--json")).stdout)
    assert answer["rotated"] is True and answer["immediate"] is True
    states = {key["kid"]: key["state"] for key in key_list(invoke)}
    # the unused next key is replaced; the old key is retired but still published
    assert states == {answer["kid"]: "active", original["kid"]: "retired"}


def test_invalid_settings_are_a_clean_input_error(invoke: Invoke) -> None:
    result = invoke("keys", "list", "--json", TESSERA_ACCESS_TOKEN_TTL="5")
    assert result.exit_code == 2
    problem = json.loads(result.stdout)
    assert problem["code"] == "invalid_settings"
    assert "access_token_ttl" in problem["message"]
    text = invoke("db", "upgrade", TESSERA_ISSUER="ftp://id.example")
    assert text.exit_code == 2
    assert "invalid settings" in text.stderr and "Traceback" not in text.output


# ---------------------------------------------------------------------- tessera serve


class Server:
    """``tessera serve`` in a process of its own, its output in a file."""

    def __init__(
        self,
        directory: Path,
        port: int,
        name: str,
        *,
        args: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = directory / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        environment.update(
            TESSERA_DATABASE_URL=f"sqlite:///{directory / 'var' / 'tessera.db'}",
            TESSERA_MASTER_KEY_FILE=str(directory / "var" / "master.key"),
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
            COLUMNS="200",
            **(env or {}),
        )
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [str(TESSERA), "serve", *(args if args is not None else ("--port", str(port)))],
                cwd=directory,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"tessera serve exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/.well-known/jwks.json", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"tessera serve did not answer in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(timeout=5)
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    port = free_port()
    started: list[Server] = []

    def start(name: str, **options: Any) -> Server:
        server = Server(tmp_path, port, name, **options)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=5)


def client_credentials(base: str, client_id: str, secret: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def verify_at(base: str, token: str) -> dict[str, Any]:
    jwks = httpx.get(f"{base}/.well-known/jwks.json", timeout=10).json()
    return jose.Verifier(
        jose.KeySet.from_jwks(jwks),
        algorithms=["ES256"],
        issuer=base,
        audience=jose.ANY_AUDIENCE,
        typ="at+jwt",
    ).verify(token)


def test_serve_prints_credentials_once_and_its_curl_line_gets_a_token(
    serve: Callable[[str], Server], tmp_path: Path
) -> None:
    first = serve("first")
    banner = first.output()
    admin = re.search(r"admin login\s+(\S+) / (\S+)", banner)
    demo = re.search(r"demo client\s+(\S+) / (\S+)", banner)
    curl = re.search(r"curl -s -u (\S+):(\S+) -d grant_type=(\S+) (\S+)", banner)
    assert admin and demo and curl, banner
    assert f"on {first.base}" in banner
    assert (curl.group(1), curl.group(2)) == (demo.group(1), demo.group(2))
    assert curl.group(3) == "client_credentials"
    assert curl.group(4) == f"{first.base}/oauth2/token"
    assert stat.S_IMODE((tmp_path / "var" / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var" / "tessera.db").stat().st_mode) == 0o600

    # what the curl line does, done with httpx
    answer = client_credentials(first.base, curl.group(1), curl.group(2))
    assert answer["token_type"] == "Bearer"
    claims = verify_at(first.base, answer["access_token"])
    assert claims["client_id"] == demo.group(1)
    # and the admin credentials log in through the first-party web client
    login = httpx.post(
        f"{first.base}/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": "web",
            "username": admin.group(1),
            "password": admin.group(2),
        },
        timeout=10,
    )
    assert login.status_code == 200, login.text
    assert verify_at(first.base, login.json()["access_token"])["roles"] == ["admin", "member"]
    assert first.stop() in (0, -signal.SIGINT)

    second = serve("second")
    again = second.output()
    assert "credentials were printed at first start only" in again
    assert admin.group(2) not in again and demo.group(2) not in again
    assert "curl" not in again
    answer = client_credentials(second.base, demo.group(1), demo.group(2))
    assert verify_at(second.base, answer["access_token"])["client_id"] == demo.group(1)
    # the same signing key signs after the restart: the old JWKS still verifies new tokens
    assert (
        jose.jwt.decode_unverified(answer["access_token"])[0]["kid"]
        == (jose.jwt.decode_unverified(login.json()["access_token"])[0]["kid"])
    )
    second.stop()


def test_the_issuer_follows_tessera_port(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path, port, "env-port", args=(), env={"TESSERA_PORT": str(port)})
    try:
        server.wait_ready()
        base = f"http://127.0.0.1:{port}"
        discovery = httpx.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
        assert discovery["issuer"] == base
        assert discovery["jwks_uri"] == f"{base}/.well-known/jwks.json"
        banner = server.output()
        assert f"on {base}" in banner and ":8000" not in banner
        demo = re.search(r"demo client\s+(\S+) / (\S+)", banner)
        assert demo, banner
        token = client_credentials(base, demo.group(1), demo.group(2))["access_token"]
        assert verify_at(base, token)["iss"] == base
    finally:
        server.stop()


def test_an_explicit_issuer_that_is_not_where_the_server_listens_is_said_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {"TESSERA_PORT": str(port), "TESSERA_ISSUER": "https://id.example"}
    server = Server(tmp_path, port, "explicit", args=(), env=env)
    try:
        server.wait_ready()
        banner = server.output()
        assert "on https://id.example" in banner
        assert banner.count(f"listening on http://127.0.0.1:{port}") == 1
        discovery = httpx.get(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10
        ).json()
        assert discovery["issuer"] == "https://id.example"
    finally:
        server.stop()
