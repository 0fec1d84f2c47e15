"""FastAPI: ``Security(auth.require(scopes=[...]))`` dependencies that inject the ``Principal`` and
show in OpenAPI as a bearer (or OAuth2, with its scopes) security scheme.
The request's header block is bounded by the server, not here: see ``tessera.guard.transport``.

``FastAPIGuard(guard, app=app)`` installs the handler that answers refusals per RFC 6750 (JSON
body, ``WWW-Authenticate``); without it FastAPI still answers with the right status and headers.
Give ``token_url`` (or ``authorization_url``) to describe an OAuth2 flow whose ``scopes`` ``/docs``
lists; otherwise the scheme is HTTP bearer (JWT). Scopes may be named either way, and both show
in OpenAPI: ``Security(auth.require(), scopes=[...])`` (FastAPI's own idiom, one dependency, the
fastest) or ``Security(auth.require(scopes=[...]))``.

>>> from fastapi import FastAPI, Security
>>> from tessera import jose
>>> from tessera.guard import Guard, Principal
>>> app = FastAPI()
>>> guard = Guard(keys=jose.Key.generate("ES256").public(), issuer="https://id.example",
...               audience="orders", algorithms=["ES256"])
>>> auth = FastAPIGuard(guard, app=app)
>>> @app.get("/orders")
... async def orders(user: Principal = Security(auth.require(scopes=["orders:read"]))):
...     return {"sub": user.sub}
>>> app.openapi()["paths"]["/orders"]["get"]["security"]
[{'tessera': ['orders:read']}]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlowClientCredentials
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .answer import Answer, answer
from .errors import GuardError
from .guard import Guard
from .policy import Predicate, Rule, rule
from .principal import Principal
from .starlette import route_of, token_from
from .transport import Transport

Dependency = Callable[..., Awaitable[Principal]]


class GuardHTTPException(HTTPException):
    """A refusal on its way out of a dependency; carries the full RFC 6750 answer."""

    def __init__(self, error: GuardError, reply: Answer) -> None:
        super().__init__(reply.status, detail=error.code, headers=reply.headers)
        self.error = error
        self.answer = reply


class TokenScheme(SecurityBase):
    """The OpenAPI security scheme; extraction itself is the transport's, not this object's."""

    def __init__(self, model: Any, scheme_name: str) -> None:
        self.model = model
        self.scheme_name = scheme_name

    async def __call__(self, request: Request) -> None:
        return None


class Requirement(TokenScheme):
    """One route's rule as a dependency that is itself the security scheme: scopes declared with
    ``Security(auth.require(), scopes=[...])`` reach OpenAPI and are enforced, at the cost of a
    single dependency. Built by :meth:`FastAPIGuard.require`."""

    def __init__(self, owner: FastAPIGuard, route_rule: Rule) -> None:
        super().__init__(owner.scheme.model, owner.scheme.scheme_name)
        self.guard = owner.guard
        self.transport = owner.transport
        self.rule = route_rule
        # The rule plus the scopes a route declares with Security(..., scopes=[...]), per route.
        self._merged: dict[tuple[str, ...], Rule] = {}

    async def __call__(  # type: ignore[override]
        self, request: Request, security_scopes: SecurityScopes
    ) -> Principal:
        return await self.authenticate(request, security_scopes)

    async def authenticate(self, request: Request, security_scopes: SecurityScopes) -> Principal:
        """Authenticate the request under this rule plus the scopes FastAPI passes down.

        >>> import asyncio
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> requirement = FastAPIGuard(guard).require()
        >>> request = Request({"type": "http", "method": "GET", "headers": [], "path": "/",
        ...                    "query_string": b"", "server": ("api", 80), "scheme": "http"})
        >>> asyncio.run(requirement.authenticate(request, SecurityScopes()))
        Traceback (most recent call last):
        ...
        tessera.guard.fastapi.GuardHTTPException: 401: missing_token
        """
        guard, route_rule = self.guard, self.rule
        if security_scopes.scopes:
            declared = tuple(security_scopes.scopes)
            merged = self._merged.get(declared)
            if merged is None:
                wanted = route_rule.scopes | frozenset(declared)
                merged = dataclasses.replace(route_rule, scopes=wanted)
                self._merged[declared] = merged
            route_rule = merged
        route = route_of(request)
        name = route_rule.tenant
        value = request.path_params.get(name) if name is not None else None
        try:
            token = token_from(request, self.transport)
        except GuardError as error:
            guard.record(error, route=route)
            raise GuardHTTPException(error, answer(error, realm=guard.realm)) from None
        try:
            return await guard.authenticate_async(
                token, route_rule, tenant=None if value is None else str(value), route=route
            )
        except GuardError as error:
            raise GuardHTTPException(error, answer(error, realm=guard.realm)) from None


class FastAPIGuard:
    """A guard's FastAPI face: ``require(...)`` builds dependencies, ``init_app`` the handler.

    >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
    >>> FastAPIGuard(guard, token_url="/token").scheme.model.type_.value
    'oauth2'
    """

    def __init__(
        self,
        guard: Guard,
        *,
        app: FastAPI | None = None,
        transport: Transport | None = None,
        token_url: str | None = None,
        authorization_url: str | None = None,
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "tessera",
    ) -> None:
        self.guard = guard
        self.transport = transport or Transport()
        self.scheme = TokenScheme(
            _model(token_url, authorization_url, dict(scopes or {})), scheme_name
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: FastAPI) -> None:
        """Install the exception handler that renders refusals as RFC 6750 JSON answers.

        >>> app = FastAPI()
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> FastAPIGuard(guard).init_app(app)
        >>> GuardHTTPException in app.exception_handlers
        True
        """

        async def handle(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, GuardHTTPException)
            reply = exc.answer
            return Response(
                reply.body,
                status_code=reply.status,
                headers=reply.headers,
                media_type="application/json",
            )

        app.add_exception_handler(GuardHTTPException, handle)

    def require(
        self,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        tenant: str | None = None,
        predicate: Predicate | None = None,
        sensitive: bool = False,
    ) -> Dependency:
        """A dependency that authenticates, applies the rule and returns the ``Principal``.

        Scopes given here and in ``Security(..., scopes=[...])`` must all be granted. ``tenant``
        names the path parameter the token's ``tenant`` must equal.

        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> callable(FastAPIGuard(guard).require(roles=["admin"], sensitive=True))
        True
        """
        base = rule(
            scopes=scopes, roles=roles, tenant=tenant, predicate=predicate, sensitive=sensitive
        )
        requirement = Requirement(self, base)
        if not base.scopes:
            return requirement  # one dependency: itself the scheme, scopes from Security(...)

        # Scopes named here must reach OpenAPI, which only reads them from a Security(...)
        # declaration: one more (cheap) level declares them on the scheme.
        async def dependency(
            request: Request,
            security_scopes: SecurityScopes,
            _scheme: None = Security(self.scheme, scopes=sorted(base.scopes)),
        ) -> Principal:
            return await requirement.authenticate(request, security_scopes)

        return dependency


def _model(token_url: str | None, authorization_url: str | None, scopes: dict[str, str]) -> Any:
    if authorization_url is not None:
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=authorization_url, tokenUrl=token_url or "", scopes=scopes
        )
        return OAuth2Model(flows=OAuthFlowsModel(authorizationCode=flow))
    if token_url is not None:
        flows = OAuthFlowsModel(
            clientCredentials=OAuthFlowClientCredentials(tokenUrl=token_url, scopes=scopes)
        )
        return OAuth2Model(flows=flows)
    return HTTPBearerModel(bearerFormat="JWT")
