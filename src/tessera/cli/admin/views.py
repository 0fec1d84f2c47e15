"""What the admin commands print: one record as a two-column table, a list as a table, or, with
``--json``, the same data as one JSON document. A secret is printed once, clearly marked.

Every value passes through :func:`~tessera.cli.output.printable`: names and descriptions were
typed by other admins and may hold terminal escapes.

>>> cell("created_at", 0), cell("roles", ["admin", "member"]), cell("email", None)
('1970-01-01T00:00:00Z', 'admin member', '-')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..output import emit_json, note, printable, stdout

_TIMES = frozenset({"created_at", "updated_at", "locked_until"})


def cell(name: str, value: Any) -> str:
    """A value as people read it: times in ISO 8601 UTC, lists space-separated, ``-`` for none,
    a JWK Set by the ``kid`` of its keys (``--json`` shows the keys).

    >>> cell("mfa", True), cell("locked_until", None)
    ('yes', '-')
    >>> cell("jwks", {"keys": [{"kty": "OKP", "kid": "k1"}, {"kty": "EC", "kid": "k2"}]})
    'kid k1, kid k2'
    """
    if value is None:
        return "-"
    if isinstance(value, Mapping) and isinstance(value.get("keys"), list):
        return ", ".join(f"kid {key.get('kid', '?')}" for key in value["keys"]) or "no key"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and name in _TIMES:
        moment = datetime.fromtimestamp(value, UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return " ".join(str(item) for item in value)
    return str(value)


def show(title: str, document: Mapping[str, Any], *, json_output: bool) -> None:
    """Print one record: ``document`` as JSON, or a table of its fields under ``title``.

    >>> show("Tenant acme", {"id": "acme"}, json_output=True)
    {
      "id": "acme"
    }
    """
    if json_output:
        emit_json(document)
        return
    table = Table(title=printable(title), title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in document.items():
        table.add_row(Text(name), Text(printable(cell(name, value))))
    stdout().print(table)


def listing(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    json_output: bool,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Print a list: ``{name: rows, **extra}`` as JSON, or a table of ``columns``.

    >>> listing("tenants", [], ["id"], json_output=True)
    {
      "tenants": []
    }
    """
    if json_output:
        emit_json({name: list(rows), **(extra or {})})
        return
    if not rows:
        note(f"no {name}")
        return
    table = Table(show_header=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        # Ids are copied from here: never broken over two lines.
        widest = max(len(cell(column, row.get(column))) for row in rows) if column == "id" else 0
        table.add_column(column, overflow="fold", min_width=widest or None, no_wrap=widest > 0)
    for row in rows:
        table.add_row(*(Text(printable(cell(column, row.get(column)))) for column in columns))
    stdout().print(table)


def reveal(label: str, secret: str) -> None:
    """Print a secret on stdout for the one time it exists in clear, with a warning on stderr.

    >>> reveal("client secret", "s3cret")
    client secret (shown once): s3cret
    """
    typer.echo(f"{label} (shown once): {printable(secret)}")
    note(f"store the {label} now: Tessera keeps only a hash of it and cannot show it again")


def done(message: str) -> None:
    """Say on stderr what a change did (the record itself goes to stdout).

    >>> done("disabled ada")
    """
    note(message)
