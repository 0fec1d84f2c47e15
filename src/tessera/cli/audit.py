"""``tessera audit tail|export``: read the audit log straight from the database (the same
``TESSERA_*`` settings as the server), filtered by tenant, subject, actor, event, outcome, time.

>>> parse_moment("2h", now=10_000), parse_moment("1970-01-01T01:00:00+01:00", now=0)
(2800, 0)
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from .errors import EXIT_INPUT, EXIT_REFUSED, InputError
from .output import fail, handled, note, printable
from .params import parse_duration
from .settings import load_settings, settings_errors

_AGE = re.compile(r"(?:\d+[smhdw])+")

app = typer.Typer(help="Read the audit log: tail it (and follow it), export it as JSON Lines.")

TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")]
SubjectOption = Annotated[str | None, typer.Option(help="Only events about this subject.")]
ActorOption = Annotated[str | None, typer.Option(help="Only events done by this actor.")]
EventOption = Annotated[
    str | None, typer.Option(help="Only this event, or a family such as 'mfa.*'.")
]
OutcomeOption = Annotated[str | None, typer.Option(help="Only this outcome (success, failure).")]
SinceOption = Annotated[
    str | None,
    typer.Option(
        metavar="TIME",
        help="From this time on: RFC 3339, epoch seconds, or an age such as 1h, 7d.",
    ),
]
UntilOption = Annotated[
    str | None, typer.Option(metavar="TIME", help="Before this time (same forms as --since).")
]


def parse_moment(text: str, *, now: float) -> int:
    """Epoch seconds from RFC 3339 (with an offset), epoch seconds, or an age (``1h``: an hour
    before ``now``).

    >>> parse_moment("1700000000", now=0), parse_moment("1d", now=86_400)
    (1700000000, 0)
    """
    if text.isascii() and text.isdigit():
        return int(text)
    if _AGE.fullmatch(text):
        return int(now) - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"invalid time {text!r}; expected RFC 3339 (2026-01-31T12:00:00Z), epoch seconds "
            "or an age such as 15m, 1h, 7d"
        ) from None
    if moment.tzinfo is None:
        raise InputError(f"time {text!r} has no UTC offset; add Z or +hh:mm")
    return int(moment.timestamp())


def _query(
    *,
    tenant: str | None,
    subject: str | None,
    actor: str | None,
    event: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    limit: int = 100,
) -> Any:
    from tessera.idp.services.audit import AuditQuery

    now = time.time()
    return AuditQuery(
        tenant_id=tenant,
        subject=subject,
        actor=actor,
        event=event,
        outcome=outcome,
        since=parse_moment(since, now=now) if since is not None else None,
        until=parse_moment(until, now=now) if until is not None else None,
        limit=limit,
    )


@contextmanager
def _reading(json_output: bool) -> Iterator[Any]:
    """The database of the settings; bad input and an unreadable database end the command."""
    from sqlalchemy.exc import SQLAlchemyError

    from tessera.idp.errors import AdminError
    from tessera.idp.store.database import Database

    with settings_errors(json_output):
        settings = load_settings()
    database = Database(settings.database_url, pool_size=1)
    try:
        with handled(json_output):
            yield database
    except AdminError as error:
        fail(
            {"code": error.code, "message": error.detail},
            f"error: {error.detail}",
            exit_code=EXIT_INPUT,
            json_output=json_output,
        )
    except SQLAlchemyError as error:
        # The driver's message may quote the URL; name the failure only.
        reason = type(getattr(error, "orig", None) or error).__name__
        fail(
            {"code": "database_error", "message": f"cannot read the audit log ({reason})"},
            f"error: cannot read the audit log ({reason}); is `tessera db upgrade` done?",
            exit_code=EXIT_REFUSED,
            json_output=json_output,
        )
    finally:
        database.dispose()


def render_line(event: dict[str, Any], *, json_output: bool) -> str:
    """One event as one line for a terminal: compact JSON, or text for people.

    >>> render_line({"time": "T", "tenant": "acme", "event": "user.created",
    ...     "outcome": "success", "actor": None, "subject": "u1", "details": {}},
    ...     json_output=False)
    'T  acme  user.created  success  subject=u1  {}'
    """
    if json_output:
        return printable(orjson.dumps(event).decode())
    parts = [event["time"], event["tenant"], event["event"], event["outcome"]]
    for name in ("actor", "subject", "client_id", "ip"):
        if event.get(name) is not None:
            parts.append(f"{name.removesuffix('_id')}={event[name]}")
    parts.append(orjson.dumps(event["details"]).decode())
    return printable("  ".join(parts))


@app.command()
def tail(
    tenant: TenantOption = None,
    subject: SubjectOption = None,
    actor: ActorOption = None,
    event: EventOption = None,
    outcome: OutcomeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    count: Annotated[
        int,
        typer.Option(
            "--lines",
            "-n",
            metavar="N",
            help="How many of the last matches to show.",
            min=1,
            max=1000,
        ),
    ] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep showing new matches until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="Seconds between polls with --follow.", min=0.05, max=3600
        ),
    ] = 1.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="JSON Lines: one event per line.")
    ] = False,
) -> None:
    """Show the last matches of the audit log, oldest first; with --follow, then new ones.

    Example: tessera audit tail --tenant acme --event 'login.*' --since 1h -n 50 --follow
    """
    from tessera.idp.services.audit import Follower

    with _reading(json_output) as database:
        if follow and until is not None:
            raise InputError("--follow shows new events: it cannot take --until")
        query = _query(
            tenant=tenant,
            subject=subject,
            actor=actor,
            event=event,
            outcome=outcome,
            since=since,
            until=until,
            limit=count,
        )
        follower = Follower(database, query)
        with _quiet_broken_pipe():
            for found in follower.latest(query.limit):
                typer.echo(render_line(found, json_output=json_output))
            if follow:
                _follow(follower, interval, json_output)


def _follow(follower: Any, interval: float, json_output: bool) -> None:
    try:
        while True:
            time.sleep(interval)
            for found in follower.poll():
                typer.echo(render_line(found, json_output=json_output))
    except KeyboardInterrupt:
        return  # Ctrl-C is how a follow ends: a clean exit


@app.command()
def export(
    tenant: TenantOption = None,
    subject: SubjectOption = None,
    actor: ActorOption = None,
    event: EventOption = None,
    outcome: OutcomeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="File to write, or - for stdout.")
    ] = "-",
    force: Annotated[
        bool, typer.Option("--force", help="Replace the output file if it exists.")
    ] = False,
) -> None:
    """Export every match as JSON Lines (one event per line), oldest first.

    A file is written beside its final name and renamed when complete, readable by its owner
    only (the log holds addresses and user names).

    Example: tessera audit export --tenant acme --since 30d -o acme-audit.jsonl
    """
    from tessera.idp.services.audit import export_jsonl

    with _reading(json_output=False) as database:
        query = _query(
            tenant=tenant,
            subject=subject,
            actor=actor,
            event=event,
            outcome=outcome,
            since=since,
            until=until,
        )
        if output == "-":
            with _quiet_broken_pipe():
                stream = sys.stdout.buffer
                count = export_jsonl(
                    database, query, lambda data: stream.write(_terminal_safe(data))
                )
                stream.flush()
        else:
            count = _export_to_file(
                Path(output), force, lambda out: export_jsonl(database, query, out)
            )
        note(f"exported {count} events" + ("" if output == "-" else f" to {output}"))


def _terminal_safe(lines: bytes) -> bytes:
    # Escaped inside JSON strings, the text stays the same JSON value.
    return printable(lines.decode()).encode()


def _export_to_file(path: Path, force: bool, write: Callable[[Any], int]) -> int:
    if path.exists() and not force:
        raise InputError(f"'{path}' already exists; use --force to replace it")
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            count = write(file)
            file.flush()
            os.fsync(file.fileno())
        if force:
            os.replace(partial, path)
        else:
            os.link(partial, path)  # refuses to replace a file made meanwhile
    except FileExistsError:
        raise InputError(f"'{path}' already exists; use --force to replace it") from None
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return count


@contextmanager
def _quiet_broken_pipe() -> Iterator[None]:
    """A reader that went away (``| head``) ends the output, not with a traceback."""
    try:
        yield
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
