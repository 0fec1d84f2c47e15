"""``/oauth2/authorize`` (OpenID Connect Core §3.1.2) and the pages behind it: sign-in, second
factor, consent. The decisions are in :mod:`tessera.idp.flows.authorization` and
:mod:`tessera.idp.flows.sign_in`; this module reads forms and cookies and shows the answers —
a page, a 303 back to the client (``response_mode=query``), or a self-posting form
(``form_post``).

Every form carries the request sealed (``request``) and the browser's anti-forgery token
(``csrf``); a form without a genuine token is refused before anything else is read.
"""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ..errors import OAuthError, Throttled
from ..flows.authorization import (
    Asked,
    AuthorizationError,
    Back,
    BadAuthorizationRequest,
    ConsentNeeded,
    Granted,
    Next,
    SignInNeeded,
    answer_params,
    next_step,
    read_request,
    signed_in_user,
    sso_hop,
    unseal,
)
from ..flows.sign_in import (
    CodeNeeded,
    SignedIn,
    code_page,
    sign_in_with_code,
    sign_in_with_password,
)
from ..services.audit import record
from ..services.refresh import Refused
from ..store.models import ID_LENGTH, Client, Tenant
from ..threads import in_thread
from .oauth import form_body, query_parameters
from .page_forms import (
    Exchange,
    error_page,
    exchange_of,
    form_fields,
    is_form,
    origin_of,
    parameters,
    set_form_cookie,
    set_session_cookie,
)
from .pages import page

router = APIRouter(prefix="/oauth2/authorize", tags=["OpenID Connect"])

# RFC 6749 §4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E.
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
SCOPE_WORDS = {
    "openid": "Know who you are (an identifier for your account)",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Keep its access while you are away, until you withdraw it",
}


PARAMETERS = {
    "response_type": "code (the only one)",
    "client_id": "the client",
    "redirect_uri": "one of the client's registered redirect URIs, exactly",
    "scope": "openid profile email offline_access, and the client's API scopes",
    "state": "echoed back",
    "nonce": "carried into the ID token",
    "code_challenge": "PKCE: BASE64URL(SHA-256(code_verifier))",
    "code_challenge_method": "S256 (the only one)",
    "response_mode": "query (default) or form_post",
    "prompt": "none, login, consent or select_account",
    "max_age": "seconds since the last sign-in, at most",
    "acr_values": "mfa: a second factor",
    "login_hint": "the username to fill in",
    "id_token_hint": "an ID token of the expected account",
    "resource": "RFC 8707: the API the access token is for",
}


@router.get(
    "",
    summary="Authorization endpoint: response_type=code with PKCE (S256), OpenID Connect",
    response_description="A page (sign-in, consent, error) or a 303 back to the client",
    openapi_extra=query_parameters(**PARAMETERS),
)
async def authorize_endpoint(request: Request) -> Response:
    params, repeated = parameters(request.url.query)
    return await _authorize(exchange_of(request), params, repeated)


@router.post(
    "",
    summary="The authorization endpoint, its parameters as a form",
    openapi_extra=form_body(**PARAMETERS),
)
async def authorize_form_endpoint(request: Request) -> Response:
    if not is_form(request):
        return error_page("the request must be a form", 415)
    params, repeated = parameters((await request.body()).decode("utf-8", "replace"))
    return await _authorize(exchange_of(request), params, repeated)


async def _authorize(
    exchange: Exchange, params: dict[str, str], repeated: frozenset[str]
) -> Response:
    """An authorization request, on the event loop (an SSO hop is one read and one write,
    both awaited); a page it leads to is made on a worker thread (it reads the tenant)."""
    provider, now = exchange.provider, exchange.now
    client_id = params.get("client_id")
    if client_id and len(client_id) <= ID_LENGTH:  # read_request finds it in memory then
        await provider.clients.read(provider.database, client_id)
    try:
        asked = read_request(provider, params, repeated, now)
        step = await sso_hop(provider, asked, exchange.browser.session_cookie, now)
    except BadAuthorizationRequest as error:
        return error_page(str(error))
    except AuthorizationError as error:
        return _send_error(exchange, error)
    if isinstance(step, Granted):
        return _send_back(exchange, asked.back, step.answer)
    return await in_thread(_page_of_step, exchange, asked, step)


def _page_of_step(exchange: Exchange, asked: Asked, step: Next) -> Response:
    with exchange.provider.database.session(readonly=True) as session:
        return _show(exchange, session, asked, step)


