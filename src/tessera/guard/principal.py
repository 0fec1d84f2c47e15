"""Who a verified token speaks for: subject, tenant, roles, scopes, client — and nothing implied.

Every field has the type its annotation says, or the token is refused: ``sub`` is a non-empty
string (a token that names nobody authenticates nobody); ``tenant``, ``client_id``/``azp`` are
non-empty strings when present; ``scope`` is a space-separated string (RFC 8693 §4.2), ``scp`` a
string or a list of strings, the roles claim a list of strings. An ill-typed claim is a
``jose.ClaimError`` naming it — never a silent "grants nothing" that hides an issuer's bug.
A claim that is absent grants nothing: no ``scope`` means no scopes (least privilege).

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

from tessera import jose

_EMPTY: frozenset[str] = frozenset()
_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified identity behind a request; ``claims`` is the full, read-only claims set."""

    sub: str
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
        >>> Principal.from_claims({"sub": "svc", "roles": "admin"})
        Traceback (most recent call last):
        ...
        tessera.jose.errors.ClaimError: roles must be a list of strings
        """
        sub = claims.get("sub")
        if sub is None:
            raise jose.MissingClaim("required claim missing", "sub")
        if type(sub) is not str or not sub:
            raise jose.ClaimError("sub must be a non-empty string", "sub")
        scope = claims.get("scope", _ABSENT)
        if scope is not _ABSENT:
            if type(scope) is not str:
                raise jose.ClaimError("scope must be a space-separated string", "scope")
            scopes = frozenset(scope.split())
        else:
            scopes = _words(claims, "scp", allow_string=True)
        client_id, azp = _name(claims, "client_id"), _name(claims, "azp")
        return cls(
            sub=sub,
            tenant=_name(claims, tenant_claim),
            roles=_words(claims, roles_claim, allow_string=False),
            scopes=scopes,
            client_id=client_id if client_id is not None else azp,
            claims=MappingProxyType(dict(claims)),
        )

    @property
    def jti(self) -> str | None:
        """The token's ``jti``, if it has one (``tessera.jose`` checked it is a string).

        >>> Principal.from_claims({"sub": "ada", "jti": "t-1"}).jti
        't-1'
        """
        jti = self.claims.get("jti")
        return jti if type(jti) is str and jti else None


def _name(claims: Mapping[str, Any], claim: str) -> str | None:
    value = claims.get(claim, _ABSENT)
    if value is _ABSENT:
        return None
    if type(value) is not str or not value:
        raise jose.ClaimError(f"{claim} must be a non-empty string", claim)
    return value


def _words(claims: Mapping[str, Any], claim: str, *, allow_string: bool) -> frozenset[str]:
    value = claims.get(claim, _ABSENT)
    if value is _ABSENT:
        return _EMPTY
    if type(value) is list and all(type(item) is str for item in value):
        return frozenset(value)
    if allow_string and type(value) is str:
        return frozenset(value.split())
    kind = "a string or a list of strings" if allow_string else "a list of strings"
    raise jose.ClaimError(f"{claim} must be {kind}", claim)
