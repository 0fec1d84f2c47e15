"""Two provider nodes behind HAProxy, as operators run them: separate ``tessera serve``
processes on one PostgreSQL schema and one Redis, the same issuer (the balancer's URL) and master
key, and Debian's HAProxy with the README's configuration spreading requests between them.

The data the tests need (a tenant, a service client, a confidential client allowed the refresh
grant, a user and refresh families of theirs) is made through the provider's own services before
the nodes start, as an operator's CLI would.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.services.clients import create_client
from tessera.idp.store.models import Tenant

from ..guard.servers import RedisProcess
from ..services import free_port

TESSERA = Path(sys.executable).parent / "tessera"
TENANT = "acme"
AUDIENCE = "orders"
METRICS_TOKEN = "cluster-metrics-token-0123456789"
READY_TIMEOUT = 30.0


@dataclass
class Prepared:
    """What the nodes share, and the credentials the tests use."""

    settings: dict[str, str]  # TESSERA_* variables, the same for every node
    service_id: str
    service_secret: str
    app_id: str  # a confidential client allowed the refresh grant
    app_secret: str
    user_id: str
    login_id: str  # a first-party client allowed the password grant (for "ada")
    login_secret: str
    password: str  # ada's

    def new_families(self, count: int) -> list[str]:
        """``count`` fresh refresh families of the user at the app: their first tokens."""
        provider = Provider(_settings(self.settings))
        try:
            with provider.database.session() as session:
                return [
                    provider.refresh.start(
                        session,
                        tenant_id=TENANT,
                        subject=self.user_id,
                        user_id=self.user_id,
                        client_id=self.app_id,
                        scope="orders:read",
                        audience=AUDIENCE,
                        now=int(time.time()),
                        amr="pwd",
                    )[1]
                    for _ in range(count)
                ]
        finally:
            provider.close()


def _settings(variables: dict[str, str]) -> Settings:
    return Settings(
        **{name.removeprefix("TESSERA_").lower(): value for name, value in variables.items()}
    )


def prepare(
    database_url: str,
    redis_url: str,
    issuer: str,
    directory: Path,
    extra: dict[str, str] | None = None,
) -> Prepared:
    """Migrate ``database_url`` and make the tenant, clients, user the tests use; ``extra``
    settings for every node."""
    prefix = f"test:cluster:{uuid.uuid4().hex}:"
    variables = {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_REDIS_URL": redis_url,
        "TESSERA_REDIS_PREFIX": prefix + "revocation:",
        "TESSERA_THROTTLE_PREFIX": prefix + "throttle:",
        "TESSERA_MASTER_KEY": jose.b64.encode_str(os.urandom(32)),
        "TESSERA_MASTER_KEY_FILE": str(directory / "unused-master.key"),
        "TESSERA_ISSUER": issuer,
        "TESSERA_BOOTSTRAP": "false",
        "TESSERA_METRICS_TOKEN": METRICS_TOKEN,
        "TESSERA_ARGON2_MEMORY_KIB": "64",
        "TESSERA_ARGON2_TIME_COST": "1",
        **(extra or {}),
    }
    password = os.urandom(16).hex()
    provider = Provider(_settings(variables))
    provider.start()
    try:
        with provider.database.session() as session:
            session.add(Tenant(id=TENANT, name="Acme", created_at=int(time.time())))
            session.flush()
            service = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="cluster service",
                grant_types=("client_credentials",),
                audience=(AUDIENCE,),
                allowed_scopes=("orders:read",),
                default_scopes=("orders:read",),
            )
            app = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="cluster app",
                grant_types=("refresh_token",),
                audience=(AUDIENCE,),
                allowed_scopes=("orders:read",),
                default_scopes=("orders:read",),
            )
            login = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="cluster login",
                grant_types=("password", "refresh_token"),
                audience=(AUDIENCE,),
                allowed_scopes=("orders:read",),
                default_scopes=("orders:read",),
                first_party=True,
            )
            user = create_user(  # hashed as the nodes verify it
                session,
                provider.passwords,
                tenant_id=TENANT,
                username="ada",
                password=password,
            )
    finally:
        provider.close()
    assert service.secret is not None and app.secret is not None and login.secret is not None
    return Prepared(
        variables,
        service.client.id,
        service.secret,
        app.client.id,
        app.secret,
        user.id,
        login.client.id,
        login.secret,
        password,
    )


@dataclass
class Node:
    """One ``tessera serve`` process on a port of its own."""

    name: str
    directory: Path
    settings: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> Node:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        environment.update(self.settings, PYTHONUNBUFFERED="1", NO_COLOR="1")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TESSERA), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=environment,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Node:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None and self.process.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"node {self.name} not ready:\n{self.tail()}"
            time.sleep(0.05)

    def kill(self) -> None:
        """``kill -9``: no shutdown, whatever it was doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


README = Path(__file__).resolve().parents[2] / "README.md"


def haproxy_config(port: int, nodes: list[Node]) -> str:
    """The README's HAProxy configuration, as written, for ``nodes`` behind ``port``: only the
    addresses change, and each answer names the node that gave it (``X-Served-By``)."""
    (config,) = re.findall(r"```haproxy\n(.*?)```", README.read_text(), flags=re.S)
    config = config.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{port}")
    servers = re.findall(r"^    server .*\n", config, flags=re.M)
    assert len(servers) == len(nodes), servers
    ours = "".join(f"    server {node.name} 127.0.0.1:{node.port} check\n" for node in nodes)
    config = config.replace("".join(servers), ours)
    config = config.replace(
        "    default-server", "    http-response set-header X-Served-By %s\n    default-server"
    )
    return "global\n    maxconn 4096\n\n" + config


@dataclass
class Balancer:
    """Debian's HAProxy in front of the nodes (``tools/ensure-peers.sh`` installs it)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, nodes: list[Node]) -> Balancer:
        config = self.directory / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, nodes))
        log = (self.directory / "haproxy.log").open("ab")
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, (self.directory / "haproxy.log").read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class Cluster:
    """Two nodes behind a balancer, on one database and one Redis."""

    prepared: Prepared
    nodes: list[Node]
    balancer: Balancer
    redis: RedisProcess

    def client(self, url: str | None = None, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=url or self.balancer.url, timeout=10, **options)

    def wait_balanced(self, timeout: float = 10.0) -> None:
        """Until the balancer sends requests to every node (its checks see them ready)."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        with self.client() as http:
            while len(seen) < len(self.nodes):
                assert time.monotonic() < deadline, f"the balancer only reached {seen}"
                seen.add(http.get("/healthz").headers.get("x-served-by", ""))
                time.sleep(0.02)


class PostgresProcess:
    """A PostgreSQL server of the test's own, from Debian's binaries, on a free port: to stop
    and start under load (the shared one on 5432 serves every other test). Run as the
    ``postgres`` user when the tests run as root, which PostgreSQL refuses to run as."""

    def __init__(self) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        assert versions, "PostgreSQL's server binaries are required (Debian's postgresql)"
        self.bin = versions[-1].parent
        self.port = free_port()
        # Not under pytest's directory (readable by its owner only): the server's user reads it.
        self.directory = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
        self.data = self.directory / "data"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if self._as_owner:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresProcess:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, as a restart or failover ends them."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self.bin / program), *arguments],
            check=True,
            capture_output=True,
            timeout=60,
        )
