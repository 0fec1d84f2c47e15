"""OAuth 2.0 endpoints: token (RFC 6749), revocation (RFC 7009), introspection (RFC 7662).

Handlers only read the request, call a service and render its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import invalid_client, invalid_request
from ..flows.client_auth import asserts, client_from_request, client_on_the_loop
from ..flows.grants import (
    client_credentials_on_the_loop,
    code_grant_on_the_loop,
    token_response,
)
from ..flows.introspection import introspect
from ..flows.revoke import revoke
from ..provider import Provider
from ..services.audit import Context
from ..services.client_assertions import JWT_BEARER
from ..services.clients import is_confidential
from ..threads import in_thread, short_write
from .answers import OAuthRoute, json_answer
from .requests import basic_credentials, context_of, provider_of, single_valued_form

router = APIRouter(prefix="/oauth2", tags=["oauth2"], route_class=OAuthRoute)


def form_body(**fields: str) -> dict[str, Any]:
    """OpenAPI for an ``application/x-www-form-urlencoded`` body of optional string fields."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string", "description": text}
                            for name, text in fields.items()
                        },
                    }
                }
            },
        }
    }


def query_parameters(**fields: str) -> dict[str, Any]:
    """OpenAPI for optional string parameters of the query (a GET that :func:`form_body`'s
    POST twins).

    >>> query_parameters(state="echoed")["parameters"][0]["in"]
    'query'
    """
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in fields.items()
        ]
    }


# The grants that are signing and a few short writes (threads.short_write); client_credentials
# and authorization_code, whose writes are group-committed, are made on the loop itself. Not the
# password grants (argon2id is tens of milliseconds of CPU), nor a client assertion (its single
# use is written in a transaction of its own, which would wait for the lock).
SHORT = frozenset({"refresh_token"})


CLIENT_FIELDS = {
    "client_id": "client_secret_post: the client's id (optional with private_key_jwt)",
    "client_secret": "client_secret_post: the client's secret",
    "client_assertion_type": f"private_key_jwt: {JWT_BEARER}",
    "client_assertion": "private_key_jwt: a JWT signed by one of the client's registered keys"
    " (iss and sub the client id, aud the token endpoint, exp at most 5 minutes ahead, jti"
    " used once)",
}


@router.post(
    "/token",
    summary="Token endpoint: client_credentials, refresh_token, password (first-party only)"
    " and its second factor (urn:tessera:params:oauth:grant-type:mfa-otp)",
    openapi_extra=form_body(
        grant_type="client_credentials | refresh_token | password"
        " | urn:tessera:params:oauth:grant-type:mfa-otp",
        scope="space-separated scopes (requested ∩ allowed)",
        resource="RFC 8707 target audience",
        refresh_token="refresh_token grant",
        username="password grant",
        password="password grant",
        mfa_token="mfa-otp grant: from the password grant's 403 mfa_required answer",
        otp="mfa-otp grant: a 6-digit code from the authenticator",
        recovery_code="mfa-otp grant: or a recovery code (used once)",
        **CLIENT_FIELDS,
    ),
)
async def token(request: Request) -> Response:
    provider = provider_of(request)
    form = await single_valued_form(request)
    basic = basic_credentials(request)
    context = context_of(request)
    grant_type = form.get("grant_type")
    if grant_type == "client_credentials" and not asserts(form):
        # Signing and one audit row: all of it on the event loop (no worker thread).
        client = await client_on_the_loop(provider, form, basic)
        return json_answer(await client_credentials_on_the_loop(provider, client, form, context))
    if grant_type == "authorization_code" and not asserts(form):
        # One read, signing, one group-committed transaction; a code that is refused is
        # refused by token_response, on a worker thread (it spends, revokes and audits).
        client = await client_on_the_loop(provider, form, basic)
        redeemed = await code_grant_on_the_loop(provider, client, form, context)
        if redeemed is not None:
            return json_answer(redeemed)
    if grant_type in SHORT and not asserts(form):
        answer = await short_write(
            provider.database,
            lambda transaction: token_response(
                provider, form, basic, context, transaction=transaction
            ),
        )
    else:
        answer = await in_thread(token_response, provider, form, basic, context)
    return json_answer(answer)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What revocation and introspection both read: the client's credentials and the token."""

    form: dict[str, str]
    basic: tuple[str, str] | None
    token: str
    hint: str | None


async def token_request(request: Request) -> TokenRequest:
    """Read a revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1)."""
    form = await single_valued_form(request)
    basic = basic_credentials(request)
    token_value = form.get("token")
    if not token_value:
        raise invalid_request("token is required")
    return TokenRequest(form, basic, token_value, form.get("token_type_hint"))


TOKEN_FIELDS = form_body(
    token="the token", token_type_hint="access_token | refresh_token", **CLIENT_FIELDS
)


@router.post(
    "/revoke",
    summary="RFC 7009 revocation (200 also for unknown tokens)",
    openapi_extra=TOKEN_FIELDS,
)
async def revoke_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    asked = await token_request(request)
    await in_thread(_revoke, provider, asked, context_of(request))
    return json_answer({})


def _revoke(provider: Provider, asked: TokenRequest, context: Context) -> None:
    client = client_from_request(provider, asked.form, asked.basic)
    with provider.database.session() as session:
        revoke(provider, session, client, asked.token, hint=asked.hint, context=context)


@router.post("/introspect", summary="RFC 7662 introspection", openapi_extra=TOKEN_FIELDS)
async def introspect_endpoint(request: Request) -> Response:
    provider = provider_of(request)
    asked = await token_request(request)
    if asserts(asked.form):  # spent as it is checked: a write, on a worker thread
        caller = await in_thread(client_from_request, provider, asked.form, asked.basic)
    else:
        caller = await client_on_the_loop(provider, asked.form, asked.basic)
    if not is_confidential(caller):  # a public client proves nothing (RFC 7662 §2.1, §4)
        raise invalid_client("introspection needs an authenticated client")
    answer = await introspect(
        provider.database,
        asked.token,
        caller=caller,
        issuer=provider.issuer,
        refresh=provider.refresh,
        hint=asked.hint,
    )
    return json_answer(answer)
