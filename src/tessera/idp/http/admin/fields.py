"""What the admin API accepts: JSON bodies that refuse unknown members, strings bounded in
length and storable in every database (UTF-8, no NUL), and checks for path and query values.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Name).validate_python("Acme")
'Acme'
>>> try:
...     TypeAdapter(Name).validate_python("a\\x00b")
... except ValueError as error:
...     print(error.errors()[0]["msg"])
Value error, NUL characters are not allowed
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ...errors import not_found
from ...services.clients import MAX_URIS
from ...store.models import EMAIL_LENGTH, NAME_LENGTH, ROLE_NAME_LENGTH, URI_LENGTH


def storable(value: str) -> str:
    """``value`` if every database can store it: no NUL, no lone surrogate (a ``ValueError``
    otherwise, which pydantic reports as a 422).

    >>> storable("ada")
    'ada'
    """
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text is not valid Unicode") from None
    return value


def is_storable(value: str, max_length: int) -> bool:
    """Whether a path or query value can name anything at all (bounded, storable).

    >>> is_storable("ada", 10), is_storable("a" * 11, 10), is_storable("\\x00", 10)
    (True, False, False)
    """
    try:
        storable(value)
    except ValueError:
        return False
    return 0 < len(value) <= max_length


def path_value(value: str, what: str, max_length: int = NAME_LENGTH) -> str:
    """A path parameter naming a ``what``: a value no row can have is a 404, as is a missing row.

    >>> path_value("ada", "user")
    'ada'
    """
    if not is_storable(value, max_length):
        raise not_found(what)
    return value


class Body(BaseModel):
    """A JSON request body: unknown members are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


Storable = AfterValidator(storable)

TenantId = Annotated[str, Field(min_length=1, max_length=63), Storable]
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), Storable]
Username = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), Storable]
Password = Annotated[str, Field(min_length=1, max_length=1024), Storable]
Email = Annotated[str, Field(max_length=EMAIL_LENGTH), Storable]
RoleName = Annotated[str, Field(min_length=1, max_length=ROLE_NAME_LENGTH), Storable]
Permission = Annotated[str, Field(min_length=1, max_length=ROLE_NAME_LENGTH), Storable]
Description = Annotated[str, Field(max_length=500), Storable]
Audience = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), Storable]
# Any name: the service says which grants exist (authorization_code, client_credentials, ...).
GrantType = Annotated[str, Field(min_length=1, max_length=40), Storable]
# A redirect or logout URI; which ones may be registered is the service's rule. Empty only
# where it means "none" (a back-channel logout URI removed).
Uri = Annotated[str, Field(max_length=URI_LENGTH), Storable]
Algorithm = Annotated[str, Field(min_length=1, max_length=16), Storable]
# A public JWK Set (RFC 7517 §5) as a JSON object; which sets may be registered is the service's
# rule (:func:`~tessera.idp.services.client_assertions.check_jwks`).
JwkSet = dict[str, Any]

Permissions = Annotated[list[Permission], Field(max_length=100)]
RoleNames = Annotated[list[RoleName], Field(max_length=100)]
Uris = Annotated[list[Uri], Field(max_length=MAX_URIS)]


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def json_media_type(request: Request) -> None:
    """Refuse a body that is not ``application/json`` (or ``+json``) with 415, before FastAPI
    would read it as something else. A request without a body passes: the route decides.

    >>> scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"text/plain"),
    ...          (b"content-length", b"2")]}
    >>> json_media_type(Request(scope))
    Traceback (most recent call last):
    ...
    starlette.exceptions.HTTPException: 415: Unsupported Media Type
    """
    if request.method not in _BODY_METHODS:
        return
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(415)  # answered by the framework's refusals: a problem
