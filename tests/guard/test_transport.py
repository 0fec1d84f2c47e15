"""Token transport: Bearer per RFC 6750, HttpOnly cookie with double-submit CSRF, no query."""

from __future__ import annotations

import pytest

from tessera.guard import CsrfFailed, InvalidRequest, Transport

COOKIE = Transport(cookie="access_token")
TOKEN = "aaa.bbb.ccc"


def test_bearer_header_is_read() -> None:
    assert Transport().extract(method="GET", authorization=[f"Bearer {TOKEN}"]) == TOKEN
    assert Transport().extract(method="GET", authorization=[f"bearer  {TOKEN} "]) == TOKEN


def test_no_credentials_is_none() -> None:
    assert Transport().extract(method="GET") is None
    assert Transport().extract(method="GET", authorization=["Basic YWRhOnB3"]) is None


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"query": ["access_token"]}, "token_in_query"),
        ({"authorization": ["Bearer a", "Bearer b"]}, "multiple_authorization"),
        ({"authorization": ["Bearer"]}, "malformed_authorization"),
        ({"authorization": ["Bearer a b"]}, "malformed_authorization"),
        ({"authorization": ["Bearer \u00e9"]}, "malformed_authorization"),
    ],
)
def test_malformed_requests_are_invalid_request(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        Transport().extract(method="GET", **kwargs)  # type: ignore[arg-type]
    assert refused.value.code == code and refused.value.status == 400


def test_query_token_is_refused_even_with_a_header() -> None:
    with pytest.raises(InvalidRequest, match="token_in_query"):
        Transport().extract(method="GET", authorization=[f"Bearer {TOKEN}"], query=["access_token"])


def test_cookie_is_ignored_unless_cookie_mode_is_on() -> None:
    assert Transport().extract(method="POST", cookies={"access_token": TOKEN}) is None


def test_cookie_on_a_safe_method_needs_no_csrf() -> None:
    assert COOKIE.extract(method="GET", cookies={"access_token": TOKEN}) == TOKEN


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_cookie_on_an_unsafe_method_needs_the_matching_csrf_header(method: str) -> None:
    cookies = {"access_token": TOKEN, "csrf_token": "s3cret"}
    assert COOKIE.extract(method=method, cookies=cookies, csrf="s3cret") == TOKEN
    for csrf in (None, "", "wrong", "s3cret "):
        with pytest.raises(CsrfFailed):
            COOKIE.extract(method=method, cookies=cookies, csrf=csrf)
    with pytest.raises(CsrfFailed):
        COOKIE.extract(method=method, cookies={"access_token": TOKEN}, csrf="s3cret")


def test_bearer_and_cookie_together_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="multiple_transports"):
        COOKIE.extract(
            method="GET", authorization=[f"Bearer {TOKEN}"], cookies={"access_token": TOKEN}
        )
