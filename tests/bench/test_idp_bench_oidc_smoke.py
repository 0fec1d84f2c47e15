"""bench/idp_bench.py, the OpenID Connect scenarios: the relying party, the signed-in browser and
the codes the bench prepares work over HTTP on SQLite and PostgreSQL, every check the load
applies accepts a right answer and refuses a wrong one, and each scenario runs a second or so
with every answer checked — against Tessera, and against node oidc-provider (node, npm and the
npm registry are needed: without them the peer's tests fail).

Correctness only — nothing here is a timing assertion.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..services import require_postgres
from .scripts import load_script

bench = load_script("idp_bench")
load = sys.modules["idp_load"]  # bench/idp_load.py, imported by the bench

SIDES = [bench.SQLITE, bench.POSTGRES, bench.PEER]
ONE_SECOND = argparse.Namespace(warmup=1, duration=1, connections=4)


@pytest.fixture(scope="module", params=SIDES)
def side(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A provider as the bench prepares it (unpinned here), probed: Tessera on a fresh database,
    or node oidc-provider signed in through its interaction."""
    workdir = tmp_path_factory.mktemp("idp-bench-oidc")
    if request.param == bench.PEER:
        why = bench.ensure_peer()
        if why is not None:
            pytest.fail(f"{bench.PEER} could not be installed: {why}")
        with bench.serve_peer(workdir, cpu=None) as peer:
            bench.oidc_probe(peer)
            yield peer
        return
    if request.param == bench.POSTGRES:
        require_postgres()
    with bench.database_url(request.param, workdir) as url:
        fixture = bench.prepare(request.param, url, chains=1, spares=2, workdir=workdir)
        with bench.serve(fixture, workdir, cpu=None) as server:
            tessera = bench.tessera_side(fixture, server, workdir)
            bench.oidc_probe(tessera)
            yield tessera


def test_the_probe_saw_a_signed_in_browser_and_its_tokens(side: Any) -> None:
    # oidc_probe() (in the fixture) asserted every answer; what it left behind is what the load
    # uses: the endpoints from discovery and a live access token of the user.
    assert side.authorize_path.startswith("/") and side.token_path.startswith("/")
    assert side.cookie and side.access_token
    with httpx.Client(base_url=side.issuer, timeout=10) as http:
        info = http.get(
            side.userinfo_path, headers={"Authorization": f"Bearer {side.access_token}"}
        )
        assert load.check_userinfo(info.content, side.sub)["sub"] == side.sub
        # The cookie is what makes a hop single sign-on.
        anonymous = http.get(side.authorize_url)
        assert not anonymous.headers.get("location", "").startswith(bench.RP_REDIRECT)


def test_each_scenario_runs_through_the_driver_with_every_answer_checked(
    side: Any, tmp_path: Path
) -> None:
    common = {"connections": 4, "duration": 1.0}
    codes = bench.code_pool(side, 2000, 1.0, 4, tmp_path, cpu=None)
    assert len(codes) == len(set(codes)) > 0
    granted = bench.drive_once(
        side.server.url,
        {
            **common,
            "mode": "codes",
            "path": side.token_path,
            "authorization": side.client_auth,
            "form": side.code_form,
            "codes": codes,
        },
        tmp_path,
        cpu=None,
    )
    hops = bench.drive_once(
        side.server.url,
        {
            **common,
            "mode": "authorize",
            "path": side.authorize_url,
            "cookie": side.cookie,
            "back": side.back,
        },
        tmp_path,
        cpu=None,
    )
    info = bench.drive_once(
        side.server.url,
        {
            **common,
            "mode": "get",
            "check": "userinfo",
            "sub": side.sub,
            "path": side.userinfo_path,
            "authorization": f"Bearer {side.access_token}",
        },
        tmp_path,
        cpu=None,
    )
    for result in (granted, hops, info):
        assert result["errors"] == {} and result["ok"] > 0, result["samples"]
    assert hops["codes"] == []  # kept only when asked to


