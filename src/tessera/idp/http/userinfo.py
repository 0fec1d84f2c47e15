"""UserInfo (OpenID Connect Core §5.3), ``GET`` and ``POST``: the claims of the bearer's user
that its scopes release, for an access token with the ``openid`` scope; refusals per RFC 6750."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from tessera.guard import GuardError, Principal, Unavailable, answer
from tessera.guard.fastapi import GuardHTTPException

from ..flows.userinfo import userinfo
from .answers import OAuthRoute, json_answer
from .oauth import form_body
from .people import REALM, SIGNED_PERSON, signed_person, signed_person_or_form
from .requests import provider_of

router = APIRouter(prefix="/oauth2", tags=["openid connect"], route_class=OAuthRoute)


async def _claims_of(request: Request, principal: Principal) -> dict[str, object]:
    """The claims, read in the statement that also checks the token is not revoked."""
    try:
        return await userinfo(provider_of(request).database, principal)
    except GuardError as refusal:  # revoked, or a verified token these claims are not for
        raise GuardHTTPException(refusal, answer(refusal, realm=REALM)) from None
    except SQLAlchemyError:
        down = Unavailable("revocation_unavailable")
        raise GuardHTTPException(down, answer(down, realm=REALM)) from None


@router.get(
    "/userinfo",
    summary="OpenID Connect UserInfo: the user's claims its scopes release",
    openapi_extra=SIGNED_PERSON,
)
async def userinfo_endpoint(request: Request) -> Response:
    claims = await _claims_of(request, await signed_person(request))
    return json_answer(claims)


@router.post(
    "/userinfo",
    summary="OpenID Connect UserInfo (POST): the token in the header, or in the form body",
    openapi_extra={
        **SIGNED_PERSON,
        **form_body(access_token="RFC 6750 §2.2: the access token, instead of the header"),
    },
)
async def userinfo_form_endpoint(request: Request) -> Response:
    claims = await _claims_of(request, await signed_person_or_form(request))
    return json_answer(claims)
