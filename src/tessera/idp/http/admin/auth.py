"""Who may call the admin API: bearer tokens of this provider, checked by ``tessera.guard``.

The guard verifies with the provider's own keyring (no HTTP call to itself; a rotation is seen at
once), for ``iss`` = the issuer, ``aud`` = ``tessera-admin``, ``typ`` = ``at+jwt``, and asks the
provider's database whether the token was revoked (admin routes are sensitive: every request).
Permissions are scopes: tenant routes (``/admin/tenants/{tenant_id}/...``) need the route's
permission and a token of that tenant — or of a system admin (the system tenant with
``admin:tenants``); system routes need a system permission and a token of the system tenant.

>>> from tessera.guard import Principal
>>> ada = Principal.from_claims({"sub": "ada", "tenant": "acme", "scope": "admin:users"})
>>> may_act_on(ada, "acme"), may_act_on(ada, "globex")
(True, False)
>>> root = Principal.from_claims({"sub": "root", "tenant": "default",
...                               "scope": "admin:users admin:tenants"})
>>> may_act_on(root, "globex")
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from tessera import jose
from tessera.guard import Forbidden, Guard, GuardError, Principal, RevocationUnavailable, answer
from tessera.guard.fastapi import FastAPIGuard, GuardHTTPException, Requirement, TokenScheme
from tessera.guard.starlette import route_of

from ...errors import not_found
from ...provider import Provider
from ...services.audit import Context
from ...services.bootstrap import ADMIN_AUDIENCE
from ...services.keyring import Keyring
from ...services.rbac import SYSTEM_TENANT
from ..requests import context_of
from .fields import is_storable

REALM = "tessera-admin"
SYSTEM_PERMISSION = "admin:tenants"
# The OpenAPI face of the admin routes' security; the checking is the guard's.
SCHEME = TokenScheme(HTTPBearerModel(bearerFormat="JWT"), "tessera-admin")
# An unknown kid makes the key source read the key table again at most this often.
RELOAD_COOLDOWN = 5.0


class KeyringKeys:
    """A guard key source over the provider's keyring: what ``/.well-known/jwks.json`` serves,
    read from memory, the same ``KeySet`` object until the keyring's JWK Set changes."""

    def __init__(self, keyring: Keyring, *, cooldown: float = RELOAD_COOLDOWN) -> None:
        self._keyring = keyring
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self._seen: tuple[dict[str, Any], jose.KeySet] | None = None
        self._reloaded_at = float("-inf")

    def get(self) -> jose.KeySet:
        """The keys the keyring publishes now."""
        jwks = self._keyring.jwks()
        seen = self._seen
        if seen is not None and seen[0] is jwks:
            return seen[1]
        keys = jose.KeySet.from_jwks(jwks)
        self._seen = (jwks, keys)
        return keys

    def refresh(self) -> jose.KeySet:
        """Read the key table again (another node may have rotated), at most once a cooldown."""
        with self._lock:
            if time.monotonic() - self._reloaded_at >= self._cooldown:
                self._reloaded_at = time.monotonic()
                self._keyring.reload()
        return self.get()

    def peek(self) -> jose.KeySet:
        """The keys: the keyring keeps them in memory."""
        return self.get()


class ProviderRevocations:
    """The guard's revocation check against the provider's database (blocklist, not-before).

    Async, so the database is read on a worker thread; an unreachable database is
    ``RevocationUnavailable``, which the guard answers with 503 on sensitive routes.
    """

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    async def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the token is neither on the blocklist nor before its subject's not-before."""
        return not await run_in_threadpool(self._revoked, dict(claims))

    def _revoked(self, claims: dict[str, Any]) -> bool:
        provider = self._provider
        try:
            with provider.database.session(readonly=True) as session:
                return provider.revocations.is_revoked(session, claims)
        except SQLAlchemyError:
            raise RevocationUnavailable() from None


def admin_guard(provider: Provider) -> FastAPIGuard:
    """The guard of the admin API for ``provider``."""
    settings = provider.settings
    guard = Guard(
        keys=KeyringKeys(provider.keyring),
        issuer=settings.issuer,
        audience=ADMIN_AUDIENCE,
        algorithms=[settings.signing_alg],
        typ="at+jwt",
        require=("exp", "iat", "sub"),
        revocation=ProviderRevocations(provider),
        check_revocation="sensitive",
        realm=REALM,
    )
    return FastAPIGuard(guard)


@dataclass(frozen=True, slots=True)
class Admin:
    """An authorized admin request: the token's principal, the tenant acted on, and the
    audit context (the token's ``sub`` as actor, the client's address and user agent)."""

    principal: Principal
    tenant: str
    context: Context


def may_act_on(principal: Principal, tenant_id: str) -> bool:
    """Whether ``principal`` may act on ``tenant_id``: its own tenant, or as a system admin."""
    if principal.tenant == tenant_id:
        return True
    return principal.tenant == SYSTEM_TENANT and SYSTEM_PERMISSION in principal.scopes


class AdminAuth:
    """The guard and the requirement every admin route runs (kept in ``app.state``)."""

    def __init__(self, provider: Provider) -> None:
        self.guard = admin_guard(provider)
        # Without scopes of its own, require() is one Requirement; each route names its scope.
        requirement = self.guard.require(sensitive=True)
        assert isinstance(requirement, Requirement)
        self._requirement = requirement

    async def authorize(self, request: Request, permission: str, tenant_id: str | None) -> Admin:
        """Authenticate the request for ``permission``; with ``tenant_id``, for that tenant,
        without ``tenant_id`` for the system tenant only."""
        principal = await self._requirement.authenticate(request, SecurityScopes([permission]))
        if tenant_id is None:
            if principal.tenant != SYSTEM_TENANT:
                self.refuse(request, principal, Forbidden("tenant_mismatch"))
            tenant = SYSTEM_TENANT
        else:
            if not may_act_on(principal, tenant_id):
                self.refuse(request, principal, Forbidden("tenant_mismatch"))
            if not is_storable(tenant_id, 64):
                raise not_found("tenant")
            tenant = tenant_id
        context = context_of(request)
        return Admin(principal, tenant, Context(context.ip, context.user_agent, principal.sub))

    def refuse(self, request: Request, principal: Principal, error: GuardError) -> None:
        """Log the refusal as the guard does and answer it per RFC 6750."""
        guard = self.guard.guard
        guard.record(error, principal=principal, route=route_of(request))
        raise GuardHTTPException(error, answer(error, realm=guard.realm))


AdminDependency = Callable[..., Awaitable[Admin]]


def tenant_admin(permission: str) -> AdminDependency:
    """A dependency for ``/admin/tenants/{tenant_id}/...``: ``permission`` on that tenant."""

    async def dependency(
        request: Request,
        tenant_id: str,
        _scheme: None = Security(SCHEME, scopes=[permission]),
    ) -> Admin:
        auth: AdminAuth = request.app.state.admin_auth
        return await auth.authorize(request, permission, tenant_id)

    return dependency


def system_admin(permission: str) -> AdminDependency:
    """A dependency for system routes: ``permission`` and a token of the system tenant."""

    async def dependency(
        request: Request, _scheme: None = Security(SCHEME, scopes=[permission])
    ) -> Admin:
        auth: AdminAuth = request.app.state.admin_auth
        return await auth.authorize(request, permission, None)

    return dependency
