"""A person's own second factor: enrol a TOTP authenticator, confirm it, renew recovery codes,
remove it.

The caller is a logged-in user (``Authorization: Bearer <their access token>``) — or, for
enrolment only, someone whose login answered ``mfa_enrollment_required``: their ``mfa_token``
(purpose ``enrol``) in the form starts an enrolment, and confirming it finishes that login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tessera.guard import GuardError, Principal, answer
from tessera.guard.fastapi import GuardHTTPException

from ..errors import invalid_grant, invalid_request
from ..flows.grants import MFA_OTP, token_response
from ..flows.mfa_challenge import open_challenge
from ..flows.mfa_enrolment import (
    begin_enrolment,
    enrolment_challenge,
    factor_status,
    finish_enrolment,
    remove_factor,
    renew_recovery_codes,
    user_of,
)
from ..provider import Provider
from ..services.audit import Context
from ..services.mfa import Enrolment
from ..services.refresh import Refused
from ..store.models import User
from ..threads import in_thread
from . import browser
from .answers import OAuthRoute, json_answer
from .oauth import CLIENT_FIELDS, form_body
from .people import REALM, MaybePerson, Person, install_guard, no_credentials
from .requests import basic_credentials, context_of, provider_of, single_valued_form

router = APIRouter(prefix="/auth/mfa", tags=["second factor"], route_class=OAuthRoute)


def install(app: FastAPI, provider: Provider) -> None:
    """Serve the self-service routes on ``app`` with their guard."""
    install_guard(app, provider)
    app.include_router(router)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body, or nothing when none was sent."""
    if not request.headers.get("content-type") and not await request.body():
        return {}
    return await single_valued_form(request)


def _as_user(
    provider: Provider,
    principal: Principal,
    action: Callable[[Session, User], Any],
) -> Any:
    """Run ``action`` for the principal's user in one transaction; a :class:`Refused` result
    is raised after the commit (the failed code stays audited and counted)."""
    with provider.database.session() as session:
        try:
            user = user_of(session, principal)
        except GuardError as refusal:  # a token the guard took, refused for these routes
            raise GuardHTTPException(refusal, answer(refusal, realm=REALM)) from None
        result = action(session, user)
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
async def status_endpoint(principal: Person, request: Request) -> Response:
    provider = provider_of(request)
    answer = await in_thread(_as_user, provider, principal, factor_status)
    return json_answer(answer)


@router.post(
    "/totp",
    summary="Start a TOTP enrolment: the otpauth:// URI, its secret and a QR code (SVG)",
    openapi_extra=_optional_body(
        mfa_token="instead of a Bearer token: the mfa_token of an mfa_enrollment_required answer"
    ),
)
async def start_endpoint(principal: MaybePerson, request: Request) -> Response:
    provider = provider_of(request)
    context = context_of(request)
    if principal is not None:
        enrolment = await in_thread(
            _as_user,
            provider,
            principal,
            lambda session, user: begin_enrolment(provider, session, user, context),
        )
    else:
        mfa_token = (await _form(request)).get("mfa_token")
        if not mfa_token:
            await no_credentials(request)
        enrolment = await in_thread(_start_for_login, provider, mfa_token, context)
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
async def confirm_endpoint(principal: MaybePerson, request: Request) -> Response:
    provider = provider_of(request)
    form = await single_valued_form(request)
    otp = form.get("otp")
    if not otp:
        raise invalid_request("otp is required")
    context = context_of(request)
    if principal is not None:
        codes = await in_thread(
            _as_user,
            provider,
            principal,
            lambda session, user: finish_enrolment(provider, session, user, otp, context),
        )
        return json_answer({"recovery_codes": codes})
    mfa_token = form.get("mfa_token")
    if not mfa_token:
        await no_credentials(request)
    if enrolment_challenge(provider, mfa_token).via == "browser":
        answer = await in_thread(browser.second_step, provider, mfa_token, otp, None, context)
        refresh_token = answer.pop("refresh_token")
        return browser.with_cookies(json_answer(answer), provider, refresh_token)
    # A login begun at the token endpoint ends as it would there: the client authenticates.
    grant = {**form, "grant_type": MFA_OTP}
    basic = basic_credentials(request)
    answer = await in_thread(token_response, provider, grant, basic, context)
    return json_answer(answer)


@router.post(
    "/recovery-codes",
    summary="Replace your recovery codes (a current code required); the old ones stop working",
    openapi_extra=form_body(otp="a current 6-digit code"),
)
async def recovery_codes_endpoint(principal: Person, request: Request) -> Response:
    provider = provider_of(request)
    otp = (await single_valued_form(request)).get("otp")
    if not otp:
        raise invalid_request("otp is required")
    context = context_of(request)
    codes = await in_thread(
        _as_user,
        provider,
        principal,
        lambda session, user: renew_recovery_codes(provider, session, user, otp, context),
    )
    return json_answer({"recovery_codes": codes})


@router.post(
    "/totp/remove",
    summary="Remove your second factor (a current code, or a recovery code)",
    openapi_extra=form_body(otp="a current 6-digit code", recovery_code="or a recovery code"),
)
async def remove_endpoint(principal: Person, request: Request) -> Response:
    provider = provider_of(request)
    form = await single_valued_form(request)
    otp, recovery_code = form.get("otp"), form.get("recovery_code")
    context = context_of(request)
    await in_thread(
        _as_user,
        provider,
        principal,
        lambda session, user: remove_factor(
            provider, session, user, otp=otp, recovery_code=recovery_code, context=context
        ),
    )
    return json_answer({})
