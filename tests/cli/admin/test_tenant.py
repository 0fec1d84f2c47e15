"""``tessera admin tenant``: create, list, show, update — each change audited once, as the
operator, and every refusal one clean line."""

from __future__ import annotations

import json

import pytest

from tessera.idp.provider import Provider

from .conftest import ACTOR, Admin, admin_changes, document, events, ok, refused


def test_create_list_show_update_and_their_json(admin: Admin, provider: Provider) -> None:
    made = document(
        admin(
            "tenant", "create", "acme", "--name", "Acme Corp", "--mfa-policy", "required", "--json"
        )
    )
    assert made.keys() == {"id", "name", "mfa_policy", "created_at"}
    assert (made["id"], made["name"], made["mfa_policy"]) == ("acme", "Acme Corp", "required")
    ok(admin("tenant", "create", "beta"))  # name defaults to the id, policy to optional

    listed = document(admin("tenant", "list", "--json"))
    assert [(t["id"], t["name"], t["mfa_policy"]) for t in listed["tenants"]] == [
        ("acme", "Acme Corp", "required"),
        ("beta", "beta", "optional"),
    ]
    assert document(admin("tenant", "show", "acme", "--json")) == made

    updated = document(
        admin("tenant", "update", "acme", "--name", "Acme", "--mfa-policy", "optional", "--json")
    )
    assert updated == {
        **made,
        "name": "Acme",
        "mfa_policy": "optional",
        "updated": ["mfa_policy", "name"],
    }
    unchanged = document(admin("tenant", "update", "acme", "--name", "Acme", "--json"))
    assert unchanged["updated"] == []

    assert admin_changes(provider) == [
        ("tenant.created", "acme", ACTOR),
        ("tenant.created", "beta", ACTOR),
        ("tenant.updated", "acme", ACTOR),
    ]
    (row,) = events(provider, "tenant.updated")
    assert json.loads(row.details) == {
        "before": {"name": "Acme Corp", "mfa_policy": "required"},
        "after": {"name": "Acme", "mfa_policy": "optional"},
    }
    assert row.user_agent is not None and row.user_agent.startswith("tessera-cli/")


def test_text_output_is_a_table_for_people(admin: Admin) -> None:
    created = ok(admin("tenant", "create", "acme", "--name", "Acme Corp"))
    assert "Tenant acme created" in created.stdout
    assert "Acme Corp" in created.stdout and "optional" in created.stdout
    listed = ok(admin("tenant", "list")).stdout
    assert "acme" in listed and "Acme Corp" in listed


def test_a_new_tenant_comes_with_its_admin_role(admin: Admin) -> None:
    ok(admin("tenant", "create", "acme"))
    role = document(admin("role", "show", "-t", "acme", "admin", "--json"))
    assert "admin:users" in role["permissions"]
    assert "admin:tenants" not in role["permissions"]  # system permissions stay in "default"


def test_refusals_are_one_line_with_an_exit_code(admin: Admin, provider: Provider) -> None:
    ok(admin("tenant", "create", "acme"))
    refused(admin("tenant", "create", "acme"), 4, "a tenant with that id exists")
    refused(admin("tenant", "show", "nope"), 3, "no such tenant")
    refused(admin("tenant", "update", "nope", "--name", "x"), 3, "no such tenant")
    refused(
        admin("tenant", "create", "Not_An_Id"),
        2,
        "a tenant id is 1-63 lowercase letters, digits or '-'",
    )
    refused(
        admin("tenant", "update", "acme", "--mfa-policy", "sometimes"),
        2,
        "mfa_policy is one of optional, required",
    )
    refused(admin("tenant", "update", "acme"), 2, "nothing to change: give --name or --mfa-policy")
    refused(admin("tenant", "create", "beta", "--name", " "), 2, "--name cannot be blank")
    assert admin_changes(provider) == [("tenant.created", "acme", ACTOR)]


@pytest.mark.unmigrated
def test_json_refusals_are_one_json_document(admin: Admin) -> None:
    unmigrated = admin("tenant", "show", "nope", "--json")  # read-only: it does not migrate
    assert unmigrated.exit_code == 2 and unmigrated.stderr == ""
    assert json.loads(unmigrated.stdout)["code"] == "invalid_input"
    ok(admin("tenant", "create", "acme"))
    result = admin("tenant", "show", "nope", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {"code": "not_found", "message": "no such tenant"}
    assert result.stderr == ""
