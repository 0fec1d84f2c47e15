"""A real identity provider for the HTTP tests: ``create_app`` under uvicorn on 127.0.0.1.

The socket is bound before the settings are made, so the issuer is the server's own URL (what
discovery at a guard checks) and no port is guessed. The server runs in a thread of the test
process, which keeps the provider (keyring, database) at hand for what HTTP cannot do: create a
second user or client, rotate keys. It is the approach of ``tests/guard/servers.py``, with the
app's lifespan on (it starts the provider and its housekeeping).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tessera.idp.config import Settings
from tessera.idp.flows.bootstrap import ADMIN_AUDIENCE, DEFAULT_TENANT, DEMO_SCOPES, bootstrap
from tessera.idp.http.app import create_app
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.services.clients import create_client
from tessera.idp.services.rbac import SYSTEM_ADMIN, TENANT_ADMIN, create_role
from tessera.idp.services.tenants import create_tenant
from tessera.jose import b64

from ...services import migrated_database

DEMO = "demo"
WEB = "web"
AUDIENCE = "demo-api"
BOTH_DATABASES = ("sqlite", "postgresql")
# Argon2 at its cheapest, for modules whose tests are not about password hashing.
CHEAP_ARGON2: dict[str, Any] = {"argon2_memory_kib": 8, "argon2_time_cost": 1}
# Every admin permission of a tenant, and of the system tenant (as one scope string each).
TENANT_ADMIN_SCOPE = " ".join(TENANT_ADMIN)
SYSTEM_ADMIN_SCOPE = " ".join(TENANT_ADMIN + SYSTEM_ADMIN)


class IdpServer:
    """A bootstrapped provider served over HTTP until :meth:`stop`.

    ``demo_secret`` and ``admin_password`` are what bootstrap printed once.
    """

    def __init__(self, database_url: str, tmp_path: Path, **overrides: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        values: dict[str, Any] = {
            "database_url": database_url,
            "issuer": self.url,
            "master_key": b64.encode_str(bytes(range(32))),
            "master_key_file": tmp_path / "master.key",
            "cookie_secure": False,
        }
        values.update(overrides)
        self.settings = Settings(**values)
        self.provider = Provider(self.settings)
        self.provider.start()
        made = bootstrap(self.provider)
        assert made is not None
        self.demo_secret = made.client_secret
        self.admin_password = made.admin_password
        config = uvicorn.Config(
            create_app(self.settings, self.provider),
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IdpServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the identity provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        assert not self._thread.is_alive(), "the identity provider did not stop"

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for this server (no redirects followed, short timeouts)."""
        return httpx.Client(base_url=self.url, timeout=10, **options)

    # ------------------------------------------------------------ what HTTP cannot do

    def add_user(
        self,
        username: str,
        password: str,
        tenant_id: str = DEFAULT_TENANT,
        *,
        roles: tuple[str, ...] = ("member",),
        email: str | None = None,
    ) -> str:
        """Create an active user holding ``roles``; returns its id (the ``sub`` of its tokens)."""
        with self.provider.database.session() as session:
            user = create_user(
                session,
                self.provider.passwords,
                tenant_id=tenant_id,
                username=username,
                password=password,
                email=email,
                roles=roles,
                policy=self.provider.password_policy,
            )
            return user.id

    def add_client(
        self,
        client_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        grant_types: tuple[str, ...] = ("client_credentials",),
        audience: tuple[str, ...] = (AUDIENCE,),
        scopes: tuple[str, ...] = ("demo:read",),
    ) -> str:
        """Create a confidential client; returns its secret."""
        with self.provider.database.session() as session:
            made = create_client(
                session,
                self.provider.master,
                tenant_id=tenant_id,
                name=client_id,
                grant_types=grant_types,
                audience=audience,
                allowed_scopes=scopes,
                default_scopes=scopes,
                client_id=client_id,
            )
        assert made.secret is not None
        return made.secret

    def add_tenant(self, tenant_id: str, *, mfa_policy: str = "optional") -> None:
        """A tenant with its ``admin`` role and a ``member`` role allowed the demo scopes."""
        with self.provider.database.session() as session:
            create_tenant(session, tenant_id=tenant_id, name=tenant_id, mfa_policy=mfa_policy)
            create_role(session, tenant_id=tenant_id, name="member", permissions=DEMO_SCOPES)

    def add_login_client(
        self,
        client_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        audience: tuple[str, ...] = (AUDIENCE, ADMIN_AUDIENCE),
        scopes: tuple[str, ...] = DEMO_SCOPES + TENANT_ADMIN,
    ) -> None:
        """A public first-party client of ``tenant_id`` for the password and refresh grants
        (what ``web`` is for the default tenant)."""
        with self.provider.database.session() as session:
            create_client(
                session,
                self.provider.master,
                tenant_id=tenant_id,
                name=client_id,
                grant_types=("password", "refresh_token"),
                audience=audience,
                allowed_scopes=scopes,
                default_scopes=(),
                first_party=True,
                confidential=False,
                client_id=client_id,
            )

    def add_tenant_admin(self, tenant_id: str, password: str) -> str:
        """A tenant (:meth:`add_tenant`) with a login client ``<tenant>-web`` and a user
        ``<tenant>-admin`` holding its ``admin`` role; returns the user's id."""
        self.add_tenant(tenant_id)
        self.add_login_client(f"{tenant_id}-web", tenant_id=tenant_id)
        return self.add_user(f"{tenant_id}-admin", password, tenant_id, roles=("admin",))


def client_credentials(
    http: httpx.Client, client_id: str, secret: str, **form: str
) -> dict[str, Any]:
    """A client_credentials grant (client_secret_basic) that must succeed; the JSON answer."""
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def introspect(http: httpx.Client, token: str, client_id: str, secret: str) -> dict[str, Any]:
    """RFC 7662 introspection by an authenticated client; the JSON answer."""
    response = http.post("/oauth2/introspect", data={"token": token}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def password_attempt(
    http: httpx.Client,
    username: str,
    password: str,
    *,
    client_id: str = WEB,
    scope: str | None = None,
    resource: str | None = None,
    url: str = "",
) -> httpx.Response:
    """A password grant by a public first-party client, whatever its answer (``url``: another
    server than the client's own)."""
    form = {"grant_type": "password", "client_id": client_id, "username": username}
    form["password"] = password
    if scope is not None:
        form["scope"] = scope
    if resource is not None:
        form["resource"] = resource
    return http.post(url + "/oauth2/token", data=form)


def password_grant(
    http: httpx.Client, username: str, password: str, **options: str | None
) -> dict[str, Any]:
    """A password grant that must succeed (options as :func:`password_attempt`); the answer."""
    response = password_attempt(http, username, password, **options)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def admin_token(
    http: httpx.Client,
    username: str,
    password: str,
    *,
    client_id: str = WEB,
    scope: str = SYSTEM_ADMIN_SCOPE,
) -> str:
    """An access token for the admin API (``resource=tessera-admin``) by the password grant."""
    answer = password_grant(
        http, username, password, client_id=client_id, scope=scope, resource=ADMIN_AUDIENCE
    )
    token: str = answer["access_token"]
    return token


@contextmanager
def serving(database: str, directory: Path, **overrides: Any) -> Iterator[IdpServer]:
    """A bootstrapped provider on a fresh ``sqlite`` file or ``postgresql`` schema, served."""
    with migrated_database(database, directory) as url:
        server = IdpServer(url, directory, **overrides).start()
        try:
            yield server
        finally:
            server.stop()
