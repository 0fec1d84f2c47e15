"""First-party browser login: the access token in the body, the refresh token in an HttpOnly,
Secure, SameSite=Strict cookie scoped to ``/auth``, and a double-submit CSRF token.

A user with a second factor gets a 403 ``mfa_required`` with an ``mfa_token`` from
``/auth/login``, and the session from ``/auth/login/mfa`` once the code is right."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ..errors import OAuthError, invalid_grant, invalid_request
from ..flows.bootstrap import WEB_CLIENT
from ..flows.grants import mfa_login, password_login, refresh_with
from ..flows.mfa_challenge import MfaRequired
from ..flows.revoke import log_out_everywhere
from ..provider import Provider
from ..services.audit import Context, record
from ..services.clients import is_confidential
from ..services.refresh import Refused
from ..services.secrets import same
from ..store.models import ID_LENGTH, Client
from ..threads import in_thread
from .answers import EdgeRefusal, OAuthRoute, json_answer
from .oauth import form_body
from .requests import context_of, provider_of, single_valued_form

router = APIRouter(prefix="/auth", tags=["browser login"], route_class=OAuthRoute)

REFRESH_COOKIE = "tessera_refresh"
CSRF_COOKIE = "tessera_csrf"
CSRF_HEADER = "x-csrf-token"


def with_cookies(response: Response, provider: Provider, refresh_token: str) -> Response:
    """``response`` with the session cookie (the refresh token) and a fresh CSRF cookie."""
    secure = provider.settings.cookie_secure
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=provider.settings.refresh_idle_ttl,
        path="/auth",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        max_age=provider.settings.refresh_idle_ttl,
        path="/",
        secure=secure,
        httponly=False,
        samesite="strict",
    )
    return response


def _cleared(response: Response) -> Response:
    response.delete_cookie(REFRESH_COOKIE, path="/auth")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def _cookie_session(request: Request) -> str:
    """The refresh cookie, once the double-submit CSRF check has passed."""
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise EdgeRefusal("invalid_grant", "no session", 401)
    cookie, header = request.cookies.get(CSRF_COOKIE, ""), request.headers.get(CSRF_HEADER, "")
    if not cookie or not header or not same(cookie, header):
        raise EdgeRefusal("invalid_request", "CSRF token missing or wrong", 403)
    return refresh_token


def _web_client(session: Session, client_id: str) -> Client:
    client = session.get(Client, client_id) if len(client_id) <= ID_LENGTH else None
    # A browser holds no client secret nor key: only a public, first-party client that may use
    # the password grant logs people in here (confidential clients use /oauth2/token).
    if (
        client is None
        or not client.first_party
        or is_confidential(client)
        or "password" not in client.grant_types.split()
    ):
        raise OAuthError("unauthorized_client", "browser login is for public first-party clients")
    return client


@router.post(
    "/login",
    summary="Log in with username and password (first-party apps)",
    openapi_extra=form_body(
        username="username",
        password="password",
        client_id="first-party client (default: web)",
        scope="scopes",
    ),
)
async def login_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    form = await single_valued_form(request)
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise invalid_request("username and password are required")
    answer = await in_thread(
        _login,
        provider,
        form.get("client_id", WEB_CLIENT),
        username,
        password,
        form.get("scope"),
        context_of(request),
    )
    refresh_token = answer.pop("refresh_token")
    return with_cookies(json_answer(answer), provider, refresh_token)


def _login(
    provider: Provider,
    client_id: str,
    username: str,
    password: str,
    scope: str | None,
    context: Context,
) -> dict[str, Any]:
    with provider.database.session() as session:
        client = _web_client(session, client_id)
        result = password_login(
            provider, session, client, username, password, scope, None, context, via="browser"
        )
    return _answer(result)


def _answer(result: dict[str, Any] | Refused | MfaRequired) -> dict[str, Any]:
    """Raised after commit: a failure (or the password step of an MFA login) stays audited."""
    if isinstance(result, MfaRequired):
        raise result
    if isinstance(result, Refused):
        raise invalid_grant(result.reason)
    return result


@router.post(
    "/login/mfa",
    summary="Second step of a login: a TOTP code (or a recovery code) and the mfa_token",
    openapi_extra=form_body(
        mfa_token="the mfa_token of the 403 mfa_required (or mfa_enrollment_required) answer",
        otp="a 6-digit code from the authenticator",
        recovery_code="or one of the recovery codes (xxxxx-xxxxx), used once",
    ),
)
async def login_mfa_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    form = await single_valued_form(request)
    mfa_token = form.get("mfa_token")
    if not mfa_token:
        raise invalid_request("mfa_token is required")
    answer = await in_thread(
        second_step,
        provider,
        mfa_token,
        form.get("otp"),
        form.get("recovery_code"),
        context_of(request),
    )
    refresh_token = answer.pop("refresh_token")
    return with_cookies(json_answer(answer), provider, refresh_token)


def second_step(
    provider: Provider,
    mfa_token: str,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
) -> dict[str, Any]:
    """Finish a browser login begun at ``/auth/login`` (the token names its client)."""
    client_id = provider.challenges.open(mfa_token).client_id
    with provider.database.session() as session:
        client = _web_client(session, client_id)
        result = mfa_login(provider, session, client, mfa_token, otp, recovery_code, context)
    return _answer(result)


@router.post("/refresh", summary="Rotate the session cookie and get a new access token")
async def refresh_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    refresh_token = _cookie_session(request)
    answer = await in_thread(_refresh, provider, refresh_token, context_of(request))
    new_refresh = answer.pop("refresh_token")
    return with_cookies(json_answer(answer), provider, new_refresh)


def _refresh(provider: Provider, refresh_token: str, context: Context) -> dict[str, Any]:
    with provider.database.session() as session:
        found = provider.refresh.find(session, refresh_token)
        if found is None:
            result: dict[str, Any] | Refused = Refused("session invalid")
        else:
            client = _web_client(session, found[1].client_id)
            result = refresh_with(provider, session, client, refresh_token, None, context)
    if isinstance(result, Refused):
        raise EdgeRefusal("invalid_grant", result.reason, 401)
    return result


@router.post("/logout", summary="End this session: revoke its refresh family, clear cookies")
async def logout_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    refresh_token = _cookie_session(request)
    await in_thread(_logout, provider, refresh_token, context_of(request), False)
    return _cleared(json_answer({}))


@router.post("/logout-all", summary="End every session of this user and refuse their tokens")
async def logout_all_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    refresh_token = _cookie_session(request)
    await in_thread(_logout, provider, refresh_token, context_of(request), True)
    return _cleared(json_answer({}))


def _logout(provider: Provider, refresh_token: str, context: Context, everywhere: bool) -> None:
    with provider.database.session() as session:
        found = provider.refresh.find(session, refresh_token)
        if found is None:
            return
        _, family = found
        if everywhere:
            log_out_everywhere(provider, session, family.tenant_id, family.subject, context)
            return
        provider.refresh.revoke_family(session, family, "logout", int(time.time()))
        record(
            session,
            "logout",
            tenant_id=family.tenant_id,
            context=context,
            subject=family.subject,
            client_id=family.client_id,
            details={"family": family.id},
        )
