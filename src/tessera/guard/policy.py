"""What a route requires past a valid token: scopes (all of), roles (any of), tenant, predicate.

Least privilege by default: a ``Rule()`` that names nothing grants exactly "authenticated" and no
more; nothing is inferred from a missing claim, and a role never implies a scope. A rule's
``tenant`` names the route parameter whose value the token's tenant must equal.

>>> from tessera.guard.principal import Principal
>>> ada = Principal.from_claims({"sub": "ada", "scope": "orders:read", "tenant": "acme"})
>>> Rule(scopes=frozenset({"orders:read"}), tenant="tenant_id").check(ada, tenant="acme")
>>> Rule(scopes=frozenset({"orders:write"})).check(ada)
Traceback (most recent call last):
...
tessera.guard.errors.InsufficientScope: insufficient_scope
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import Forbidden, InsufficientScope
from .principal import Principal

Predicate = Callable[[Principal], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """A route's requirement. ``sensitive`` routes always check revocation and fail closed."""

    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    tenant: str | None = None
    predicate: Predicate | None = None
    sensitive: bool = False

    def check(self, principal: Principal, *, tenant: str | None = None) -> None:
        """Refuse ``principal`` unless it meets every part of this rule.

        >>> bob = Principal.from_claims({"sub": "bob", "tenant": "globex"})
        >>> Rule(tenant="tenant_id").check(bob, tenant="acme")
        Traceback (most recent call last):
        ...
        tessera.guard.errors.Forbidden: tenant_mismatch
        """
        if not self.scopes <= principal.scopes:
            raise InsufficientScope(self.scopes)
        if self.roles and self.roles.isdisjoint(principal.roles):
            raise Forbidden("insufficient_role")
        if self.tenant is not None and (
            tenant is None or principal.tenant is None or principal.tenant != tenant
        ):
            raise Forbidden("tenant_mismatch")
        if self.predicate is not None and not self.predicate(principal):
            raise Forbidden("forbidden")


def rule(
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tenant: str | None = None,
    predicate: Predicate | None = None,
    sensitive: bool = False,
) -> Rule:
    """Build a :class:`Rule` from any iterables of scope and role names.

    >>> rule(scopes=["a", "b"], roles=["admin"]).scopes == {"a", "b"}
    True
    """
    for names in (scopes, roles):
        if isinstance(names, str):
            raise TypeError("scopes and roles are lists of names, not one string")
    return Rule(frozenset(scopes), frozenset(roles), tenant, predicate, sensitive)


AUTHENTICATED = Rule()
