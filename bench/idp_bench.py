"""The identity provider under load: one uvicorn worker pinned to one core, load from the other.

`tessera serve` (one worker, exactly as users start it) runs under ``taskset -c 0``; the load comes
from a separate process under ``taskset -c 1``: wrk (with a Lua script that checks every answer)
for client_credentials, introspection, JWKS, SSO hops and UserInfo, and ``bench/idp_load.py``
(asyncio, keep-alive HTTP/1.1) for refresh grants, which must follow one rotating chain per
connection, and authorization_code grants, which must redeem each code once. Every scenario
warms up, then runs a fixed time with a fixed number of connections; only right answers count
(200 and well-formed, or an SSO hop's 303 with a code), every other answer is an error and is
printed.

    .venv/bin/python bench/idp_bench.py              # full run: 3 s warm-up + 10 s per scenario
    .venv/bin/python bench/idp_bench.py --quick      # smoke run: 1 s + 2 s
    .venv/bin/python bench/idp_bench.py --only oidc  # only the OpenID Connect rows (and the peer)
    .venv/bin/python bench/idp_bench.py --out idp-bench.md

Passwords: argon2id verifications per second on one core (a process pinned to CPU 0) at the
configured parameters and at Keycloak's, and successful password-grant logins over HTTP.

OpenID Connect (``--only oidc``): the authorization_code grant (access, ID and refresh token),
the SSO hop (``/oauth2/authorize`` with a provider session → 303 with a code) and UserInfo, on
SQLite and PostgreSQL, and the same three against node ``oidc-provider`` (the version pinned in
``bench/package.json``, installed into ``bench/node_modules`` with ``npm ci`` when missing; run by
``bench/oidc_provider_peer.mjs`` on the same core) in the same run, with the ratio of the two.
The tokens group measures the peer too, on client_credentials (ES256 JWT access tokens) and
introspection, with the ratio per core. Without node, npm or the npm registry the bench says so
and reports Tessera alone.

Needs PostgreSQL at 127.0.0.1:5432 (trust auth, database ``test``; the bench creates and drops a
schema of its own) and wrk (installed with apt-get when missing and run as root).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pyotp

from tessera import __version__ as tessera_version
from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.flows.mfa_challenge import pass_challenge
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.services.audit import Context
from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.browser_sessions import cookie_name
from tessera.idp.services.clients import create_client
from tessera.idp.services.mfa import confirm_enrolment, start_enrolment, verify_second_factor
from tessera.idp.services.passwords import Passwords
from tessera.idp.services.pkce import challenge_of
from tessera.idp.services.rbac import create_role
from tessera.idp.services.refresh import Refused
from tessera.idp.store.models import Client, Tenant, User

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # the smoke test loads this file by path
    sys.path.insert(0, str(BENCH_DIR))
import idp_load as load  # noqa: E402

POSTGRES_URL = os.environ.get(
    "TESSERA_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOST = "127.0.0.1"
CONNECTIONS = 32
WARMUP, DURATION = 3, 10
QUICK_WARMUP, QUICK_DURATION = 1, 2
SERVER_CPU, LOAD_CPU = 0, 1

TENANT = "bench"
AUDIENCE = "bench-api"
SCOPES = ("bench:read", "bench:write")

TARGET_CC = 1000  # client_credentials grants/s per core
TARGET_REFRESH_PG = 500  # refresh grants/s per core, PostgreSQL
TARGET_CODE = 1000  # authorization_code grants/s per core (access + ID + refresh token), each db
TARGET_SSO = 1500  # SSO hops/s per core: /authorize with a provider session → 303 with a code
TARGET_USERINFO = 4000  # UserInfo answers/s per core
TARGET_RSS_MB = 150
TARGET_ARGON2_KEYCLOAK = 15  # argon2id verifications/s per core at Keycloak's parameters
PASSWORD_CONNECTIONS = 4  # a login costs ~50 ms of one core: a few connections fill it
KEYCLOAK_URL = "https://www.keycloak.org/high-availability/concepts-memory-and-cpu-sizing"
KEYCLOAK = {  # Keycloak 26's published sizing guide — planning figures, not measured here
    "client_credentials": "120 grants/s per vCPU",
    "refresh_token": "120 refreshes/s per vCPU",
    "rss": "1,250 MB per pod",
    "password": "15 password logins/s per vCPU",
}
# Keycloak's default password hashing: argon2id, 5 iterations, 7 MiB, 1 lane.
KEYCLOAK_ARGON2 = {"memory_kib": 7 * 1024, "time_cost": 5, "parallelism": 1}

SQLITE, POSTGRES = "SQLite", "PostgreSQL"
CODE_GRANT = "authorization_code grant (access + ID + refresh token)"
SSO_HOP = "SSO hop (/authorize → 303 with a code)"
USERINFO = "userinfo"
OIDC_SCENARIOS = (CODE_GRANT, SSO_HOP, USERINFO)
PEER = "oidc-provider"
PEER_STORE = "in memory"  # the peer's "database" column
# The API the peer's service client asks tokens for (RFC 8707): its access tokens are then ES256
# JWTs, as Tessera's; without it they are opaque, the only kind it introspects.
PEER_RESOURCE = "https://bench-api.example/"
CC = "client_credentials grant"
INTROSPECTION = "introspection (access token)"
TOKEN_SCENARIOS = (CC, INTROSPECTION)
# The relying party's authorization request, the same for Tessera and the peer.
RP_REDIRECT = "https://rp.example/cb"
OIDC_SCOPE = "openid profile email"
OIDC_STATE = "bench-state-0123456789"
OIDC_NONCE = "bench-nonce-0123456789"
OIDC_VERIFIER = "bench-pkce-verifier-" + "0123456789abcdef" * 3  # RFC 7636: 43 to 128 characters
CODE_TTL = 60  # seconds a code lives, on both sides (Tessera's authorization_code_ttl at most)
CODE_HEADROOM = 1.3  # codes prepared for a measured window: its expected need times this
WARM_CODE_RATE = 3000  # codes/s assumed for the warm-up's pool (Tessera: minted, so cheap)
MAX_CODES = 150_000
GROUPS = ("tokens", "passwords", "mfa", "ceiling", "oidc")  # what --only selects
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\b.*: ")
ORDER = (  # the report's row order
    CC,
    "password grant (argon2id)",
    "refresh_token grant",
    *OIDC_SCENARIOS,
    INTROSPECTION,
    "JWKS",
    "JWKS, Python driver",
    "driver ceiling (canned server)",
)

# ============================================================================ setup


@dataclass
class Fixture:
    """What the scenarios need from the database prepared before the server starts."""

    database: str  # SQLITE or POSTGRES
    database_url: str
    master_key: str
    cc_id: str
    cc_secret: str
    refresh_id: str
    refresh_secret: str
    chains: list[str]  # one refresh family per connection
    spares: list[str]  # families a broken chain (an error) falls back to
    login_id: str = ""  # a first-party client allowed the password grant
    login_secret: str = ""
    login_username: str = ""  # a user hashed at the configured argon2id parameters
    login_password: str = ""
    access_token: str = ""  # set by probe(): what introspection asks about
    rp_id: str = ""  # a first-party relying party: authorization_code + refresh_token
    rp_secret: str = ""
    oidc_sub: str = ""  # a user signed in at the provider (a browser session) ...
    session_id: str = ""
    session_cookie: str = ""  # ... and that session's cookie value (tessera_session)
    auth_time: int = 0

    @property
    def login_auth(self) -> str:
        return load.basic_auth(self.login_id, self.login_secret)

    @property
    def cc_auth(self) -> str:
        return load.basic_auth(self.cc_id, self.cc_secret)

    @property
    def refresh_auth(self) -> str:
        return load.basic_auth(self.refresh_id, self.refresh_secret)


def prepare(
    database: str, database_url: str, *, chains: int, spares: int, workdir: Path
) -> Fixture:
    """Migrate the database and create, through the provider's own services, a tenant, a
    client_credentials client, a confidential refresh client, a user (cheap argon2: no password
    is checked under load) and ``chains + spares`` refresh families of that user."""
    master_key = jose.b64.encode_str(secrets.token_bytes(32))
    settings = Settings(
        database_url=database_url,
        master_key=master_key,
        master_key_file=workdir / "unused-master.key",
        bootstrap=False,
    )
    provider = Provider(settings)
    provider.start()
    now = int(time.time())
    login_password = secrets.token_urlsafe(16)
    try:
        with provider.database.session() as session:
            session.add(Tenant(id=TENANT, name="Benchmark", created_at=now))
            session.flush()
            create_role(session, tenant_id=TENANT, name="reader", permissions=SCOPES[:1])
            service = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="bench service",
                grant_types=("client_credentials",),
                audience=(AUDIENCE,),
                allowed_scopes=SCOPES,
                default_scopes=SCOPES[:1],
            )
            app = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="bench app",
                grant_types=("refresh_token",),
                audience=(AUDIENCE,),
                allowed_scopes=SCOPES,
                default_scopes=SCOPES[:1],
            )
            login = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="bench login app",
                grant_types=("password",),
                audience=(AUDIENCE,),
                allowed_scopes=SCOPES,
                default_scopes=SCOPES[:1],
                first_party=True,
            )
            create_user(  # hashed exactly as the server will verify it
                session,
                provider.passwords,
                tenant_id=TENANT,
                username="bench-login",
                password=login_password,
                policy=provider.password_policy,
            )
            user = create_user(
                session,
                Passwords(memory_kib=8, time_cost=1),
                tenant_id=TENANT,
                username="bench-user",
                password=secrets.token_urlsafe(16),
                roles=("reader",),
            )
            rp = create_client(
                session,
                provider.master,
                tenant_id=TENANT,
                name="bench relying party",
                grant_types=("authorization_code", "refresh_token"),
                audience=(AUDIENCE,),
                allowed_scopes=SCOPES,
                default_scopes=SCOPES[:1],
                redirect_uris=(RP_REDIRECT,),
                first_party=True,
            )
            person = create_user(
                session,
                Passwords(memory_kib=8, time_cost=1),
                tenant_id=TENANT,
                username="bench-oidc",
                password=secrets.token_urlsafe(16),
                email="bench-oidc@example.com",
            )
            browser = provider.sessions.start(session, person, amr=("pwd",), now=now)
            tokens = [
                provider.refresh.start(
                    session,
                    tenant_id=TENANT,
                    subject=user.id,
                    user_id=user.id,
                    client_id=app.client.id,
                    scope=SCOPES[0],
                    audience=AUDIENCE,
                    now=now,
                    amr="pwd",
                )[1]
                for _ in range(chains + spares)
            ]
    finally:
        provider.close()
    assert service.secret is not None and app.secret is not None and login.secret is not None
    assert rp.secret is not None
    return Fixture(
        database=database,
        database_url=database_url,
        master_key=master_key,
        cc_id=service.client.id,
        cc_secret=service.secret,
        refresh_id=app.client.id,
        refresh_secret=app.secret,
        chains=tokens[:chains],
        spares=tokens[chains:],
        login_id=login.client.id,
        login_secret=login.secret,
        login_username="bench-login",
        login_password=login_password,
        rp_id=rp.client.id,
        rp_secret=rp.secret,
        oidc_sub=person.id,
        session_id=browser.row.id,
        session_cookie=browser.cookie,
        auth_time=now,
    )


@contextmanager
def database_url(database: str, workdir: Path) -> Iterator[str]:
    """A fresh database: a SQLite file in ``workdir``, or a PostgreSQL schema of our own that is
    dropped afterwards (nothing else is ever touched)."""
    if database == SQLITE:
        yield f"sqlite:///{workdir / f'tessera-{uuid.uuid4().hex[:8]}.db'}"
        return
    from sqlalchemy import create_engine

    schema = f"tessera_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


# ============================================================================ the server


@dataclass
class Server:
    """A running ``tessera serve``."""

    url: str
    port: int
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind((HOST, 0))
        return int(probe_socket.getsockname()[1])


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` under ``taskset -c cpu`` (taskset execs it: the pid stays the command's)."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def tessera_command() -> list[str]:
    script = Path(sys.executable).with_name("tessera")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tessera.cli.main import run; run()"]


@contextmanager
def serve(fixture: Fixture, workdir: Path, cpu: int | None = SERVER_CPU) -> Iterator[Server]:
    """``tessera serve`` with one worker on ``fixture``'s database, stopped (SIGINT) on exit."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("TESSERA_")}
    env.update(
        TESSERA_DATABASE_URL=fixture.database_url,
        TESSERA_MASTER_KEY=fixture.master_key,
        TESSERA_MASTER_KEY_FILE=str(workdir / "unused-master.key"),
        TESSERA_ISSUER=url,
        TESSERA_HOST=HOST,
        TESSERA_PORT=str(port),
        TESSERA_WORKERS="1",
        TESSERA_BOOTSTRAP="false",
        # The login scenario sends one account's right password from PASSWORD_CONNECTIONS
        # connections at once; the lockout counts attempts in flight against an account's free
        # attempts (a burst of guesses is refused like a series), so it would refuse some. The
        # throttle still runs on every login; only its allowance is raised.
        TESSERA_LOCKOUT_FREE_ATTEMPTS=str(PASSWORD_CONNECTIONS * 4),
    )
    log = workdir / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            pinned([*tessera_command(), "serve"], cpu),
            env=env,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        yield Server(url, port, process.pid, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tessera serve exited ({process.returncode}):\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/.well-known/jwks.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"tessera serve did not answer within 60 s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def server_errors(server: Server) -> Iterator[list[str]]:
    """Collects the distinct exception lines the server logs while the block runs (warm-up
    included): the cause behind any 5xx the load counted."""
    start = server.log.stat().st_size
    seen: list[str] = []
    try:
        yield seen
    finally:
        with server.log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
        counts = Counter(
            line.strip()[:240]
            for line in text.splitlines()
            if EXCEPTION_LINE.match(line) and "200 OK" not in line
        )
        seen += [f"{line} (× {count})" for line, count in counts.most_common(3)]


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (10^6 bytes)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024 / 1e6
    return values["VmRSS"], values["VmHWM"]


# ============================================================================ one of each


def _expect(response: httpx.Response, check: Any) -> Any:
    if response.status_code != 200:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path}:"
            f" {response.status_code} {response.text[:300]}"
        )
    return check(response.content)


