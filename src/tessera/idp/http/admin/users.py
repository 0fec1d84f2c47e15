"""``/admin/tenants/{tenant_id}/users``: create, list, read and change users, set their roles,
unlock them and reset their second factor (``admin:users``).

Disabling a user ends every session they have (their refresh families are revoked and their
access tokens refused); locking holds until an admin unlocks. The services audit each change:
``user.updated`` for the email and password, ``user.locked``/``unlocked``/``disabled``/
``enabled`` for the status (disabling also writes the ``logout.all`` that ends the sessions).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...errors import not_found
from ...flows.revoke import withdraw_consent
from ...flows.user_status import change_status
from ...services import accounts, consents, mfa, rbac
from ...store.models import ID_LENGTH, NAME_LENGTH, UUID_LENGTH, User
from ..answers import ProblemRoute
from ..requests import provider_of
from .auth import Admin, tenant_admin
from .fields import Body, Email, Password, RoleNames, Username, is_storable, path_value

router = APIRouter(route_class=ProblemRoute)

UsersAdmin = Annotated[Admin, Depends(tenant_admin("admin:users"))]
Status = Literal["active", "locked", "disabled"]
MAX_PAGE = 200


class NewUser(Body):
    """A user to create (active); the password must pass the password policy."""

    username: Username
    password: Password
    email: Email | None = None
    roles: RoleNames = Field(default_factory=list)


class UserChange(Body):
    """What to change of a user; an empty ``email`` removes it. ``disabled`` ends every session
    of the user; ``locked`` holds until an admin sets ``active`` again (or unlocks)."""

    email: Email | None = None
    password: Password | None = None
    status: Status | None = None


class RoleAssignment(Body):
    """Exactly the roles a user is to hold (roles of the user's tenant)."""

    roles: RoleNames


class UserOut(BaseModel):
    """A user as an admin sees it (never a hash or a secret)."""

    id: str
    tenant: str
    username: str
    email: str | None
    status: str
    locked_until: int | None
    roles: list[str]
    mfa: bool
    created_at: int
    updated_at: int


class UserPage(BaseModel):
    """Users by username; ``next_cursor`` (for ``after``) is set while more may follow."""

    users: list[UserOut]
    next_cursor: str | None


class Roles(BaseModel):
    """The roles a user holds now."""

    roles: list[str]


def _user(session: Session, admin: Admin, user_id: str) -> User:
    return accounts.find_user(session, admin.tenant, path_value(user_id, "user", UUID_LENGTH))


@router.get("/tenants/{tenant_id}/users", response_model=UserPage, summary="List users")
def list_users(
    request: Request,
    admin: UsersAdmin,
    after: Annotated[str | None, Query(max_length=NAME_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        if after is not None and not is_storable(after, NAME_LENGTH):
            return {"users": [], "next_cursor": None}  # no username sorts after such a value
        page = accounts.list_users(session, admin.tenant, after=after, limit=limit)
        return {
            "users": [accounts.describe_user(session, user) for user in page],
            "next_cursor": page[-1].username_key if len(page) == limit else None,
        }


@router.post(
    "/tenants/{tenant_id}/users", status_code=201, response_model=UserOut, summary="Create a user"
)
def create_user(
    request: Request, response: Response, body: NewUser, admin: UsersAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = accounts.create_user(
            session,
            provider.passwords,
            tenant_id=admin.tenant,
            username=body.username,
            password=body.password,
            email=body.email,
            roles=body.roles,
            policy=provider.password_policy,
            held=admin.principal.scopes,
            context=admin.context,
        )
        made = accounts.describe_user(session, user)
    response.headers["Location"] = f"/admin/tenants/{admin.tenant}/users/{made['id']}"
    return made


@router.get("/tenants/{tenant_id}/users/{user_id}", response_model=UserOut, summary="Read a user")
def get_user(request: Request, user_id: str, admin: UsersAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        return accounts.describe_user(session, _user(session, admin, user_id))


@router.patch(
    "/tenants/{tenant_id}/users/{user_id}",
    response_model=UserOut,
    summary="Change a user's email, password or status (disabling ends every session)",
)
def update_user(
    request: Request, user_id: str, body: UserChange, admin: UsersAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = _user(session, admin, user_id)
        accounts.update_user(
            session,
            provider.passwords,
            user,
            email=body.email,
            password=body.password,
            policy=provider.password_policy,
            context=admin.context,
        )
        if body.status is not None:
            change_status(provider, session, user, body.status, context=admin.context)
        return accounts.describe_user(session, user)


@router.put(
    "/tenants/{tenant_id}/users/{user_id}/roles",
    response_model=Roles,
    summary="Set exactly the roles a user holds (their tokens carry it from the next refresh)",
)
def set_roles(
    request: Request, user_id: str, body: RoleAssignment, admin: UsersAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = _user(session, admin, user_id)
        return {
            "roles": list(
                rbac.set_roles(
                    session, user, body.roles, held=admin.principal.scopes, context=admin.context
                )
            )
        }


@router.post(
    "/tenants/{tenant_id}/users/{user_id}/unlock",
    response_model=UserOut,
    summary="Unlock a user: end their lock and forget their failed attempts",
)
def unlock_user(request: Request, user_id: str, admin: UsersAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = _user(session, admin, user_id)
        provider.lockout.unlock(session, user, context=admin.context)
        return accounts.describe_user(session, user)


@router.post(
    "/tenants/{tenant_id}/users/{user_id}/reset-mfa",
    response_model=UserOut,
    summary="Remove a user's second factor and recovery codes (they enrol again)",
)
def reset_mfa(request: Request, user_id: str, admin: UsersAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = _user(session, admin, user_id)
        mfa.reset_mfa(session, user, context=admin.context)
        return accounts.describe_user(session, user)


class ConsentOut(BaseModel):
    """What a user allowed a third-party client, and when."""

    client_id: str
    scope: list[str]
    granted_at: int


class ConsentList(BaseModel):
    """A user's consents, by client id."""

    consents: list[ConsentOut]


@router.get(
    "/tenants/{tenant_id}/users/{user_id}/consents",
    response_model=ConsentList,
    summary="What the user allowed third-party clients (asked once, remembered)",
)
def list_consents(request: Request, user_id: str, admin: UsersAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        user = _user(session, admin, user_id)
        return {
            "consents": [
                {
                    "client_id": consent.client_id,
                    "scope": consent.scope.split(),
                    "granted_at": consent.granted_at,
                }
                for consent in consents.consents_of(session, user.id)
            ]
        }


@router.delete(
    "/tenants/{tenant_id}/users/{user_id}/consents/{client_id}",
    status_code=204,
    summary="Withdraw a consent: the client's refresh tokens for the user die, the next "
    "sign-in asks again",
)
def delete_consent(request: Request, user_id: str, client_id: str, admin: UsersAdmin) -> Response:
    provider = provider_of(request)
    with provider.database.session() as session:
        user = _user(session, admin, user_id)
        client_id = path_value(client_id, "client", ID_LENGTH)
        if not withdraw_consent(provider, session, user, client_id, admin.context):
            raise not_found("consent")
    return Response(status_code=204)
