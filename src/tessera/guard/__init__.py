"""Put Tessera in front of any API: keys from JWKS, policy, revocation, framework adapters.

``tessera.guard`` imports ``tessera.jose`` and never ``tessera.idp``. The framework adapters live
in ``tessera.guard.starlette``, ``tessera.guard.fastapi`` and ``tessera.guard.flask``.

>>> from tessera import guard, jose
>>> key = jose.Key.generate("ES256")
>>> api = guard.Guard(keys=key.public(), issuer="https://id.example", audience="orders",
...                   algorithms=["ES256"])
>>> token = jose.jwt.encode({"sub": "ada", "iss": "https://id.example", "aud": "orders",
...                          "exp": 2**31, "roles": ["clerk"]}, key)
>>> api.authenticate(token, guard.rule(roles=["clerk", "admin"])).roles
frozenset({'clerk'})
"""

from typing import TYPE_CHECKING, Any

from .answer import Answer, answer
from .errors import (
    CsrfFailed,
    Forbidden,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    KeysUnavailable,
    MissingToken,
    RevocationUnavailable,
    TokenRefused,
    TokenRevoked,
    Unavailable,
)
from .guard import Guard
from .keysource import AsyncKeySource, JwksFile, KeySource, StaticKeys
from .policy import AUTHENTICATED, Rule, rule
from .principal import Principal
from .revocation import MemoryRevocationList, RevocationList, TokenStatus
from .transport import Transport, new_csrf_token

if TYPE_CHECKING:
    from .remote import AsyncRemoteJwks, RemoteJwks


def __getattr__(name: str) -> Any:
    # The JWKS fetchers bring httpx (~20 MB with what it imports): loaded when first named,
    # so a process that verifies with keys it holds (the identity provider) never pays.
    if name in ("AsyncRemoteJwks", "RemoteJwks"):
        from . import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUTHENTICATED",
    "Answer",
    "AsyncKeySource",
    "AsyncRemoteJwks",
    "CsrfFailed",
    "Forbidden",
    "Guard",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "JwksFile",
    "KeySource",
    "KeysUnavailable",
    "MemoryRevocationList",
    "MissingToken",
    "Principal",
    "RemoteJwks",
    "RevocationList",
    "RevocationUnavailable",
    "Rule",
    "StaticKeys",
    "TokenRefused",
    "TokenRevoked",
    "TokenStatus",
    "Transport",
    "Unavailable",
    "answer",
    "new_csrf_token",
    "rule",
]
