"""Migration 0002 moves an existing deployment's roles into tables, and back on downgrade; the
expand-only steps leave the rows they find as they were, and reverse."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tessera.idp.store.database import MIGRATIONS, SCHEMA_HEAD, Database

pytestmark = pytest.mark.unmigrated  # each test migrates its way


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    made = Database(database_url)
    yield made
    made.dispose()


def migrate(database: Database, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.execution_options(tessera_write=True).begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


USERS = [
    ("u1", "acme", "ada", "Ada@Example.com", "admin ops"),
    ("u2", "acme", "bob", None, "ops"),
    ("u3", "globex", "cy", None, "admin"),
    ("u4", "globex", "dee", None, ""),
]


def test_roles_move_from_the_users_column_into_tables_and_back(database: Database) -> None:
    migrate(database, "upgrade", "0001")
    with database.engine.begin() as connection:
        for tenant in ("acme", "globex"):
            connection.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES (:id, :id, 0)"),
                {"id": tenant},
            )
        for user_id, tenant, name, email, roles in USERS:
            connection.execute(
                text(
                    "INSERT INTO users (id, tenant_id, username, username_key, email,"
                    " password_hash, status, roles, created_at, updated_at)"
                    " VALUES (:id, :tenant, :name, :name, :email, 'h', 'active', :roles, 0, 0)"
                ),
                {"id": user_id, "tenant": tenant, "name": name, "email": email, "roles": roles},
            )
        # Rows that point at users must survive the users table changing under them.
        connection.execute(
            text(
                "INSERT INTO clients (id, tenant_id, name, grant_types, allowed_scopes,"
                " default_scopes, audience, first_party, created_at)"
                " VALUES ('web', 'acme', 'web', 'password', '', '', 'api', true, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO refresh_families (id, tenant_id, subject, user_id, client_id, scope,"
                " audience, amr, auth_time, created_at, expires_at)"
                " VALUES ('f1', 'acme', 'u1', 'u1', 'web', '', 'api', 'pwd', 0, 0, 9)"
            )
        )

    migrate(database, "upgrade", "head")
    with database.engine.connect() as connection:
        held = connection.execute(
            text(
                "SELECT users.id, roles.tenant_id, roles.name, roles.permissions FROM user_roles"
                " JOIN users ON users.id = user_roles.user_id"
                " JOIN roles ON roles.id = user_roles.role_id ORDER BY users.id, roles.name"
            )
        ).all()
        emails = dict(connection.execute(text("SELECT id, email_key FROM users")).all())
        policies = set(connection.execute(text("SELECT mfa_policy FROM tenants")).scalars())
        families = connection.execute(text("SELECT id, user_id FROM refresh_families")).all()
        statuses = set(connection.execute(text("SELECT status FROM clients")).scalars())
    admin = "admin:users admin:roles admin:clients admin:audit"
    assert [tuple(row) for row in held] == [
        ("u1", "acme", "admin", admin),
        ("u1", "acme", "ops", ""),
        ("u2", "acme", "ops", ""),
        ("u3", "globex", "admin", admin),
    ]
    assert emails == {"u1": "ada@example.com", "u2": None, "u3": None, "u4": None}
    assert policies == {"optional"} and statuses == {"active"}
    assert [tuple(row) for row in families] == [("f1", "u1")]

    # Audit ids are 64-bit, and the next one follows on from there.
    with database.engine.begin() as connection:
        row = "(:id, 0, 'acme', 'test', 'success', '{}')"
        columns = "INSERT INTO audit_events (id, at, tenant_id, event, outcome, details) VALUES "
        connection.execute(text(columns + row), {"id": 3_000_000_000})
        if database.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT setval('audit_events_id_seq', 3000000000)"))
        connection.execute(
            text(
                "INSERT INTO audit_events (at, tenant_id, event, outcome, details)"
                " VALUES (0, 'acme', 'test', 'success', '{}')"
            )
        )
        ids = connection.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars()
        assert list(ids) == [3_000_000_000, 3_000_000_001]
        connection.execute(text("DELETE FROM audit_events"))

    migrate(database, "downgrade", "0001")
    with database.engine.connect() as connection:
        restored = dict(connection.execute(text("SELECT id, roles FROM users")).all())
        families = connection.execute(text("SELECT id, user_id FROM refresh_families")).all()
    assert restored == {"u1": "admin ops", "u2": "ops", "u3": "admin", "u4": ""}
    assert [tuple(row) for row in families] == [("f1", "u1")]


def test_clients_of_before_the_code_flow_register_no_uris_and_the_step_reverses(
    database: Database,
) -> None:
    migrate(database, "upgrade", "0002")
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('a', 'a', 0)"))
        connection.execute(
            text(
                "INSERT INTO clients (id, tenant_id, name, grant_types, allowed_scopes,"
                " default_scopes, audience, first_party, status, created_at)"
                " VALUES ('svc', 'a', 'svc', 'client_credentials', '', '', 'api', false,"
                " 'active', 0)"
            )
        )
    migrate(database, "upgrade", "0003")
    with database.engine.connect() as connection:
        uris = connection.execute(
            text(
                "SELECT redirect_uris, post_logout_redirect_uris, backchannel_logout_uri"
                " FROM clients"
            )
        ).all()
        codes = connection.execute(text("SELECT count(*) FROM authorization_codes")).scalar()
    assert [tuple(row) for row in uris] == [("", "", None)] and codes == 0

    migrate(database, "downgrade", "0002")
    with database.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM clients")).keys()
        tables = database.engine.dialect.get_table_names(connection)
    assert "redirect_uris" not in columns and "authorization_codes" not in tables


def test_clients_of_before_private_key_jwt_keep_their_way_and_the_step_reverses(
    database: Database,
) -> None:
    migrate(database, "upgrade", "0007")
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('a', 'a', 0)"))
        connection.execute(
            text(
                "INSERT INTO clients (id, tenant_id, name, secret_hash, grant_types,"
                " allowed_scopes, default_scopes, audience, first_party, status, created_at)"
                " VALUES ('svc', 'a', 'svc', 'h', 'client_credentials', '', '', 'api', false,"
                " 'active', 0)"
            )
        )
    migrate(database, "upgrade", "0008")
    with database.engine.begin() as connection:
        keys = connection.execute(text("SELECT secret_hash, jwks FROM clients")).all()
        connection.execute(
            text(
                "INSERT INTO client_assertions (client_id, jti, expires_at)"
                " VALUES ('svc', 'j1', 10)"
            )
        )
    assert [tuple(row) for row in keys] == [("h", None)]
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO client_assertions (client_id, jti, expires_at)"
                " VALUES ('svc', 'j1', 20)"
            )
        )

    migrate(database, "downgrade", "0007")
    with database.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM clients")).keys()
        tables = database.engine.dialect.get_table_names(connection)
    assert "jwks" not in columns and "client_assertions" not in tables


def test_the_schema_head_the_code_names_is_alembic_s_one_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]


# In a process of its own: this one imported Alembic long ago.
STARTS = """
import json, sys
from tessera.idp.store.database import Database
database = Database(sys.argv[1])
before = database.at_head()
database.upgrade()
print(json.dumps([before, database.at_head(), "alembic" in sys.modules]))
"""


def _start(url: str) -> list[bool]:
    done = subprocess.run(
        [sys.executable, "-c", STARTS, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: list[bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_a_database_at_head_is_only_read_and_alembic_never_imported(database_url: str) -> None:
    # A fresh database is migrated, with Alembic; one at head is found so by one read.
    assert _start(database_url) == [False, True, True]
    assert _start(database_url) == [True, True, False]


def test_a_database_a_step_behind_is_migrated_to_head(database: Database) -> None:
    migrate(database, "upgrade", "0008")
    assert not database.at_head()
    database.upgrade()
    assert database.at_head()
    with database.engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == SCHEMA_HEAD
