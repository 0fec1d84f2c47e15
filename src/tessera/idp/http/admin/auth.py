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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes

from tessera.guard import Forbidden, GuardError, Principal, answer
from tessera.guard.fastapi import FastAPIGuard, GuardHTTPException, Requirement, TokenScheme
from tessera.guard.starlette import route_of

from ...errors import not_found
from ...flows.bootstrap import ADMIN_AUDIENCE
from ...provider import Provider
from ...services.audit import Context
from ...services.rbac import SYSTEM_TENANT
from ...services.tenants import find_tenant
from ...store.models import ID_LENGTH
from ...threads import in_thread
from ..requests import context_of
from .fields import is_storable

REALM = "tessera-admin"
SYSTEM_PERMISSION = "admin:tenants"
# The OpenAPI face of the admin routes' security; the checking is the guard's.
SCHEME = TokenScheme(HTTPBearerModel(bearerFormat="JWT"), "tessera-admin")


def admin_guard(provider: Provider) -> FastAPIGuard:
    """The guard of the admin API for ``provider``: its tokens for ``tessera-admin``, revocation
    checked on every request (every admin route is sensitive)."""
    return FastAPIGuard(
        provider.guard(audience=ADMIN_AUDIENCE, realm=REALM, check_revocation="sensitive")
    )


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
        self._provider = provider
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
            if not is_storable(tenant_id, ID_LENGTH):
                raise not_found("tenant")
            await in_thread(self._tenant_exists, tenant_id)
            tenant = tenant_id
        context = context_of(request)
        return Admin(principal, tenant, Context(context.ip, context.user_agent, principal.sub))

    def _tenant_exists(self, tenant_id: str) -> None:
        # Once here for every tenant route, so no handler asks again.
        with self._provider.database.session(readonly=True) as session:
            find_tenant(session, tenant_id)

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
