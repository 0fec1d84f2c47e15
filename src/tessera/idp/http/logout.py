"""``/oauth2/logout``: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), and its
confirmation page. The decisions are in :mod:`tessera.idp.flows.logout`."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ..flows.logout import (
    BadLogoutRequest,
    LogoutAsked,
    end_session,
    read_logout_request,
    unseal_logout,
)
from ..store.models import Tenant
from ..threads import in_thread
from .oauth import form_body, query_parameters
from .page_forms import (
    Exchange,
    clear_session_cookie,
    error_page,
    exchange_of,
    form_fields,
    is_form,
    origin_of,
    parameters,
    set_form_cookie,
)
from .pages import page

router = APIRouter(prefix="/oauth2/logout", tags=["OpenID Connect"])

PARAMETERS = {
    "id_token_hint": "an ID token the provider issued to the client (expired is fine)",
    "client_id": "the client, when there is no id_token_hint",
    "post_logout_redirect_uri": "one of the client's registered post-logout redirect URIs",
    "state": "echoed to the post-logout redirect URI",
    "logout_hint": "ignored",
    "ui_locales": "ignored",
}


@router.get(
    "",
    summary="End-session endpoint: log out of the provider (and, by back-channel, its clients)",
    openapi_extra=query_parameters(**PARAMETERS),
)
async def logout_endpoint(request: Request) -> Response:
    params, repeated = parameters(request.url.query)
    return await in_thread(_logout, exchange_of(request), params, repeated)


@router.post(
    "",
    summary="The end-session endpoint, its parameters as a form",
    openapi_extra=form_body(**PARAMETERS),
)
async def logout_form_endpoint(request: Request) -> Response:
    if not is_form(request):
        return error_page("the request must be a form", 415)
    params, repeated = parameters((await request.body()).decode("utf-8", "replace"))
    return await in_thread(_logout, exchange_of(request), params, repeated)


def _logout(exchange: Exchange, params: dict[str, str], repeated: frozenset[str]) -> Response:
    provider, now = exchange.provider, exchange.now
    with provider.database.session() as session:
        try:
            asked = read_logout_request(provider, params, repeated, now)
        except BadLogoutRequest as error:
            return error_page(str(error))
        row = provider.sessions.current(session, exchange.browser.session_cookie, now=now)
        if asked.needs_confirmation(row):
            return _confirmation(exchange, session, asked)
        if row is not None:
            end_session(provider, session, row, exchange.context, now)
        return _logged_out(exchange, session, asked)


@router.post("/confirm", include_in_schema=False)
async def confirm_endpoint(request: Request) -> Response:
    exchange = exchange_of(request)
    form = await form_fields(request, exchange)
    if isinstance(form, Response):
        return form
    return await in_thread(_confirmed, exchange, form)


def _confirmed(exchange: Exchange, form: dict[str, str]) -> Response:
    provider, now = exchange.provider, exchange.now
    with provider.database.session() as session:
        try:
            asked = unseal_logout(provider, form.get("request", ""), now)
        except BadLogoutRequest as error:
            return error_page(str(error))
        if form.get("decision") != "logout":
            return page(
                "signed_out.html", tenant_name=_tenant_name(session, asked), still_signed_in=True
            )
        row = provider.sessions.current(session, exchange.browser.session_cookie, now=now)
        if row is not None:
            end_session(provider, session, row, exchange.context, now)
        return _logged_out(exchange, session, asked)


def _confirmation(exchange: Exchange, session: Session, asked: LogoutAsked) -> Response:
    response = page(
        "logout.html",
        tenant_name=_tenant_name(session, asked),
        client_name=asked.client.name if asked.client is not None else None,
        csrf=exchange.token.value,
        sealed=asked.sealed(exchange.provider, exchange.now),
        form_targets=_targets(asked),
    )
    return set_form_cookie(response, exchange.provider, exchange.token)


def _logged_out(exchange: Exchange, session: Session, asked: LogoutAsked) -> Response:
    if asked.post_logout_redirect_uri is not None:
        target = asked.post_logout_redirect_uri
        if asked.state is not None:
            separator = "&" if urlsplit(target).query else "?"
            target += separator + urlencode({"state": asked.state})
        response: Response = Response(
            status_code=303,
            headers={
                "location": target,
                "cache-control": "no-store",
                "referrer-policy": "no-referrer",
            },
        )
    else:
        response = page("signed_out.html", tenant_name=_tenant_name(session, asked))
    return clear_session_cookie(response, exchange.provider)


def _tenant_name(session: Session, asked: LogoutAsked) -> str:
    if asked.client is None:
        return "Tessera"
    tenant = session.get(Tenant, asked.client.tenant_id)
    return tenant.name if tenant is not None and tenant.name else asked.client.tenant_id


def _targets(asked: LogoutAsked) -> list[str]:
    """Where the confirmation's form may lead: after the logout, the client's page."""
    uri = asked.post_logout_redirect_uri
    return [] if uri is None else [origin_of(uri)]
