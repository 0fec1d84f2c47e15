"""What ``tessera token inspect`` shows: a token's header and claims, decoded and NOT verified.

>>> from tessera import jose
>>> token = jose.jwt.encode({"sub": "ada"}, jose.Key.generate("HS256"))
>>> inspect_document(token, now=0)["verified"]
False
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tessera import jose

from .output import printable
from .times import TIME_CLAIMS, describe

WARNING = (
    "UNVERIFIED: decoded only. The signature, expiry, issuer and audience were NOT checked; "
    "do not trust or act on this content."
)


def inspect_document(token: str, *, now: float) -> dict[str, Any]:
    """The header, claims and readable times of ``token``, without verifying anything.

    Raises :class:`tessera.jose.InvalidToken` when the token cannot even be decoded.

    >>> from tessera import jose
    >>> token = jose.jwt.encode({"exp": 900}, jose.Key.generate("HS256"))
    >>> inspect_document(token, now=0)["times"]["exp"]["relative"]
    'in 15 min'
    """
    header, claims = jose.jwt.decode_unverified(token)
    times = {name: describe(name, claims[name], now=now) for name in TIME_CLAIMS if name in claims}
    return {
        "verified": False,
        "warning": WARNING,
        "header": header,
        "claims": claims,
        "times": times,
    }


def render(document: dict[str, Any], console: Console) -> None:
    """Show an inspected token: the UNVERIFIED warning first and last, then two tables.

    >>> from rich.console import Console
    >>> console = Console(width=100)
    >>> token = jose.jwt.encode({}, jose.Key.generate("HS256"))
    >>> with console.capture() as captured:
    ...     render(inspect_document(token, now=0), console)
    >>> "UNVERIFIED" in captured.get()
    True
    """
    banner = Panel(Text(WARNING, style="bold"), title="UNVERIFIED", style="bold red")
    console.print(
        Group(
            banner,
            _table("Header", document["header"], {}),
            _table("Claims", document["claims"], document["times"]),
            Text("UNVERIFIED: signature not checked", style="bold red"),
        )
    )


def _table(title: str, members: dict[str, Any], times: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, expand=False)
    table.add_column("name", style="bold")
    table.add_column("value", overflow="fold")
    if times:
        table.add_column("when")
    for name, value in members.items():
        cells = [Text(printable(name)), Text(printable(json.dumps(value, ensure_ascii=False)))]
        if times:
            cells.append(Text(_when(times.get(name))))
        table.add_row(*cells)
    return table


def _when(time: dict[str, Any] | None) -> str:
    if time is None:
        return ""
    if time["iso"] is None:
        return "not a valid time"
    return f"{time['iso']} ({time['relative']})"