def access_token_verifier(jwks: dict[str, Any], issuer: str) -> jose.Verifier:
    """What the bench's API accepts: an ES256 ``at+jwt`` access token of ``issuer`` for it."""
    return jose.Verifier(
        jose.KeySet.from_jwks(jwks),
        algorithms=["ES256"],
        issuer=issuer,
        audience=AUDIENCE,
        typ="at+jwt",
    )


def probe(server: Server, fixture: Fixture) -> dict[str, Any]:
    """One request of each kind the load sends, each answer checked the way the load checks it
    and more: the access token verifies against the published JWKS with the right claims, and
    introspection describes that very token. Sets ``fixture.access_token`` for introspection;
    the refresh probe spends a spare family's first link and puts its successor back."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        jwks = _expect(http.get("/.well-known/jwks.json"), load.check_jwks)
        granted = _expect(
            http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": fixture.cc_auth},
            ),
            load.check_token,
        )
        verifier = access_token_verifier(jwks, server.url)
        claims = verifier.verify(granted["access_token"])
        assert claims["client_id"] == fixture.cc_id and claims["scope"] == SCOPES[0], claims
        assert claims["tenant"] == TENANT, claims
        described = _expect(
            http.post(
                "/oauth2/introspect",
                data={"token": granted["access_token"], "token_type_hint": "access_token"},
                headers={"Authorization": fixture.cc_auth},
            ),
            load.check_introspection,
        )
        assert described["jti"] == claims["jti"], described
        logged_in = _expect(
            http.post(
                "/oauth2/token",
                data={
                    "grant_type": "password",
                    "username": fixture.login_username,
                    "password": fixture.login_password,
                },
                headers={"Authorization": fixture.login_auth},
            ),
            load.check_token,
        )
        login_claims = verifier.verify(logged_in["access_token"])
        assert login_claims["client_id"] == fixture.login_id, login_claims
        assert login_claims["amr"] == ["pwd"], login_claims
        spare = fixture.spares.pop()
        response = http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": spare},
            headers={"Authorization": fixture.refresh_auth},
        )
        successor = _expect(response, lambda body: load.check_refresh(body, spare))
        refreshed = verifier.verify(response.json()["access_token"])
        assert refreshed["client_id"] == fixture.refresh_id and refreshed["roles"] == ["reader"]
        fixture.spares.append(successor)
        reused = http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": spare},
            headers={"Authorization": fixture.refresh_auth},
        )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant", reused.text
        fixture.spares.pop()  # reuse revoked that family: it is no spare any more
    fixture.access_token = granted["access_token"]
    return {"jwks": jwks, "token": granted, "claims": claims, "introspection": described}


# ============================================================================ load


@dataclass
class Measured:
    """One scenario's measured window."""

    scenario: str
    database: str
    tool: str
    ok: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: Counter[str]
    samples: list[str]
    target: str = "—"
    met: bool | None = None
    server_cpu: float | None = None  # % of one core
    cores: dict[int, float] = field(default_factory=dict)  # busy % per CPU
    load_cpu: float | None = None  # % of one core
    postgres_cpu: float | None = None  # % of one core, the whole local cluster
    server_log: list[str] = field(default_factory=list)  # exceptions the server logged
    note: str = ""  # said under the tables (a code pool that ran out early, …)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class Usage:
    """CPU used by the server, PostgreSQL and each core between two points in time."""

    def __init__(self, server_pid: int | None, postgres: bool) -> None:
        self.server_pid = server_pid
        self.wall = time.monotonic()
        self.server = load.process_cpu_seconds(server_pid) if server_pid else 0.0
        self.postgres = load.postgres_cpu_seconds() if postgres else None
        self.cores = load.core_busy_seconds()

    def apply(self, measured: Measured) -> None:
        wall = time.monotonic() - self.wall
        if self.server_pid:
            used = load.process_cpu_seconds(self.server_pid) - self.server
            measured.server_cpu = 100 * used / wall
        cores = load.core_busy_seconds()
        measured.cores = {
            cpu: 100 * (busy - self.cores[cpu][0]) / max(total - self.cores[cpu][1], 1e-9)
            for cpu, (busy, total) in cores.items()
            if cpu in self.cores
        }
        postgres = load.postgres_cpu_seconds() if self.postgres is not None else None
        if postgres is not None and self.postgres is not None:
            measured.postgres_cpu = 100 * (postgres - self.postgres) / wall


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class WrkRequest:
    """A fixed request for wrk and what every good answer is: ``status``, a body containing
    ``expect`` (unless empty), a Location header matching each Lua pattern of ``location``
    (matched against the Location with ``&`` appended, so ``name=value&`` matches the last
    parameter too)."""

    method: str
    path: str
    authorization: str | None
    body: str
    expect: str
    status: int = 200
    cookie: str | None = None
    location: tuple[str, ...] = ()


LUA = """\
wrk.method = {method}
wrk.path = {path}
{headers}
{body}
local expect = {expect}
local want = {status}
local location = {{{location}}}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; codes = {{}}; sample = "" end
function response(status, headers, body)
  local good = status == want
  if good and expect ~= "" then
    good = body ~= nil and string.find(body, expect, 1, true) ~= nil
  end
  local where = headers["Location"] or headers["location"]
  if good and #location > 0 then
    if where == nil then
      good = false
    else
      local padded = where .. "&"
      for _, pattern in ipairs(location) do
        if not string.find(padded, pattern) then good = false; break end
      end
    end
  end
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    local key = tostring(status)
    if status == want then key = "malformed " .. key end
    codes[key] = (codes[key] or 0) + 1
    if sample == "" then sample = string.sub(tostring(where or body), 1, 200) end
  end
end
function done(summary, latency, requests)
  local good, wrong, all, first = 0, 0, {{}}, ""
  for _, thread in ipairs(threads) do
    good = good + thread:get("ok")
    wrong = wrong + thread:get("bad")
    for status, count in pairs(thread:get("codes")) do
      all[status] = (all[status] or 0) + count
    end
    if first == "" then first = thread:get("sample") end
  end
  local e = summary.errors
  io.write(string.format("tessera.ok %d\\n", good))
  io.write(string.format("tessera.duration_us %d\\n", summary.duration))
  io.write(string.format("tessera.p50_us %f\\n", latency:percentile(50)))
  io.write(string.format("tessera.p99_us %f\\n", latency:percentile(99)))
  io.write(string.format("tessera.socket %d %d %d %d %d\\n", e.connect, e.read, e.write,
    e.timeout, wrong))
  for status, count in pairs(all) do
    io.write(string.format("tessera.code %s %d\\n", status, count))
  end
  io.write("tessera.sample " .. string.gsub(first, "%c", " ") .. "\\n")
end
"""


def lua_script(request: WrkRequest) -> str:
    """wrk's script: the request, a check of every answer, and a machine-readable summary."""
    quote = json.dumps  # ASCII JSON strings are valid Lua strings
    headers = []
    if request.authorization:
        headers.append(f'wrk.headers["Authorization"] = {quote(request.authorization)}')
    if request.cookie:
        headers.append(f'wrk.headers["Cookie"] = {quote(request.cookie)}')
    body = ""
    if request.method == "POST":
        headers.append(f'wrk.headers["Content-Type"] = {quote(load.FORM)}')
        body = f"wrk.body = {quote(request.body)}"
    return LUA.format(
        method=quote(request.method),
        path=quote(request.path),
        headers="\n".join(headers),
        body=body,
        expect=quote(request.expect),
        status=request.status,
        location=", ".join(quote(pattern) for pattern in request.location),
    )


def lua_escaped(text: str) -> str:
    """``text`` as a Lua pattern matching itself (every punctuation character %-escaped)."""
    return "".join(char if char.isalnum() else f"%{char}" for char in text)


