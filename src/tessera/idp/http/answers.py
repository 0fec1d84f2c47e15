"""How each family of the provider's routes answers the domain errors of the flows it calls.

Each router names its route class: :class:`OAuthRoute` answers as RFC 6749 §5.2 does (a JSON
``error``; malformed input is ``invalid_request``), :class:`ProblemRoute` (the admin API) with
RFC 9457 problems. The status is decided here, from the error's code — flows and components
never speak HTTP. What the framework refuses before any route runs (no route, a method the route
lacks, limits) is ``app.py``'s and ``limits.py``'s.

>>> oauth_status(OAuthError("invalid_client")), oauth_status(Throttled(3))
(401, 429)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.requests import Request

from ...jose import json
from ..errors import AdminError, OAuthError, Throttled
from ..services.challenges import MfaRequired
from ..services.password_policy import PasswordRejected
from .problems import password_problem, problem, validation_problem

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# RFC 6749 §5.2: 401 for a client that failed to authenticate, 400 for everything else; a
# token refused on a self-service route is RFC 6750's 401; a login that needs its second step
# is a 403 carrying the mfa_token.
_OAUTH_STATUS = {"invalid_client": 401, "invalid_token": 401}


class EdgeRefusal(OAuthError):
    """A refusal the HTTP layer decides itself, with its own status (a browser session that is
    gone: 401; a double-submit CSRF check that failed: 403)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(error, description)
        self.status = status


def json_answer(body: Any, status: int = 200) -> Response:
    """A JSON answer that caches nowhere (RFC 6749 §5.1).

    >>> json_answer({"active": False}).headers["cache-control"]
    'no-store'
    """
    return Response(json.dumps(body), status, NO_STORE, media_type="application/json")


def oauth_status(error: OAuthError) -> int:
    """The HTTP status of an OAuth refusal."""
    if isinstance(error, EdgeRefusal):
        return error.status
    if isinstance(error, Throttled):
        return 429
    if isinstance(error, MfaRequired):
        return 403
    return _OAUTH_STATUS.get(error.error, 400)


def oauth_answer(error: OAuthError) -> Response:
    """The RFC 6749 §5.2 answer to ``error`` (with ``Retry-After`` when throttled, and the
    ``WWW-Authenticate`` challenge RFC 6749 asks of a failed client authentication)."""
    status = oauth_status(error)
    response = json_answer(error.as_dict(), status)
    if status == 401 and error.error == "invalid_client":
        response.headers["WWW-Authenticate"] = 'Basic realm="tessera"'
    if isinstance(error, Throttled):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


_MALFORMED = {"error": "invalid_request", "error_description": "malformed request"}


def oauth_answers(handler: Handler) -> Handler:
    """``handler`` answering as the OAuth endpoints do: a refusal is RFC 6749 §5.2 JSON."""

    async def answered(request: Request) -> Response:
        try:
            return await handler(request)
        except OAuthError as error:
            return oauth_answer(error)
        except RequestValidationError:
            return json_answer(_MALFORMED, 400)

    return answered


def problem_answers(handler: Handler) -> Handler:
    """``handler`` answering as the admin API does: every refusal an RFC 9457 problem."""

    async def answered(request: Request) -> Response:
        try:
            return await handler(request)
        except AdminError as error:
            return problem(error)
        except PasswordRejected as error:
            return password_problem(error)
        except RequestValidationError as error:
            return validation_problem(error.errors())

    return answered


class OAuthRoute(APIRoute):
    """A route that answers as the OAuth endpoints do."""

    answers = staticmethod(oauth_answers)  # also what exact_routes wraps its endpoint in

    def get_route_handler(self) -> Handler:
        return oauth_answers(super().get_route_handler())


class ProblemRoute(APIRoute):
    """A route of the admin API: every refusal an RFC 9457 problem."""

    answers = staticmethod(problem_answers)

    def get_route_handler(self) -> Handler:
        return problem_answers(super().get_route_handler())
