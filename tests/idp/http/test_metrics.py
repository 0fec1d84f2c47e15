"""``GET /metrics`` over real HTTP: only for the bearer of the configured token (404 without
one), Prometheus text with requests by route template and status, latency, committed audit
events by outcome, the signing key's age and rotation, and the pool — and no secret in it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from ...guard.servers import RedisProcess
from .servers import BOTH_DATABASES, DEMO, IdpServer, client_credentials, serving

TOKEN = "metrics-scraper-token-0123456789"
pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, metrics_token=TOKEN)


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_and_committed_events_are_counted(idp: IdpServer, http: httpx.Client) -> None:
    before = scrape(http)
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    refused = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(DEMO, "wrong secret")
    )
    assert refused.status_code == 401
    http.get("/no/such/path/for-a-scanner")
    too_large = http.post("/oauth2/token", content=b"x" * (1024 * 1024))
    assert too_large.status_code == 413 and too_large.headers["x-request-id"]
    after = scrape(http)

    token_route = {"route": "/oauth2/token", "method": "POST"}
    assert (
        value(after, "tessera_http_requests_total", **token_route, status="200")
        == value(before, "tessera_http_requests_total", **token_route, status="200") + 1
    )
    assert value(after, "tessera_http_requests_total", **token_route, status="401") >= 1
    # A path a client chose is never a label: every unmatched request is one series.
    assert (
        value(after, "tessera_http_requests_total", route="unmatched", method="GET", status="404")
        >= 1
    )
    assert not any("for-a-scanner" in str(labels) for _, labels in after)
    # Refused at the edge, before any route: counted too, as unmatched.
    assert (
        value(after, "tessera_http_requests_total", route="unmatched", method="POST", status="413")
        >= 1
    )
    assert value(after, "tessera_http_request_duration_seconds_count", **token_route) >= 2
    issued = {"event": "token.issued", "outcome": "success"}
    assert (
        value(after, "tessera_events_total", **issued)
        == value(before, "tessera_events_total", **issued) + 1
    )
    # The key that signs now, its age and its time to rotation; the pool.
    ages = [key for key in after if key[0] == "tessera_signing_key_age_seconds"]
    assert ages and all(after[key] >= 0 for key in ages)
    rotations = [key for key in after if key[0] == "tessera_signing_key_rotation_in_seconds"]
    assert rotations and all(after[key] > 0 for key in rotations)
    if idp.settings.database_url.startswith("postgresql"):
        assert value(after, "tessera_db_connections_in_use") >= 0
    # Nothing secret is ever a label or a value.
    text = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert idp.demo_secret not in text and token not in text and TOKEN not in text


def test_only_the_tokens_bearer_may_scrape(http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": TOKEN}):
        refused = http.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="tessera-metrics"'
        assert "tessera_http_requests" not in refused.text


def test_without_a_token_there_are_no_metrics(tmp_path: Path) -> None:
    with serving("sqlite", tmp_path) as server, server.client() as http:
        response = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404
        assert "tessera_" not in response.text


def test_the_revocation_fan_out_lag_grows_while_redis_is_away_and_ends_when_repaired(
    tmp_path: Path,
) -> None:
    redis_server = RedisProcess().start()
    try:
        with (
            serving("sqlite", tmp_path, redis_url=redis_server.url, metrics_token=TOKEN) as server,
            server.client() as http,
        ):
            assert value(scrape(http), "tessera_revocation_fanout_lag_seconds") == 0.0
            token = client_credentials(http, DEMO, server.demo_secret)["access_token"]
            redis_server.stop()
            revoked = http.post(
                "/oauth2/revoke", data={"token": token}, auth=(DEMO, server.demo_secret)
            )
            assert revoked.status_code == 200  # the database is the truth: revoked all the same
            time.sleep(0.2)
            away = scrape(http)
            assert value(away, "tessera_revocation_fanout_lag_seconds") > 0.1
            assert value(away, "tessera_revocation_fanout_failures_total") >= 1
            redis_server.start()  # empty: the server's repair loop writes its denylist again
            deadline = time.monotonic() + 10
            while value(scrape(http), "tessera_revocation_fanout_lag_seconds") > 0:
                assert time.monotonic() < deadline, "the fan-out was never repaired"
                time.sleep(0.1)
            keys = redis.Redis.from_url(redis_server.url).keys("tessera:revocation:jti:*")
            assert len(keys) == 1
    finally:
        redis_server.stop()