def run_wrk(
    server: Server,
    request: WrkRequest,
    *,
    scenario: str,
    warmup: int,
    duration: int,
    connections: int,
    workdir: Path,
    fixture: Fixture | None = None,
    database: str | None = None,
    cpu: int | None = LOAD_CPU,
) -> Measured:
    """Warm up, then one measured wrk run; every answer is checked by the Lua script. The
    row's database is ``database``, or ``fixture``'s."""
    database = database or (fixture.database if fixture is not None else "—")
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(lua_script(request))

    def wrk(seconds: int) -> dict[str, Any]:
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                server.url,
            ],
            cpu,
        )
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return parse_wrk(done.stdout)

    warm = wrk(warmup)
    if warm["ok"] == 0:
        raise RuntimeError(f"{scenario}: no good answer in the warm-up: {warm}")
    before = Usage(server.pid, database == POSTGRES)
    spent = children_cpu()
    result = wrk(duration)
    measured = Measured(
        scenario=scenario,
        database=database,
        tool="wrk",
        ok=result["ok"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=result["errors"],
        samples=result["samples"],
    )
    before.apply(measured)
    measured.load_cpu = 100 * (children_cpu() - spent) / measured.seconds
    return measured


def parse_wrk(output: str) -> dict[str, Any]:
    """The ``tessera.*`` lines the Lua ``done`` prints."""
    result: dict[str, Any] = {"errors": Counter(), "samples": []}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        if name == "tessera.ok":
            result["ok"] = int(rest)
        elif name in ("tessera.duration_us", "tessera.p50_us", "tessera.p99_us"):
            result[name.removeprefix("tessera.")] = float(rest)
        elif name == "tessera.socket":
            connect, read, write, timeout, _bad = (int(value) for value in rest.split())
            for kind, count in (
                ("connect", connect),
                ("read", read),
                ("write", write),
                ("timeout", timeout),
            ):
                if count:
                    result["errors"][f"socket {kind}"] += count
        elif name == "tessera.code":
            # "500 7": answers of another status; "malformed 200 3": the right status, but not
            # the right answer.
            status, number = rest.rsplit(" ", 1)
            result["errors"][status] += int(number)
        elif name == "tessera.sample" and rest.strip():
            result["samples"].append(rest.strip()[:200])
    if "ok" not in result:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    return result


def drive_once(
    url: str, spec: dict[str, Any], workdir: Path, *, cpu: int | None = LOAD_CPU
) -> dict[str, Any]:
    """One run of ``bench/idp_load.py drive`` in its own process under ``taskset -c cpu``: its
    result (see ``DriveResult.as_json``)."""
    host, port = url.removeprefix("http://").split(":")
    path = workdir / f"drive-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({**spec, "host": host, "port": int(port)}))
    command = pinned([sys.executable, str(BENCH_DIR / "idp_load.py"), "drive", str(path)], cpu)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    path.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"load driver failed ({done.returncode}): {done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_driver(
    url: str,
    spec: dict[str, Any],
    *,
    scenario: str,
    database: str,
    warmup: int,
    workdir: Path,
    server_pid: int | None = None,
    cpu: int | None = LOAD_CPU,
    measured_spec: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[Measured, dict[str, Any]]:
    """Warm up, then one measured run of ``bench/idp_load.py`` in its own pinned process.

    In refresh mode the measured run continues the chains the warm-up left; ``measured_spec``,
    given the warm-up's result, says what the measured run sends instead of ``spec`` (a fresh
    pool of codes)."""
    host, port = url.removeprefix("http://").split(":")
    spec = {**spec, "host": host, "port": int(port)}

    def drive(seconds: float, current: dict[str, Any]) -> dict[str, Any]:
        return drive_once(url, {**current, "duration": seconds}, workdir, cpu=cpu)

    warm = drive(warmup, spec)
    if warm["ok"] == 0:
        raise RuntimeError(f"{scenario}: no good answer in the warm-up: {warm}")
    if spec["mode"] == "refresh":
        spec = {**spec, "tokens": warm["chains"], "spares": warm["spares"]}
    if measured_spec is not None:
        spec = {**measured_spec(warm), "host": host, "port": int(port)}
    before = Usage(server_pid, database == POSTGRES)
    result = drive(spec["duration"], spec)
    measured = Measured(
        scenario=scenario,
        database=database,
        tool="idp_load.py",
        ok=result["ok"],
        seconds=result["seconds"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        errors=Counter(result["errors"]),
        samples=result["samples"],
    )
    before.apply(measured)
    measured.load_cpu = 100 * result["cpu_seconds"] / result["seconds"]
    if result.get("exhausted"):
        measured.note = (
            f"its pool of codes ran out after {result['seconds']:.1f} s of {spec['duration']} s"
            " (the rate is over the time it ran)"
        )
    return measured, result


# ============================================================================ argon2id


CONFIGURED_ARGON2 = {  # what `tessera serve` uses when nothing overrides the settings
    "memory_kib": Settings.model_fields["argon2_memory_kib"].default,
    "time_cost": Settings.model_fields["argon2_time_cost"].default,
    "parallelism": Settings.model_fields["argon2_parallelism"].default,
}

# Runs in its own process, pinned to one CPU: Tessera's own Passwords, verifying a right password
# in a closed loop (every answer checked) for a fixed time.
ARGON2_LOOP = """
import json, os, sys, time
from tessera.idp.services.passwords import Passwords
from tessera.idp.services.rbac import create_role
spec = json.loads(sys.argv[1])
hasher = Passwords(
    memory_kib=spec["memory_kib"], time_cost=spec["time_cost"], parallelism=spec["parallelism"]
)
password = "bench password 0123456789"
hashed = hasher.hash(password)
if not hasher.verify(hashed, password) or hasher.verify(hashed, password + "!"):
    raise SystemExit("argon2id verification is wrong")
count, cpu, started = 0, time.process_time(), time.perf_counter()
while (elapsed := time.perf_counter() - started) < spec["seconds"] or count < spec["min_count"]:
    if not hasher.verify(hashed, password):
        raise SystemExit("argon2id verification failed")
    count += 1
print(json.dumps({
    "count": count,
    "seconds": elapsed,
    "cpu_seconds": time.process_time() - cpu,
    "cpus": sorted(os.sched_getaffinity(0)),
    "hash": hashed.split("$")[3],
}))
"""


SIGNING_LOOP = """
import json, sys, time
from tessera import jose
seconds = float(sys.argv[1])
claims = {"iss": "https://id.example", "sub": "0" * 36, "aud": "rp", "exp": 2**31, "iat": 0,
          "nonce": "n" * 22, "at_hash": "h" * 22, "sid": "s" * 36}
rates = {}
for alg in ("RS256", "ES256"):
    key = jose.Key.generate(alg)
    jose.jwt.encode(claims, key, alg)
    count, cpu, started = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        jose.jwt.encode(claims, key, alg)
        count += 1
    rates[alg] = count / (time.process_time() - cpu)
print(json.dumps(rates))
"""


def signing_rates(seconds: float, cpu: int | None = SERVER_CPU) -> dict[str, float]:
    """JWTs signed per CPU-second with Tessera's ``jose`` (RS256 with RSA-2048, ES256) in a
    process of its own under ``taskset -c cpu``: the floor under a code grant, which signs one
    of each (the ID token RS256, the access token ES256)."""
    command = pinned([sys.executable, "-c", SIGNING_LOOP, str(seconds)], cpu)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"signing loop failed ({done.returncode}): {done.stderr}")
    rates: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return rates


def signing_lines(rates: dict[str, float]) -> list[str]:
    """What signing alone allows a code grant on the server's core."""
    rsa, ec = rates["RS256"], rates["ES256"]
    ceiling = 1 / (1 / rsa + 1 / ec)
    return [
        f"Signing alone, on CPU {SERVER_CPU} in the same run (Tessera's `jose`, a process of its"
        f" own): RS256 with RSA-2048 {rsa:,.0f} JWTs/s ({1e6 / rsa:,.0f} µs each), ES256"
        f" {ec:,.0f}/s ({1e6 / ec:,.0f} µs). A code grant signs an RS256 ID token and an ES256"
        f" access token: on this core no server can redeem more than {ceiling:,.0f} codes/s"
        f" with RS256 ID tokens, before any HTTP or database work.",
        "",
    ]


@dataclass(frozen=True)
class Argon2Rate:
    """argon2id verifications of one process, pinned to one CPU, over a measured window."""

    label: str
    parameters: dict[str, int]
    count: int
    seconds: float
    cpu_seconds: float
    cpus: list[int]
    encoded: str  # the parameters as the hash string spells them (m=…,t=…,p=…)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def described(self) -> str:
        memory = self.parameters["memory_kib"] / 1024
        return (
            f"{memory:g} MiB, t={self.parameters['time_cost']}, p={self.parameters['parallelism']}"
        )


def argon2_rate(
    label: str,
    parameters: dict[str, int],
    seconds: float,
    *,
    cpu: int | None = SERVER_CPU,
    min_count: int = 3,
) -> Argon2Rate:
    """Verifications per second of Tessera's ``Passwords`` at ``parameters`` in a process of
    its own under ``taskset -c cpu``."""
    spec = {**parameters, "seconds": seconds, "min_count": min_count}
    command = pinned([sys.executable, "-c", ARGON2_LOOP, json.dumps(spec)], cpu)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"argon2id loop failed ({done.returncode}): {done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Argon2Rate(
        label=label,
        parameters=dict(parameters),
        count=result["count"],
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        cpus=result["cpus"],
        encoded=result["hash"],
    )


def password_lines(
    rates: Sequence[Argon2Rate],
    results: Sequence[Measured],
    memory: dict[str, dict[str, tuple[float, float]]] | None = None,
) -> list[str]:
    lines = [
        "## Passwords (argon2id, one core)",
        "",
        f"argon2id verifications: Tessera's `Passwords` in a process pinned to CPU {SERVER_CPU},"
        " verifying a right password in a closed loop. Logins: the password grant over HTTP"
        f" ({PASSWORD_CONNECTIONS} connections, wrk) against `tessera serve` on one core, the"
        " user hashed at the configured parameters — each login is one argon2id verification"
        " plus the token work.",
        "",
        "| measurement | argon2id parameters | per second | CPU used | target | met? |",
        "|---|---|---:|---:|---|---|",
    ]
    for item in rates:
        target, met = "—", "—"
        if item.label.startswith("Keycloak"):
            target = f"≥ {TARGET_ARGON2_KEYCLOAK}/s per core"
            met = "met" if item.rate >= TARGET_ARGON2_KEYCLOAK else "**missed**"
        cpus = ",".join(map(str, item.cpus))
        lines.append(
            f"| verifications, {item.label} (CPU {cpus}) | {item.described} (`{item.encoded}`) |"
            f" {item.rate:,.1f} | {100 * item.cpu_seconds / item.seconds:.0f} % | {target} |"
            f" {met} |"
        )
    configured = next((item for item in rates if item.label.startswith("configured")), None)
    for item in results:
        if item.scenario != "password grant (argon2id)":
            continue
        described = configured.described if configured else "configured"
        lines.append(
            f"| password-grant logins over HTTP, {item.database} (p50 {item.p50_ms:.0f} ms) |"
            f" {described} (configured) | {item.rps:,.1f} |"
            f" {item.server_cpu or 0:.0f} % | — | — |"
        )
    after = [
        f"{database} VmRSS {values['after passwords'][0]:.0f} MB (peak"
        f" {values['after passwords'][1]:.0f} MB)"
        for database, values in (memory or {}).items()
        if "after passwords" in values
    ]
    if after:
        lines += [
            "",
            "Server memory after the password logins (they run last; the memory table below is"
            " from before them): " + " · ".join(after) + ". Each concurrent argon2id"
            " verification holds its own memory block (19 MiB at the configured parameters).",
        ]
    return [*lines, ""]


# ============================================================================ second factor


TARGET_MFA = 500  # MFA verifications/s per core
MFA_THREADS = 8  # concurrent verifications, as `tessera serve` runs them (settings.threads)
MFA_BATCH = 2000  # calls prepared (codes, mfa_tokens), untimed, before each timed batch
MFA_CONTEXT = Context(ip="192.0.2.10", user_agent="idp_bench")
MFA_MODES = {  # the measured call, by mode
    "pyotp": "pyotp `TOTP.verify(code, valid_window=1)`, bare (no storage, no single use)",
    "verify": "verification: load the user, unseal the secret, TOTP ±1 step, the single-use"
    " UPDATE, the audit row, commit",
    "second step": "second login step: the above behind the mfa_token (HS256) check and the"
    " lockout (no token minted)",
}


