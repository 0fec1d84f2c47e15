"""The bounded JSON fetch, against a real server: size cap, redirects, encodings, schemes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tessera.guard.errors import FetchError
from tessera.guard.fetch import afetch_json, cache_max_age, check_url, fetch_json

from .servers import JwksServer


@pytest.mark.parametrize("mode", ["oversize", "declared-oversize"])
def test_response_past_the_cap_is_refused(jwks_server: JwksServer, mode: str) -> None:
    jwks_server.mode = mode
    with pytest.raises(FetchError, match="too large"):
        fetch_json(jwks_server.url + "/jwks")
    with pytest.raises(FetchError, match="too large"):
        asyncio.run(afetch_json(jwks_server.url + "/jwks"))


def test_cap_is_configurable(jwks_server: JwksServer) -> None:
    with pytest.raises(FetchError, match="too large"):
        fetch_json(jwks_server.url + "/jwks", max_bytes=10)


def test_redirect_is_refused_even_with_a_following_client(jwks_server: JwksServer) -> None:
    jwks_server.mode = "redirect"
    with httpx.Client(follow_redirects=True) as client, pytest.raises(FetchError, match="redir"):
        fetch_json(jwks_server.url + "/jwks", client=client)
    assert jwks_server.counts.get("/good-jwks", 0) == 0


def test_compressed_response_is_refused(jwks_server: JwksServer) -> None:
    jwks_server.mode = "gzip"
    with pytest.raises(FetchError, match="compressed"):
        fetch_json(jwks_server.url + "/jwks")


def test_error_status_is_a_fetch_error(jwks_server: JwksServer) -> None:
    jwks_server.mode = "error"
    with pytest.raises(FetchError, match="500"):
        fetch_json(jwks_server.url + "/jwks")


def test_unreachable_server_is_a_fetch_error(jwks_server: JwksServer) -> None:
    url = jwks_server.url + "/jwks"
    jwks_server.stop()
    with pytest.raises(FetchError, match="ConnectError"):
        fetch_json(url, timeout=1)


def test_non_object_json_is_refused(jwks_server: JwksServer) -> None:
    with pytest.raises(FetchError, match="JSON object"):
        fetch_json(jwks_server.url + "/array")


@pytest.mark.parametrize(
    "url",
    ["http://id.example/jwks", "ftp://127.0.0.1/jwks", "file:///etc/passwd", "http://10.0.0.1/"],
)
def test_only_https_or_loopback_http(url: str) -> None:
    with pytest.raises(FetchError):
        check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.2:9/x", "http://[::1]:9/x", "https://id.example"])
def test_loopback_http_and_https_pass(url: str) -> None:
    assert check_url(url)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Cache-Control": "max-age=60"}, 60.0),
        ({"Cache-Control": "public, max-age=60", "Age": "70"}, 0.0),
        ({"Cache-Control": "no-cache"}, 0.0),
        ({"Cache-Control": "max-age=soon"}, 0.0),
        ({"Cache-Control": "public"}, None),
        ({}, None),
    ],
)
def test_cache_max_age(header: dict[str, str], expected: float | None) -> None:
    assert cache_max_age(httpx.Headers(header)) == expected
