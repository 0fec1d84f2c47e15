"""Requests/s of the same FastAPI route: unguarded, guarded (ES256, no cache), guarded with the
verified-token cache, and guarded with a Redis revocation check — one run, one table of ratios.

Each variant is its own uvicorn process (one worker, pinned to CPU 0 when ``taskset`` exists);
load comes from a separate process on CPU 1: ``wrk`` when installed, else this file's own
asyncio HTTP/1.1 driver (``drive``). Every request carries the same valid ES256 token, so the
cached variants hit the cache after the first request and the uncached one verifies every time.
Before timing, each variant must answer 200 to the token and 401 without it.

    .venv/bin/python bench/guard_bench.py              # ~10 s per variant
    .venv/bin/python bench/guard_bench.py --quick      # ~3 s per variant
    .venv/bin/python bench/guard_bench.py serve --variant cached --port 8100 --dir D   # internal
    .venv/bin/python bench/guard_bench.py drive --url URL --token T --seconds 5        # internal

Targets (issue 4): guarded with cache >= 90% of unguarded, without >= 75%; the Redis check adds
<= 0.3 ms at p50 over the cached variant. The Redis variant needs Redis at 127.0.0.1:6379; it uses
its own key prefix and deletes only its own keys.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

VARIANTS = ("unguarded", "dependency", "guarded", "cached", "redis")
ISSUER = "https://bench.tessera.invalid"
AUDIENCE = "orders"
REDIS_URL = "redis://127.0.0.1:6379/0"


# ============================================================================ the server side


def build_app(variant: str, directory: Path, prefix: str) -> Any:
    """The FastAPI app of one variant: the same route, guarded or not."""
    from typing import Annotated

    from fastapi import FastAPI, Security

    from tessera import jose
    from tessera.guard import Guard, Principal
    from tessera.guard.fastapi import FastAPIGuard

    app = FastAPI()
    if variant == "unguarded":

        @app.get("/orders")
        async def open_orders() -> dict[str, Any]:
            return {"orders": [], "sub": None}

        return app
    if variant == "dependency":
        # What FastAPI's dependency injection costs alone: a Security dependency that does
        # nothing. No guard written as a dependency (the convention) can be cheaper than this.
        from fastapi import Request
        from fastapi.security import SecurityScopes

        async def nothing(request: Request, security_scopes: SecurityScopes) -> None:
            return None

        @app.get("/orders")
        async def noop_orders(
            user: Annotated[None, Security(nothing, scopes=["orders:read"])],
        ) -> dict[str, Any]:
            return {"orders": [], "sub": None}

        return app
    keys = jose.KeySet.from_jwks((directory / "jwks.json").read_bytes())
    revocation = None
    if variant == "redis":
        from tessera.guard.revocation_redis import RedisRevocationList

        revocation = RedisRevocationList(REDIS_URL, prefix=prefix).start()
        if not revocation.in_sync:
            raise SystemExit("redis revocation list did not sync")
    guard = Guard(
        keys=keys,
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        cache=0 if variant == "guarded" else 4096,
        revocation=revocation,
    )
    auth = FastAPIGuard(guard, app=app)
    app.state.revocation = revocation
    reader = Annotated[Principal, Security(auth.require(), scopes=["orders:read"])]

    @app.get("/orders")
    async def orders(user: reader) -> dict[str, Any]:
        return {"orders": [], "sub": user.sub}

    return app


def serve(variant: str, port: int, directory: Path, prefix: str) -> None:
    import uvicorn

    app = build_app(variant, directory, prefix)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ============================================================================ the load side


async def _connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    count = 0
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if match is None or not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {head[:80]!r}")
            await reader.readexactly(int(match.group(1)))
            latencies.append(time.perf_counter() - started)
            count += 1
    finally:
        writer.close()
    return count


async def _drive(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    match = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
    assert match is not None
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(
        *(_connection(host, port, request, until, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    return {"rps": sum(counts) / elapsed, "p50_ms": statistics.median(latencies) * 1000}


def drive(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    """Closed-loop load on keep-alive connections; requests/s and median latency."""
    return asyncio.run(_drive(url, token, seconds, connections))


def _wrk(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
        "-H", f"Authorization: Bearer {token}", url,
    ]  # fmt: skip
    output = subprocess.run(_pinned(command, 1), capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError("wrk saw non-2xx answers:\n" + output)
    if os.environ.get("GUARD_BENCH_VERBOSE"):
        print(output, file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    assert p50 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale}


def _pinned(command: list[str], cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *command]
    return command


# ============================================================================ the run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _fixture(directory: Path) -> str:
    from tessera import jose

    key = jose.Key.generate("ES256", kid="bench")
    (directory / "jwks.json").write_text(json.dumps(jose.KeySet([key]).to_jwks()))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada",
        "scope": "orders:read",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    return jose.jwt.encode(claims, key)


def _start(variant: str, directory: Path, prefix: str) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    command = [
        sys.executable, __file__, "serve", "--variant", variant, "--port", str(port),
        "--dir", str(directory), "--prefix", prefix,
    ]  # fmt: skip
    process = subprocess.Popen(_pinned(command, 0))
    url = f"http://127.0.0.1:{port}/orders"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return process, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"{variant} server did not start") from None
            time.sleep(0.1)


def _check(variant: str, url: str, token: str) -> None:
    import httpx

    guarded = variant not in ("unguarded", "dependency")
    good = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200 and good.json()["sub"] == ("ada" if guarded else None)
    if guarded:
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}x"}).status_code == 401


def measure(
    variant: str, token: str, directory: Path, args: argparse.Namespace
) -> dict[str, float]:
    prefix = f"bench:guard:{uuid.uuid4().hex}:"
    process, url = _start(variant, directory, prefix)
    try:
        _check(variant, url, token)
        load = _wrk if args.driver == "wrk" else _drive_process
        load(url, token, min(2.0, args.seconds), args.connections)  # warm-up
        result = load(url, token, args.seconds, args.connections)
        # Latency without queueing: one connection, one request at a time.
        result["p50_1c_ms"] = load(url, token, max(1.0, args.seconds / 2), 1)["p50_ms"]
        return result
    finally:
        process.terminate()
        process.wait(timeout=10)
        if variant == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            own = list(client.scan_iter(match=prefix + "*"))
            if own:
                client.delete(*own)
            client.close()


def _drive_process(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    command = [
        sys.executable, __file__, "drive", "--url", url, "--token", token,
        "--seconds", str(seconds), "--connections", str(connections),
    ]  # fmt: skip
    output = subprocess.run(_pinned(command, 1), capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(output.stdout)
    return result


def guard_costs(directory: Path, token: str, calls: int = 5000) -> dict[str, float]:
    """Microseconds per ``Guard.authenticate_async`` call in this process (no HTTP, no framework):
    the guard's own share of a request, which load on a shared machine disturbs far less."""
    from tessera import jose
    from tessera.guard import Guard, rule
    from tessera.guard.revocation_redis import RedisRevocationList

    keys = jose.KeySet.from_jwks((directory / "jwks.json").read_bytes())
    route_rule = rule(scopes=["orders:read"])
    costs: dict[str, float] = {}
    prefix = f"bench:guard:{uuid.uuid4().hex}:"
    revocations = RedisRevocationList(REDIS_URL, prefix=prefix).start()
    try:
        for variant, options in (
            ("guarded", {"cache": 0}),
            ("cached", {"cache": 4096}),
            ("redis", {"cache": 4096, "revocation": revocations}),
        ):
            guard = Guard(
                keys=keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], **options
            )

            async def run(guard: Guard = guard) -> float:
                for _ in range(100):
                    await guard.authenticate_async(token, route_rule)
                samples = []
                for _ in range(5):
                    started = time.perf_counter()
                    for _ in range(calls // 5):
                        await guard.authenticate_async(token, route_rule)
                    samples.append((time.perf_counter() - started) / (calls // 5))
                return min(samples) * 1e6

            costs[variant] = asyncio.run(run())
    finally:
        revocations.close()
    return costs


def _http_stack() -> str:
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{http}, {loop}"


def table(results: dict[str, dict[str, float]], driver: str, connections: int, rounds: int) -> str:
    """The markdown table: requests/s, ratio to unguarded, p50, and the issue's targets."""
    base = results["unguarded"]["rps"]
    floor = results.get("dependency", results["unguarded"])["rps"]
    targets = {
        "unguarded": "",
        "dependency": "",
        "guarded": ">= 75%",
        "cached": ">= 90%",
        "redis": "p50 (1 conn) <= cached + 0.3 ms",
    }
    names = {
        "unguarded": "unguarded",
        "dependency": "no-op Security dependency (FastAPI alone)",
        "guarded": "guarded, ES256, no cache",
        "cached": "guarded, verified-token cache",
        "redis": "guarded, cache + Redis revocation",
    }
    lines = [
        f"driver: {driver}; one uvicorn worker ({_http_stack()}); same route and token; "
        f"medians of {rounds} rounds",
        "",
        f"| variant | requests/s | vs unguarded | vs no-op dependency | p50 ms ({connections} "
        "conns) | p50 ms (1 conn) | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for variant, result in results.items():
        ratio = result["rps"] / base
        lines.append(
            f"| {names[variant]} | {result['rps']:,.0f} | {ratio:.0%} | "
            f"{result['rps'] / floor:.0%} | "
            f"{result['p50_ms']:.3f} | {result['p50_1c_ms']:.3f} | {targets[variant]} |"
        )
    if "redis" in results and "cached" in results:
        delta = results["redis"]["p50_1c_ms"] - results["cached"]["p50_1c_ms"]
        lines += ["", f"Redis check p50 delta over the cached variant (1 conn): {delta:+.3f} ms"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    server = sub.add_parser("serve")
    server.add_argument("--variant", choices=VARIANTS, required=True)
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--dir", type=Path, required=True)
    server.add_argument("--prefix", default="bench:guard:")
    driver = sub.add_parser("drive")
    driver.add_argument("--url", required=True)
    driver.add_argument("--token", required=True)
    driver.add_argument("--seconds", type=float, default=5)
    driver.add_argument("--connections", type=int, default=32)
    for target in (parser, run):
        target.add_argument("--quick", action="store_true", help="~3 s per variant")
        target.add_argument("--seconds", type=float, default=10.0)
        target.add_argument("--connections", type=int, default=32)
        target.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
        target.add_argument("--variants", default=",".join(VARIANTS))
        target.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.variant, args.port, args.dir, args.prefix)
        return
    if args.command == "drive":
        print(json.dumps(drive(args.url, args.token, args.seconds, args.connections)))
        return
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    if args.driver == "auto":
        args.driver = "wrk" if shutil.which("wrk") else "python"
    variants = args.variants.split(",")
    rounds: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        token = _fixture(directory)
        for number in range(args.rounds):
            order = variants[number % len(variants) :] + variants[: number % len(variants)]
            for variant in order:
                result = measure(variant, token, directory, args)
                rounds[variant].append(result)
                print(f"round {number + 1} {variant}: {result['rps']:,.0f} req/s", file=sys.stderr)
        costs = guard_costs(directory, token)
    results = {
        variant: {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        for variant, runs in rounds.items()
    }
    print(table(results, args.driver, args.connections, args.rounds))
    print()
    print("| guard alone, in-process | µs per request (best of 5) |")
    print("|---|---:|")
    for variant, cost in costs.items():
        print(f"| {variant} | {cost:.1f} |")


if __name__ == "__main__":
    main()