@dataclass(frozen=True)
class MfaWorker:
    """One thread of the loop: how it makes a code and an mfa_token for a moment, and the
    measured call, which must accept them."""

    code_at: Callable[[int], str]
    token_at: Callable[[int], str]
    call: Callable[[int, str, str], bool]


def mfa_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop of one MFA mode for ``spec["seconds"]`` (at least ``min_count`` calls), by
    ``spec["threads"]`` threads, each for a user of its own.

    Each call gets a fresh time step (``now`` advances 30 s a call), so every code is new and
    must be accepted; a refused one ends the run. Codes and mfa_tokens are made before each
    timed batch and are not counted. Run in a process of its own, pinned to one CPU."""
    first = int(time.time())
    if spec["mode"] == "pyotp":
        totp = pyotp.TOTP(pyotp.random_base32(32))
        if totp.verify(totp.at(first - 60), for_time=first, valid_window=1):
            raise SystemExit("pyotp accepted a code two steps old")
        bare = MfaWorker(
            totp.at,
            lambda at: "",
            lambda at, code, _: totp.verify(code, for_time=at, valid_window=1),
        )
        return _timed_batches(spec, first, [bare])
    settings = Settings(
        database_url=spec["database_url"],
        master_key=spec["master_key"],
        master_key_file=Path(spec["workdir"]) / "unused-master.key",
        bootstrap=False,
    )
    provider = Provider(settings)
    provider.start()
    try:
        client_id, users = _mfa_users(provider, first, spec["threads"])
        workers = [_mfa_worker(provider, spec["mode"], client_id, *user) for user in users]
        # The loop's own check: a spent code and a wrong one are refused.
        check = _mfa_worker(provider, "verify", client_id, *users[0])
        used = first + 30
        if not check.call(used, check.code_at(used), "") or check.call(
            used, check.code_at(used), ""
        ):
            raise SystemExit("a TOTP code was not accepted exactly once")
        if check.call(used + 30, check.code_at(used + 200 * 30), ""):
            raise SystemExit("a wrong TOTP code was accepted")
        return _timed_batches(spec, used + 60, workers)
    finally:
        provider.close()


def _mfa_worker(
    provider: Provider, mode: str, client_id: str, user_id: str, secret: str
) -> MfaWorker:
    def verify(at: int, code: str, _: str) -> bool:
        with provider.database.session() as session:
            user = session.get(User, user_id)
            assert user is not None
            return verify_second_factor(
                session, provider.master, user, otp=code, context=MFA_CONTEXT, now=at
            )

    def second_step(at: int, code: str, mfa_token: str) -> bool:
        with provider.database.session() as session:
            client = session.get(Client, client_id)
            assert client is not None
            passed = pass_challenge(
                provider,
                session,
                client,
                mfa_token,
                otp=code,
                recovery_code=None,
                context=MFA_CONTEXT,
                now=at,
            )
            return not isinstance(passed, Refused)

    def token(at: int) -> str:
        return provider.challenges.issue(
            tenant_id=TENANT,
            user_id=user_id,
            client_id=client_id,
            purpose="verify",
            scope=None,
            resource=None,
            via="password",
            now=at,
        )

    code_at = pyotp.TOTP(secret).at
    if mode == "verify":
        return MfaWorker(code_at, lambda at: "", verify)
    return MfaWorker(code_at, token, second_step)


def _mfa_users(provider: Provider, now: int, count: int) -> tuple[str, list[tuple[str, str]]]:
    """A tenant, a first-party client and ``count`` users with a confirmed TOTP factor: the
    client's id, and each user's id and TOTP secret."""
    users = []
    with provider.database.session() as session:
        session.add(Tenant(id=TENANT, name="Benchmark", created_at=now))
        session.flush()
        client = create_client(
            session,
            provider.master,
            tenant_id=TENANT,
            name="bench mfa app",
            grant_types=("password",),
            audience=(AUDIENCE,),
            allowed_scopes=SCOPES,
            default_scopes=SCOPES[:1],
            first_party=True,
        )
        for number in range(count):
            user = create_user(
                session,
                Passwords(memory_kib=8, time_cost=1),
                tenant_id=TENANT,
                username=f"bench-mfa-{number}",
                password=secrets.token_urlsafe(16),
            )
            enrolment = start_enrolment(
                session,
                provider.master,
                user,
                issuer_name="Benchmark",
                context=MFA_CONTEXT,
                now=now,
            )
            code = pyotp.TOTP(enrolment.secret).at(now)
            if (
                confirm_enrolment(
                    session, provider.master, user, code, context=MFA_CONTEXT, now=now
                )
                is None
            ):
                raise SystemExit("the bench user's enrolment was refused")
            users.append((user.id, enrolment.secret))
    return client.client.id, users


def _timed_batches(
    spec: dict[str, Any], start: int, workers: Sequence[MfaWorker]
) -> dict[str, Any]:
    per_worker = max(MFA_BATCH // len(workers), 50)
    if not spec["seconds"]:  # a smoke run: just the calls asked for
        per_worker = max(-(-spec["min_count"] // len(workers)), 1)

    def run(worker: MfaWorker, batch: list[tuple[int, str, str]]) -> None:
        for moment, code, token in batch:
            if not worker.call(moment, code, token):
                raise SystemExit(
                    f"{spec['mode']}: a right code was refused"
                    f" (worker {workers.index(worker)}, step {moment // 30}, start {start // 30})"
                )

    count, elapsed, cpu, at = 0, 0.0, 0.0, start
    with ThreadPoolExecutor(len(workers)) as pool:
        while elapsed < spec["seconds"] or count < spec["min_count"]:
            moments = range(at, at + 30 * per_worker, 30)
            batches = [
                [(moment, worker.code_at(moment), worker.token_at(moment)) for moment in moments]
                for worker in workers
            ]
            at += 30 * per_worker
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            if len(workers) == 1:
                run(workers[0], batches[0])
            else:
                list(pool.map(run, workers, batches))
            elapsed += time.perf_counter() - wall_before
            cpu += time.process_time() - cpu_before
            count += per_worker * len(workers)
    return {
        "count": count,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "cpus": sorted(os.sched_getaffinity(0)),
    }


@dataclass(frozen=True)
class MfaRate:
    """One MFA mode's closed loop in a process pinned to one CPU."""

    mode: str
    database: str  # SQLITE, POSTGRES, or "—" (pyotp alone)
    threads: int
    count: int
    seconds: float
    cpu_seconds: float
    cpus: list[int]
    postgres_cpu: float | None = None  # % of one core, the whole local cluster

    @property
    def rate(self) -> float:
        """Calls per second of wall time."""
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_micros(self) -> float:
        """The loop process's CPU time per call (µs): the cost, whatever else ran."""
        return 1e6 * self.cpu_seconds / self.count if self.count else 0.0


def mfa_rate(
    mode: str,
    database: str,
    seconds: float,
    workdir: Path,
    *,
    cpu: int | None = SERVER_CPU,
    threads: int = MFA_THREADS,
    min_count: int = 200,
) -> MfaRate:
    """:func:`mfa_loop` in a process of its own under ``taskset -c cpu``, on a fresh database
    (pyotp alone: one thread, no database)."""
    threads = 1 if mode == "pyotp" else threads
    with contextlib.ExitStack() as stack:
        url = "" if mode == "pyotp" else stack.enter_context(database_url(database, workdir))
        spec = {
            "mode": mode,
            "seconds": seconds,
            "min_count": min_count,
            "threads": threads,
            "database_url": url,
            "master_key": jose.b64.encode_str(secrets.token_bytes(32)),
            "workdir": str(workdir),
        }
        shim = f"import sys, json; sys.path.insert(0, {str(BENCH_DIR)!r}); import idp_bench;"
        shim += " print(json.dumps(idp_bench.mfa_loop(json.loads(sys.argv[1]))))"
        command = pinned([sys.executable, "-c", shim, json.dumps(spec)], cpu)
        postgres = load.postgres_cpu_seconds() if database == POSTGRES else None
        wall = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.monotonic() - wall
        if done.returncode != 0:
            raise RuntimeError(f"MFA loop ({mode}) failed ({done.returncode}): {done.stderr}")
        after = load.postgres_cpu_seconds() if postgres is not None else None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return MfaRate(
        mode=mode,
        database=database if mode != "pyotp" else "—",
        threads=threads,
        count=result["count"],
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        cpus=result["cpus"],
        # Over the whole run (setup included): an upper bound on what the loop cost PostgreSQL.
        postgres_cpu=None if after is None or postgres is None else 100 * (after - postgres) / wall,
    )


def mfa_rates(seconds: float, workdir: Path) -> list[MfaRate]:
    """pyotp's bare verify, then the service path and the second step on each database."""
    rates = [mfa_rate("pyotp", "—", seconds, workdir)]
    for database in (SQLITE, POSTGRES):
        for mode in ("verify", "second step"):
            progress(f"MFA: {mode} on {database}, {MFA_THREADS} threads on CPU {SERVER_CPU}")
            rates.append(mfa_rate(mode, database, seconds, workdir))
    return rates


def mfa_lines(rates: Sequence[MfaRate]) -> list[str]:
    """The second factor's table: per second on one core, the CPU cost of a call, and that
    cost as a multiple of pyotp's bare verify measured in the same run."""
    baseline = next((item for item in rates if item.mode == "pyotp"), None)
    threads = max((item.threads for item in rates), default=1)
    lines = [
        "## Second factor (TOTP, one core)",
        "",
        f"Closed loops in a process pinned to CPU {SERVER_CPU}: pyotp in one thread; Tessera's"
        f" own services in {threads} threads (as `tessera serve` runs requests), each for a user"
        " of its own, one transaction per call, on a fresh database. Every call is a fresh code"
        " that must be accepted (the clock advances one 30 s step per call, so the single-use"
        " rule never refuses a right code). *per second* is over the measured wall time;"
        " *CPU µs* is the loop process's CPU per call, and *× pyotp* that cost as a multiple of"
        " pyotp's bare verify in this run. The PostgreSQL column is the whole local cluster over"
        " the run, setup included (an upper bound).",
        "",
        "| measurement | db | per second | CPU µs per call | × pyotp | CPU used | PostgreSQL |"
        " target | met? |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for item in rates:
        ratio = "—"
        if baseline is not None and baseline.cpu_micros:
            ratio = f"{item.cpu_micros / baseline.cpu_micros:,.0f}×"
        target, met = "—", "—"
        if item.mode == "verify":
            target = f"≥ {TARGET_MFA}/s per core"
            met = "met" if item.rate >= TARGET_MFA else "**missed**"
        postgres = "—" if item.postgres_cpu is None else f"{item.postgres_cpu:.0f} %"
        lines.append(
            f"| {MFA_MODES[item.mode]} | {item.database} | {item.rate:,.0f} |"
            f" {item.cpu_micros:,.1f} | {ratio} | {100 * item.cpu_seconds / item.seconds:.0f} % |"
            f" {postgres} | {target} | {met} |"
        )
    return [*lines, ""]


# ============================================================================ OpenID Connect


@dataclass
class OidcSide:
    """One provider under the OpenID Connect scenarios: Tessera on a database, or the peer.

    ``mint`` makes codes straight through the provider's services (Tessera); without it codes
    come from SSO hops (the peer has no other way in)."""

    name: str  # "Tessera" or PEER
    database: str  # SQLITE, POSTGRES or PEER_STORE
    server: Server
    client_id: str
    client_secret: str
    sub: str  # the signed-in user's
    cookie: str  # the Cookie header of a browser signed in at the provider
    mint: Callable[[int], list[str]] | None = None
    authorize_path: str = "/oauth2/authorize"  # the endpoints (discover() reads them)
    token_path: str = "/oauth2/token"
    userinfo_path: str = "/oauth2/userinfo"
    introspection_path: str = "/oauth2/introspect"
    access_token: str = ""  # what UserInfo is asked with: set by oidc_probe()
    versions: dict[str, str] = field(default_factory=dict)
    service_id: str = ""  # the peer's client_credentials client (peer_token_probe())
    service_secret: str = ""
    introspected: str = ""  # the opaque token its introspection is asked about

    @property
    def issuer(self) -> str:
        return self.server.url

    @property
    def client_auth(self) -> str:
        return load.basic_auth(self.client_id, self.client_secret)

    @property
    def authorize_url(self) -> str:
        """The relying party's authorization request (PKCE S256, state, nonce): path and query."""
        return (
            self.authorize_path
            + "?"
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": self.client_id,
                    "redirect_uri": RP_REDIRECT,
                    "scope": OIDC_SCOPE,
                    "state": OIDC_STATE,
                    "nonce": OIDC_NONCE,
                    "code_challenge": challenge_of(OIDC_VERIFIER),
                    "code_challenge_method": "S256",
                }
            )
        )

    @property
    def back(self) -> dict[str, str]:
        """What an authorization answer must carry back (load.check_redirect)."""
        return {"redirect_uri": RP_REDIRECT, "state": OIDC_STATE, "issuer": self.issuer}

    @property
    def code_form(self) -> str:
        """The token request's form but for ``&code=…``."""
        return urlencode(
            {
                "grant_type": "authorization_code",
                "redirect_uri": RP_REDIRECT,
                "code_verifier": OIDC_VERIFIER,
            }
        )


