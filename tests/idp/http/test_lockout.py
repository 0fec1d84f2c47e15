"""Brute-force defence over HTTP: a throttled or locked account answers 429 with Retry-After and
the OAuth JSON body on /oauth2/token and /auth/login, the same for an unknown username; and two
server processes sharing one database count every guess once, in Redis or in the database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.idp.config import Settings
from tessera.idp.flows.bootstrap import DEFAULT_TENANT, bootstrap
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user, find_user_by_name
from tessera.idp.services.audit import Context
from tessera.jose import b64

from ...services import REDIS_URL, postgres_schema
from .checks import assert_no_store, assert_oauth_error
from .servers import BOTH_DATABASES, CHEAP_ARGON2, IdpServer, password_attempt, serving

PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3-but-wrong"
DURATION = 900
THROTTLED = {
    "error": "invalid_grant",
    "error_description": "too many failed attempts; try again later",
}


def assert_throttled(response: httpx.Response, longest: int) -> int:
    """A 429 OAuth error with a Retry-After of whole seconds (at most ``longest``); returns it."""
    assert_oauth_error(response, 429, "invalid_grant")
    assert response.json() == THROTTLED
    assert_no_store(response)
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= longest, retry_after
    return int(retry_after)


@pytest.fixture(params=BOTH_DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def locking_idp(database: str, tmp_path: Path) -> Iterator[IdpServer]:
    """A provider whose accounts lock at their third failure (no delays before)."""
    with serving(
        database,
        tmp_path,
        lockout_free_attempts=3,
        lockout_threshold=3,
        lockout_duration=DURATION,
        **CHEAP_ARGON2,
    ) as server:
        yield server


def test_a_locked_account_answers_429_with_retry_after_known_or_not(
    locking_idp: IdpServer,
) -> None:
    locking_idp.add_user("ada", PASSWORD)
    told: dict[str, tuple[object, ...]] = {}
    with locking_idp.client() as http:
        for username in ("ada", "nobody-by-this-name"):
            for _ in range(3):
                assert_oauth_error(password_attempt(http, username, WRONG), 400, "invalid_grant")
            for password in (WRONG, PASSWORD):  # even the right password
                refused = password_attempt(http, username, password)
                assert_throttled(refused, DURATION)
            told[username] = (refused.status_code, refused.json(), sorted(refused.headers.keys()))
    assert told["ada"] == told["nobody-by-this-name"]


def test_browser_login_answers_429_with_retry_after(locking_idp: IdpServer) -> None:
    locking_idp.add_user("grace", PASSWORD)
    with locking_idp.client() as http:
        for _ in range(3):
            failed = http.post("/auth/login", data={"username": "grace", "password": WRONG})
            assert_oauth_error(failed, 400, "invalid_grant")
        refused = http.post("/auth/login", data={"username": "grace", "password": PASSWORD})
    assert_throttled(refused, DURATION)
    assert refused.headers.get_list("set-cookie") == []


def test_growing_delays_answer_429_before_the_lock(database: str, tmp_path: Path) -> None:
    with serving(database, tmp_path, **CHEAP_ARGON2) as server, server.client() as http:
        server.add_user("ada", PASSWORD)
        settings = server.settings
        answers = []
        for _ in range(settings.lockout_threshold):
            answers.append(password_attempt(http, "ada", WRONG))
            if answers[-1].status_code == 429:
                break
    free = settings.lockout_free_attempts
    for answer in answers[:free]:  # the free failures answer as any wrong password
        assert_oauth_error(answer, 400, "invalid_grant")
    assert len(answers) > free
    assert_throttled(answers[-1], settings.lockout_max_delay)  # a delay, not the lock


# ---------------------------------------------------------------------- two server processes

RUN_NODE = """
import socket, sys
import uvicorn
listening = socket.socket(fileno=int(sys.argv[1]))
config = uvicorn.Config(
    "tessera.idp.http.asgi:app_factory", factory=True, log_level="warning", access_log=False
)
uvicorn.Server(config).run(sockets=[listening])
"""


@contextmanager
def nodes(environment: dict[str, str], logs: list[Path]) -> Iterator[list[str]]:
    """Separate server processes (uvicorn on the ASGI factory, settings from the environment),
    each on a socket bound here, started together; their URLs once all of them answer."""
    with ExitStack() as stack:
        urls = [stack.enter_context(_node(environment, log)) for log in logs]
        for url, log in zip(urls, logs, strict=True):
            _wait_for(url, log)
        yield urls


@contextmanager
def _node(environment: dict[str, str], log: Path) -> Iterator[str]:
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN_NODE, str(listening.fileno())],
            env=environment,
            pass_fds=(listening.fileno(),),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
        assert process.poll() is None, f"the node stopped:\n{log.read_text()}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        listening.close()


def _wait_for(url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"the node did not start:\n{log.read_text()}"
        try:
            if httpx.get(url + "/.well-known/openid-configuration", timeout=2).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


@contextmanager
def database_for(database: str, tmp_path: Path) -> Iterator[str]:
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.mark.parametrize("counted_in", ["redis", "database"])
def test_two_server_processes_count_every_guess_once(
    database: str, tmp_path: Path, redis_prefix: str, counted_in: str
) -> None:
    threshold = 5
    values: dict[str, Any] = {
        "issuer": "https://id.example",
        "master_key": b64.encode_str(bytes(range(32))),
        "master_key_file": str(tmp_path / "master.key"),
        "cookie_secure": False,
        "lockout_free_attempts": threshold,  # no delays: the guesses come back to back
        "lockout_threshold": threshold,
        **CHEAP_ARGON2,
    }
    if counted_in == "redis":
        values.update(
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix + "revocation:",
            throttle_prefix=redis_prefix + "throttle:",
        )
    with ExitStack() as stack:
        values["database_url"] = stack.enter_context(database_for(database, tmp_path))
        here = Provider(Settings(**values))
        stack.callback(here.close)
        here.start()
        bootstrap(here)
        with here.database.session() as session:
            create_user(
                session,
                here.passwords,
                tenant_id=DEFAULT_TENANT,
                username="ada",
                password=PASSWORD,
                roles=("member",),
            )
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith("TESSERA_")
        }
        environment.update(
            {f"TESSERA_{name.upper()}": str(value) for name, value in values.items()}
        )
        one, two = stack.enter_context(
            nodes(environment, [tmp_path / "one.log", tmp_path / "two.log"])
        )
        http = stack.enter_context(httpx.Client(timeout=10))

        for guess in range(threshold):  # alternately: three on one node, two on the other
            url = (one, two)[guess % 2]
            for username in ("ada", "nobody-by-this-name"):
                answer = password_attempt(http, username, WRONG, url=url)
                assert_oauth_error(answer, 400, "invalid_grant")
        for url in (one, two):  # locked, as both nodes see
            assert_throttled(password_attempt(http, "ada", PASSWORD, url=url), DURATION)
            assert_throttled(
                password_attempt(http, "nobody-by-this-name", WRONG, url=url), DURATION
            )

        with here.database.session() as session:
            ada = find_user_by_name(session, DEFAULT_TENANT, "ada")
            here.lockout.unlock(session, ada, context=Context(actor="test-admin"))
        for url in (one, two):
            answer = password_attempt(http, "ada", PASSWORD, url=url)
            assert answer.status_code == 200, answer.text
            assert answer.json()["access_token"]