# Tessera only: oidc-provider answers a replay by revoking the grant the other tests use.
@pytest.mark.parametrize("side", [bench.SQLITE, bench.POSTGRES], indirect=True)
def test_a_spent_code_is_an_error_of_the_code_grant_load(side: Any, tmp_path: Path) -> None:
    assert side.mint is not None
    code = side.mint(1)[0]
    spec = {
        "mode": "codes",
        "path": side.token_path,
        "authorization": side.client_auth,
        "form": side.code_form,
        "connections": 1,
        "duration": 30.0,
        "codes": [code, code],
    }
    result = bench.drive_once(side.server.url, spec, tmp_path, cpu=None)
    assert result["ok"] == 1 and result["errors"] == {"400": 1}, result
    assert result["exhausted"]


def test_the_three_scenarios_as_the_bench_runs_them(side: Any, tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is required (tools/ensure-peers.sh installs it)")
    results = bench.oidc_scenarios(side, ONE_SECOND, tmp_path, cpu=None)
    assert [item.scenario for item in results] == list(bench.OIDC_SCENARIOS)
    for item in results:
        assert item.error_count == 0, (item.scenario, item.errors, item.samples)
        assert item.ok > 0 and item.database == side.database
    assert [item.tool for item in results] == ["idp_load.py", "wrk", "wrk"]


def test_the_wrk_requests_get_the_answers_their_scripts_expect(side: Any) -> None:
    hop = bench.sso_request(side)
    assert hop.status == 303 and hop.cookie == side.cookie
    script = bench.lua_script(hop)
    assert "local want = 303" in script and 'wrk.headers["Cookie"]' in script
    answer = httpx.get(side.issuer + hop.path, headers={"Cookie": side.cookie}, timeout=10)
    load.check_redirect(answer.status_code, answer.headers.get("location"), side.back)
    info = bench.userinfo_request(side)
    answer = httpx.get(
        side.issuer + info.path, headers={"Authorization": info.authorization}, timeout=10
    )
    assert answer.status_code == 200 and info.expect in answer.text, answer.text


def test_the_peer_token_scenarios_as_the_bench_runs_them(tmp_path: Path) -> None:
    """client_credentials and introspection at node oidc-provider, as the tokens group runs them
    beside Tessera's: its access tokens are ES256 JWTs, and it introspects an opaque one."""
    if bench.ensure_peer() is not None or shutil.which("wrk") is None:
        pytest.fail(f"{bench.PEER} (node, npm, the npm registry) and wrk are required")
    with bench.serve_peer(tmp_path, cpu=None) as peer:
        bench.peer_token_probe(peer)  # asserts the JWT's signature and claims, and "active"
        assert peer.introspected and "." not in peer.introspected
        results = bench.peer_token_scenarios(peer, ONE_SECOND, tmp_path, cpu=None)
    assert [item.scenario for item in results] == list(bench.TOKEN_SCENARIOS)
    for item in results:
        assert item.error_count == 0, (item.scenario, item.errors, item.samples)
        assert item.ok > 0 and item.database == bench.PEER_STORE


# ---------------------------------------------------------------------------- without a server

BACK = {"redirect_uri": "https://rp.example/cb", "state": "s1", "issuer": "http://127.0.0.1:1"}
GOOD = "https://rp.example/cb?code=" + "c" * 43 + "&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1"


def test_a_right_redirect_gives_its_code() -> None:
    assert load.check_redirect(303, GOOD, BACK) == "c" * 43


@pytest.mark.parametrize(
    ("status", "location"),
    [
        (302, GOOD),
        (303, None),
        (303, GOOD.replace("https://rp.example/cb", "https://evil.example/cb")),
        (303, GOOD.replace("state=s1", "state=s2")),
        (303, GOOD.replace("&iss=http%3A%2F%2F127.0.0.1%3A1", "")),
        (303, "https://rp.example/cb?error=login_required&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1"),
        (303, "https://rp.example/cb?code=short&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1"),
    ],
)
def test_wrong_redirects_are_refused(status: int, location: str | None) -> None:
    with pytest.raises(load.Malformed):
        load.check_redirect(status, location, BACK)


TOKENS = {
    "access_token": "a" * 43,
    "token_type": "Bearer",
    "expires_in": 900,
    "id_token": "h.p.s",
    "refresh_token": "r" * 43,
}


def test_a_code_grant_answer_needs_all_three_tokens() -> None:
    import json

    assert load.check_code_tokens(json.dumps(TOKENS).encode())["id_token"] == "h.p.s"
    for missing in ("access_token", "id_token", "refresh_token"):
        answer = {name: value for name, value in TOKENS.items() if name != missing}
        with pytest.raises(load.Malformed):
            load.check_code_tokens(json.dumps(answer).encode())
    with pytest.raises(load.Malformed):
        load.check_userinfo(b'{"sub":"someone else"}', "me")


def test_the_location_header_is_read_from_an_answer_head() -> None:
    head = (
        b"HTTP/1.1 303 See Other\r\nLocation: " + GOOD.encode() + b"\r\ncontent-length: 0\r\n\r\n"
    )
    assert load.location_of(head) == GOOD
    assert load.location_of(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n") is None


def test_a_malformed_303_is_counted_as_such() -> None:
    output = "\n".join(
        [
            "tessera.ok 5",
            "tessera.duration_us 1000000",
            "tessera.p50_us 1.0",
            "tessera.p99_us 2.0",
            "tessera.socket 0 0 0 0 3",
            "tessera.code malformed 303 2",
            "tessera.code 200 1",
        ]
    )
    assert bench.parse_wrk(output)["errors"] == {"malformed 303": 2, "200": 1}
    assert bench.lua_escaped("a-b.c%d") == "a%-b%.c%%d"


def test_only_takes_known_groups() -> None:
    assert bench._groups("oidc, tokens") == {"oidc", "tokens"}
    with pytest.raises(argparse.ArgumentTypeError):
        bench._groups("oidc,nothing")


def test_the_side_by_side_table_gives_the_ratio() -> None:
    def measured(database: str, ok: int) -> Any:
        return bench.Measured(
            bench.CODE_GRANT, database, "idp_load.py", ok, 1.0, 1, 2, Counter(), []
        )

    ours = measured(bench.SQLITE, 1500)
    ours.target, ours.met = f"≥ {bench.TARGET_CODE:,}/s", True
    theirs = measured(bench.PEER_STORE, 1000)
    lines = bench.oidc_lines([ours], [theirs], {"versions": {"node": "v0", bench.PEER: "9"}})
    row = next(line for line in lines if line.startswith(f"| {bench.CODE_GRANT} |"))
    assert "**1.50×**" in row and "1,000" in row and row.endswith("| ≥ 1,000/s | met |")
    alone = bench.oidc_lines([ours], [], {"missing": "npm ci failed"})
    assert any("was not measured: npm ci failed" in line for line in alone)


def test_the_token_table_divides_each_rate_by_the_core_its_server_used() -> None:
    def measured(database: str, ok: int, server_cpu: float) -> Any:
        item = bench.Measured(bench.CC, database, "wrk", ok, 1.0, 1, 2, Counter(), [])
        item.server_cpu = server_cpu
        return item

    ours = measured(bench.SQLITE, 900, 90.0)  # 1,000 per core
    theirs = measured(bench.PEER_STORE, 2000, 100.0)  # 2,000 per core
    lines = bench.token_peer_lines([ours], [theirs], {"versions": {}})
    row = next(line for line in lines if line.startswith(f"| {bench.CC} |"))
    assert "| 1,000 |" in row and "| 2,000 |" in row and row.endswith("| **0.50×** |")
    alone = bench.token_peer_lines([ours], [], {"missing": "npm ci failed"})
    assert next(line for line in alone if line.startswith(f"| {bench.CC} |")).endswith("| — |")
    assert any("was not measured: npm ci failed" in line for line in alone)


def test_the_signing_floor_is_measured_and_bounds_a_code_grant() -> None:
    rates = bench.signing_rates(0.3, cpu=None)
    assert set(rates) == {"RS256", "ES256"}
    assert rates["ES256"] > rates["RS256"] > 0  # an RSA-2048 signature costs the most
    line = bench.signing_lines(rates)[0]
    ceiling = 1 / (1 / rates["RS256"] + 1 / rates["ES256"])
    assert f"no server can redeem more than {ceiling:,.0f} codes/s" in line
