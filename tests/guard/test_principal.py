"""Principal: every field has its annotated type or the token is refused; absent claims grant
nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tessera import jose
from tessera.guard import Principal


def test_scope_string_and_scp_list() -> None:
    assert Principal.from_claims({"sub": "a", "scope": "a  b"}).scopes == {"a", "b"}
    assert Principal.from_claims({"sub": "a", "scp": ["a"]}).scopes == {"a"}
    assert Principal.from_claims({"sub": "a", "scp": "a b"}).scopes == {"a", "b"}
    assert Principal.from_claims({"sub": "a", "scope": "a", "scp": ["b"]}).scopes == {"a"}


def test_absent_claims_grant_nothing() -> None:
    principal = Principal.from_claims({"sub": "ada"})
    assert principal.scopes == frozenset() and principal.roles == frozenset()
    assert principal.tenant is None and principal.client_id is None and principal.jti is None


@pytest.mark.parametrize("value", [None, "", 7, ["ada"], {"id": "ada"}, True])
def test_sub_is_a_non_empty_string_or_the_token_is_refused(value: object) -> None:
    with pytest.raises(jose.ClaimError) as refused:
        Principal.from_claims({"sub": value})
    assert refused.value.claim == "sub"


def test_a_token_without_sub_names_nobody() -> None:
    with pytest.raises(jose.MissingClaim) as refused:
        Principal.from_claims({"scope": "orders:read"})
    assert refused.value.claim == "sub"


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("scope", 7),
        ("scope", ["a", "b"]),
        ("scope", None),
        ("scp", ["a", 1]),
        ("scp", {"a": 1}),
        ("scp", None),
        ("roles", "admin"),
        ("roles", ["admin", None]),
        ("roles", None),
        ("tenant", 5),
        ("tenant", ""),
        ("tenant", None),
        ("client_id", 1),
        ("azp", ["web"]),
    ],
)
def test_an_ill_typed_claim_is_refused_naming_it(claim: str, value: Any) -> None:
    with pytest.raises(jose.ClaimError) as refused:
        Principal.from_claims({"sub": "ada", claim: value})
    assert refused.value.claim == claim
    assert refused.value.code == "invalid_claim"


def test_client_comes_from_client_id_then_azp() -> None:
    assert Principal.from_claims({"sub": "a", "client_id": "c", "azp": "z"}).client_id == "c"
    assert Principal.from_claims({"sub": "a", "azp": "z"}).client_id == "z"


def test_custom_claim_names() -> None:
    principal = Principal.from_claims(
        {"sub": "a", "tid": "acme", "groups": ["ops"]}, tenant_claim="tid", roles_claim="groups"
    )
    assert (principal.tenant, principal.roles) == ("acme", {"ops"})
    with pytest.raises(jose.ClaimError):
        Principal.from_claims({"sub": "a", "groups": "ops"}, roles_claim="groups")


def test_principal_is_frozen_and_its_claims_read_only() -> None:
    principal = Principal.from_claims({"sub": "ada"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.sub = "bob"  # type: ignore[misc]
    with pytest.raises(TypeError):
        principal.claims["sub"] = "bob"  # type: ignore[index]