@router.post("/sign-in", include_in_schema=False)
async def sign_in_endpoint(request: Request) -> Response:
    return await _on_form(request, _sign_in)


def _sign_in(exchange: Exchange, session: Session, asked: Asked, form: dict[str, str]) -> Response:
    username, password = form.get("username", "").strip(), form.get("password", "")
    if not username or not password:
        return _sign_in_page(exchange, session, asked, "Enter your username and password.", 400)
    result = sign_in_with_password(
        exchange.provider, session, asked, username, password, exchange.context, exchange.now
    )
    if isinstance(result, Refused):
        return _sign_in_page(
            exchange, session, asked, "Wrong username or password.", 401, username=username
        )
    return _after_step(exchange, session, asked, result)


@router.post("/second-factor", include_in_schema=False)
async def second_factor_endpoint(request: Request) -> Response:
    return await _on_form(request, _second_factor)


def _second_factor(
    exchange: Exchange, session: Session, asked: Asked, form: dict[str, str]
) -> Response:
    provider, now = exchange.provider, exchange.now
    mfa_token = form.get("mfa_token", "")
    otp, recovery_code = form.get("otp") or None, form.get("recovery_code") or None
    try:
        if otp is None and recovery_code is None:
            needed = code_page(provider, session, mfa_token, now)
            return _code_page(exchange, session, asked, needed, "Enter the code.", 400)
        result = sign_in_with_code(
            provider, session, asked, mfa_token, otp, recovery_code, exchange.context, now
        )
        if isinstance(result, Refused):
            needed = code_page(provider, session, mfa_token, now)
            return _code_page(exchange, session, asked, needed, "That code is not right.", 401)
    except Throttled:
        raise  # shown by _form_step, once the refusal's transaction is over
    except OAuthError:  # the password step expired (or the token is not one of ours)
        return _sign_in_page(exchange, session, asked, "That took too long: sign in again.", 400)
    return _after_step(exchange, session, asked, result)


@router.post("/continue", include_in_schema=False)
async def continue_endpoint(request: Request) -> Response:
    return await _on_form(request, _continue)


def _continue(exchange: Exchange, session: Session, asked: Asked, form: dict[str, str]) -> Response:
    row = exchange.provider.sessions.current(
        session, exchange.browser.session_cookie, now=exchange.now
    )
    step = next_step(exchange.provider, session, asked, row, now=exchange.now)
    return _show(exchange, session, asked, step)


@router.post("/consent", include_in_schema=False)
async def consent_endpoint(request: Request) -> Response:
    return await _on_form(request, _consent)


def _consent(exchange: Exchange, session: Session, asked: Asked, form: dict[str, str]) -> Response:
    provider, now = exchange.provider, exchange.now
    row = provider.sessions.current(session, exchange.browser.session_cookie, now=now)
    current = signed_in_user(provider, asked.client, row, now)
    if current is None or asked.signed_in != current[0].id:
        # Not the session the consent was asked in: start this request's steps again.
        return _show(exchange, session, asked, next_step(provider, session, asked, row, now=now))
    row, user = current
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return error_page("choose Allow or Deny", 400, _tenant_name(session, asked.client))
    event = "consent.granted" if decision == "allow" else "consent.denied"
    record(
        session,
        event,
        tenant_id=user.tenant_id,
        context=exchange.context,
        subject=user.id,
        client_id=asked.client.id,
        details={"scope": " ".join(asked.scope)},
        at=now,
    )
    if decision == "deny":
        raise asked.refuse("access_denied", "the person did not allow access")
    return _show(
        exchange, session, asked, next_step(provider, session, asked, row, consented=True, now=now)
    )


FormStep = Callable[[Exchange, Session, Asked, dict[str, str]], Response]


async def _on_form(request: Request, step: FormStep) -> Response:
    exchange = exchange_of(request)
    form = await form_fields(request, exchange)
    if isinstance(form, Response):
        return form
    return await in_thread(_form_step, exchange, step, form)


def _form_step(exchange: Exchange, step: FormStep, form: dict[str, str]) -> Response:
    provider = exchange.provider
    try:
        with provider.database.session() as session:
            try:
                asked = unseal(provider, form.get("request", ""), exchange.now)
                return step(exchange, session, asked, form)
            except BadAuthorizationRequest as error:
                return error_page(str(error))
            except AuthorizationError as error:
                return _send_error(exchange, error)
    except Throttled as throttled:  # its refusal is audited and committed: show the page
        with provider.database.session(readonly=True) as session:
            asked = unseal(provider, form.get("request", ""), exchange.now)
            return _throttled(exchange, session, asked, throttled, form.get("username"))


