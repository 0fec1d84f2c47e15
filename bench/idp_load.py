"""The Python half of the identity-provider benchmark's load: a closed-loop HTTP/1.1 driver for
refresh-token chains, authorization codes and GETs, a canned server that measures the driver's
own ceiling, and the response checks both the driver and the benchmark's probe use.

wrk drives the stateless scenarios; a refresh chain is stateful (every request must send the
token the previous answer returned, or reuse detection revokes the family), which wrk's Lua
makes awkward, so this driver keeps one chain per keep-alive connection on raw asyncio streams.
An authorization code is redeemable once, so the code grant takes each code of a pool once
(``codes``); ``authorize`` sends SSO hops and keeps the codes they give, for that pool.

    python bench/idp_load.py drive SPEC.json        # a run; prints one JSON result line
    python bench/idp_load.py canned --port 8123     # a server that answers every request at once

``bench/idp_bench.py`` starts both, pinned with ``taskset``; nothing here is meant to be run alone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

FORM = "application/x-www-form-urlencoded"

# ============================================================================ response checks


class Malformed(Exception):
    """A 200 answer that is not what the endpoint promises."""


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("not JSON") from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value


def check_token(body: bytes) -> dict[str, Any]:
    """An RFC 6749 §5.1 answer with a compact-JWS access token; returns it parsed."""
    answer = _json_object(body)
    token = answer.get("access_token")
    if not isinstance(token, str) or token.count(".") != 2:
        raise Malformed("no compact JWT access_token")
    if answer.get("token_type") != "Bearer" or not isinstance(answer.get("expires_in"), int):
        raise Malformed("token_type/expires_in wrong")
    return answer


def check_refresh(body: bytes, previous: str) -> str:
    """A token answer carrying a *new* refresh token; returns it (the chain's next link)."""
    answer = check_token(body)
    token = answer.get("refresh_token")
    if not isinstance(token, str) or len(token) < 32 or token == previous:
        raise Malformed("no fresh refresh_token")
    return token


def check_introspection(body: bytes) -> dict[str, Any]:
    """An RFC 7662 answer saying the token is active."""
    answer = _json_object(body)
    if answer.get("active") is not True or not isinstance(answer.get("jti"), str):
        raise Malformed("token not reported active")
    return answer


def check_jwks(body: bytes) -> dict[str, Any]:
    """A JWK Set with at least one public key."""
    answer = _json_object(body)
    keys = answer.get("keys")
    if not isinstance(keys, list) or not keys or not all("kid" in key for key in keys):
        raise Malformed("no keys")
    if any("d" in key for key in keys):
        raise Malformed("a private key is published")
    return answer


def check_code_tokens(body: bytes) -> dict[str, Any]:
    """The answer to an authorization_code grant with the ``openid`` scope: an access token (any
    format: oidc-provider's are opaque), a compact-JWS ID token and a refresh token."""
    answer = _json_object(body)
    access = answer.get("access_token")
    if not isinstance(access, str) or len(access) < 20:
        raise Malformed("no access_token")
    if answer.get("token_type") != "Bearer" or not isinstance(answer.get("expires_in"), int):
        raise Malformed("token_type/expires_in wrong")
    id_token = answer.get("id_token")
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise Malformed("no compact JWT id_token")
    refresh = answer.get("refresh_token")
    if not isinstance(refresh, str) or len(refresh) < 20:
        raise Malformed("no refresh_token")
    return answer


def check_userinfo(body: bytes, sub: str) -> dict[str, Any]:
    """A UserInfo answer about ``sub``."""
    answer = _json_object(body)
    if answer.get("sub") != sub:
        raise Malformed("not the expected sub")
    return answer


def check_redirect(status: int, location: str | None, back: dict[str, str]) -> str:
    """An authorization answer: a 303 to the client's ``redirect_uri`` carrying a code, the
    request's ``state`` and the issuer (RFC 9207 ``iss``); returns the code."""
    if status != 303:
        raise Malformed(f"status {status}, not 303")
    if not location or not location.startswith(back["redirect_uri"] + "?"):
        raise Malformed("not a redirect to the client")
    query = parse_qs(urlsplit(location).query)
    if "error" in query:
        raise Malformed(f"error {query['error'][0]}")
    code = query.get("code", [""])
    if len(code) != 1 or len(code[0]) < 20:
        raise Malformed("no code")
    if query.get("state") != [back["state"]]:
        raise Malformed("state not echoed")
    if query.get("iss") != [back["issuer"]]:
        raise Malformed("iss missing or wrong")
    return code[0]


CHECKS: dict[str, Callable[[bytes], Any]] = {
    "token": check_token,
    "code_tokens": check_code_tokens,
    "introspection": check_introspection,
    "jwks": check_jwks,
}


def basic_auth(client_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` value (ids and secrets here are URL-safe already)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# ============================================================================ CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu_seconds() -> float | None:
    """CPU of the whole local PostgreSQL cluster: every ``postgres`` process, plus what the
    postmaster's exited children used (backends come and go: a pool's overflow connections
    live for one checkout). ``None`` when no postmaster is visible here."""
    found: dict[int, tuple[int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        if raw[raw.find(b"(") + 1 : raw.rfind(b")")] != b"postgres":
            continue
        fields = raw.rsplit(b")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14])
        found[int(entry.name)] = (int(fields[1]), own, reaped)
    if not found:
        return None
    ticks = sum(
        own + (reaped if parent not in found else 0) for parent, own, reaped in found.values()
    )
    return ticks / CLOCK_TICKS


def core_busy_seconds() -> dict[int, tuple[float, float]]:
    """Per CPU: (busy, total) seconds since boot from /proc/stat (idle and iowait are not busy)."""
    cores: dict[int, tuple[float, float]] = {}
    with open("/proc/stat") as handle:
        for line in handle:
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            ticks = [int(value) for value in values[:8]]
            idle = ticks[3] + ticks[4]
            total = sum(ticks)
            cores[int(name[3:])] = ((total - idle) / CLOCK_TICKS, total / CLOCK_TICKS)
    return cores


# ============================================================================ the driver


@dataclass
class DriveResult:
    """What one driver run saw inside its measured window."""

    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    chains: list[str] = field(default_factory=list)  # refresh mode: each chain's latest token
    spares: list[str] = field(default_factory=list)  # refresh mode: spare families left
    codes: list[str] = field(default_factory=list)  # authorize mode: the codes kept
    exhausted: bool = False  # codes mode: the pool ran out before the time was up

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {sample[:200]}")

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ns)
        return {
            "ok": self.ok,
            "errors": dict(self.errors),
            "samples": self.samples,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "p50_ms": percentile(ordered, 50) / 1e6,
            "p99_ms": percentile(ordered, 99) / 1e6,
            "chains": self.chains,
            "spares": self.spares,
            "codes": self.codes,
            "exhausted": self.exhausted,
        }


def percentile(ordered: list[int], rank: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not ordered:
        return 0.0
    index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[index])


class _Connection:
    """One keep-alive HTTP/1.1 connection, reopened if the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        status, _, body = await self.exchange_head(request)
        return status, body

    async def exchange_head(self, request: bytes) -> tuple[int, bytes, bytes]:
        """(status, head, body): the head is the status line and headers, as sent."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        start = lower.find(b"\r\ncontent-length:")
        if start < 0:
            raise ConnectionError("answer without Content-Length")
        end = lower.index(b"\r\n", start + 2)
        body = await self.reader.readexactly(int(head[start + 17 : end]))
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, head, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def location_of(head: bytes) -> str | None:
    """The Location header of an answer's head, if any."""
    start = head.lower().find(b"\r\nlocation:")
    if start < 0:
        return None
    end = head.find(b"\r\n", start + 2)
    return head[start + 11 : end if end >= 0 else len(head)].strip().decode("latin-1")


def _request(
    method: str,
    path: str,
    host: str,
    authorization: str | None,
    body: str,
    cookie: str | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: tessera-idp-bench"]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if method == "POST":
        lines += [f"Content-Type: {FORM}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def drive(spec: dict[str, Any]) -> DriveResult:
    """Run ``spec`` (see :func:`main`) and return what the measured window saw.

    ``mode`` is ``refresh`` (one chain per connection: each request sends the refresh token the
    previous answer returned; a broken chain takes a spare family), ``get`` (a GET of ``path``
    checked by ``check``: ``jwks``, ``userinfo`` of ``sub``, …), ``codes`` (an
    authorization_code grant for each code of ``codes``, oldest first, the rest of the form in
    ``form``, until time is up or none is left: ``exhausted``) or ``authorize`` (a GET of
    ``path`` with ``cookie``, answered by a 303 to ``back``'s redirect URI with a code; with
    ``keep`` the codes are kept, up to ``count``). The loop is closed: each connection sends
    its next request when the previous answer has arrived and been checked.
    """
    host, port, path = spec["host"], spec["port"], spec["path"]
    connections: int = spec["connections"]
    limit: int | None = spec.get("max_requests")
    authorization = spec.get("authorization")
    mode = spec["mode"]
    refresh = mode == "refresh"
    expected = 303 if mode == "authorize" else 200
    check = _get_check(spec)
    spares: list[str] = list(spec.get("spares", ()))
    tokens: list[str] = list(spec.get("tokens", ()))
    if refresh and len(tokens) < connections:
        raise ValueError(f"refresh mode needs {connections} chains, got {len(tokens)}")
    result = DriveResult(chains=tokens[:connections] if refresh else [], spares=spares)
    pool: deque[str] = deque(spec.get("codes", ()))
    keep: bool = spec.get("keep", False)
    wanted: int | None = spec.get("count")
    host_header = f"{host}:{port}"
    get_request = _request("GET", path, host_header, authorization, "", spec.get("cookie"))
    started = time.perf_counter()
    deadline = started + spec["duration"]
    latencies = result.latencies_ns

    async def run(slot: int) -> None:
        connection = _Connection(host, port)
        sent = 0
        try:
            while time.perf_counter() < deadline and (limit is None or sent < limit):
                if wanted is not None and len(result.codes) >= wanted:
                    return
                sent += 1
                if refresh:
                    token = result.chains[slot]
                    body = f"grant_type=refresh_token&refresh_token={token}"
                    request = _request("POST", path, host_header, authorization, body)
                elif mode == "codes":
                    if not pool:
                        result.exhausted = True
                        return
                    body = f"{spec['form']}&code={pool.popleft()}"
                    request = _request("POST", path, host_header, authorization, body)
                else:
                    request = get_request
                began = time.perf_counter_ns()
                try:
                    status, head, answer = await connection.exchange_head(request)
                except (OSError, asyncio.IncompleteReadError, ConnectionError) as error:
                    result.error("socket", repr(error))
                    await connection.close()
                    continue
                latencies.append(time.perf_counter_ns() - began)
                if status != expected:
                    result.error(str(status), answer.decode(errors="replace"))
                    if refresh and not _next_chain(result, slot, spares):
                        return
                    continue
                try:
                    if refresh:
                        result.chains[slot] = check_refresh(answer, token)
                    elif mode == "authorize":
                        code = check_redirect(status, location_of(head), spec["back"])
                        if keep:
                            result.codes.append(code)
                    else:
                        check(answer)
                except Malformed as error:
                    result.error(f"malformed ({error})", answer.decode(errors="replace"))
                    if refresh and not _next_chain(result, slot, spares):
                        return
                    continue
                result.ok += 1
        finally:
            await connection.close()

    cpu_before = _own_cpu()
    await asyncio.gather(*(run(slot) for slot in range(connections)))
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = _own_cpu() - cpu_before
    return result


def _get_check(spec: dict[str, Any]) -> Callable[[bytes], Any]:
    """The check of a ``get`` or ``codes`` answer the spec names."""
    name = spec.get("check", "code_tokens" if spec["mode"] == "codes" else "jwks")
    if name == "userinfo":
        sub = spec["sub"]
        return lambda body: check_userinfo(body, sub)
    return CHECKS[name]


def _next_chain(result: DriveResult, slot: int, spares: list[str]) -> bool:
    """Replace a broken chain with a spare family; ``False`` when none is left."""
    if not spares:
        result.error("no spare chain left", f"connection {slot} stopped")
        return False
    result.chains[slot] = spares.pop()
    return True


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ============================================================================ the canned server


class _Canned(asyncio.Protocol):
    """Answers every request at once with a refresh-shaped token answer (a new token each time).

    It only frames requests (headers, then Content-Length bytes), so it costs far less per
    request than any real handler: the driver's rate against it is the driver's ceiling.
    """

    counter = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end].lower()
            start = head.find(b"\r\ncontent-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start + 2)
                length = int(head[start + 17 : stop if stop >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                break
            self.buffer = self.buffer[end + 4 + length :]
            _Canned.counter += 1
            body = (
                b'{"access_token":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln","token_type":"Bearer",'
                b'"expires_in":900,"scope":"bench:read","refresh_token":"canned-refresh-token-'
                + str(_Canned.counter).encode().rjust(24, b"0")
                + b'","keys":[{"kid":"k"}]}'
            )
            out.append(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        if out:
            self.transport.write(b"".join(out))


async def serve_canned(host: str, port: int) -> None:
    """Serve :class:`_Canned` until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Canned, host, port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ============================================================================ main


def main(argv: list[str]) -> int:
    """``drive SPEC.json`` prints one JSON line of results; ``canned --port N`` serves."""
    if len(argv) >= 2 and argv[0] == "drive":
        with open(argv[1]) as handle:
            spec = json.load(handle)
        result = asyncio.run(drive(spec))
        print(json.dumps(result.as_json()), flush=True)
        return 0
    if len(argv) == 3 and argv[0] == "canned" and argv[1] == "--port":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_canned("127.0.0.1", int(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
