"""Rules: scopes all-of, roles any-of, tenant equality, predicates; nothing more than asked."""

from __future__ import annotations

import pytest

from tessera.guard import Forbidden, InsufficientScope, Principal, rule


def principal(**claims: object) -> Principal:
    return Principal.from_claims({"sub": "ada", **claims})


def test_an_empty_rule_only_requires_authentication() -> None:
    rule().check(principal())


def test_scopes_are_all_of() -> None:
    holder = principal(scope="a b")
    rule(scopes=["a", "b"]).check(holder)
    with pytest.raises(InsufficientScope) as refused:
        rule(scopes=["a", "c"]).check(holder)
    assert refused.value.scope == ("a", "c")


def test_roles_are_any_of_and_imply_no_scope() -> None:
    admin = principal(roles=["admin"])
    rule(roles=["admin", "clerk"]).check(admin)
    with pytest.raises(Forbidden, match="insufficient_role"):
        rule(roles=["clerk"]).check(admin)
    with pytest.raises(InsufficientScope):
        rule(scopes=["orders:write"]).check(admin)


@pytest.mark.parametrize(("token_tenant", "route_tenant"), [("acme", "globex"), (None, "acme")])
def test_tenant_must_equal_the_route_tenant(token_tenant: str | None, route_tenant: str) -> None:
    holder = principal() if token_tenant is None else principal(tenant=token_tenant)
    with pytest.raises(Forbidden, match="tenant_mismatch"):
        rule(tenant="tenant_id").check(holder, tenant=route_tenant)


def test_tenant_rule_without_a_route_value_refuses() -> None:
    with pytest.raises(Forbidden, match="tenant_mismatch"):
        rule(tenant="tenant_id").check(principal(tenant="acme"))


def test_predicate_decides_last() -> None:
    only_ada = rule(predicate=lambda p: p.sub == "ada")
    only_ada.check(principal())
    with pytest.raises(Forbidden, match="forbidden"):
        only_ada.check(Principal.from_claims({"sub": "bob"}))


def test_a_single_string_is_not_a_scope_list() -> None:
    with pytest.raises(TypeError):
        rule(scopes="orders:read")
