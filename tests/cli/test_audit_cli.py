"""``tessera audit tail|export`` on SQLite and PostgreSQL: filters and times as people type them,
JSON Lines, files only their owner reads, clean refusals, nothing secret ever shown, and a real
``tail --follow`` process that sees a new row and ends cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from tessera.cli.main import app
from tessera.idp.config import Settings
from tessera.idp.flows.bootstrap import bootstrap
from tessera.idp.flows.grants import token_response
from tessera.idp.provider import Provider
from tessera.idp.services.audit import AuditQuery, Context, iter_events, record
from tessera.idp.store.database import Database

TESSERA = Path(sys.executable).parent / "tessera"
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
Run = Callable[..., Result]


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    migrated = Database(database_url)
    migrated.upgrade()
    yield migrated
    migrated.dispose()


@pytest.fixture
def environment(database_url: str) -> dict[str, str | None]:
    return {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_CONFIG": None,
        "TESSERA_MASTER_KEY": None,
        "COLUMNS": "200",
        "FORCE_COLOR": None,
    }


@pytest.fixture
def run(environment: dict[str, str | None]) -> Run:
    runner = CliRunner(env=environment)

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def add(database: Database, event: str = "user.created", **fields: Any) -> None:
    context = Context(
        ip=fields.pop("ip", "198.51.100.7"),
        user_agent=fields.pop("user_agent", None),
        actor=fields.pop("actor", None),
    )
    fields.setdefault("tenant_id", "acme")
    with database.session() as session:
        record(session, event, context=context, **fields)


def lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def seed(database: Database) -> None:
    for n in range(30):
        add(
            database,
            "login.failed" if n % 3 == 0 else "user.updated",
            tenant_id="acme" if n % 2 else "globex",
            at=T0 + n * 60,
            subject=f"user-{n % 4}",
            actor="root" if n % 5 == 0 else None,
            outcome="failure" if n % 3 == 0 else "success",
            details={"n": n},
        )


def numbers(events: list[dict[str, Any]]) -> list[int]:
    return [event["details"]["n"] for event in events]


def test_tail_shows_the_last_matches_oldest_first(run: Run, database: Database) -> None:
    seed(database)
    found = lines(ok(run("audit", "tail", "--tenant", "acme", "-n", "4", "--json")).stdout)
    assert numbers(found) == [23, 25, 27, 29]
    assert {event["tenant"] for event in found} == {"acme"}

    text = ok(run("audit", "tail", "--tenant", "acme", "--event", "login.*", "-n", "2")).stdout
    assert text.splitlines() == [
        "2027-01-15T08:21:00Z  acme  login.failed  failure  subject=user-1  ip=198.51.100.7"
        '  {"n":21}',
        "2027-01-15T08:27:00Z  acme  login.failed  failure  subject=user-3  ip=198.51.100.7"
        '  {"n":27}',
    ]
    (line,) = ok(run("audit", "tail", "--actor", "root", "-n", "1")).stdout.splitlines()
    assert line.startswith("2027-01-15T08:25:00Z  acme  user.updated  success  actor=root  ")


def test_tail_filters_and_times_as_people_type_them(run: Run, database: Database) -> None:
    seed(database)

    def tail(*filters: str) -> list[int]:
        return numbers(lines(ok(run("audit", "tail", "--json", "-n", "1000", *filters)).stdout))

    assert tail("--actor", "root") == [0, 5, 10, 15, 20, 25]
    assert tail("--subject", "user-2", "--outcome", "success") == [2, 10, 14, 22, 26]
    assert tail("--event", "login.failed", "--tenant", "globex") == [0, 6, 12, 18, 24]
    # RFC 3339 with any offset, epoch seconds; since inclusive, until exclusive
    assert tail("--since", "2027-01-15T08:25:00Z", "--until", str(T0 + 27 * 60)) == [25, 26]
    assert tail("--since", "2027-01-15T10:28:00+02:00") == [28, 29]
    # an age counts back from now: the seeded rows lie in the future
    assert tail("--until", "1d", "--since", "30d") == []
    add(database, "user.created", details={"n": 100})
    assert tail("--since", "1h", "--event", "user.created") == [100]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since", "yesterday"], "invalid time 'yesterday'"),
        (["--since", "2027-01-15T08:00:00"], "has no UTC offset"),
        (["--event", "mfa*"], "event must be a dotted name"),
        (["--tenant", "t" * 65], "tenant_id must be a text of 1 to 64 characters"),
        (["--since", "2027-01-02T00:00:00Z", "--until", "2027-01-01T00:00:00Z"], "since must"),
        (["--follow", "--until", "1h"], "cannot take --until"),
    ],
)
def test_bad_input_is_one_clean_line_and_exit_2(
    run: Run, database: Database, arguments: list[str], message: str
) -> None:
    result = run("audit", "tail", *arguments)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    as_json = run("audit", "tail", "--json", *arguments)
    assert as_json.exit_code == 2
    assert orjson.loads(as_json.stdout)["code"] in ("invalid", "invalid_input")


@pytest.mark.parametrize("count", ["0", "1001", "many"])
def test_tail_line_count_bounds(run: Run, database: Database, count: str) -> None:
    result = run("audit", "tail", "-n", count)
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.unmigrated
def test_an_unmigrated_database_is_a_clean_refusal(run: Run, database_url: str) -> None:
    result = run("audit", "export")
    assert result.exit_code == 1, result.output
    assert "cannot read the audit log" in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_export_to_stdout_is_every_match_as_json_lines(run: Run, database: Database) -> None:
    seed(database)
    result = ok(run("audit", "export", "--tenant", "acme"))
    exported = lines(result.stdout)
    assert exported == list(iter_events(database, AuditQuery(tenant_id="acme")))
    assert numbers(exported) == list(range(1, 30, 2))
    assert "exported 15 events" in result.stderr
    everything = lines(ok(run("audit", "export")).stdout)
    assert everything == list(iter_events(database, AuditQuery()))


def test_export_to_a_file_is_private_and_never_replaces_one_unasked(
    run: Run, database: Database, tmp_path: Path
) -> None:
    seed(database)
    target = tmp_path / "audit.jsonl"
    result = ok(run("audit", "export", "--event", "login.*", "--output", str(target)))
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    exported = lines(target.read_text())
    assert numbers(exported) == list(range(0, 30, 3))

    add(database, "login.failed", details={"n": 99})
    again = run("audit", "export", "--event", "login.*", "-o", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert lines(target.read_text()) == exported
    ok(run("audit", "export", "--event", "login.*", "-o", str(target), "--force"))
    assert numbers(lines(target.read_text())) == [*range(0, 30, 3), 99]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir() if "audit" in path.name) == [
        "audit.jsonl"
    ]
    missing = run("audit", "export", "-o", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert missing.exit_code == 2 and "cannot write" in missing.stderr


def test_what_a_client_sends_cannot_drive_the_terminal(run: Run, database: Database) -> None:
    agent = "evil\x1b[2J\u202e\x9b31m"
    add(database, "login.failed", user_agent=agent, subject="ada\x07", details={"n": 1})
    for arguments in (["audit", "tail"], ["audit", "tail", "--json"], ["audit", "export"]):
        output = ok(run(*arguments)).stdout
        assert not any(char in output for char in "\x1b\u202e\x9b\x07"), arguments
    (event,) = lines(ok(run("audit", "export")).stdout)
    assert (event["user_agent"], event["subject"]) == (agent, "ada\x07")  # the same JSON value
    (event,) = lines(ok(run("audit", "tail", "--json")).stdout)
    assert event["user_agent"] == agent


def test_the_log_shows_no_secret_after_real_grants(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url,
        issuer="https://id.example",
        master_key=SecretStr("A" * 43),
        master_key_file=tmp_path / "master.key",
    )
    provider = Provider(settings)
    provider.start()
    try:
        made = bootstrap(provider)
        assert made is not None
        context = Context(ip="192.0.2.1", user_agent="grants/1")
        issued = token_response(
            provider,
            {"grant_type": "client_credentials"},
            (made.client_id, made.client_secret),
            context,
        )
        login = token_response(
            provider,
            {
                "grant_type": "password",
                "client_id": "web",
                "username": made.admin_username,
                "password": made.admin_password,
            },
            None,
            context,
        )
        refreshed = token_response(
            provider,
            {
                "grant_type": "refresh_token",
                "client_id": "web",
                "refresh_token": login["refresh_token"],
            },
            None,
            context,
        )
        wrong = "a wrong password that must not be logged"
        with pytest.raises(Exception, match="invalid_grant"):
            token_response(
                provider,
                {
                    "grant_type": "password",
                    "client_id": "web",
                    "username": made.admin_username,
                    "password": wrong,
                },
                None,
                context,
            )
    finally:
        provider.close()
    secrets = [
        made.admin_password,
        made.client_secret,
        wrong,
        issued["access_token"],
        login["access_token"],
        login["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ]
    # no token either, nor a piece of one: signatures and refresh token bodies
    secrets += [token.rsplit(".", 1)[-1] for token in secrets if token.count(".") == 2]
    exported = ok(run("audit", "export")).stdout
    events = {event["event"] for event in lines(exported)}
    assert {"token.issued", "login.succeeded", "login.failed", "user.created"} <= events
    shown = exported + ok(run("audit", "tail", "-n", "1000")).stdout
    for secret in secrets:
        assert secret not in shown


# ---------------------------------------------------------------------- tail --follow


class Tail:
    """``tessera audit tail --follow`` in a process of its own; its lines come through a queue."""

    def __init__(self, environment: dict[str, str | None], *arguments: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")}
        env.update({key: value for key, value in environment.items() if value is not None})
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [str(TESSERA), "audit", "tail", "--follow", *arguments],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def next_event(self, timeout: float = 30) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line within {timeout} s; stderr: {self.stop_now()}")
        event: dict[str, Any] = orjson.loads(line)
        return event

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr

    def stop_now(self) -> str:
        self.process.kill()
        _, stderr = self.process.communicate(timeout=10)
        return stderr


def test_tail_follow_sees_a_new_row_and_ends_cleanly_on_ctrl_c(
    environment: dict[str, str | None], database: Database
) -> None:
    add(database, "login.failed", details={"n": 1})
    add(database, "login.failed", tenant_id="globex", details={"n": 2})
    tail = Tail(environment, "--tenant", "acme", "--interval", "0.1", "--json")
    try:
        assert tail.next_event()["details"] == {"n": 1}  # the last matches first
        add(database, "user.created", tenant_id="globex", details={"n": 3})
        add(database, "user.created", details={"n": 4})
        new = tail.next_event()
        assert (new["tenant"], new["details"]) == ("acme", {"n": 4})
        code, stderr = tail.interrupt()
    finally:
        if tail.process.poll() is None:
            tail.stop_now()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert tail.lines.empty()  # nothing else was shown: not globex's row, not a row twice
