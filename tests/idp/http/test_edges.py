"""The edges of the provider's HTTP surface, over real HTTP: bounded request headers (431), and
one error shape per family — RFC 9457 problems for every refusal of the admin API, including the
ones the framework decides (unknown route, method, unparseable or non-JSON body, size limits);
RFC 6749 errors on the OAuth endpoints."""

from __future__ import annotations

import httpx
import pytest

from .checks import assert_oauth_error, assert_problem
from .servers import DEMO, IdpServer, admin_token


@pytest.fixture(scope="module")
def bearer(idp: IdpServer) -> dict[str, str]:
    with idp.client() as http:
        return {"Authorization": f"Bearer {admin_token(http, 'admin', idp.admin_password)}"}


# ---------------------------------------------------------------- bounded headers (431)


def test_one_header_of_a_megabyte_is_431(idp: IdpServer, http: httpx.Client) -> None:
    response = http.get("/.well-known/jwks.json", headers={"X-Padding": "a" * 1024 * 1024})
    assert_oauth_error(response, 431, "invalid_request")
    assert http.get("/.well-known/jwks.json").status_code == 200  # the server is still fine


def test_two_thousand_headers_are_431(idp: IdpServer, http: httpx.Client) -> None:
    headers = [(f"X-H{i}", "v") for i in range(2000)]
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=headers,
        auth=(DEMO, idp.demo_secret),
    )
    assert_oauth_error(response, 431, "invalid_request")


def test_headers_just_within_the_bounds_are_served(idp: IdpServer, http: httpx.Client) -> None:
    settings = idp.settings
    # httpx adds a few headers of its own (host, accept, user-agent, ...): leave them room.
    count = settings.max_header_count - 10
    headers = [(f"X-H{i}", "v") for i in range(count)]
    assert http.get("/.well-known/jwks.json", headers=headers).status_code == 200
    big = {"X-Padding": "a" * (settings.max_header_bytes - 512)}
    assert http.get("/.well-known/jwks.json", headers=big).status_code == 200
    too_many = [(f"X-H{i}", "v") for i in range(settings.max_header_count + 1)]
    assert http.get("/.well-known/jwks.json", headers=too_many).status_code == 431


def test_a_bearer_value_within_the_header_bound_is_still_the_guards_to_refuse(
    http: httpx.Client,
) -> None:
    """12 KB fits the header bound; what it carries is no token, and the guard says so."""
    response = http.get("/admin/tenants", headers={"Authorization": "Bearer " + "a" * 12_000})
    assert response.status_code == 401
    assert 'error_description="malformed"' in response.headers["www-authenticate"]


def test_the_admin_api_answers_431_as_a_problem(http: httpx.Client, bearer: dict[str, str]) -> None:
    response = http.get("/admin/tenants", headers={**bearer, "X-Padding": "a" * 20_000})
    assert_problem(response, 431, "headers_too_large")


# ---------------------------------------------------------------- one shape for the admin API


def test_an_unknown_admin_route_is_a_404_problem(
    http: httpx.Client, bearer: dict[str, str]
) -> None:
    assert_problem(http.get("/admin/no-such-thing", headers=bearer), 404, "not_found")
    assert_problem(http.get("/admin/no-such-thing"), 404, "not_found")


def test_a_method_the_route_lacks_is_a_405_problem_with_allow(
    http: httpx.Client, bearer: dict[str, str]
) -> None:
    response = http.delete("/admin/tenants", headers=bearer)
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_json_nested_5000_deep_is_a_422_problem(http: httpx.Client, bearer: dict[str, str]) -> None:
    body = b"[" * 5000 + b"]" * 5000
    response = http.post(
        "/admin/tenants",
        content=body,
        headers={**bearer, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "invalid")
    assert "detail" in response.json() and response.json()["errors"][0]["loc"] == ["body"]


@pytest.mark.parametrize(
    "media_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""]
)
def test_a_body_that_is_not_json_is_a_415_problem(
    http: httpx.Client, bearer: dict[str, str], media_type: str
) -> None:
    headers = {**bearer, "Content-Type": media_type} if media_type else bearer
    response = http.post("/admin/tenants", content=b'{"id": "t-415"}', headers=headers)
    assert_problem(response, 415, "unsupported_media_type")


def test_json_with_parameters_or_a_json_suffix_is_json(
    http: httpx.Client, bearer: dict[str, str]
) -> None:
    for media_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = http.post(
            "/admin/tenants", content=b"{}", headers={**bearer, "Content-Type": media_type}
        )
        assert_problem(response, 422, "invalid")  # parsed as JSON, then found incomplete


def test_a_body_over_the_limit_is_a_413_problem(
    idp: IdpServer, http: httpx.Client, bearer: dict[str, str]
) -> None:
    body = b'{"id": "' + b"a" * idp.settings.max_body_bytes + b'"}'
    response = http.post(
        "/admin/tenants", content=body, headers={**bearer, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "body_too_large")


def test_the_oauth_endpoints_keep_rfc6749_errors(idp: IdpServer, http: httpx.Client) -> None:
    body = "grant_type=client_credentials&scope=" + "a" * idp.settings.max_body_bytes
    response = http.post(
        "/oauth2/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(DEMO, idp.demo_secret),
    )
    assert_oauth_error(response, 413, "invalid_request")