def tessera_side(fixture: Fixture, server: Server, workdir: Path) -> OidcSide:
    """The OpenID Connect side of ``tessera serve`` on ``fixture``'s database."""
    return OidcSide(
        name="Tessera",
        database=fixture.database,
        server=server,
        client_id=fixture.rp_id,
        client_secret=fixture.rp_secret,
        sub=fixture.oidc_sub,
        cookie=f"{cookie_name(server.url)}={fixture.session_cookie}",
        mint=lambda count: mint_codes(fixture, count, workdir),
    )


def mint_codes(fixture: Fixture, count: int, workdir: Path) -> list[str]:
    """``count`` fresh codes through the provider's own service, each what an SSO hop of the
    bench's authorization request would issue for the prepared browser session."""
    settings = Settings(
        database_url=fixture.database_url,
        master_key=fixture.master_key,
        master_key_file=workdir / "unused-master.key",
        bootstrap=False,
    )
    provider = Provider(settings)
    now = int(time.time())
    grant = CodeGrant(
        tenant_id=TENANT,
        client_id=fixture.rp_id,
        user_id=fixture.oidc_sub,
        redirect_uri=RP_REDIRECT,
        scope=OIDC_SCOPE,
        code_challenge=challenge_of(OIDC_VERIFIER),
        auth_time=fixture.auth_time,
        amr="pwd",
        nonce=OIDC_NONCE,
        session_id=fixture.session_id,
    )
    try:
        with provider.database.session() as session:
            return [provider.codes.issue(session, grant, now=now) for _ in range(count)]
    finally:
        provider.close()


def discover(side: OidcSide, http: httpx.Client) -> dict[str, Any]:
    """The side's discovery document; sets its endpoints from it."""
    document: dict[str, Any] = _expect(
        http.get("/.well-known/openid-configuration"), load._json_object
    )
    assert document["issuer"] == side.issuer, document["issuer"]
    for name, attribute in (
        ("authorization_endpoint", "authorize_path"),
        ("token_endpoint", "token_path"),
        ("userinfo_endpoint", "userinfo_path"),
        ("introspection_endpoint", "introspection_path"),
    ):
        url = document[name]
        assert url.startswith(side.issuer + "/"), (name, url)
        setattr(side, attribute, url.removeprefix(side.issuer))
    return document


def redeem(http: httpx.Client, side: OidcSide, code: str) -> httpx.Response:
    """The relying party's token request for ``code`` (client_secret_basic, PKCE verifier)."""
    return http.post(
        side.token_path,
        content=f"{side.code_form}&code={code}",
        headers={"Authorization": side.client_auth, "Content-Type": load.FORM},
    )


def oidc_probe(side: OidcSide) -> dict[str, Any]:
    """One request of each OpenID Connect kind the load sends, each answer checked as the load
    checks it, and more: without the session cookie there is no code (the hop is single sign-on,
    not an open door); the ID token verifies against the published JWKS (RS256, issuer, the
    client as audience, the user, the nonce); UserInfo names the user. Tessera's side also: a
    code redeemed twice is refused and what it gave is revoked, and a minted code is redeemed
    like a hop's. (oidc-provider answers a replay by revoking the session's whole grant, which
    its load still needs, so it is not replayed here.) Sets ``side.access_token``."""

    def userinfo(token: str) -> httpx.Response:
        return http.get(side.userinfo_path, headers={"Authorization": f"Bearer {token}"})

    with httpx.Client(base_url=side.issuer, timeout=10) as http:
        document = discover(side, http)
        anonymous = http.get(side.authorize_url)
        assert not (
            anonymous.status_code == 303
            and anonymous.headers.get("location", "").startswith(RP_REDIRECT)
        ), f"a code without a session: {anonymous.headers.get('location')}"
        http.cookies.clear()  # only the signed-in browser's cookie from here on
        hop = http.get(side.authorize_url, headers={"Cookie": side.cookie})
        code = load.check_redirect(hop.status_code, hop.headers.get("location"), side.back)
        tokens = _expect(redeem(http, side, code), load.check_code_tokens)
        # After the first ID token: a provider may make its RS256 key when first asked for one.
        jwks = _expect(http.get(urlsplit(document["jwks_uri"]).path), load.check_jwks)
        verifier = jose.Verifier(
            jose.KeySet.from_jwks(jwks),
            algorithms=["RS256"],
            issuer=side.issuer,
            audience=side.client_id,
        )
        claims = verifier.verify(tokens["id_token"])
        assert claims["sub"] == side.sub and claims["nonce"] == OIDC_NONCE, claims
        info = _expect(
            userinfo(tokens["access_token"]), lambda body: load.check_userinfo(body, side.sub)
        )
        if side.mint is not None:
            replayed = redeem(http, side, code)
            assert replayed.status_code == 400, replayed.text
            assert replayed.json()["error"] == "invalid_grant", replayed.text
            revoked = userinfo(tokens["access_token"])
            assert revoked.status_code == 401, revoked.text
            tokens = _expect(redeem(http, side, side.mint(1)[0]), load.check_code_tokens)
            assert verifier.verify(tokens["id_token"])["sub"] == side.sub
            _expect(
                userinfo(tokens["access_token"]), lambda body: load.check_userinfo(body, side.sub)
            )
    side.access_token = tokens["access_token"]
    return {"tokens": tokens, "id_claims": claims, "userinfo": info, "discovery": document}


def collect_codes(
    side: OidcSide,
    count: int,
    seconds: float,
    connections: int,
    workdir: Path,
    cpu: int | None = LOAD_CPU,
) -> list[str]:
    """Up to ``count`` codes from SSO hops in at most ``seconds`` (the driver on the load's
    core, every answer checked); oldest first."""
    result = drive_once(
        side.server.url,
        {
            "mode": "authorize",
            "path": side.authorize_url,
            "cookie": side.cookie,
            "back": side.back,
            "keep": True,
            "count": count,
            "connections": connections,
            "duration": seconds,
        },
        workdir,
        cpu=cpu,
    )
    if result["errors"]:
        raise RuntimeError(f"{side.name}: SSO hops failed: {result['errors']} {result['samples']}")
    return list(result["codes"])


def code_pool(
    side: OidcSide,
    count: int,
    seconds: float,
    connections: int,
    workdir: Path,
    cpu: int | None = LOAD_CPU,
) -> list[str]:
    """Fresh codes for a window: minted (Tessera), else collected from SSO hops."""
    if side.mint is not None:
        return side.mint(count)
    return collect_codes(side, count, seconds, connections, workdir, cpu)


def run_code_grant(
    side: OidcSide, args: argparse.Namespace, workdir: Path, cpu: int | None = LOAD_CPU
) -> Measured:
    """The authorization_code grant: each request redeems a code of a pool made just before
    the window (codes live CODE_TTL s), sized from the warm-up's rate."""
    # The window and the pool's making must fit in a code's life, with room to spare.
    duration = min(args.duration, CODE_TTL - 25)
    collecting = max(CODE_TTL - duration - 10, 5)
    spec = {
        "mode": "codes",
        "check": "code_tokens",
        "path": side.token_path,
        "authorization": side.client_auth,
        "form": side.code_form,
        "connections": args.connections,
        "duration": duration,
    }

    def measured_pool(warm: dict[str, Any]) -> dict[str, Any]:
        rate = warm["ok"] / max(warm["seconds"], 1e-9)
        count = min(
            MAX_CODES, int(max(rate, 100) * duration * CODE_HEADROOM) + 2 * args.connections
        )
        progress(f"{side.name} ({side.database}): {count:,} fresh codes for the measured window")
        return {
            **spec,
            "codes": code_pool(side, count, collecting, args.connections, workdir, cpu),
        }

    warm_codes = code_pool(
        side, WARM_CODE_RATE * args.warmup, args.warmup, args.connections, workdir, cpu
    )
    measured, _ = run_driver(
        side.server.url,
        {**spec, "codes": warm_codes},
        scenario=CODE_GRANT,
        database=side.database,
        warmup=args.warmup,
        workdir=workdir,
        server_pid=side.server.pid,
        cpu=cpu,
        measured_spec=measured_pool,
    )
    return measured


def fresh_access_token(side: OidcSide) -> str:
    """An access token of the signed-in user from one SSO hop and its code (each window gets a
    fresh one: a long run must not outlive a token)."""
    with httpx.Client(base_url=side.issuer, timeout=10) as http:
        hop = http.get(side.authorize_url, headers={"Cookie": side.cookie})
        code = load.check_redirect(hop.status_code, hop.headers.get("location"), side.back)
        tokens = _expect(redeem(http, side, code), load.check_code_tokens)
    return str(tokens["access_token"])


def sso_request(side: OidcSide) -> WrkRequest:
    """The SSO hop for wrk: the authorization request with the session cookie, answered by a
    303 to the redirect URI with a code, the state and the issuer (RFC 9207)."""
    return WrkRequest(
        "GET",
        side.authorize_url,
        None,
        "",
        "",
        status=303,
        cookie=side.cookie,
        location=(
            "^" + lua_escaped(RP_REDIRECT + "?"),
            "[?&]code=[%w%-_]+&",
            "[?&]state=" + lua_escaped(OIDC_STATE) + "&",
            "[?&]iss=" + lua_escaped(quote(side.issuer, safe="")) + "&",
        ),
    )


def userinfo_request(side: OidcSide) -> WrkRequest:
    """UserInfo for wrk: one access token of the user, answered with the user's ``sub``."""
    return WrkRequest(
        "GET", side.userinfo_path, f"Bearer {side.access_token}", "", f'"sub":"{side.sub}"'
    )


