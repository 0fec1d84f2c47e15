"""PostgreSQL restarted under the load of two nodes behind HAProxy: meanwhile every request is
answered (503 with Retry-After when it needed the database — never a 500, never held past its
timeout), and service comes back by itself within 5 s of the database, with nothing lost or
half-written."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from .cluster import Cluster, PostgresProcess
from .invariants import audited_jtis, check_families
from .load import Load, client_credentials

pytestmark = pytest.mark.slow

RECOVERY = 5.0  # seconds after the database is back within which service must be back


def test_postgresql_restarted_under_load(
    cluster_on_own_postgres: Cluster, own_postgres: PostgresProcess
) -> None:
    cluster = cluster_on_own_postgres
    moments: dict[str, float] = {}

    def restart() -> None:
        own_postgres.stop()
        moments["down"] = time.monotonic()
        time.sleep(1.5)
        own_postgres.start()
        moments["up"] = time.monotonic()

    load = Load(cluster.prepared, cluster.balancer.url)
    load.run(4.0, during=restart, at=0.8)

    statuses = Counter(answer.status for answer in load.answers)
    assert set(statuses) <= {200, 400, 503}, statuses  # never a 500, never a lost answer
    assert statuses[503] > 0  # the outage was seen...
    unavailable = [answer for answer in load.answers if answer.status == 503]
    assert all(answer.retry_after == "5" for answer in unavailable)  # ...and said so
    assert all(
        moments["down"] - 0.5 <= answer.at <= moments["up"] + RECOVERY for answer in unavailable
    )
    served_again = [a for a in load.answers if a.status == 200 and a.at > moments["up"]]
    assert served_again, "no request was served after the database came back"
    issued = {answer.jti for answer in load.answers if answer.jti}
    assert issued <= audited_jtis(cluster)  # every token answered has its audit row
    check_families(cluster)  # no rotation lost, duplicated or half-written
    with cluster.client() as http:  # and both nodes serve again
        for node in cluster.nodes:
            with httpx.Client(base_url=node.url, timeout=10) as direct:
                assert client_credentials(direct, cluster.prepared).status_code == 200
            assert http.get("/readyz").status_code == 200
