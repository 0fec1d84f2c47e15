"""The provider's routes with a fixed path, found by one dictionary lookup instead of FastAPI's
route matching.

FastAPI (0.165) finds a route by walking its included routers, matching each candidate's
pattern, and then walking the chosen router again: ~90 µs of every request on this provider,
measured, where the whole of a JWKS answer is 7 µs and a UserInfo answer ~100 µs. A route is
answered here instead when nothing of FastAPI's per-route machinery has work to do for it: its
path has no parameters, it has no dependencies, and its endpoint is a coroutine taking the
``Request`` alone and returning a ``Response`` (the provider's protocol endpoints are written so,
reading their requests themselves). Such a route is called exactly as FastAPI would call it —
the same endpoint, wrapped by its route class's answers (:mod:`.answers`) — and sits where
FastAPI's router sits, inside the exception middleware, so the app's exception handlers answer
for it as for any route. Everything else (a path with parameters, a method the route lacks, a
trailing slash, an app mounted under a root path) goes to FastAPI's router, unchanged.

>>> from fastapi import APIRouter
>>> router = APIRouter()
>>> @router.get("/ping")
... async def ping(request: Request) -> Response:
...     return Response("pong")
>>> @router.get("/items/{item}")
... async def item(request: Request) -> Response:
...     return Response("")
>>> sorted(exact_routes([router]))
[('GET', '/ping')]
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import get_type_hints

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def exact_routes(routers: Iterable[APIRouter]) -> dict[tuple[str, str], tuple[APIRoute, Endpoint]]:
    """Each ``(method, path)`` of ``routers`` answered here: its route and the endpoint wrapped
    by the route class's answers (a route class may name them as ``answers``)."""
    found: dict[tuple[str, str], tuple[APIRoute, Endpoint]] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and _plain(route):
                answers = getattr(route, "answers", None)
                endpoint: Endpoint = route.endpoint
                handler = answers(endpoint) if answers is not None else endpoint
                for method in route.methods or ():
                    found[(method, route.path)] = (route, handler)
    return found


def _plain(route: APIRoute) -> bool:
    """Nothing for FastAPI to do around the endpoint: no path parameters, no dependencies, no
    response model or status of its own, a coroutine of the ``Request`` alone."""
    if route.param_convertors or route.dependencies or route.response_model is not None:
        return False
    if route.status_code is not None or not inspect.iscoroutinefunction(route.endpoint):
        return False
    parameters = list(inspect.signature(route.endpoint).parameters)
    if len(parameters) != 1:
        return False
    return get_type_hints(route.endpoint).get(parameters[0]) is Request


class ExactRoutes:
    """ASGI: a request for one of ``routes`` answered by its endpoint; any other, by ``router``.

    Installed in place of the app's router (``app.router.middleware_stack``), where FastAPI's
    exception middleware and the app's handlers wrap it.
    """

    def __init__(
        self, router: ASGIApp, routes: dict[tuple[str, str], tuple[APIRoute, Endpoint]]
    ) -> None:
        self.router = router
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self.routes.get((scope["method"], scope["path"]))
        if found is None:
            await self.router(scope, receive, send)
            return
        route, endpoint = found
        scope["route"] = route  # what the router would have set (metrics label by it)
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
