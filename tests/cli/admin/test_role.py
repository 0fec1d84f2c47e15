"""``tessera admin role``: create, list, show, update (replace, add, remove), delete — each change
one audit row as the operator, and the roles' permissions reaching their holders."""

from __future__ import annotations

import json

from tessera.idp.provider import Provider

from .conftest import (
    ACTOR,
    Admin,
    add_tenant,
    add_user,
    admin_changes,
    document,
    events,
    ok,
    refused,
)

ROLE_FIELDS = {"name", "tenant", "description", "permissions", "created_at", "updated_at"}


def test_create_list_show_update_delete(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(
        admin(
            "role",
            "create",
            "-t",
            "acme",
            "support",
            "-p",
            "orders:read",
            "--permission",
            "tickets:read tickets:write",
            "--description",
            "helps customers",
            "--json",
        )
    )
    assert made.keys() == ROLE_FIELDS
    assert made["permissions"] == ["orders:read", "tickets:read", "tickets:write"]
    assert (made["tenant"], made["description"]) == ("acme", "helps customers")

    listed = document(admin("role", "list", "-t", "acme", "--json"))
    assert [role["name"] for role in listed["roles"]] == ["admin", "support"]
    assert document(admin("role", "show", "-t", "acme", "support", "--json")) == made
    assert "tickets:write" in ok(admin("role", "show", "-t", "acme", "support")).stdout

    added = document(
        admin(
            "role",
            "update",
            "-t",
            "acme",
            "support",
            "--add",
            "refunds:write",
            "--remove",
            "tickets:write",
            "--json",
        )
    )
    assert added["permissions"] == ["orders:read", "tickets:read", "refunds:write"]
    assert added["updated"] == ["permissions"]
    replaced = document(
        admin(
            "role",
            "update",
            "-t",
            "acme",
            "support",
            "--permission",
            "orders:read",
            "--description",
            "reads orders",
            "--json",
        )
    )
    assert (replaced["permissions"], replaced["description"]) == (["orders:read"], "reads orders")
    assert replaced["updated"] == ["description", "permissions"]
    cleared = document(admin("role", "update", "-t", "acme", "support", "-p", "", "--json"))
    assert cleared["permissions"] == []

    deleted = document(admin("role", "delete", "-t", "acme", "support", "--json"))
    assert deleted == {"tenant": "acme", "name": "support", "deleted": True}
    refused(admin("role", "show", "-t", "acme", "support"), 3, "no such role")

    assert admin_changes(provider)[1:] == [
        ("role.created", "acme", ACTOR),
        ("role.updated", "acme", ACTOR),
        ("role.updated", "acme", ACTOR),
        ("role.updated", "acme", ACTOR),
        ("role.deleted", "acme", ACTOR),
    ]
    first_update = events(provider, "role.updated")[0]
    assert json.loads(first_update.details) == {
        "role": "support",
        "before": {"permissions": ["orders:read", "tickets:read", "tickets:write"]},
        "after": {"permissions": ["orders:read", "tickets:read", "refunds:write"]},
    }


def test_deleting_a_role_takes_it_from_its_holders(admin: Admin, provider: Provider) -> None:
    add_tenant(admin, "acme", "member")
    add_user(admin, "ada", "--role", "member")
    ok(admin("role", "delete", "-t", "acme", "member"))
    assert document(admin("user", "show", "-t", "acme", "-u", "ada", "--json"))["roles"] == []
    (row,) = events(provider, "role.deleted")
    assert json.loads(row.details)["holders"] == 1


def test_refusals(admin: Admin, provider: Provider) -> None:
    add_tenant(admin, "acme", "member")
    before = admin_changes(provider)
    refused(admin("role", "create", "-t", "acme", "member"), 4, "a role of that name exists")
    refused(
        admin("role", "create", "-t", "acme", "bad name"),
        2,
        "a role name is 1-100 letters, digits, '_', '.', ':' or '-'",
    )
    refused(
        admin("role", "create", "-t", "acme", "x", "-p", 'quote"d'),
        2,
        "a permission is 1-100 visible characters, no space, quote or \\",
    )
    refused(
        admin("role", "create", "-t", "acme", "root", "-p", "admin:tenants"),
        2,
        "admin:tenants exists only in the system tenant",
    )
    refused(
        admin("role", "update", "-t", "acme", "member", "--add", "admin:keys"),
        2,
        "admin:keys exists only in the system tenant",
    )
    refused(
        admin("role", "update", "-t", "acme", "member"),
        2,
        "nothing to change: give --permission, --add, --remove or --description",
    )
    refused(admin("role", "update", "-t", "acme", "ghost", "--add", "x"), 3, "no such role")
    refused(admin("role", "delete", "-t", "acme", "ghost"), 3, "no such role")
    refused(admin("role", "list", "-t", "nope"), 3, "no such tenant")
    assert admin_changes(provider) == before
