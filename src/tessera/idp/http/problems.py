"""RFC 9457 problem details: how the admin API says no (refused changes, malformed requests).

A problem never echoes what was sent: a validation problem names the place (``body.email``)
and what is wrong with it, not the value — which might have been a password.

>>> from tessera.idp.errors import not_found
>>> response = problem(not_found("user"))
>>> response.status_code, response.media_type
(404, 'application/problem+json')
>>> json.loads(response.body)["detail"]
'no such user'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from ...jose import json
from ..errors import AdminError, unprocessable
from ..services.password_policy import PasswordRejected

MEDIA_TYPE = "application/problem+json"
# A problem lists this many validation errors at most, each location this many items.
_MAX_ERRORS = 20
_MAX_LOCATION = 8


class Problem(BaseModel):
    """An RFC 9457 problem as the admin API sends it (``errors`` on a malformed request,
    ``reason`` on a refused password)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
    reason: str | None = None


class Refusal(BaseModel):
    """The guard's RFC 6750 refusal (with a ``WWW-Authenticate`` challenge)."""

    error: str
    error_description: str
    scope: str | None = None


def _problem(text: str) -> dict[str, Any]:
    return {"description": text, "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}}}


def _refusal(text: str) -> dict[str, Any]:
    return {"description": text, "model": Refusal}


# What every admin route may answer besides its success, for OpenAPI.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _refusal("no token, or one that is invalid, expired or revoked"),
    403: _refusal("the token lacks the permission, or is of another tenant"),
    404: _problem("no such object in this tenant"),
    409: _problem("the change clashes with what exists"),
    413: _problem("the body is larger than the provider accepts"),
    415: _problem("the body is not application/json"),
    422: _problem("the request is malformed, or the change is not allowed"),
    431: _problem("the request's headers are too many or too large"),
}

# The admin API's problem types (RFC 9457 §3.1.1): one URI per stable code.
PROBLEM_TYPE = "urn:tessera:problem:"
# A domain error's code → the status it answers with (RFC 9110).
STATUS_OF = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "invalid": 422,
}

# What the framework refuses before a handler runs, as (code, detail) by status.
_FRAMEWORK_REFUSALS = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "the route does not take this method"),
    415: ("unsupported_media_type", "the body must be application/json"),
}


def problem(error: AdminError, **extra: Any) -> Response:
    """The RFC 9457 answer for a refused change (not cached), with ``extra`` members.

    >>> from tessera.idp.errors import conflict
    >>> problem(conflict("username taken")).status_code
    409
    """
    return problem_response(error.code, error.detail, STATUS_OF.get(error.code, 400), **extra)


def problem_response(code: str, detail: str, status: int, **extra: Any) -> Response:
    """An RFC 9457 problem: ``type`` stable per ``code``, ``title`` the status's phrase.

    >>> json.loads(problem_response("body_too_large", "too large", 413).body)["type"]
    'urn:tessera:problem:body_too_large'
    """
    body = {
        "type": PROBLEM_TYPE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(json.dumps(body), status, {"Cache-Control": "no-store"}, media_type=MEDIA_TYPE)


def password_problem(error: PasswordRejected) -> Response:
    """A 422 for a password the policy refuses; ``reason`` is the policy's fixed word.

    >>> password_problem(PasswordRejected("too_short")).status_code
    422
    """
    return problem(unprocessable(str(error)), reason=error.reason)


def http_problem(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """The problem for a refusal of the framework's (unknown route, method, unparseable body);
    its headers (``Allow`` on a 405) are kept.

    >>> response = http_problem(405, {"Allow": "GET"})
    >>> json.loads(response.body)["type"], response.headers["allow"]
    ('urn:tessera:problem:method_not_allowed', 'GET')
    """
    if status == 400:  # FastAPI could not parse the body: malformed, as every other bad body
        return validation_problem(
            [{"loc": ("body",), "msg": "the body could not be parsed", "type": "json_invalid"}]
        )
    code, detail = _FRAMEWORK_REFUSALS.get(
        status, ("http_error", HTTPStatus(status).phrase.lower())
    )
    response = problem_response(code, detail, status)
    response.headers.update(headers or {})
    return response


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> Response:
    """A 422 for a request FastAPI could not parse or validate: where, and what is wrong.

    >>> validation_problem([{"loc": ("body", "email"), "msg": "Field required",
    ...                      "type": "missing", "input": "secret"}]).body.count(b"secret")
    0
    """
    listed: list[dict[str, Any]] = []
    for error in errors:
        if len(listed) == _MAX_ERRORS:
            break
        location = [str(part)[:60] for part in tuple(error.get("loc", ()))[:_MAX_LOCATION]]
        listed.append(
            {
                "loc": location,
                "msg": str(error.get("msg", ""))[:200],
                "type": str(error.get("type", ""))[:60],
            }
        )
    return problem(unprocessable("the request is malformed"), errors=listed)
