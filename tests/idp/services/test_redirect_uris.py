"""Redirect URIs: exact match only (RFC 9700 §4.1.1), any port on a registered loopback IP
literal (RFC 8252 §7.3), and only safe URIs registered."""

from __future__ import annotations

import pytest

from tessera.idp.services.redirect_uris import matches, registration_problem
from tessera.idp.store.models import URI_LENGTH

REGISTERED = "https://app.example/callback"

# Every trick an attacker tries to pass off another URI as the registered one.
TRICKS = {
    "trailing slash": "https://app.example/callback/",
    "upper-case host": "https://APP.example/callback",
    "upper-case scheme": "HTTPS://app.example/callback",
    "upper-case path": "https://app.example/Callback",
    "extra path": "https://app.example/callback/../evil",
    "sub-path": "https://app.example/callback/more",
    "query added": "https://app.example/callback?next=https://evil.example",
    "fragment added": "https://app.example/callback#x",
    "user info": "https://app.example@evil.example/callback",
    "user info before": "https://evil.example@app.example/callback",
    "other port": "https://app.example:8443/callback",
    "default port spelled": "https://app.example:443/callback",
    "http instead of https": "http://app.example/callback",
    "sub-domain": "https://evil.app.example/callback",
    "suffix domain": "https://app.example.evil.example/callback",
    "percent-encoded path": "https://app.example/%63allback",
    "trailing dot host": "https://app.example./callback",
    "backslash": "https://app.example\\@evil.example/callback",
    "space": "https://app.example/callback ",
    "empty": "",
}


@pytest.mark.parametrize("requested", TRICKS.values(), ids=TRICKS.keys())
def test_only_the_exact_registered_uri_matches(requested: str) -> None:
    assert matches(REGISTERED, [REGISTERED])
    assert not matches(requested, [REGISTERED])


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:53124/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1]:61000/cb"),
        ("http://127.0.0.1/cb?app=1", "http://127.0.0.1:5000/cb?app=1"),
    ],
)
def test_a_registered_loopback_literal_matches_on_any_port(registered: str, requested: str) -> None:
    assert matches(requested, [registered])


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:5000/other",  # another path
        "http://127.0.0.1:5000/cb?x=1",  # another query
        "http://127.0.0.1:5000/cb#frag",
        "http://[::1]:5000/cb",  # another host
        "http://127.0.0.1:99999/cb",  # no port
        "http://127.0.0.1:0/cb",
        "http://user@127.0.0.1:5000/cb",
        "http://127.0.0.1:5000@evil.example/cb",
        "https://127.0.0.1:5000/cb",  # the loopback rule is for http
        "http://localhost:5000/cb",  # a name, not the literal registered
        "http://127.0.0.1.evil.example:5000/cb",
    ],
)
def test_the_loopback_rule_frees_the_port_and_nothing_else(requested: str) -> None:
    assert not matches(requested, ["http://127.0.0.1/cb"])


def test_localhost_is_matched_exactly_only() -> None:
    """RFC 8252 §8.3: ``localhost`` may resolve elsewhere; its port is not freed."""
    assert matches("http://localhost:3000/cb", ["http://localhost:3000/cb"])
    assert not matches("http://localhost:3001/cb", ["http://localhost:3000/cb"])


def test_any_of_several_registered_uris_matches() -> None:
    registered = ["https://a.example/cb", "https://b.example/cb"]
    assert matches("https://b.example/cb", registered)
    assert not matches("https://c.example/cb", registered)


def test_an_overlong_request_never_matches() -> None:
    long = "https://app.example/" + "a" * URI_LENGTH
    assert not matches(long, [long])


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example:8443/cb?tenant=acme",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/callback",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback",
    ],
)
def test_safe_uris_may_be_registered(uri: str) -> None:
    assert registration_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "1 to 2000 characters"),
        ("https://app.example/" + "a" * URI_LENGTH, "1 to 2000 characters"),
        ("https://app.example/cb#done", "no fragment"),
        ("http://app.example/cb", "https (http only on a loopback host)"),
        ("http://127.0.0.1.evil.example/cb", "https (http only on a loopback host)"),
        ("http://user@127.0.0.1/cb", "https (http only on a loopback host)"),
        ("https://user:pw@app.example/cb", "no user information"),
        ("https:///cb", "names a host"),
        ("https://app.example:port/cb", "an absolute URI"),
        ("javascript:alert(1)", "private-use scheme"),
        ("data:text/html,hi", "private-use scheme"),
        ("myapp:/cb", "private-use scheme"),
        ("/relative/cb", "private-use scheme"),
        ("HTTPS://app.example/cb", "lower case"),
        ("https://app.example/c b", "without spaces"),
        ("https://app.example/cb\n", "without spaces"),
        ("https://app.example/caf\u00e9", "printable ASCII"),
    ],
)
def test_unsafe_uris_are_refused_with_a_reason(uri: str, reason: str) -> None:
    problem = registration_problem(uri)
    assert problem is not None and reason in problem


def test_a_uri_the_provider_calls_is_web_only() -> None:
    assert registration_problem("com.example.app:/logout", web_only=True) is not None
    assert registration_problem("https://app.example/logout", web_only=True) is None
