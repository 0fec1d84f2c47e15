"""bench/idp_bench.py: the scenario setup, and one request of each kind against a real server.

Correctness only — nothing here is timed. A benchmark of wrong answers is worthless, so these
prove that the prepared clients and refresh families work over HTTP, that every check the load
applies accepts a right answer, and that the refresh driver follows each rotating chain.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..services import require_postgres
from .scripts import BENCH_DIR, load_script

bench = load_script("idp_bench")
load = sys.modules["idp_load"]  # bench/idp_load.py, imported by the bench


@pytest.fixture(scope="module", params=[bench.SQLITE, bench.POSTGRES])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    """The bench's own setup on a fresh database, and `tessera serve` on it (unpinned here)."""
    if request.param == bench.POSTGRES:
        require_postgres()
    workdir = tmp_path_factory.mktemp("idp-bench")
    with bench.database_url(request.param, workdir) as url:
        fixture = bench.prepare(request.param, url, chains=2, spares=3, workdir=workdir)
        with bench.serve(fixture, workdir, cpu=None) as server:
            yield server, fixture


def test_one_request_of_each_kind_is_right(running: tuple[Any, Any]) -> None:
    server, fixture = running
    # probe() asserts every answer (JWKS, client_credentials, introspection, refresh, reuse).
    seen = bench.probe(server, fixture)
    assert seen["claims"]["aud"] == bench.AUDIENCE
    assert seen["introspection"]["client_id"] == fixture.cc_id
    assert fixture.access_token == seen["token"]["access_token"]
    assert len(fixture.spares) == 2  # one spare spent on the reuse check


def test_the_wrk_requests_get_the_answers_their_scripts_expect(running: tuple[Any, Any]) -> None:
    server, fixture = running
    if not fixture.access_token:
        bench.probe(server, fixture)
    for name, request in bench.requests_for(fixture).items():
        headers = {"Authorization": request.authorization} if request.authorization else {}
        if request.method == "POST":
            headers["Content-Type"] = load.FORM
        answer = httpx.request(
            request.method,
            server.url + request.path,
            content=request.body.encode(),
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 200, (name, answer.text)
        assert request.expect in answer.text, (name, answer.text)
        script = bench.lua_script(request)
        assert f'wrk.path = "{request.path}"' in script
        assert ("wrk.body" in script) == (request.method == "POST")


def test_the_driver_follows_every_refresh_chain(running: tuple[Any, Any]) -> None:
    server, fixture = running
    spec = {
        **bench.refresh_spec(fixture, 2, 30.0),
        "host": bench.HOST,
        "port": server.port,
        "max_requests": 3,
        "tokens": list(fixture.chains),
        "spares": [],
    }
    result = asyncio.run(load.drive(spec))
    assert dict(result.errors) == {}, result.samples
    assert result.ok == 6 and len(result.latencies_ns) == 6
    assert set(result.chains).isdisjoint(fixture.chains)
    # The chains' last links are live; an earlier one is spent, and reusing it is refused.
    auth = {"Authorization": fixture.refresh_auth}
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        live = http.post(
            "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": result.chains[0]}
        )
        assert live.status_code == 200, live.text
        spent = http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": fixture.chains[1]},
        )
        assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    fixture.chains[:] = []  # both families are used up now


def test_the_driver_checks_get_answers(running: tuple[Any, Any]) -> None:
    server, _ = running
    spec = {
        "mode": "get",
        "check": "jwks",
        "path": "/.well-known/jwks.json",
        "connections": 2,
        "duration": 30.0,
        "max_requests": 1,
        "host": bench.HOST,
        "port": server.port,
    }
    result = asyncio.run(load.drive(spec))
    assert result.ok == 2 and dict(result.errors) == {}
    bad = asyncio.run(load.drive({**spec, "path": "/.well-known/nothing-here"}))
    assert bad.ok == 0 and dict(bad.errors) == {"404": 2}


def test_the_driver_runs_against_the_canned_server() -> None:
    port = bench.free_port()
    canned = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "idp_load.py"), "canned", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert canned.stdout is not None and canned.stdout.readline().strip() == "ready"
        spec = {
            "mode": "refresh",
            "path": "/oauth2/token",
            "authorization": load.basic_auth("a", "b"),
            "connections": 3,
            "duration": 30.0,
            "max_requests": 5,
            "host": bench.HOST,
            "port": port,
            "tokens": [f"chain-{slot}-{'x' * 40}" for slot in range(3)],
        }
        result = asyncio.run(load.drive(spec))
        assert result.ok == 15 and dict(result.errors) == {}, result.samples
    finally:
        canned.kill()
        canned.wait()


def test_wrk_output_is_parsed_and_errors_counted() -> None:
    output = "\n".join(
        [
            "Running 1s test @ http://127.0.0.1:1",
            "tessera.ok 90",
            "tessera.duration_us 1000000",
            "tessera.p50_us 1500.0",
            "tessera.p99_us 9000.0",
            "tessera.socket 0 1 0 2 10",
            "tessera.code 500 7",
            "tessera.code malformed 200 3",
            'tessera.sample {"error":"server_error"}',
        ]
    )
    parsed = bench.parse_wrk(output)
    assert parsed["ok"] == 90 and parsed["p99_us"] == 9000.0
    assert parsed["errors"] == {"socket read": 1, "socket timeout": 2, "500": 7, "malformed 200": 3}
    assert parsed["samples"] == ['{"error":"server_error"}']


@pytest.mark.parametrize(
    ("check", "body"),
    [
        (load.check_token, b'{"access_token":"a.b","token_type":"Bearer","expires_in":1}'),
        (load.check_token, b'{"access_token":"a.b.c","token_type":"bearer","expires_in":1}'),
        (load.check_introspection, b'{"active":false}'),
        (load.check_jwks, b'{"keys":[]}'),
        (load.check_jwks, b'{"keys":[{"kid":"k","d":"secret"}]}'),
        (load.check_jwks, b"not json"),
    ],
)
def test_the_checks_refuse_wrong_answers(check: Any, body: bytes) -> None:
    with pytest.raises(load.Malformed):
        check(body)


def test_server_exceptions_are_picked_out_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text('INFO:     127.0.0.1:1 - "POST /oauth2/token HTTP/1.1" 200 OK\n')
    server = bench.Server("http://127.0.0.1:1", 1, 1, log)
    with bench.server_errors(server) as seen, log.open("a") as handle:
        handle.write("ERROR:    Exception in ASGI application\n")
        handle.write("sqlalchemy.exc.TimeoutError: QueuePool limit reached\n" * 2)
    assert seen == ["sqlalchemy.exc.TimeoutError: QueuePool limit reached (× 2)"]


def test_the_argon2_loop_verifies_with_the_parameters_it_is_given() -> None:
    measured = bench.argon2_rate(
        "tiny", {"memory_kib": 64, "time_cost": 1, "parallelism": 1}, 0, cpu=None, min_count=2
    )
    assert measured.count >= 2 and measured.rate > 0
    assert measured.encoded == "m=64,t=1,p=1"
    lines = bench.password_lines([measured], [])
    assert any("m=64,t=1,p=1" in line for line in lines)
    assert bench.CONFIGURED_ARGON2 == {"memory_kib": 19_456, "time_cost": 2, "parallelism": 1}
