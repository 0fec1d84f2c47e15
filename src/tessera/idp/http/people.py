"""A person's own routes (their second factor, their UserInfo): the bearer is a user's access
token of this provider, whatever its audience, revocation checked on every request — by one
guard, kept in ``app.state`` and answering refusals per RFC 6750.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import FastAPI, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes

from tessera import jose
from tessera.guard import GuardError, InvalidRequest, Principal, answer
from tessera.guard.fastapi import FastAPIGuard, GuardHTTPException, Requirement, TokenScheme

from ..provider import Provider
from .requests import single_valued_form

REALM = "tessera"
# The OpenAPI face of these routes' security; the checking is the guard's.
SCHEME = TokenScheme(
    HTTPBearerModel(bearerFormat="JWT", description="the user's own access token"), "tessera-user"
)


class SelfService:
    """The guard of a person's own routes: any access token of this provider, whatever its
    audience, revocation checked on every request (kept in ``app.state``). ``by_the_route``
    checks the signature and claims only, for a route that checks revocation in the
    transaction it opens anyway (UserInfo: one database round instead of two)."""

    def __init__(self, provider: Provider) -> None:
        self.guard = FastAPIGuard(provider.guard(audience=jose.ANY_AUDIENCE, realm=REALM))
        self.requirement = _requirement(self.guard)
        self.by_the_route = _requirement(
            FastAPIGuard(
                provider.guard(
                    audience=jose.ANY_AUDIENCE, realm=REALM, check_revocation="by the route"
                )
            )
        )


def _requirement(guard: FastAPIGuard) -> Requirement:
    requirement = guard.require()
    assert isinstance(requirement, Requirement)
    return requirement


def install_guard(app: FastAPI, provider: Provider) -> None:
    """Put the guard of a person's own routes on ``app``."""
    service = app.state.self_service = SelfService(provider)
    service.guard.init_app(app)  # refusals answered per RFC 6750


async def _principal(request: Request, _scheme: None = Security(SCHEME)) -> Principal:
    service: SelfService = request.app.state.self_service
    return await service.requirement.authenticate(request, SecurityScopes())


async def _principal_if_any(request: Request, _scheme: None = Security(SCHEME)) -> Principal | None:
    """The bearer token's principal when the request carries one; enrolment may instead use an
    mfa_token (and its confirmation, the client's own Basic credentials)."""
    scheme = request.headers.get("authorization", "").split(" ", 1)[0]
    if scheme.lower() != "bearer":
        return None
    return await _principal(request)


async def signed_person(request: Request) -> Principal:
    """The bearer of ``request``'s ``Authorization`` header, signature and claims checked;
    revocation is the route's to check (:attr:`SelfService.by_the_route`). Called by the route
    itself, not as a dependency (UserInfo's exact route: see ``exact_routes.py``)."""
    service: SelfService = request.app.state.self_service
    return await service.by_the_route.authenticate(request, SecurityScopes())


async def signed_person_or_form(request: Request) -> Principal:
    """A POST's bearer, who may carry the token in the form body (RFC 6750 §2.2, what pyoidc
    sends to UserInfo) — or in the ``Authorization`` header, never both (§2)."""
    token = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        token = (await single_valued_form(request)).get("access_token")
    if token is None:
        return await signed_person(request)
    service: SelfService = request.app.state.self_service
    guard = service.by_the_route.guard
    try:
        if request.headers.get("authorization"):
            raise InvalidRequest("multiple_transports")
        return await guard.authenticate_async(token, service.by_the_route.rule)
    except GuardError as error:
        raise GuardHTTPException(error, answer(error, realm=guard.realm)) from None


# The OpenAPI of a route that calls signed_person itself: the scheme it checks.
SIGNED_PERSON: dict[str, Any] = {"security": [{SCHEME.scheme_name: []}]}


async def no_credentials(request: Request) -> NoReturn:
    """Neither a bearer token nor an mfa_token: the guard's bare challenge (RFC 6750 §3.1)."""
    await _principal(request)
    raise AssertionError("the guard lets no request without a token through")


Person = Annotated[Principal, Security(_principal)]
MaybePerson = Annotated[Principal | None, Security(_principal_if_any)]
