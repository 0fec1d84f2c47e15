"""``GET /metrics`` in the Prometheus text format: requests by route and status with their
latency, the audited events (grants, logins, refreshes, reuse detections, lockouts…) by
outcome, the signing keys' age and time to rotation, the database connections in use, and the
revocation fan-out's lag (with Redis).

Not public: it answers only a bearer of ``TESSERA_METRICS_TOKEN`` (compared in constant time),
and is not there at all (404) while no token is configured. Routes are labelled by their
template (``/admin/tenants/{tenant_id}``), never by a path a client chose, so the number of
series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import Scope

from ..provider import Provider
from ..services.audit import OBSERVER
from ..services.secrets import same
from .answers import json_answer

# Seconds: a UserInfo answer takes ~0.2 ms, a password login ~50 ms, a slow page a second.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "unmatched"  # no route: a 404 or a scan, whatever its path


class Metrics:
    """The provider's metrics, in a registry of their own (one per app)."""

    def __init__(self, provider: Provider) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tessera_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tessera_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "tessera_events",
            "Audited events once committed (token.issued, login.failed, refresh.reused, …)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.registry.register(_ProviderState(provider))

    def event(self, event: str, outcome: str) -> None:
        """Count one committed audit event (services/audit.py's observer)."""
        self.events.labels(event, outcome).inc()

    def render(self) -> bytes:
        """The text exposition of every metric now."""
        return generate_latest(self.registry)


class _ProviderState(Collector):
    """Read at each scrape: the signing keys' timelines and the connection pool."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        age = GaugeMetricFamily(
            "tessera_signing_key_age_seconds",
            "Seconds since the signing key of each algorithm began to sign",
            labels=["alg", "kid"],
        )
        rotation = GaugeMetricFamily(
            "tessera_signing_key_rotation_in_seconds",
            "Seconds until the signing key of each algorithm stops signing (the next one starts)",
            labels=["alg", "kid"],
        )
        for info in self._provider.keyring.keys(now):
            if info.state(now) == "active":
                age.add_metric([info.alg, info.kid], now - info.activates_at)
                rotation.add_metric([info.alg, info.kid], info.retires_at - now)
        yield age
        yield rotation
        fanout = self._provider.revocations.fanout
        if fanout is not None:
            yield GaugeMetricFamily(
                "tessera_revocation_fanout_lag_seconds",
                "Seconds the oldest revocation committed here and not yet in Redis has waited"
                " (0: guards have every one)",
                value=fanout.owed_for(now=now),
            )
            yield CounterMetricFamily(
                "tessera_revocation_fanout_failures",
                "Writes of revocations to Redis that failed (each owed, then written again)",
                value=float(fanout.failures),
            )
        pool = self._provider.database.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is not None:
            yield GaugeMetricFamily(
                "tessera_db_connections_in_use",
                "Database connections of the pool lent out now",
                value=float(checked_out()),
            )


class RequestMeter:
    """Each HTTP request's route template, status and time, counted (:class:`.edge.Edge`
    measures them)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # The labelled series by (route, method, status): prometheus-client's labels() checks
        # and locks on every call, a few microseconds a request that a dict lookup saves.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, scope: Scope, status: int, elapsed: float) -> None:
        """Count a request answered with ``status`` after ``elapsed`` seconds, under the
        template of the route that answered it (:data:`UNMATCHED` if none did)."""
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        key = (route, scope["method"], status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.metrics.requests.labels(route, key[1], str(status)),
                self.metrics.latency.labels(route, key[1]),
            )
        series[0].inc()
        series[1].observe(elapsed)


def install_metrics(app: FastAPI, provider: Provider) -> Metrics:
    """Count ``provider``'s audited events; serve ``/metrics``. (``app``'s requests are counted
    by its :class:`.edge.Edge`, with a :class:`RequestMeter` of these metrics.)"""
    metrics = Metrics(provider)
    provider.database.session_info[OBSERVER] = metrics.event
    token = provider.settings.metrics_token

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if token is None:  # not configured: not there
            return json_answer({"detail": "Not Found"}, 404)
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not same(presented, token.get_secret_value()):
            refused = json_answer({"error": "invalid_token"}, 401)
            refused.headers["WWW-Authenticate"] = 'Bearer realm="tessera-metrics"'
            return refused
        return Response(
            metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    return metrics