def oidc_scenarios(
    side: OidcSide, args: argparse.Namespace, workdir: Path, cpu: int | None = LOAD_CPU
) -> list[Measured]:
    """The three OpenID Connect scenarios against ``side`` (oidc_probe() first), the load
    under ``taskset -c cpu``."""
    results: list[Measured] = []
    progress(f"{side.name} ({side.database}): {CODE_GRANT} (Python driver, fresh codes)")
    with server_errors(side.server) as seen:
        results.append(run_code_grant(side, args, workdir, cpu))
    results[-1].server_log = seen
    for name in (SSO_HOP, USERINFO):
        progress(f"{side.name} ({side.database}): {name} (wrk)")
        if name == USERINFO:
            side.access_token = fresh_access_token(side)
        request = sso_request(side) if name == SSO_HOP else userinfo_request(side)
        results.append(side_wrk(side, request, name, args, workdir, cpu))
    return results


def side_wrk(
    side: OidcSide,
    request: WrkRequest,
    scenario: str,
    args: argparse.Namespace,
    workdir: Path,
    cpu: int | None,
) -> Measured:
    """One wrk scenario against ``side``, with the exceptions its server logged meanwhile."""
    with server_errors(side.server) as seen:
        measured = run_wrk(
            side.server,
            request,
            scenario=scenario,
            database=side.database,
            warmup=args.warmup,
            duration=args.duration,
            connections=args.connections,
            workdir=workdir,
            cpu=cpu,
        )
    measured.server_log = seen
    return measured


# ---------------------------------------------------------------------------- the peer


def ensure_peer() -> str | None:
    """bench/node_modules with the pinned oidc-provider, installed with ``npm ci`` when missing.
    ``None`` when it is there; else why not (the bench then measures Tessera alone)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    wanted = json.loads((BENCH_DIR / "package.json").read_text())["dependencies"][PEER]
    installed_file = BENCH_DIR / "node_modules" / PEER / "package.json"
    if installed_file.exists() and json.loads(installed_file.read_text())["version"] == wanted:
        return None
    progress(f"bench/node_modules: running npm ci ({PEER} {wanted})")
    try:
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "npm ci did not finish within 10 minutes (is the npm registry reachable?)"
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return f"npm ci failed ({done.returncode}; is the npm registry reachable?): {tail[:300]}"
    return None


@contextmanager
def serve_peer(workdir: Path, cpu: int | None = SERVER_CPU) -> Iterator[OidcSide]:
    """node oidc-provider (bench/oidc_provider_peer.mjs) under ``taskset -c cpu``, signed in once
    through its interaction; stopped (SIGINT) on exit."""
    port = free_port()
    client_id, secret, sub = "bench-rp", secrets.token_urlsafe(32), str(uuid.uuid4())
    service_id, service_secret = "bench-service", secrets.token_urlsafe(32)
    spec = {
        "host": HOST,
        "port": port,
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uri": RP_REDIRECT,
        "sub": sub,
        "service_id": service_id,
        "service_secret": service_secret,
        "audience": AUDIENCE,
        "scope": " ".join(SCOPES),
        "resource": PEER_RESOURCE,
    }
    log = workdir / f"oidc-provider-{port}.log"
    env = {**os.environ, "NODE_ENV": "production"}
    with log.open("wb") as errors:
        process = subprocess.Popen(
            pinned(["node", str(BENCH_DIR / "oidc_provider_peer.mjs"), json.dumps(spec)], cpu),
            cwd=BENCH_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        ready = _peer_ready(process, log)
        server = Server(str(ready["issuer"]), port, process.pid, log)
        side = OidcSide(
            name=PEER,
            database=PEER_STORE,
            server=server,
            client_id=client_id,
            client_secret=secret,
            sub=sub,
            cookie="",
            versions={"node": str(ready["node"]), PEER: str(ready[PEER.replace("-", "_")])},
            service_id=service_id,
            service_secret=service_secret,
        )
        side.cookie = peer_sign_in(side)
        yield side
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _peer_ready(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        raise RuntimeError(f"{PEER} did not start:\n{_tail(log)}")
    return dict(json.loads(line))


def peer_sign_in(side: OidcSide) -> str:
    """Sign in once through the peer's interaction (its fixed account, the scopes allowed):
    the Cookie header of that browser's provider session. Every authorization request with it
    afterwards is an SSO hop."""
    with httpx.Client(base_url=side.issuer, timeout=10) as browser:
        discover(side, browser)
        target = side.authorize_url
        for _ in range(8):
            answer = browser.get(target)
            where = answer.headers.get("location", "")
            if answer.status_code not in (302, 303) or not where:
                raise RuntimeError(f"{PEER} sign-in: {answer.status_code} {answer.text[:300]}")
            if where.startswith(RP_REDIRECT):
                load.check_redirect(answer.status_code, where, side.back)
                break
            target = where.removeprefix(side.issuer)
        else:
            raise RuntimeError(f"{PEER} sign-in: no code after 8 redirects")
        cookies = [
            f"{cookie.name}={cookie.value}" for cookie in browser.cookies.jar if cookie.path == "/"
        ]
    if not cookies:
        raise RuntimeError(f"{PEER} sign-in set no session cookie")
    return "; ".join(cookies)


def bench_peer(args: argparse.Namespace, workdir: Path) -> tuple[list[Measured], dict[str, Any]]:
    """The selected token (client_credentials, introspection) and OpenID Connect scenarios
    against node oidc-provider on the server's core: the rows and what the report says of the
    peer (versions, memory, or why it was not measured)."""
    why = ensure_peer()
    if why is not None:
        progress(f"{PEER} not measured: {why}")
        return [], {"missing": why}
    try:
        with serve_peer(workdir) as side:
            progress(
                f"{PEER} {side.versions[PEER]} (node {side.versions['node']}) pid"
                f" {side.server.pid} on {side.server.url}; probing"
            )
            if "oidc" in args.only:
                oidc_probe(side)
            if "tokens" in args.only:
                peer_token_probe(side)
            idle = memory_mb(side.server.pid)
            results = []
            if "tokens" in args.only:
                results += peer_token_scenarios(side, args, workdir)
            if "oidc" in args.only:
                results += oidc_scenarios(side, args, workdir)
            return results, {
                "versions": side.versions,
                "idle": idle,
                "after": memory_mb(side.server.pid),
            }
    except (RuntimeError, OSError, AssertionError, KeyError, ValueError, httpx.HTTPError) as error:
        progress(f"{PEER} failed: {error!r}")
        return [], {"missing": f"it failed: {str(error)[:300]}"}


def peer_cc_form(resource: bool) -> str:
    """The peer's client_credentials request: with the API as resource its token is an ES256
    JWT (as Tessera's, which needs no resource: the client's audience is registered)."""
    form = {"grant_type": "client_credentials", "scope": SCOPES[0]}
    if resource:
        form["resource"] = PEER_RESOURCE
    return urlencode(form)


def peer_token_probe(side: OidcSide) -> None:
    """One client_credentials grant and one introspection at the peer, checked as Tessera's are
    in probe(): the JWT access token verifies against its JWKS (ES256, issuer, the API as
    audience, ``at+jwt``); introspection of an opaque token says active. Sets
    ``side.introspected`` to that opaque token (what its introspection scenario asks about)."""
    auth = {"Authorization": load.basic_auth(side.service_id, side.service_secret)}
    form = {"Content-Type": load.FORM}
    with httpx.Client(base_url=side.issuer, timeout=10) as http:
        document = discover(side, http)
        jwks = _expect(http.get(urlsplit(document["jwks_uri"]).path), load.check_jwks)
        granted = _expect(
            http.post(side.token_path, content=peer_cc_form(True), headers={**auth, **form}),
            load.check_token,
        )
        claims = access_token_verifier(jwks, side.issuer).verify(granted["access_token"])
        assert claims["client_id"] == side.service_id and claims["scope"] == SCOPES[0], claims
        opaque = _expect(
            http.post(side.token_path, content=peer_cc_form(False), headers={**auth, **form}),
            load._json_object,
        )["access_token"]
        assert opaque.count(".") == 0, "the peer's token without a resource is not opaque"
        described = _expect(
            http.post(
                side.introspection_path,
                data={"token": opaque, "token_type_hint": "access_token"},
                headers=auth,
            ),
            load._json_object,
        )
        assert described.get("active") is True, described
        assert described["client_id"] == side.service_id, described
    side.introspected = opaque


def peer_token_scenarios(
    side: OidcSide, args: argparse.Namespace, workdir: Path, cpu: int | None = LOAD_CPU
) -> list[Measured]:
    """client_credentials (JWT access tokens) and introspection against the peer, with wrk as
    Tessera's are measured (peer_token_probe() first), the load under ``taskset -c cpu``."""
    auth = load.basic_auth(side.service_id, side.service_secret)
    requests = {
        CC: WrkRequest("POST", side.token_path, auth, peer_cc_form(True), '"access_token":"eyJ'),
        INTROSPECTION: WrkRequest(
            "POST",
            side.introspection_path,
            auth,
            f"token={side.introspected}&token_type_hint=access_token",
            '"active":true',
        ),
    }
    results: list[Measured] = []
    for name, request in requests.items():
        progress(f"{side.name}: {name} (wrk)")
        results.append(side_wrk(side, request, name, args, workdir, cpu))
    return results


# ============================================================================ scenarios


def requests_for(fixture: Fixture) -> dict[str, WrkRequest]:
    """The wrk scenarios' requests (the refresh scenario is the driver's)."""
    return {
        CC: WrkRequest(
            "POST",
            "/oauth2/token",
            fixture.cc_auth,
            "grant_type=client_credentials",
            '"token_type":"Bearer"',
        ),
        INTROSPECTION: WrkRequest(
            "POST",
            "/oauth2/introspect",
            fixture.cc_auth,
            f"token={fixture.access_token}&token_type_hint=access_token",
            '"active":true',
        ),
        "JWKS": WrkRequest("GET", "/.well-known/jwks.json", None, "", '"keys":[{'),
        "password grant (argon2id)": WrkRequest(
            "POST",
            "/oauth2/token",
            fixture.login_auth,
            urlencode(
                {
                    "grant_type": "password",
                    "username": fixture.login_username,
                    "password": fixture.login_password,
                }
            ),
            '"token_type":"Bearer"',
        ),
    }


def refresh_spec(fixture: Fixture, connections: int, duration: float) -> dict[str, Any]:
    return {
        "mode": "refresh",
        "path": "/oauth2/token",
        "authorization": fixture.refresh_auth,
        "connections": connections,
        "duration": duration,
        "tokens": fixture.chains,
        "spares": fixture.spares,
    }


