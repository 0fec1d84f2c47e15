"""PKCE, S256 only: RFC 7636 Appendix B's example, and every way a request or verifier is wrong."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from tessera.idp.services.pkce import challenge_of, challenge_problem, verifies

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_rfc_7636_example() -> None:
    assert challenge_of(RFC_VERIFIER) == RFC_CHALLENGE
    assert verifies(RFC_VERIFIER, RFC_CHALLENGE)
    assert challenge_problem(RFC_CHALLENGE, "S256") is None


def test_a_challenge_made_as_clients_make_it_verifies() -> None:
    verifier = secrets.token_urlsafe(96)[:128]
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert verifies(verifier, challenge)


@pytest.mark.parametrize(
    ("challenge", "method", "reason"),
    [
        (None, None, "code_challenge is required"),
        ("", "S256", "code_challenge is required"),
        (RFC_CHALLENGE, None, "must be S256"),  # RFC 7636 would read this as plain
        (RFC_CHALLENGE, "plain", "must be S256"),
        (RFC_CHALLENGE, "s256", "must be S256"),
        (RFC_VERIFIER + "x", "S256", "not an S256 challenge"),
        (RFC_CHALLENGE[:-1], "S256", "not an S256 challenge"),
        (RFC_CHALLENGE[:-1] + "=", "S256", "not an S256 challenge"),
        (RFC_CHALLENGE[:-1] + "+", "S256", "not an S256 challenge"),
    ],
)
def test_requests_without_an_s256_challenge_are_refused(
    challenge: str | None, method: str | None, reason: str
) -> None:
    problem = challenge_problem(challenge, method)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "verifier",
    [
        None,
        "",
        RFC_VERIFIER[:42],  # one short of 43
        "a" * 129,  # past 128
        RFC_VERIFIER[:-1] + "/",  # outside the unreserved set
        RFC_VERIFIER[:-1] + "é",
        RFC_CHALLENGE,  # the challenge itself (a "plain" downgrade)
        RFC_VERIFIER[:-1] + ("k" if RFC_VERIFIER[-1] != "k" else "j"),
    ],
)
def test_a_wrong_or_malformed_verifier_does_not_verify(verifier: str | None) -> None:
    assert not verifies(verifier, RFC_CHALLENGE)
