"""The admin REST API (``/admin/...``, OpenAPI tag ``admin``): tenants, users, roles, clients,
keys and the audit log, protected by the provider's own tokens through ``tessera.guard``.

Handlers parse, call a service on a worker thread, and render; every change is audited by the
service with the token's ``sub`` as actor. Refusals are RFC 9457 problems (``AdminError``) or
RFC 6750 answers (the guard's 401/403).

>>> from tessera.idp.config import Settings
>>> from tessera.idp.http.app import create_app
>>> app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
>>> "/admin/tenants/{tenant_id}/users" in app.openapi()["paths"]
True
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from ...provider import Provider
from ..answers import ProblemRoute
from ..problems import RESPONSES
from . import audit, clients, keys, roles, tenants, users
from .auth import AdminAuth
from .fields import json_media_type

router = APIRouter(
    route_class=ProblemRoute,
    prefix="/admin",
    tags=["admin"],
    responses=RESPONSES,
    dependencies=[Depends(json_media_type)],
)
for _part in (tenants, users, roles, clients, keys, audit):
    router.include_router(_part.router)


def install(app: FastAPI, provider: Provider) -> None:
    """Serve the admin API on ``app``: its routes, its guard, and RFC 6750 refusals."""
    auth = AdminAuth(provider)
    app.state.admin_auth = auth
    auth.guard.init_app(app)
    app.include_router(router)


__all__ = ["AdminAuth", "install", "router"]
