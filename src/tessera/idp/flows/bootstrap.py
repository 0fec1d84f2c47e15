"""First start: a default tenant, an admin, a demo client and a first-party web client.

What it creates is returned once (secrets in clear) for the operator; nothing stores it so.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..provider import Provider
from ..services.accounts import create_user
from ..services.audit import record
from ..services.clients import create_client
from ..services.rbac import SYSTEM_ADMIN, SYSTEM_TENANT, TENANT_ADMIN, create_role
from ..services.tenants import create_tenant
from ..store.models import Tenant

DEFAULT_TENANT = SYSTEM_TENANT
DEMO_CLIENT = "demo"
WEB_CLIENT = "web"
DEMO_AUDIENCE = "demo-api"
# The audience of the admin API: tokens for it are asked with resource=tessera-admin.
ADMIN_AUDIENCE = "tessera-admin"
DEMO_SCOPES = ("demo:read", "demo:write", "profile")


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    """The credentials made at first start, to be shown exactly once."""

    admin_username: str
    admin_password: str
    client_id: str
    client_secret: str


def bootstrap(provider: Provider) -> Bootstrapped | None:
    """Create the first tenant and its credentials if the database is empty; else ``None``.

    Nodes starting together on an empty database race here: one wins, the others get ``None``.
    """
    try:
        return _bootstrap(provider)
    except IntegrityError:
        return None


def _bootstrap(provider: Provider) -> Bootstrapped | None:
    with provider.database.session() as session:
        if session.scalar(select(Tenant.id).limit(1)) is not None:
            return None
        create_tenant(session, tenant_id=DEFAULT_TENANT, name="Default", now=int(time.time()))
        create_role(
            session,
            tenant_id=DEFAULT_TENANT,
            name="member",
            permissions=DEMO_SCOPES,
            description="uses the demo API",
        )
        password = secrets.token_urlsafe(18)
        create_user(
            session,
            provider.passwords,
            tenant_id=DEFAULT_TENANT,
            username="admin",
            password=password,
            roles=("admin", "member"),
            policy=provider.password_policy,
        )
        demo = create_client(
            session,
            provider.master,
            tenant_id=DEFAULT_TENANT,
            name="Demo service",
            grant_types=("client_credentials",),
            audience=(DEMO_AUDIENCE,),
            allowed_scopes=("demo:read", "demo:write"),
            default_scopes=("demo:read",),
            client_id=DEMO_CLIENT,
        )
        create_client(
            session,
            provider.master,
            tenant_id=DEFAULT_TENANT,
            name="First-party web app",
            grant_types=("password", "refresh_token"),
            audience=(DEMO_AUDIENCE, ADMIN_AUDIENCE),
            allowed_scopes=DEMO_SCOPES + TENANT_ADMIN + SYSTEM_ADMIN,
            default_scopes=("demo:read", "profile"),
            first_party=True,
            confidential=False,
            client_id=WEB_CLIENT,
        )
        record(
            session,
            "bootstrap",
            tenant_id=DEFAULT_TENANT,
            details={"admin": "admin", "clients": [DEMO_CLIENT, WEB_CLIENT]},
        )
    assert demo.secret is not None
    return Bootstrapped("admin", password, DEMO_CLIENT, demo.secret)