def bench_database(
    database: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[Measured], dict[str, Any]]:
    """The selected scenarios (``args.only``) against one server on a fresh ``database``; also
    its memory after load."""
    results: list[Measured] = []
    only = args.only
    with database_url(database, workdir) as url:
        progress(f"{database}: preparing {args.connections * 3} refresh families")
        fixture = prepare(
            database,
            url,
            chains=args.connections,
            spares=args.connections * 2,
            workdir=workdir,
        )
        with serve(fixture, workdir) as server:
            progress(f"{database}: tessera serve pid {server.pid} on {server.url}; probing")
            probe(server, fixture)
            side = tessera_side(fixture, server, workdir)
            if "oidc" in only:
                oidc_probe(side)
            rss_idle = memory_mb(server.pid)
            common = {
                "fixture": fixture,
                "warmup": args.warmup,
                "duration": args.duration,
                "connections": args.connections,
                "workdir": workdir,
            }
            requests = requests_for(fixture)
            if "tokens" in only:
                results += token_scenarios(database, args, workdir, server, fixture, common)
            if "oidc" in only:
                results += oidc_scenarios(side, args, workdir)
            memory = {"idle": rss_idle, "after": memory_mb(server.pid)}
            if "passwords" in only:
                # Last, so the scenarios' memory above is theirs alone: every concurrent
                # argon2id verification holds its own 19 MiB, which the allocator keeps.
                name = "password grant (argon2id)"
                progress(f"{database}: {name} (wrk, {PASSWORD_CONNECTIONS} connections)")
                with server_errors(server) as seen:
                    results.append(
                        run_wrk(
                            server,
                            requests[name],
                            scenario=name,
                            **{**common, "connections": PASSWORD_CONNECTIONS},
                        )
                    )
                results[-1].server_log = seen
                memory["after passwords"] = memory_mb(server.pid)
    targets = {
        (CC, SQLITE): TARGET_CC,
        (CC, POSTGRES): TARGET_CC,
        ("refresh_token grant", POSTGRES): TARGET_REFRESH_PG,
        **{(CODE_GRANT, name): TARGET_CODE for name in (SQLITE, POSTGRES)},
        **{(SSO_HOP, name): TARGET_SSO for name in (SQLITE, POSTGRES)},
        **{(USERINFO, name): TARGET_USERINFO for name in (SQLITE, POSTGRES)},
    }
    for measured in results:
        target = targets.get((measured.scenario, measured.database))
        if target is not None:
            measured.target, measured.met = f"≥ {target:,}/s", measured.rps >= target
        if measured.error_count:
            measured.met = False if measured.met is not None else None
    return results, memory


def token_scenarios(
    database: str,
    args: argparse.Namespace,
    workdir: Path,
    server: Server,
    fixture: Fixture,
    common: dict[str, Any],
) -> list[Measured]:
    """client_credentials, introspection, JWKS (wrk and the driver) and refresh grants."""
    results: list[Measured] = []
    requests = requests_for(fixture)
    names = [CC, INTROSPECTION]
    if database == SQLITE:
        names.insert(0, "JWKS")
    for name in names:
        progress(f"{database}: {name} (wrk)")
        with server_errors(server) as seen:
            results.append(run_wrk(server, requests[name], scenario=name, **common))
        results[-1].server_log = seen
    if database == SQLITE:
        progress(f"{database}: JWKS (Python driver, to compare with wrk)")
        with server_errors(server) as seen:
            jwks, _ = run_driver(
                server.url,
                {
                    "mode": "get",
                    "check": "jwks",
                    "path": "/.well-known/jwks.json",
                    "connections": args.connections,
                    "duration": args.duration,
                },
                scenario="JWKS, Python driver",
                database=database,
                warmup=args.warmup,
                workdir=workdir,
                server_pid=server.pid,
            )
        jwks.server_log = seen
        results.append(jwks)
    progress(f"{database}: refresh_token grant (Python driver, one chain per connection)")
    with server_errors(server) as seen:
        refresh, _ = run_driver(
            server.url,
            refresh_spec(fixture, args.connections, args.duration),
            scenario="refresh_token grant",
            database=database,
            warmup=args.warmup,
            workdir=workdir,
            server_pid=server.pid,
        )
    refresh.server_log = seen
    results.append(refresh)
    return results


def driver_ceiling(args: argparse.Namespace, workdir: Path) -> Measured:
    """The driver's own ceiling: refresh-shaped load against a canned server on the server's
    core that answers without doing anything, so the rate is bounded by the driver."""
    port = free_port()
    canned = subprocess.Popen(
        pinned([sys.executable, str(BENCH_DIR / "idp_load.py"), "canned", "--port", str(port)], 0),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert canned.stdout is not None
        if canned.stdout.readline().strip() != "ready":
            raise RuntimeError("the canned server did not start")
        fake = [f"canned-chain-{slot:04d}-{'x' * 24}" for slot in range(args.connections)]
        measured, _ = run_driver(
            f"http://{HOST}:{port}",
            {
                "mode": "refresh",
                "path": "/oauth2/token",
                "authorization": load.basic_auth("ceiling", "ceiling"),
                "connections": args.connections,
                "duration": args.duration,
                "tokens": fake,
                "spares": [],
            },
            scenario="driver ceiling (canned server)",
            database="—",
            warmup=args.warmup,
            workdir=workdir,
            server_pid=canned.pid,
        )
    finally:
        canned.send_signal(signal.SIGINT)
        try:
            canned.wait(timeout=10)
        except subprocess.TimeoutExpired:
            canned.kill()
            canned.wait()
    return measured


# ============================================================================ the report


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def postgres_version() -> str:
    from sqlalchemy import create_engine

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].split(" [")[0]


def machine_lines(
    load_before: str, load_after: str, peer: dict[str, str] | None = None
) -> list[str]:
    versions = ", ".join(
        f"{name} {installed(name)}"
        for name in (
            "uvicorn",
            "starlette",
            "fastapi",
            "h11",
            "httptools",
            "uvloop",
            "SQLAlchemy",
            "psycopg",
            "cryptography",
            "orjson",
        )
    )
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {cpu_model()} ({os.cpu_count()} logical CPUs; server on CPU {SERVER_CPU},"
        f" load on CPU {LOAD_CPU}) |",
        f"| OS | {platform.platform()} |",
        f"| load average (1, 5, 15 min) | before {load_before} · after {load_after} |",
        f"| Python | {platform.python_implementation()} {platform.python_version()} |",
        f"| Tessera | {tessera_version} |",
        f"| server stack | {versions} |",
        f"| databases | SQLite {sqlite3.sqlite_version} (WAL) · PostgreSQL {postgres_version()}"
        " (127.0.0.1, unpinned) |",
        f"| load | {wrk_version()} · bench/idp_load.py (asyncio streams) |",
        *(
            [f"| peer | {PEER} {peer.get(PEER, '?')}, Node.js {peer.get('node', '?')} |"]
            if peer
            else []
        ),
        "",
    ]


def verdict(measured: Measured) -> str:
    if measured.met is None:
        return "—"
    return "met" if measured.met else "**missed**"


