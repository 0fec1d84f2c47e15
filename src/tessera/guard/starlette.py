"""Starlette: an ``AuthenticationBackend``, so ``AuthenticationMiddleware``, ``request.user``,
``request.auth.scopes`` and Starlette's own ``@requires(...)`` work unchanged.
The request's header block is bounded by the server, not here: see ``tessera.guard.transport``.

A request without a token stays anonymous (``request.user.is_authenticated`` is false); a bad
token is answered by :func:`on_error` with RFC 6750's 401 (or 400/403/503). Routes that need
more than Starlette's scope check, or RFC 6750 answers, use :func:`requires` from here.

>>> from starlette.applications import Starlette
>>> from tessera import jose
>>> from tessera.guard import Guard
>>> guard = Guard(keys=jose.Key.generate("ES256").public(), issuer="https://id.example",
...               audience="orders", algorithms=["ES256"])
>>> app = Starlette(middleware=[middleware(guard)])
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .answer import answer
from .errors import GuardError, MissingToken
from .guard import Guard
from .policy import Predicate, rule
from .principal import Principal
from .transport import Transport

_TOKEN = "tessera.token"
_GUARD = "tessera.guard"


class PrincipalUser(BaseUser):
    """``request.user`` for an authenticated request; ``.principal`` is the full Principal.

    >>> PrincipalUser(Principal.from_claims({"sub": "ada"})).display_name
    'ada'
    """

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.sub or self.principal.client_id or ""

    @property
    def identity(self) -> str:
        return self.principal.sub or ""


class GuardAuthenticationError(AuthenticationError):
    """Carries the guard's refusal and its HTTP answer to :func:`on_error`."""

    def __init__(self, error: GuardError, realm: str) -> None:
        super().__init__(error.code)
        self.error = error
        self.realm = realm


def token_from(conn: HTTPConnection, transport: Transport) -> str | None:
    """The request's token under ``transport`` (raises the transport's refusals).

    >>> from starlette.requests import Request
    >>> scope = {"type": "http", "method": "GET", "query_string": b"",
    ...          "headers": [(b"authorization", b"Bearer a.b.c")]}
    >>> token_from(Request(scope), Transport())
    'a.b.c'
    """
    scope = conn.scope
    cookie_mode = transport.cookie is not None
    csrf_name = transport.csrf_header.lower().encode("latin-1") if cookie_mode else None
    authorization: list[str] = []
    csrf: str | None = None
    for name, value in scope["headers"]:  # ASGI header names are lower-case
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name == csrf_name:
            csrf = value.decode("latin-1")
    # Parse the query only when it could name a token: most requests pay nothing for the rule.
    raw_query: bytes = scope.get("query_string", b"")
    query = conn.query_params.keys() if b"access" in raw_query or b"%" in raw_query else ()
    return transport.extract(
        method=scope.get("method", "GET"),
        authorization=authorization,
        cookies=conn.cookies if cookie_mode else {},
        csrf=csrf,
        query=query,
    )


def route_of(conn: HTTPConnection) -> str:
    """The route template (``/tenants/{tenant_id}``) if routing found one, else the path.

    >>> from starlette.requests import Request
    >>> route_of(Request({"type": "http", "path": "/orders/7", "headers": [],
    ...                   "query_string": b"", "server": ("api", 80), "scheme": "http"}))
    '/orders/7'
    """
    route = conn.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else conn.url.path


class GuardBackend(AuthenticationBackend):
    """Authenticates each request with ``guard``; scopes become ``request.auth.scopes``.

    >>> from tessera import jose
    >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
    >>> GuardBackend(guard).transport
    Transport(cookie=None, csrf_cookie='csrf_token', csrf_header='X-CSRF-Token')
    """

    def __init__(self, guard: Guard, *, transport: Transport | None = None) -> None:
        self.guard = guard
        self.transport = transport or Transport()

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Credentials and user for ``conn``; ``None`` (anonymous) when it carries no token.

        >>> import asyncio
        >>> from starlette.requests import Request
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> anonymous = Request({"type": "http", "method": "GET", "headers": [],
        ...                      "query_string": b"", "path": "/", "server": ("api", 80),
        ...                      "scheme": "http"})
        >>> asyncio.run(GuardBackend(guard).authenticate(anonymous)) is None
        True
        """
        conn.scope[_GUARD] = self.guard
        route = conn.url.path
        try:
            token = token_from(conn, self.transport)
        except GuardError as error:
            self.guard.record(error, route=route)
            raise GuardAuthenticationError(error, self.guard.realm) from None
        if token is None:
            return None
        try:
            principal = await self.guard.authenticate_async(token, route=route)
        except GuardError as error:  # already recorded by the guard
            raise GuardAuthenticationError(error, self.guard.realm) from None
        conn.scope[_TOKEN] = token
        scopes = ["authenticated", *sorted(principal.scopes)]
        return AuthCredentials(scopes), PrincipalUser(principal)


def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """Render a refusal as RFC 6750 says (for ``AuthenticationMiddleware(on_error=...)``).

    >>> from tessera.guard.errors import TokenRefused
    >>> on_error(None, GuardAuthenticationError(TokenRefused("expired"), "api")).status_code
    401
    """
    if isinstance(exc, GuardAuthenticationError):
        return _response(exc.error, exc.realm)
    return _response(GuardError(), "api")


def middleware(guard: Guard, *, transport: Transport | None = None) -> Middleware:
    """``AuthenticationMiddleware`` with the guard's backend and RFC 6750 errors.

    >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
    >>> middleware(guard).cls.__name__
    'AuthenticationMiddleware'
    """
    return Middleware(
        AuthenticationMiddleware,
        backend=GuardBackend(guard, transport=transport),
        on_error=on_error,
    )


Endpoint = Callable[..., Awaitable[Response]]


def requires(
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tenant: str | None = None,
    predicate: Predicate | None = None,
    sensitive: bool = False,
) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint with a rule and RFC 6750 answers (401 anonymous, 403 not allowed).

    ``tenant`` names the path parameter the token's tenant must equal.

    >>> @requires(scopes=["orders:read"])
    ... async def orders(request): ...
    """
    route_rule = rule(
        scopes=scopes, roles=roles, tenant=tenant, predicate=predicate, sensitive=sensitive
    )

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Response:
            guard: Guard | None = request.scope.get(_GUARD)
            if guard is None:
                raise RuntimeError("tessera.guard.starlette.middleware(guard) is not installed")
            user = request.scope.get("user")
            if not isinstance(user, PrincipalUser):
                error = MissingToken()
                guard.record(error, route=route_of(request))
                return _response(error, guard.realm)
            value = request.path_params.get(tenant) if tenant is not None else None
            try:
                await guard.authorize_async(
                    user.principal,
                    request.scope[_TOKEN],
                    route_rule,
                    tenant=None if value is None else str(value),
                    route=route_of(request),
                )
            except GuardError as error:
                return _response(error, guard.realm)
            return await endpoint(request, *args, **kwargs)

        return guarded

    return decorate


def _response(error: GuardError, realm: str) -> Response:
    reply = answer(error, realm=realm)
    return Response(
        reply.body, status_code=reply.status, headers=reply.headers, media_type="application/json"
    )
