"""What a page hands the browser to bring back: parameters sealed (AES-GCM under the master key)
for one purpose, with an expiry. The browser can neither read nor alter them, and a blob sealed
for one form opens in no other.

>>> from tessera.idp.services.secrets import MasterKey
>>> master = MasterKey(bytes(32))
>>> sealed = seal(master, "logout", {"state": "s"}, now=1_000, ttl=60)
>>> unseal(master, "logout", sealed, now=1_030)
{'state': 's'}
>>> unseal(master, "authorize", sealed, now=1_030) is None
True
>>> unseal(master, "logout", sealed, now=1_060) is None
True
"""

from __future__ import annotations

import json
from typing import Any

from tessera import jose

from .secrets import MasterKey, MasterKeyError

_AAD = "tessera sealed form v1:"


def seal(master: MasterKey, purpose: str, values: dict[str, Any], *, now: int, ttl: int) -> str:
    """``values`` (JSON-serialisable) sealed for ``purpose`` until ``now + ttl``."""
    blob = json.dumps({"v": values, "exp": now + ttl}).encode()
    return jose.b64.encode_str(master.seal(blob, aad=(_AAD + purpose).encode()))


def unseal(master: MasterKey, purpose: str, sealed: str, *, now: int) -> dict[str, Any] | None:
    """The values :func:`seal` sealed for ``purpose``, or ``None`` (altered, another purpose's,
    another master key's, or expired)."""
    try:
        opened = json.loads(master.unseal(jose.b64.decode(sealed), aad=(_AAD + purpose).encode()))
    except (MasterKeyError, jose.JoseError, ValueError):
        return None
    if not isinstance(opened, dict) or not isinstance(opened.get("v"), dict):
        return None
    if not isinstance(opened.get("exp"), int) or opened["exp"] <= now:
        return None
    values: dict[str, Any] = opened["v"]
    return values
