"""A person's own second factor: enrol a TOTP authenticator, confirm it, renew recovery codes,
remove it.

The caller is a logged-in user (``Authorization: Bearer <their access token>``) — or, for
enrolment only, someone whose login answered ``mfa_enrollment_required``: their ``mfa_token``
(purpose ``enrol``) in the form starts an enrolment, and confirming it finishes that login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..errors import OAuthError, invalid_grant, invalid_request
from ..provider import Provider
from ..services.audit import Context
from ..services.grants import MFA_OTP, token_response
from ..services.mfa import Enrolment
from ..services.refresh import Refused
from ..services.second_factor import (
    begin_enrolment,
    enrolment_challenge,
    factor_status,
    finish_enrolment,
    open_challenge,
    remove_factor,
    renew_recovery_codes,
    user_of_access_token,
)
from ..store.models import User
from . import browser
from .oauth import CLIENT_FIELDS, form_body, json_answer
from .requests import basic_credentials, context_of, single_valued_form

router = APIRouter(prefix="/auth/mfa", tags=["second factor"])

Bearer = Annotated[
    HTTPAuthorizationCredentials | None,
    Security(HTTPBearer(auto_error=False, description="the user's own access token")),
]


def _required(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise OAuthError("invalid_token", "send Authorization: Bearer <access token>", 401)
    return credentials.credentials


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body, or nothing when none was sent."""
    if not request.headers.get("content-type") and not await request.body():
        return {}
    return await single_valued_form(request)


def _as_user(
    provider: Provider,
    token: str,
    action: Callable[[Session, User], Any],
) -> Any:
    """Run ``action`` for the token's user in one transaction; a :class:`Refused` result is
    raised after the commit (the failed code stays audited and counted)."""
    with provider.database.session() as session:
        result = action(session, user_of_access_token(provider, session, token))
    if isinstance(result, Refused):
        raise invalid_grant(result.reason)
    return result


def _enrolment(enrolment: Enrolment) -> dict[str, str]:
    return {
        "otpauth_uri": enrolment.otpauth_uri,
        "secret": enrolment.secret,
        "qr_svg": enrolment.qr_svg,
    }


def _optional_body(**fields: str) -> dict[str, Any]:
    extra = form_body(**fields)
    extra["requestBody"]["required"] = False
    return extra


@router.get("", summary="Your second factor: enabled since when, recovery codes left")
async def status_endpoint(credentials: Bearer, request: Request) -> Response:
    token = _required(credentials)
    provider: Provider = request.app.state.provider
    answer = await run_in_threadpool(_as_user, provider, token, factor_status)
    return json_answer(answer)


@router.post(
    "/totp",
    summary="Start a TOTP enrolment: the otpauth:// URI, its secret and a QR code (SVG)",
    openapi_extra=_optional_body(
        mfa_token="instead of a Bearer token: the mfa_token of an mfa_enrollment_required answer"
    ),
)
async def start_endpoint(credentials: Bearer, request: Request) -> Response:
    provider: Provider = request.app.state.provider
    context = context_of(request)
    if credentials is not None:
        enrolment = await run_in_threadpool(
            _as_user,
            provider,
            credentials.credentials,
            lambda session, user: begin_enrolment(provider, session, user, context),
        )
    else:
        mfa_token = (await _form(request)).get("mfa_token")
        if not mfa_token:
            raise OAuthError("invalid_token", "send a Bearer access token or an mfa_token", 401)
        enrolment = await run_in_threadpool(_start_for_login, provider, mfa_token, context)
    return json_answer(_enrolment(enrolment))


def _start_for_login(provider: Provider, mfa_token: str, context: Context) -> Enrolment:
    with provider.database.session() as session:
        _, user = open_challenge(provider, session, mfa_token, purpose="enrol")
        return begin_enrolment(provider, session, user, context)


@router.post(
    "/totp/confirm",
    summary="Confirm the enrolment with a first code: the recovery codes (shown once)",
    openapi_extra=form_body(
        otp="a 6-digit code from the newly added authenticator",
        mfa_token="instead of a Bearer token: the enrolment's mfa_token; the answer is then the"
        " login's (tokens and recovery_codes; a login begun at /oauth2/token authenticates its"
        " client here as it would there)",
        **CLIENT_FIELDS,
    ),
)
async def confirm_endpoint(credentials: Bearer, request: Request) -> Response:
    form = await single_valued_form(request)
    otp = form.get("otp")
    if not otp:
        raise invalid_request("otp is required")
    provider: Provider = request.app.state.provider
    context = context_of(request)
    if credentials is not None:
        codes = await run_in_threadpool(
            _as_user,
            provider,
            credentials.credentials,
            lambda session, user: finish_enrolment(provider, session, user, otp, context),
        )
        return json_answer({"recovery_codes": codes})
    mfa_token = form.get("mfa_token")
    if not mfa_token:
        raise OAuthError("invalid_token", "send a Bearer access token or an mfa_token", 401)
    if enrolment_challenge(provider, mfa_token).via == "browser":
        answer = await run_in_threadpool(
            browser.second_step, provider, mfa_token, otp, None, context
        )
        refresh_token = answer.pop("refresh_token")
        return browser.with_cookies(json_answer(answer), provider, refresh_token)
    # A login begun at the token endpoint ends as it would there: the client authenticates.
    grant = {**form, "grant_type": MFA_OTP}
    basic = basic_credentials(request)
    answer = await run_in_threadpool(token_response, provider, grant, basic, context)
    return json_answer(answer)


@router.post(
    "/recovery-codes",
    summary="Replace your recovery codes (a current code required); the old ones stop working",
    openapi_extra=form_body(otp="a current 6-digit code"),
)
async def recovery_codes_endpoint(credentials: Bearer, request: Request) -> Response:
    token = _required(credentials)
    otp = (await single_valued_form(request)).get("otp")
    if not otp:
        raise invalid_request("otp is required")
    provider: Provider = request.app.state.provider
    context = context_of(request)
    codes = await run_in_threadpool(
        _as_user,
        provider,
        token,
        lambda session, user: renew_recovery_codes(provider, session, user, otp, context),
    )
    return json_answer({"recovery_codes": codes})


@router.post(
    "/totp/remove",
    summary="Remove your second factor (a current code, or a recovery code)",
    openapi_extra=form_body(otp="a current 6-digit code", recovery_code="or a recovery code"),
)
async def remove_endpoint(credentials: Bearer, request: Request) -> Response:
    token = _required(credentials)
    form = await single_valued_form(request)
    otp, recovery_code = form.get("otp"), form.get("recovery_code")
    provider: Provider = request.app.state.provider
    context = context_of(request)
    await run_in_threadpool(
        _as_user,
        provider,
        token,
        lambda session, user: remove_factor(
            provider, session, user, otp=otp, recovery_code=recovery_code, context=context
        ),
    )
    return json_answer({})
