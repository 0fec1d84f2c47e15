"""Principal: what a claims set grants, and that malformed claims grant nothing."""

from __future__ import annotations

import dataclasses

import pytest

from tessera.guard import Principal


def test_scope_string_and_scp_list() -> None:
    assert Principal.from_claims({"scope": "a  b"}).scopes == {"a", "b"}
    assert Principal.from_claims({"scp": ["a"]}).scopes == {"a"}
    assert Principal.from_claims({"scope": "a", "scp": ["b"]}).scopes == {"a"}


@pytest.mark.parametrize("value", [7, ["a", 1], {"a": 1}, None])
def test_malformed_scopes_and_roles_grant_nothing(value: object) -> None:
    principal = Principal.from_claims({"scope": value, "roles": value})
    assert principal.scopes == frozenset() and principal.roles == frozenset()


def test_tenant_and_client_come_from_strings_only() -> None:
    principal = Principal.from_claims({"tenant": 5, "client_id": "c", "azp": "z"})
    assert principal.tenant is None and principal.client_id == "c"
    assert Principal.from_claims({"azp": "z"}).client_id == "z"


def test_custom_claim_names() -> None:
    principal = Principal.from_claims(
        {"tid": "acme", "groups": ["ops"]}, tenant_claim="tid", roles_claim="groups"
    )
    assert (principal.tenant, principal.roles) == ("acme", {"ops"})


def test_principal_is_frozen_and_its_claims_read_only() -> None:
    principal = Principal.from_claims({"sub": "ada"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.sub = "bob"  # type: ignore[misc]
    with pytest.raises(TypeError):
        principal.claims["sub"] = "bob"  # type: ignore[index]
