"""POST /oauth2/token over real HTTP: the grants that work, and an RFC 6749 §5.2 JSON error with
the right status for every way a request can be wrong — never a 500."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from .checks import assert_no_store, assert_oauth_error, header, payload
from .servers import AUDIENCE, BOTH_DATABASES, DEMO, WEB, IdpServer, client_credentials

# Bad input must be answered the same on both databases (PostgreSQL refuses NUL bytes).
pytestmark = pytest.mark.idp(databases=BOTH_DATABASES)


def test_client_credentials_with_client_secret_basic(idp: IdpServer, http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(DEMO, idp.demo_secret),
    )
    assert response.status_code == 200, response.text
    assert_no_store(response)
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 900
    assert answer["scope"] == "demo:read"
    assert "refresh_token" not in answer
    claims = payload(answer["access_token"])
    assert header(answer["access_token"])["typ"] == "at+jwt"
    assert claims["iss"] == idp.url
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == DEMO
    assert claims["tenant"] == "default"
    assert claims["exp"] - claims["iat"] == 900


def test_client_credentials_with_client_secret_post(idp: IdpServer, http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO,
            "client_secret": idp.demo_secret,
            "scope": "demo:write",
        },
    )
    assert response.status_code == 200, response.text
    assert_no_store(response)
    assert response.json()["scope"] == "demo:write"
    assert payload(response.json()["access_token"])["scope"] == "demo:write"


def test_a_charset_parameter_on_the_form_content_type_is_fine(
    idp: IdpServer, http: httpx.Client
) -> None:
    response = http.post(
        "/oauth2/token",
        content=f"grant_type=client_credentials&client_id=demo&client_secret={idp.demo_secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("raw", [False, True], ids=["percent-encoded", "raw-utf8"])
def test_utf8_credentials_are_read_as_utf8(idp: IdpServer, http: httpx.Client, raw: bool) -> None:
    username, password = f"zoë-{int(raw)}", "pässwörd ünd mehr"
    user_id = idp.add_user(username, password)
    form = {"grant_type": "password", "username": username, "password": password, "client_id": WEB}
    body = (
        "&".join(f"{name}={value}" for name, value in form.items()).replace(" ", "+").encode()
        if raw
        else str(httpx.QueryParams(form)).encode()
    )
    response = http.post("/oauth2/token", **_form(body))
    assert response.status_code == 200, response.text
    assert payload(response.json()["access_token"])["sub"] == user_id


def test_requested_scope_is_narrowed_to_the_allowed_scopes(
    idp: IdpServer, http: httpx.Client
) -> None:
    answer = client_credentials(http, DEMO, idp.demo_secret, scope="demo:write admin demo:read")
    assert answer["scope"] == "demo:write demo:read"


def test_basic_credentials_are_form_urlencoded_before_base64(
    idp: IdpServer, http: httpx.Client
) -> None:
    # RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded, then Basic.
    secret = idp.add_client("svc one:two")
    encoded = base64.b64encode(f"svc+one%3Atwo:{secret}".encode()).decode()
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {encoded}"},
    )
    assert response.status_code == 200, response.text
    assert payload(response.json()["access_token"])["client_id"] == "svc one:two"


@pytest.fixture
def basic(idp: IdpServer) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{DEMO}:{idp.demo_secret}".encode()).decode()
    }


FORM = "application/x-www-form-urlencoded"


def _form(body: str | bytes, content_type: str = FORM) -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": content_type}}


# Each case: how to send it (given the demo client's secret), the status and the error code.
Request = Callable[[str], dict[str, Any]]
BAD_REQUESTS: dict[str, tuple[Request, int, str]] = {
    "missing grant_type": (
        lambda secret: _form(f"client_id=demo&client_secret={secret}"),
        400,
        "invalid_request",
    ),
    "empty grant_type": (
        lambda secret: _form(f"grant_type=&client_id=demo&client_secret={secret}"),
        400,
        "invalid_request",
    ),
    "unknown grant type": (
        lambda secret: _form(f"grant_type=implicit&client_id=demo&client_secret={secret}"),
        400,
        "unsupported_grant_type",
    ),
    "grant type URN we do not support": (
        lambda secret: _form(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
            f"&client_id=demo&client_secret={secret}"
        ),
        400,
        "unsupported_grant_type",
    ),
    "grant type the client may not use": (
        lambda secret: _form(
            f"grant_type=password&username=admin&password=x&client_id=demo&client_secret={secret}"
        ),
        400,
        "unauthorized_client",
    ),
    "public client asking for client_credentials": (
        lambda secret: _form("grant_type=client_credentials&client_id=web"),
        400,
        "unauthorized_client",
    ),
    "scope the client may not have": (
        lambda secret: _form(
            f"grant_type=client_credentials&scope=admin&client_id=demo&client_secret={secret}"
        ),
        400,
        "invalid_scope",
    ),
    "resource the client may not target": (
        lambda secret: _form(
            "grant_type=client_credentials&resource=https%3A%2F%2Fother.example"
            f"&client_id=demo&client_secret={secret}"
        ),
        400,
        "invalid_target",
    ),
    "refresh grant without a refresh token": (
        lambda secret: _form("grant_type=refresh_token&client_id=web"),
        400,
        "invalid_request",
    ),
    "refresh grant with an unknown refresh token": (
        lambda secret: _form("grant_type=refresh_token&refresh_token=nope&client_id=web"),
        400,
        "invalid_grant",
    ),
    "password grant with a wrong password": (
        lambda secret: _form("grant_type=password&username=admin&password=wrong&client_id=web"),
        400,
        "invalid_grant",
    ),
    "password grant without a password": (
        lambda secret: _form("grant_type=password&username=admin&client_id=web"),
        400,
        "invalid_request",
    ),
    "duplicated grant_type": (
        lambda secret: _form(
            "grant_type=client_credentials&grant_type=client_credentials"
            f"&client_id=demo&client_secret={secret}"
        ),
        400,
        "invalid_request",
    ),
    "duplicated client_secret": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=demo&client_secret={secret}"
            "&client_secret=other"
        ),
        400,
        "invalid_request",
    ),
    "duplicated empty parameter": (
        lambda secret: _form(
            f"grant_type=client_credentials&scope=&scope=&client_id=demo&client_secret={secret}"
        ),
        400,
        "invalid_request",
    ),
    "JSON body": (
        lambda secret: _form(
            orjson.dumps(
                {"grant_type": "client_credentials", "client_id": "demo", "client_secret": secret}
            ),
            "application/json",
        ),
        400,
        "invalid_request",
    ),
    "multipart body": (
        lambda secret: {
            "data": {"grant_type": "client_credentials", "client_id": "demo"},
            "files": {"client_secret": ("s", secret.encode())},
        },
        400,
        "invalid_request",
    ),
    "no content type": (
        lambda secret: {
            "content": f"grant_type=client_credentials&client_id=demo&client_secret={secret}"
        },
        400,
        "invalid_request",
    ),
    "text/plain content type": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=demo&client_secret={secret}", "text/plain"
        ),
        400,
        "invalid_request",
    ),
    "empty body": (lambda secret: _form(b""), 400, "invalid_request"),
    "malformed form": (
        lambda secret: _form(b"=&&=%%&grant_type&%zz=%"),
        400,
        "invalid_request",
    ),
    "non-UTF-8 percent-encoded value": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=demo&client_secret={secret}&scope=demo%FFread"
        ),
        400,
        "invalid_request",
    ),
    "non-UTF-8 raw bytes": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=demo&client_secret={secret}&scope=".encode()
            + b"\xff\xfe"
        ),
        400,
        "invalid_request",
    ),
    "NUL in the client id": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=de%00mo&client_secret={secret}"
        ),
        400,
        "invalid_request",
    ),
    "NUL in a username": (
        lambda secret: _form("grant_type=password&username=ad%00min&password=x&client_id=web"),
        400,
        "invalid_request",
    ),
    "NUL in a parameter name": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=demo&client_secret={secret}&a%00=1"
        ),
        400,
        "invalid_request",
    ),
    "wrong secret, client_secret_post": (
        lambda secret: _form("grant_type=client_credentials&client_id=demo&client_secret=wrong"),
        401,
        "invalid_client",
    ),
    "unknown client": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id=nobody&client_secret={secret}"
        ),
        401,
        "invalid_client",
    ),
    "very long client id": (
        lambda secret: _form(
            f"grant_type=client_credentials&client_id={'d' * 5000}&client_secret={secret}"
        ),
        401,
        "invalid_client",
    ),
    "no client authentication": (
        lambda secret: _form("grant_type=client_credentials"),
        401,
        "invalid_client",
    ),
    "public client presenting a secret": (
        lambda secret: _form(
            "grant_type=password&username=admin&password=x&client_id=web&client_secret=x"
        ),
        401,
        "invalid_client",
    ),
}

# Client authentication through the Authorization header: 401 with a Basic challenge (§5.2).
BAD_HEADERS: dict[str, tuple[str, int, str]] = {
    "wrong secret": ("Basic " + base64.b64encode(b"demo:wrong").decode(), 401, "invalid_client"),
    "unknown client": ("Basic " + base64.b64encode(b"ghost:x").decode(), 401, "invalid_client"),
    "not base64": ("Basic !!!not*base64!!!", 401, "invalid_client"),
    "base64 of non-UTF-8": (
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        401,
        "invalid_client",
    ),
    "NUL in the client id": (
        "Basic " + base64.b64encode(b"de\x00mo:x").decode(),
        401,
        "invalid_client",
    ),
    "percent-encoded NUL in the client id": (
        "Basic " + base64.b64encode(b"de%00mo:x").decode(),
        401,
        "invalid_client",
    ),
    "no colon": ("Basic " + base64.b64encode(b"demo").decode(), 401, "invalid_client"),
    "empty client id": ("Basic " + base64.b64encode(b":secret").decode(), 401, "invalid_client"),
    "padding only": ("Basic ====", 401, "invalid_client"),
    "another scheme": ("Bearer abc.def.ghi", 401, "invalid_client"),
    "scheme only": ("Basic", 401, "invalid_client"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_every_bad_token_request_gets_an_rfc6749_json_error(
    idp: IdpServer, http: httpx.Client, case: str
) -> None:
    build, status, error = BAD_REQUESTS[case]
    response = http.post("/oauth2/token", **build(idp.demo_secret))
    assert_oauth_error(response, status, error)
    assert_no_store(response)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize("case", list(BAD_HEADERS), ids=list(BAD_HEADERS))
def test_failed_basic_client_authentication_is_401_with_a_basic_challenge(
    http: httpx.Client, case: str
) -> None:
    value, status, error = BAD_HEADERS[case]
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": value},
    )
    assert_oauth_error(response, status, error)
    assert_no_store(response)
    assert response.headers["www-authenticate"] == 'Basic realm="tessera"'


def test_two_client_authentication_methods_at_once_are_refused(
    idp: IdpServer, http: httpx.Client, basic: dict[str, str]
) -> None:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_secret": idp.demo_secret},
        headers=basic,
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_a_client_id_in_the_body_must_match_the_basic_one(
    http: httpx.Client, basic: dict[str, str]
) -> None:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": WEB},
        headers=basic,
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_a_body_over_the_limit_is_413_before_it_is_read(
    idp: IdpServer, http: httpx.Client, basic: dict[str, str]
) -> None:
    limit = idp.settings.max_body_bytes
    body = "grant_type=client_credentials&scope=" + "a" * limit
    response = http.post("/oauth2/token", content=body, headers={**basic, "Content-Type": FORM})
    assert int(response.request.headers["content-length"]) > limit
    assert_oauth_error(response, 413, "invalid_request")


def test_a_streamed_body_over_the_limit_is_413(
    idp: IdpServer, http: httpx.Client, basic: dict[str, str]
) -> None:
    chunk = b"a" * 8192
    chunks = idp.settings.max_body_bytes // len(chunk) + 2

    def stream() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b"grant_type=client_credentials&scope="
        for _ in range(chunks):
            yield chunk

    response = http.post("/oauth2/token", content=stream(), headers={**basic, "Content-Type": FORM})
    assert "content-length" not in response.request.headers
    assert_oauth_error(response, 413, "invalid_request")


def test_a_body_just_under_the_limit_is_read(
    idp: IdpServer, http: httpx.Client, basic: dict[str, str]
) -> None:
    start = "grant_type=client_credentials&scope=demo:read+"
    body = start + "x" * (idp.settings.max_body_bytes - len(start))
    response = http.post("/oauth2/token", content=body, headers={**basic, "Content-Type": FORM})
    assert response.status_code == 200, response.text


def test_the_token_endpoint_only_takes_post(http: httpx.Client) -> None:
    response = http.get("/oauth2/token", params={"grant_type": "client_credentials"})
    assert response.status_code == 405
