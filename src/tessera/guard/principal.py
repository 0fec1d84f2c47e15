"""Who a verified token speaks for: subject, tenant, roles, scopes, client — and nothing implied.

A claim that is missing or of the wrong shape grants nothing: no ``scope`` means no scopes, a
``roles`` that is not a list of strings means no roles (least privilege).

>>> principal = Principal.from_claims({"sub": "ada", "scope": "orders:read orders:write",
...                                    "roles": ["admin"], "tenant": "acme", "azp": "web"})
>>> principal.sub, principal.tenant, sorted(principal.scopes), principal.client_id
('ada', 'acme', ['orders:read', 'orders:write'], 'web')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified identity behind a request; ``claims`` is the full, read-only claims set."""

    sub: str | None
    tenant: str | None
    roles: frozenset[str]
    scopes: frozenset[str]
    client_id: str | None
    claims: Mapping[str, Any] = field(compare=False, hash=False, repr=False)

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
    ) -> Principal:
        """Read a verified claims set: ``scope`` (RFC 8693, or ``scp``), roles, tenant, client.

        >>> sorted(Principal.from_claims({"sub": "svc", "scp": ["a", "b"]}).scopes)
        ['a', 'b']
        """
        return cls(
            sub=_text(claims.get("sub")),
            tenant=_text(claims.get(tenant_claim)),
            roles=_words(claims.get(roles_claim)),
            scopes=_words(claims["scope"] if "scope" in claims else claims.get("scp")),
            client_id=_text(claims.get("client_id")) or _text(claims.get("azp")),
            claims=MappingProxyType(dict(claims)),
        )

    @property
    def jti(self) -> str | None:
        """The token's ``jti``, if it has one.

        >>> Principal.from_claims({"jti": "t-1"}).jti
        't-1'
        """
        return _text(self.claims.get("jti"))


def _text(value: object) -> str | None:
    return value if type(value) is str and value else None


def _words(value: object) -> frozenset[str]:
    if type(value) is str:
        return frozenset(value.split())
    if type(value) is list and all(type(item) is str for item in value):
        return frozenset(value)
    return _EMPTY
