"""Revocation fan-out: how soon a revocation made at any provider node is refused by every guard.

Two ``tessera serve`` nodes share a PostgreSQL schema and Redis (the machine's, under a schema
and key prefix of the bench's own, dropped afterwards); four guards, each a process of its own,
follow the Redis stream (``tessera.guard.RedisRevocationList``) and note the moment each
revocation reaches them. The bench revokes access tokens (RFC 7009 ``/oauth2/revoke``) one
after another, alternately at each node, and reports, over every revocation and guard, the time
from the revocation request being sent to the guard refusing the token: p50, p90, p99, max.
Target (issue 16): p99 ≤ 100 ms. Times are ``CLOCK_MONOTONIC``, the same clock in every process.

    .venv/bin/python bench/fanout_bench.py              # 400 revocations, 4 guards
    .venv/bin/python bench/fanout_bench.py --quick      # 100 revocations
    .venv/bin/python bench/fanout_bench.py guard ...    # internal: one guard process
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "TESSERA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_P99_MS = 100.0
GUARDS = 4
TESSERA = Path(sys.executable).parent / "tessera"


def guard(prefix: str, out: Path, expected: int) -> None:
    """One guard: follow the stream, note when each revoked jti arrives, write them at the end."""
    from tessera.guard.revocation_redis import RedisRevocationList

    seen: dict[str, float] = {}

    class Noting(RedisRevocationList):
        def _apply(self, data: bytes) -> None:
            super()._apply(data)
            event = json.loads(data)
            if "jti" in event:
                seen.setdefault(event["jti"], time.monotonic())

    with Noting(REDIS_URL, prefix=prefix) as revocations:
        assert revocations.in_sync, "the guard could not reach Redis"
        Path(str(out) + ".ready").touch()
        deadline = time.monotonic() + 600
        while len(seen) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    out.write_text(json.dumps(seen))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(database_url: str, prefix: str, directory: Path) -> tuple[dict[str, str], str, str]:
    """Migrate, and make a tenant and a client_credentials client; the nodes' settings."""
    from tessera import jose
    from tessera.idp.config import Settings
    from tessera.idp.provider import Provider
    from tessera.idp.services.clients import create_client
    from tessera.idp.store.models import Tenant

    settings = {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_REDIS_URL": REDIS_URL,
        "TESSERA_REDIS_PREFIX": prefix,
        "TESSERA_THROTTLE_PREFIX": prefix + "throttle:",
        "TESSERA_MASTER_KEY": jose.b64.encode_str(os.urandom(32)),
        "TESSERA_MASTER_KEY_FILE": str(directory / "unused.key"),
        "TESSERA_ISSUER": "http://127.0.0.1:1",
        "TESSERA_BOOTSTRAP": "false",
    }
    provider = Provider(
        Settings(**{k.removeprefix("TESSERA_").lower(): v for k, v in settings.items()})
    )
    provider.start()
    try:
        with provider.database.session() as session:
            session.add(Tenant(id="bench", name="Bench", created_at=int(time.time())))
            session.flush()
            made = create_client(
                session,
                provider.master,
                tenant_id="bench",
                name="fan-out bench",
                grant_types=("client_credentials",),
                audience=("orders",),
                allowed_scopes=("orders:read",),
                default_scopes=("orders:read",),
            )
    finally:
        provider.close()
    assert made.secret is not None
    return settings, made.client.id, made.secret


def start_node(settings: dict[str, str], directory: Path, name: str) -> tuple[Any, str]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    environment.update(settings)
    log = (directory / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [str(TESSERA), "serve", "--port", str(port)], env=environment, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"node {name} exited:\n{(directory / f'{name}.log').read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"node {name} did not become ready")
        time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(count: int) -> int:
    from sqlalchemy import create_engine

    directory = Path(tempfile.mkdtemp(prefix="tessera-fanout-"))
    schema = f"tessera_fanout_{uuid.uuid4().hex[:12]}"
    prefix = f"bench:fanout:{uuid.uuid4().hex[:12]}:"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    processes: list[Any] = []
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        database_url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
        settings, client_id, secret = prepare(database_url, prefix, directory)
        nodes = []
        for name in ("a", "b"):
            process, url = start_node(settings, directory, name)
            processes.append(process)
            nodes.append(url)
        outs = [directory / f"guard-{index}.json" for index in range(GUARDS)]
        for out in outs:
            processes.append(
                subprocess.Popen([sys.executable, __file__, "guard", prefix, str(out), str(count)])
            )
        deadline = time.monotonic() + 30
        while not all(Path(str(out) + ".ready").exists() for out in outs):
            if time.monotonic() > deadline:
                raise SystemExit("the guards did not start")
            time.sleep(0.05)

        clients = [
            httpx.Client(base_url=url, auth=(client_id, secret), timeout=10) for url in nodes
        ]
        tokens = []
        for index in range(count):
            answer = clients[index % 2].post(
                "/oauth2/token", data={"grant_type": "client_credentials"}
            )
            answer.raise_for_status()
            tokens.append(answer.json()["access_token"])
        from tessera import jose

        sent: dict[str, float] = {}
        for index, token in enumerate(tokens):
            jti = jose.jwt.decode_unverified(token)[1]["jti"]
            sent[jti] = time.monotonic()
            clients[index % 2].post("/oauth2/revoke", data={"token": token}).raise_for_status()
            time.sleep(0.005)  # a steady pace, not a burst
        for client in clients:
            client.close()
        for process in processes[2:]:
            process.wait(timeout=60)
        latencies: list[float] = []
        missing = 0
        for out in outs:
            seen = json.loads(out.read_text())
            for jti, at in sent.items():
                if jti in seen:
                    latencies.append((seen[jti] - at) * 1000)
                else:
                    missing += 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        own = list(client.scan_iter(match=prefix + "*"))
        if own:
            client.delete(*own)
        client.close()

    p50, p90, p99 = (percentile(latencies, share) for share in (0.5, 0.9, 0.99))
    print("## Revocation fan-out: revoke at a node → refused at every guard\n")
    print(
        f"{count} revocations (RFC 7009, alternately at two `tessera serve` nodes on PostgreSQL),"
        f" {GUARDS} guard processes following the Redis stream; {len(latencies)} arrivals,"
        f" {missing} missing.\n"
    )
    print("| p50 | p90 | p99 | max | mean | target (p99) |")
    print("|---:|---:|---:|---:|---:|---|")
    verdict = "met" if p99 <= TARGET_P99_MS and missing == 0 else "MISSED"
    print(
        f"| {p50:.1f} ms | {p90:.1f} ms | {p99:.1f} ms | {max(latencies):.1f} ms |"
        f" {statistics.fmean(latencies):.1f} ms | ≤ {TARGET_P99_MS:.0f} ms: {verdict} |"
    )
    return 0 if missing == 0 else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "guard":
        guard(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="100 revocations instead of 400")
    args = parser.parse_args()
    return run(100 if args.quick else 400)


if __name__ == "__main__":
    sys.exit(main())