def _after_step(
    exchange: Exchange, session: Session, asked: Asked, result: CodeNeeded | SignedIn
) -> Response:
    if isinstance(result, CodeNeeded):
        return _code_page(exchange, session, asked, result, None, 200)
    if result.next is None:  # a factor was just enrolled: its recovery codes first
        response = _page(
            exchange,
            session,
            result.asked,
            "recovery_codes.html",
            recovery_codes=result.recovery_codes,
        )
    elif isinstance(result.next, AuthorizationError):
        response = _send_error(exchange, result.next)
    else:
        response = _show(exchange, session, result.asked, result.next)
    return set_session_cookie(response, exchange.provider, result.started.cookie)


def _show(exchange: Exchange, session: Session, asked: Asked, step: Next) -> Response:
    if isinstance(step, Granted):
        return _send_back(exchange, asked.back, step.answer)
    if isinstance(step, SignInNeeded):
        return _sign_in_page(exchange, session, asked, None, 200, notice=step.why)
    assert isinstance(step, ConsentNeeded)
    consenting = replace(asked, signed_in=step.session_id)
    return _page(
        exchange,
        session,
        consenting,
        "consent.html",
        username=step.user.username,
        scope_lines=[SCOPE_WORDS.get(name, f"Use “{name}” in your name") for name in step.scope],
    )


def _sign_in_page(
    exchange: Exchange,
    session: Session,
    asked: Asked,
    message: str | None,
    status: int,
    *,
    username: str | None = None,
    notice: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    return _page(
        exchange,
        session,
        asked,
        "sign_in.html",
        status=status,
        message=message,
        notice=notice,
        username=username if username is not None else asked.login_hint or "",
        headers=headers,
    )


def _code_page(
    exchange: Exchange,
    session: Session,
    asked: Asked,
    needed: CodeNeeded,
    message: str | None,
    status: int,
) -> Response:
    enrolment = needed.enrolment
    return _page(
        exchange,
        session,
        asked,
        "second_factor.html",
        status=status,
        message=message,
        mfa_token=needed.mfa_token,
        enrolment=enrolment,
        enrolment_qr=None if enrolment is None else _svg_data_uri(enrolment.qr_svg),
    )


def _throttled(
    exchange: Exchange, session: Session, asked: Asked, throttled: Throttled, username: str | None
) -> Response:
    minutes = max(1, round(throttled.retry_after / 60))
    return _sign_in_page(
        exchange,
        session,
        asked,
        f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
        429,
        username=username,
        headers={"retry-after": str(max(1, int(throttled.retry_after)))},
    )


def _page(
    exchange: Exchange,
    session: Session,
    asked: Asked,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: object,
) -> Response:
    response = page(
        template,
        status=status,
        headers=headers,
        form_targets=[origin_of(asked.back.redirect_uri)],
        tenant_name=_tenant_name(session, asked.client),
        client_name=asked.client.name,
        csrf=exchange.token.value,
        sealed=asked.sealed(exchange.provider, exchange.now),
        **values,
    )
    return set_form_cookie(response, exchange.provider, exchange.token)


def _send_error(exchange: Exchange, error: AuthorizationError) -> Response:
    params = {"error": error.error}
    description = _NOT_IN_DESCRIPTION.sub("", error.description)[:300]
    if description:
        params["error_description"] = description
    return _send_back(exchange, error.back, params)


def _send_back(exchange: Exchange, back: Back, params: dict[str, str]) -> Response:
    """The answer to the client: a 303 to its redirect URI, or a form that posts itself."""
    answer = answer_params(exchange.provider, back, params)
    if back.response_mode == "form_post":
        return page(
            "form_post.html",
            action=back.redirect_uri,
            fields=list(answer.items()),
            form_targets=[origin_of(back.redirect_uri)],
        )
    separator = "&" if urlsplit(back.redirect_uri).query else "?"
    headers = {
        "location": back.redirect_uri + separator + urlencode(answer),
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
    }
    return Response(status_code=303, headers=headers)


def _tenant_name(session: Session, client: Client) -> str:
    tenant = session.get(Tenant, client.tenant_id)
    return tenant.name if tenant is not None and tenant.name else client.tenant_id


def _svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + b64encode(svg.encode()).decode()
