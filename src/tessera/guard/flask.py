"""Flask: an extension with ``init_app``, a ``@auth.required(...)`` decorator, and the principal
on ``flask.g.principal``. Refusals are answered per RFC 6750 (JSON body, ``WWW-Authenticate``).
The request's header block is bounded by the server, not here: see ``tessera.guard.transport``.

>>> from flask import Flask
>>> from tessera import jose
>>> from tessera.guard import Guard
>>> guard = Guard(keys=jose.Key.generate("ES256").public(), issuer="https://id.example",
...               audience="orders", algorithms=["ES256"])
>>> app = Flask(__name__)
>>> auth = FlaskGuard(guard, app)
>>> @app.get("/orders")
... @auth.required(scopes=["orders:read"])
... def orders():
...     return {"sub": current_principal().sub}
>>> app.test_client().get("/orders").status_code
401
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Response, g, request

from .answer import answer
from .errors import GuardError
from .guard import Guard
from .policy import Predicate, rule
from .principal import Principal
from .transport import Transport

View = TypeVar("View", bound=Callable[..., Any])


class FlaskGuard:
    """The Flask extension; one per app (or per app factory, with ``init_app``).

    >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
    >>> FlaskGuard(guard).transport.cookie is None
    True
    """

    def __init__(
        self,
        guard: Guard,
        app: Flask | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self.guard = guard
        self.transport = transport or Transport()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension and its RFC 6750 error handler on ``app``.

        >>> app = Flask(__name__)
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> FlaskGuard(guard).init_app(app)
        >>> "tessera.guard" in app.extensions
        True
        """
        app.extensions["tessera.guard"] = self
        app.register_error_handler(GuardError, self._answer)

    def required(
        self,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        tenant: str | None = None,
        predicate: Predicate | None = None,
        sensitive: bool = False,
    ) -> Callable[[View], View]:
        """Guard a view: authenticate, apply the rule, set ``g.principal``.

        ``tenant`` names the URL variable the token's ``tenant`` must equal.

        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> callable(FlaskGuard(guard).required(roles=["admin"]))
        True
        """
        route_rule = rule(
            scopes=scopes, roles=roles, tenant=tenant, predicate=predicate, sensitive=sensitive
        )

        def decorate(view: View) -> View:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                g.principal = self._authenticate(route_rule)
                return view(*args, **kwargs)

            return cast(View, guarded)

        return decorate

    def _authenticate(self, route_rule: Any) -> Principal:
        route = request.url_rule.rule if request.url_rule is not None else request.path
        transport = self.transport
        try:
            token = transport.extract(
                method=request.method,
                authorization=request.headers.getlist("Authorization"),
                cookies=request.cookies if transport.cookie is not None else {},
                csrf=request.headers.get(transport.csrf_header),
                query=request.args.keys(),
            )
        except GuardError as error:
            self.guard.record(error, route=route)
            raise
        value = (request.view_args or {}).get(route_rule.tenant) if route_rule.tenant else None
        return self.guard.authenticate(
            token, route_rule, tenant=None if value is None else str(value), route=route
        )

    def _answer(self, error: GuardError) -> Response:
        reply = answer(error, realm=self.guard.realm)
        return Response(
            reply.body, status=reply.status, headers=reply.headers, mimetype="application/json"
        )


def current_principal() -> Principal:
    """The principal of the current request (set by ``@auth.required``).

    >>> from flask import Flask
    >>> with Flask(__name__).test_request_context():
    ...     current_principal()
    Traceback (most recent call last):
    ...
    LookupError: no authenticated principal in this request
    """
    principal = g.get("principal")
    if not isinstance(principal, Principal):
        raise LookupError("no authenticated principal in this request")
    return principal