def results_table(results: Sequence[Measured]) -> list[str]:
    lines = [
        "| scenario | db | req/s | p50 ms | p99 ms | errors | target | met? |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for item in results:
        lines.append(
            f"| {item.scenario} | {item.database} | {item.rps:,.0f} | {item.p50_ms:.2f} |"
            f" {item.p99_ms:.2f} | {item.error_count} | {item.target} | {verdict(item)} |"
        )
    return [*lines, ""]


def cpu_table(results: Sequence[Measured]) -> list[str]:
    lines = [
        "## Where the CPU went (measured window; % of one core)",
        "",
        "`core N busy` counts everything on that core: busy − server (core 0) is other work"
        " on the server's core (noise, or PostgreSQL). PostgreSQL is not pinned; its column is"
        " the whole local cluster (every backend, including other users' — the database is"
        " shared), so it is an upper bound on what the server's queries cost it.",
        "",
        "| scenario | db | tool | server | core 0 busy | load generator | core 1 busy |"
        " PostgreSQL |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} %"

    for item in results:
        lines.append(
            f"| {item.scenario} | {item.database} | {item.tool} | {pct(item.server_cpu)} |"
            f" {pct(item.cores.get(SERVER_CPU))} | {pct(item.load_cpu)} |"
            f" {pct(item.cores.get(LOAD_CPU))} | {pct(item.postgres_cpu)} |"
        )
    return [*lines, ""]


def memory_lines(memory: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    lines = [
        "## Server memory (`/proc/<pid>/status`)",
        "",
        "| server | VmRSS idle (after probe) | VmRSS after load | VmHWM (peak) | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for database, values in memory.items():
        idle, _ = values["idle"]
        rss, hwm = values["after"]
        met = "met" if max(rss, hwm) <= TARGET_RSS_MB else "**missed**"
        lines.append(
            f"| {database} | {idle:.1f} MB | {rss:.1f} MB | {hwm:.1f} MB |"
            f" peak ≤ {TARGET_RSS_MB} MB | {met} |"
        )
    return [*lines, ""]


def keycloak_lines(
    results: Sequence[Measured],
    memory: dict[str, dict[str, tuple[float, float]]],
    rates: Sequence[Argon2Rate] = (),
) -> list[str]:
    def best(scenario: str, database: str) -> str:
        for item in results:
            if item.scenario == scenario and item.database == database:
                return f"{item.rps:,.0f}/s on one core"
        return "—"

    peak = max((values["after"][1] for values in memory.values()), default=0.0)
    keycloak_rate = next(
        (
            f"{item.rate:,.0f} argon2id verifications/s on one core at Keycloak's parameters"
            for item in rates
            if item.label.startswith("Keycloak")
        ),
        "—",
    )
    return [
        "## For reference: Keycloak 26's published sizing (not measured here)",
        "",
        f"Planning figures from Keycloak's sizing guide ({KEYCLOAK_URL}), measured by the"
        " Keycloak project on its own hardware and setup; shown only for scale.",
        "",
        "| | Tessera, measured here | Keycloak 26 published sizing |",
        "|---|---|---|",
        f"| client_credentials grants | {best('client_credentials grant', POSTGRES)} (PostgreSQL)"
        f" · {best('client_credentials grant', SQLITE)} (SQLite) |"
        f" {KEYCLOAK['client_credentials']} |",
        f"| refresh grants | {best('refresh_token grant', POSTGRES)} (PostgreSQL) |"
        f" {KEYCLOAK['refresh_token']} |",
        f"| password logins | {keycloak_rate} · {best('password grant (argon2id)', POSTGRES)}"
        f" (HTTP logins at the configured parameters, PostgreSQL) | {KEYCLOAK['password']} |",
        f"| memory | {peak:.0f} MB peak RSS per process | {KEYCLOAK['rss']} |",
        "",
    ]


def error_lines(results: Sequence[Measured]) -> list[str]:
    bad = [item for item in results if item.error_count]
    if not bad:
        return [
            "Every answer in every measured window was right (200 and well-formed, or the"
            " SSO hop's 303).",
            "",
        ]
    lines = ["## Errors (answers that were not 200 and well-formed)", ""]
    for item in bad:
        counts = ", ".join(f"{kind} × {count}" for kind, count in item.errors.most_common())
        lines.append(f"- {item.scenario} ({item.database}): {counts}")
        lines += [f"  - e.g. `{sample}`" for sample in item.samples[:3]]
        lines += [f"  - server log: `{line}`" for line in item.server_log]
    return [*lines, ""]


def note_lines(results: Sequence[Measured]) -> list[str]:
    noted = [item for item in results if item.note]
    if not noted:
        return []
    return [
        *(f"- Note: {item.scenario} ({item.database}): {item.note}." for item in noted),
        "",
    ]


def per_core(item: Measured) -> float:
    """Right answers per second of one busy core of the server (its process's CPU time)."""
    return item.rps / (item.server_cpu / 100) if item.server_cpu else 0.0


def token_peer_lines(
    results: Sequence[Measured], peers: Sequence[Measured], peer: dict[str, Any]
) -> list[str]:
    """client_credentials and introspection, Tessera beside node oidc-provider in the same run:
    the ratio is per core — each side's rate over the CPU its server process used (≥ 1.0× is
    the goal)."""
    lines = [
        f"## Token endpoint and introspection, side by side with node {PEER}",
        "",
        f"Both servers one process pinned to CPU {SERVER_CPU}, the load (wrk, the same"
        f" connections) from CPU {LOAD_CPU}, one after the other in this run."
        " **client_credentials**: a confidential service client (client_secret_basic), one"
        " scope; a right answer has an"
        f" ES256 JWT access token (RFC 9068 `at+jwt`) on both — {PEER}'s for a resource"
        " indicator (RFC 8707), its only way to JWT access tokens. **Introspection** (RFC 7662)"
        f" by the same client: Tessera's of one of its JWTs (signature, claims, then the"
        f" revocation list in its database), {PEER}'s of an opaque token of its own (it refuses"
        " to introspect JWTs: a lookup in its memory). Tessera writes an audit row to its"
        f" database for every grant; {PEER} persists nothing. Per core: req/s divided by the"
        " share of a core the server process used in the window.",
        "",
        f"| scenario | db | Tessera req/s | p99 ms | per core | {PEER} req/s | p99 ms | per core"
        f" | Tessera / {PEER} per core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    theirs = {item.scenario: item for item in peers}
    for item in results:
        if item.scenario not in TOKEN_SCENARIOS:
            continue
        other = theirs.get(item.scenario)
        if other is not None and per_core(other):
            ratio = f"**{per_core(item) / per_core(other):.2f}×**"
            figures = f"{other.rps:,.0f} | {other.p99_ms:.2f} | {per_core(other):,.0f}"
        else:
            ratio, figures = "—", "— | — | —"
        lines.append(
            f"| {item.scenario} | {item.database} | {item.rps:,.0f} | {item.p99_ms:.2f} |"
            f" {per_core(item):,.0f} | {figures} | {ratio} |"
        )
    lines.append("")
    if "missing" in peer:
        lines += [f"{PEER} was not measured: {peer['missing']}. Tessera's figures stand alone.", ""]
    return lines


def oidc_lines(
    results: Sequence[Measured], peers: Sequence[Measured], peer: dict[str, Any]
) -> list[str]:
    """The OpenID Connect scenarios, Tessera beside node oidc-provider measured in the same run:
    the ratio is Tessera's rate over the peer's (≥ 1.0× is the goal)."""
    versions = peer.get("versions") or {}
    described = (
        f"{PEER} {versions.get(PEER, '?')} on Node.js {versions.get('node', '?')}"
        if versions
        else PEER
    )
    lines = [
        f"## OpenID Connect, side by side with node {PEER}",
        "",
        f"Both servers one process pinned to CPU {SERVER_CPU}, the load from CPU {LOAD_CPU}, the"
        " same connections, requests and checks, one after the other in this run. The relying"
        " party is a confidential client (client_secret_basic) allowed the authorization_code"
        " and refresh_token grants, PKCE S256 required; the person signed in once (a provider"
        f" session); scope `{OIDC_SCOPE}`; ID tokens RS256 (RSA 2048) on both. **Code grant**:"
        " each request redeems a fresh code with its PKCE verifier; a right answer has an"
        " access token, a compact ID token and a refresh token. Tessera's codes are minted"
        " through its own service just before each window (as its SSO hop issues them, for the"
        f" same session); {PEER}'s are collected from SSO hops just before (it has no other way"
        " in); codes live 60 s on both. **SSO hop**: `GET` of the authorization endpoint with the"
        " session cookie; a right answer is a 303 to the redirect URI with `code`, the `state`"
        " and `iss` (checked by wrk's Lua on every answer). **UserInfo**: `GET` with one access"
        " token; a right answer is 200 with the user's `sub`.",
        "",
        f"Not the same work: Tessera keeps everything in its database (codes, sessions, refresh"
        " families, audit rows) and its access tokens are ES256 JWTs (a code grant signs two"
        f" JWTs); {described} keeps everything in process memory (its own in-memory adapter"
        " class, with its bound raised from ~1,000 entries so that collected codes are not"
        " evicted before use), persists nothing, and its access tokens for UserInfo are opaque"
        " (one signature per code grant).",
        "",
        f"| scenario | db | Tessera req/s | p50 ms | p99 ms | {PEER} req/s | p50 ms | p99 ms |"
        f" Tessera / {PEER} | target | met? |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    theirs = {item.scenario: item for item in peers}
    for item in results:
        if item.scenario not in OIDC_SCENARIOS:
            continue
        other = theirs.get(item.scenario)
        if other is not None:
            ratio = f"**{item.rps / other.rps:.2f}×**" if other.rps else "—"
            figures = f"{other.rps:,.0f} | {other.p50_ms:.2f} | {other.p99_ms:.2f}"
        else:
            ratio, figures = "—", "— | — | —"
        lines.append(
            f"| {item.scenario} | {item.database} | {item.rps:,.0f} | {item.p50_ms:.2f} |"
            f" {item.p99_ms:.2f} | {figures} | {ratio} | {item.target} | {verdict(item)} |"
        )
    lines.append("")
    if "missing" in peer:
        lines += [f"{PEER} was not measured: {peer['missing']}. Tessera's figures stand alone.", ""]
    elif "after" in peer:
        idle, _ = peer["idle"]
        rss, hwm = peer["after"]
        lines += [
            f"{PEER}'s memory: VmRSS {idle:.0f} MB idle, {rss:.0f} MB after its load (peak"
            f" {hwm:.0f} MB) — everything it issued is in there.",
            "",
        ]
    return lines


# ============================================================================ main


def ensure_wrk() -> None:
    """wrk from Debian; installed with apt-get when missing and we are root."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: install it (Debian: apt-get install -y wrk)")
    progress("wrk is missing; running: apt-get install -y wrk")
    installed_now = subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
    if installed_now.returncode != 0:
        progress("running: apt-get update, then apt-get install -y wrk")
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_DURATION} s per scenario (smoke run)"
    )
    parser.add_argument("--duration", type=int, help=f"seconds per scenario (default {DURATION})")
    parser.add_argument("--warmup", type=int, help=f"warm-up seconds (default {WARMUP})")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="connections")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument(
        "--only",
        type=_groups,
        default=frozenset(GROUPS),
        metavar="GROUP[,GROUP…]",
        help=f"run only these groups of scenarios: {', '.join(GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help=f"do not measure node {PEER} (the peer of the tokens and oidc groups)",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (QUICK_DURATION if args.quick else DURATION)
    args.warmup = args.warmup or (QUICK_WARMUP if args.quick else WARMUP)
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the bench needs two CPUs: one for the server, one for the load")
    only = args.only
    ensure_wrk()
    started = time.monotonic()
    load_before = loadavg()

    results: list[Measured] = []
    peers: list[Measured] = []
    peer: dict[str, Any] = {}
    memory: dict[str, dict[str, tuple[float, float]]] = {}
    rates: list[Argon2Rate] = []
    mfa: list[MfaRate] = []
    signing: dict[str, float] = {}
    if "oidc" in only:
        progress(f"signing: RS256 and ES256 JWTs/s on CPU {SERVER_CPU}")
        signing = signing_rates(min(args.duration, 5))
    if "passwords" in only:
        progress(f"argon2id: verifications/s on CPU {SERVER_CPU}, configured and Keycloak's")
        rates = [
            argon2_rate("configured (OWASP)", CONFIGURED_ARGON2, args.duration),
            argon2_rate("Keycloak's", KEYCLOAK_ARGON2, args.duration),
        ]
    with tempfile.TemporaryDirectory(prefix="tessera-idp-bench-") as temporary:
        workdir = Path(temporary)
        if "mfa" in only:
            progress(f"MFA: TOTP verifications/s on CPU {SERVER_CPU}, pyotp alone and Tessera's")
            mfa = mfa_rates(args.duration, workdir)
        if "ceiling" in only:
            progress("driver ceiling: refresh-shaped load against a canned server")
            results.append(driver_ceiling(args, workdir))
        if only & {"tokens", "passwords", "oidc"}:
            for database in (SQLITE, POSTGRES):
                measured, memory[database] = bench_database(database, args, workdir)
                results += measured
        if only & {"tokens", "oidc"}:
            if args.no_peer:
                peer = {"missing": "--no-peer was given"}
            else:
                peers, peer = bench_peer(args, workdir)
    results.sort(key=lambda item: (ORDER.index(item.scenario), item.database != SQLITE))
    everything = [*results, *peers]

    lines = [
        "# Tessera identity provider benchmark",
        "",
        f"`tessera serve`, one uvicorn worker, pinned to CPU {SERVER_CPU}; load from CPU"
        f" {LOAD_CPU}. {args.connections} keep-alive connections, {args.warmup} s warm-up then"
        f" {args.duration} s measured per scenario; req/s counts only answers that were right"
        " (200 and well-formed — a token answer with a compact JWT, `active: true`, a key set —"
        " or, for an SSO hop, a 303 to the client with a code, the state and the issuer)."
        " Latency is per request, closed loop. Refresh: one rotating chain per connection (each"
        " request sends the token the previous answer returned), a user-bound family of a"
        " confidential client. Introspection asks about an ES256 access token.",
        "",
        *results_table(results),
        *error_lines(everything),
        *note_lines(everything),
    ]
    if "tokens" in only:
        lines += token_peer_lines(results, peers, peer)
    if "oidc" in only:
        lines += oidc_lines(results, peers, peer)
        lines += signing_lines(signing)
    if "passwords" in only:
        lines += password_lines(rates, results, memory)
    if mfa:
        lines += mfa_lines(mfa)
    if memory:
        lines += memory_lines(memory)
    if only >= {"tokens", "passwords"}:
        lines += keycloak_lines(results, memory, rates)
    if only & {"tokens", "ceiling"}:
        lines += ["## Is the load generator the bottleneck?", "", _driver_note(results), ""]
    lines += [
        *cpu_table(everything),
        *machine_lines(load_before, loadavg(), peer.get("versions")),
        f"{'quick' if args.quick else 'full'} run ({', '.join(g for g in GROUPS if g in only)}),"
        f" {time.monotonic() - started:.0f} s in all.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


def _groups(text: str) -> frozenset[str]:
    """``--only``'s value: comma-separated names of GROUPS."""
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - set(GROUPS)
    if not chosen or unknown:
        named = ", ".join(sorted(unknown)) or "(none)"
        raise argparse.ArgumentTypeError(f"unknown group {named}; choose from {', '.join(GROUPS)}")
    return chosen


def _driver_note(results: Sequence[Measured]) -> str:
    found = {(item.scenario, item.database): item for item in results}
    ceiling = found.get(("driver ceiling (canned server)", "—"))
    wrk_jwks = found.get(("JWKS", SQLITE))
    driver_jwks = found.get(("JWKS, Python driver", SQLITE))
    refresh = [item for item in results if item.scenario == "refresh_token grant"]
    parts = []
    if ceiling is not None:
        parts.append(
            f"The Python driver alone, refresh-shaped requests against a canned server that"
            f" answers at once: **{ceiling.rps:,.0f} req/s** (driver at"
            f" {ceiling.load_cpu or 0:.0f} % of its core)."
        )
    if refresh:
        fastest = max(item.rps for item in refresh)
        parts.append(
            f"The fastest refresh scenario needed {fastest:,.0f} req/s"
            + (
                f", {fastest / ceiling.rps:.1%} of that ceiling."
                if ceiling and ceiling.rps
                else "."
            )
        )
    if wrk_jwks is not None and driver_jwks is not None:
        parts.append(
            f"On JWKS the driver got {driver_jwks.rps:,.0f} req/s where wrk got"
            f" {wrk_jwks.rps:,.0f} req/s from the same server."
        )
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
