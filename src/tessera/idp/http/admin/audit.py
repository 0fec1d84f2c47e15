"""``/admin/tenants/{tenant_id}/audit``: the tenant's audit log, filtered and paged, and its
export as JSON Lines (``admin:audit``); ``/admin/audit``: every tenant's and the system's rows
(key rotations, purges), for a super-admin. Filters combine with AND; bad values are a 422."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tessera.guard import InsufficientScope

from ...provider import Provider
from ...services import audit
from ...store.database import Database
from ...store.models import EVENT_LENGTH, ID_LENGTH, NAME_LENGTH
from ..answers import NO_STORE, ProblemRoute
from ..requests import provider_of
from .auth import SYSTEM_PERMISSION, Admin, AdminAuth, system_admin, tenant_admin
from .fields import Storable

router = APIRouter(route_class=ProblemRoute)

AuditAdmin = Annotated[Admin, Depends(tenant_admin("admin:audit"))]
# Lines sent per chunk of an export: one thread hop per chunk, not per event.
CHUNK = 500

Text = Annotated[str, Storable]
Subject = Annotated[
    Text | None, Query(max_length=NAME_LENGTH, description="the user or client acted on")
]
Actor = Annotated[
    Text | None, Query(max_length=NAME_LENGTH, description="who acted (a token's sub)")
]
Event = Annotated[
    Text | None, Query(max_length=EVENT_LENGTH, description="an event name, or a family: 'user.*'")
]
Outcome = Annotated[Text | None, Query(max_length=16, description="success or failure")]
Since = Annotated[int | None, Query(ge=0, description="from this time (epoch s, inclusive)")]
Until = Annotated[int | None, Query(ge=0, description="before this time (epoch s)")]
Cursor = Annotated[Text | None, Query(max_length=100, description="next_cursor of a page")]


class AuditEventOut(BaseModel):
    """One audit row (``time`` is ``at`` in RFC 3339 UTC)."""

    id: int
    at: int
    time: str
    tenant: str
    event: str
    outcome: str
    actor: str | None
    subject: str | None
    client_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    """Matches oldest first; ``next_cursor`` (for ``cursor``) is set while more follow."""

    events: list[AuditEventOut]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Filters:
    """The query string every audit route reads."""

    subject: Subject = None
    actor: Actor = None
    event: Event = None
    outcome: Outcome = None
    since: Since = None
    until: Until = None
    cursor: Cursor = None

    def query(self, tenant_id: str | None, limit: int = 100) -> audit.AuditQuery:
        """These filters for ``tenant_id`` (``None``: every tenant)."""
        return audit.AuditQuery(tenant_id=tenant_id, limit=limit, **asdict(self))


Filtered = Annotated[Filters, Depends()]
Limit = Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)]
SystemAuditAdmin = Annotated[Admin, Depends(system_admin("admin:audit"))]
AnyTenant = Annotated[
    Text | None,
    Query(max_length=ID_LENGTH, description="one tenant, or '*' for system events (default: all)"),
]


@router.get(
    "/tenants/{tenant_id}/audit", response_model=AuditPageOut, summary="Query the audit log"
)
def query_audit(
    request: Request,
    response: Response,
    admin: AuditAdmin,
    filters: Filtered,
    limit: Limit = 100,
) -> dict[str, Any]:
    provider = provider_of(request)
    page = _page(provider, filters.query(admin.tenant, limit))
    response.headers.update(NO_STORE)
    return {"events": page.events, "next_cursor": page.next_cursor}


@router.get(
    "/audit",
    response_model=AuditPageOut,
    summary="Query the audit log of every tenant and of the system (key rotations, purges)",
)
def query_all_audit(
    request: Request,
    response: Response,
    admin: SystemAuditAdmin,
    filters: Filtered,
    tenant: AnyTenant = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    provider = provider_of(request)
    _require_super_admin(request, admin)
    page = _page(provider, filters.query(tenant, limit))
    response.headers.update(NO_STORE)
    return {"events": page.events, "next_cursor": page.next_cursor}


def _require_super_admin(request: Request, admin: Admin) -> None:
    # Every tenant's log is the super-admin's: admin:audit of the system tenant is not enough.
    if SYSTEM_PERMISSION not in admin.principal.scopes:
        auth: AdminAuth = request.app.state.admin_auth
        auth.refuse(request, admin.principal, InsufficientScope(SYSTEM_PERMISSION))


def _page(provider: Provider, query: audit.AuditQuery) -> audit.AuditPage:
    with provider.database.session(readonly=True) as session:
        return audit.query_events(session, query)


@router.get(
    "/tenants/{tenant_id}/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    summary="Export the matching audit rows as JSON Lines",
)
async def export_audit(request: Request, admin: AuditAdmin, filters: Filtered) -> StreamingResponse:
    # Async: the rows stream from a generator Starlette iterates on its worker threads.
    provider = provider_of(request)
    return StreamingResponse(
        _lines(provider.database, filters.query(admin.tenant)),
        media_type="application/x-ndjson",
        headers=NO_STORE,
    )


def _lines(database: Database, query: audit.AuditQuery) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for event in audit.iter_events(database, query):
        chunk.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        if len(chunk) == CHUNK:
            yield b"".join(chunk)
            chunk.clear()
    if chunk:
        yield b"".join(chunk)
