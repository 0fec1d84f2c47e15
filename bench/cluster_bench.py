"""Two provider nodes behind HAProxy beside one node alone, under the same load.

Two ``tessera serve`` processes (one uvicorn worker each) share a PostgreSQL schema and Redis
(the machine's, under a schema and key prefix of the bench's own, removed afterwards); Debian's
HAProxy spreads requests between them with the README's configuration, as the fault tests run
it (``tests/cluster``). The same load — wrk for client_credentials grants and introspection,
``bench/idp_load.py`` for refresh grants (one rotating chain per connection) — goes once straight
to one node and once through the balancer to both, one after the other in this run. Only right
answers count, as in ``bench/idp_bench.py``, whose setup and drivers this bench uses.

Nothing is pinned: the nodes, HAProxy, PostgreSQL, Redis and the load generator share the
machine's cores, as they would on one host. How many cores that is bounds what a second node can
add; the report says how busy they were.

    .venv/bin/python bench/cluster_bench.py              # 3 s warm-up + 10 s per scenario
    .venv/bin/python bench/cluster_bench.py --quick      # 1 s + 2 s
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
for _path in (BENCH_DIR, BENCH_DIR.parent):  # idp_bench, and the fault tests' cluster harness
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from tests.cluster.cluster import Balancer, Node  # noqa: E402

import idp_bench as bench  # noqa: E402
import idp_load as load  # noqa: E402

REDIS_URL = os.environ.get("TESSERA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ONE, TWO = "one node", "two nodes behind HAProxy"
SCENARIOS = (bench.CC, "refresh_token grant", bench.INTROSPECTION)


@dataclass
class Cluster:
    """The nodes and the balancer in front of them."""

    nodes: list[Node]
    balancer: Balancer

    def server(self, setup: str) -> bench.Server:
        """Where ``setup``'s load goes: node a itself, or the balancer."""
        first = self.nodes[0]
        assert first.process is not None
        if setup == ONE:
            return bench.Server(first.url, first.port, first.process.pid, first.log)
        return bench.Server(self.balancer.url, self.balancer.port, 0, first.log)

    def pids(self, setup: str) -> list[int]:
        """The node processes serving ``setup``."""
        serving = self.nodes[:1] if setup == ONE else self.nodes
        return [node.process.pid for node in serving if node.process is not None]


@contextmanager
def running(fixture: bench.Fixture, workdir: Path) -> Iterator[Cluster]:
    """Two nodes on ``fixture``'s database and the machine's Redis, behind HAProxy; the
    issuer is the balancer's URL (what every token says, whichever node made it)."""
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        raise SystemExit("HAProxy is missing: bash tools/ensure-peers.sh installs it")
    prefix = f"bench:cluster:{uuid.uuid4().hex[:12]}:"
    balancer = Balancer(workdir)
    settings = {
        "TESSERA_DATABASE_URL": fixture.database_url,
        "TESSERA_MASTER_KEY": fixture.master_key,
        "TESSERA_MASTER_KEY_FILE": str(workdir / "unused-master.key"),
        "TESSERA_ISSUER": balancer.url,
        "TESSERA_BOOTSTRAP": "false",
        "TESSERA_WORKERS": "1",
        "TESSERA_REDIS_URL": REDIS_URL,
        "TESSERA_REDIS_PREFIX": prefix + "revocation:",
        "TESSERA_THROTTLE_PREFIX": prefix + "throttle:",
    }
    nodes = [Node(name, workdir, settings) for name in ("a", "b")]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready(timeout=60)
        balancer.start(nodes)
        yield Cluster(nodes, balancer)
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
        _forget(prefix)


def _forget(prefix: str) -> None:
    """Remove the bench's Redis keys (the machine's Redis is shared)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        own = list(client.scan_iter(match=prefix + "*"))
        if own:
            client.delete(*own)
    finally:
        client.close()


def measure(
    cluster: Cluster,
    fixture: bench.Fixture,
    setup: str,
    scenario: str,
    chains: tuple[list[str], list[str]],
    args: argparse.Namespace,
    workdir: Path,
) -> bench.Measured:
    """One scenario against one setup; ``server_cpu`` is what its nodes used together (% of
    one core), ``chains`` the refresh families (first links and spares) it may spend."""
    server = cluster.server(setup)
    pids = cluster.pids(setup)
    before = sum(load.process_cpu_seconds(pid) for pid in pids)
    started = time.monotonic()
    if scenario == "refresh_token grant":
        tokens, spares = chains
        spec = {
            **bench.refresh_spec(fixture, args.connections, args.duration),
            "tokens": tokens,
            "spares": spares,
        }
        measured, _ = bench.run_driver(
            server.url,
            spec,
            scenario=scenario,
            database=setup,
            warmup=args.warmup,
            workdir=workdir,
            cpu=None,
        )
    else:
        measured = bench.run_wrk(
            server,
            bench.requests_for(fixture)[scenario],
            scenario=scenario,
            database=setup,
            warmup=args.warmup,
            duration=args.duration,
            connections=args.connections,
            workdir=workdir,
            cpu=None,
        )
    # Over warm-up and window together: the nodes' share of the cores while loaded.
    used = sum(load.process_cpu_seconds(pid) for pid in pids) - before
    measured.server_cpu = 100 * used / (time.monotonic() - started)
    return measured


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[bench.Measured], dict[str, Any]]:
    """Every scenario against each setup, one after the other; also the nodes' memory."""
    results: list[bench.Measured] = []
    with bench.database_url(bench.POSTGRES, workdir) as url:
        bench.progress(f"preparing {args.connections * 6} refresh families")
        fixture = bench.prepare(
            bench.POSTGRES,
            url,
            chains=args.connections * 2,
            spares=args.connections * 4,
            workdir=workdir,
        )
        with running(fixture, workdir) as cluster:
            nodes = ", ".join(f"{node.name} {node.url}" for node in cluster.nodes)
            bench.progress(f"nodes {nodes}; HAProxy {cluster.balancer.url}; probing")
            bench.probe(cluster.server(TWO), fixture)  # through the balancer, issuer included
            count = args.connections
            chains = {
                ONE: (fixture.chains[:count], fixture.spares[: 2 * count]),
                TWO: (fixture.chains[count:], fixture.spares[2 * count :]),
            }
            for scenario in SCENARIOS:
                for setup in (ONE, TWO):
                    bench.progress(f"{scenario}: {setup}")
                    measured = measure(
                        cluster, fixture, setup, scenario, chains[setup], args, workdir
                    )
                    results.append(measured)
            memory = {
                node.name: bench.memory_mb(node.process.pid)
                for node in cluster.nodes
                if node.process is not None
            }
    return results, memory


def report(
    results: Sequence[bench.Measured], memory: dict[str, tuple[float, float]], seconds: float
) -> list[str]:
    """The markdown report: each scenario's two setups side by side, with their ratio."""
    cores = os.cpu_count() or 1
    lines = [
        "# Two nodes behind HAProxy, beside one node alone",
        "",
        "Two `tessera serve` processes (one uvicorn worker each) on one PostgreSQL schema and"
        " Redis, Debian's HAProxy in front with the README's configuration (round robin, health"
        " checks on `/healthz`); the same load straight at one node, then through the balancer"
        f" at both. Nothing pinned: the nodes, HAProxy, PostgreSQL, Redis and the load share"
        f" this machine's {cores} cores. req/s counts right answers only; latency is per"
        " request, closed loop. *Nodes' CPU* is what the serving node processes used together"
        " (% of one core).",
        "",
        "| scenario | setup | req/s | p50 ms | p99 ms | errors | nodes' CPU | two / one |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    alone = {item.scenario: item for item in results if item.database == ONE}
    for item in results:
        ratio = "—"
        if item.database == TWO and alone.get(item.scenario) and alone[item.scenario].rps:
            ratio = f"**{item.rps / alone[item.scenario].rps:.2f}×**"
        lines.append(
            f"| {item.scenario} | {item.database} | {item.rps:,.0f} | {item.p50_ms:.2f} |"
            f" {item.p99_ms:.2f} | {item.error_count} | {item.server_cpu or 0:.0f} % | {ratio} |"
        )
    lines += ["", *bench.error_lines(results)]
    lines += [
        "A node is one process whose requests run on one event loop (a few worker threads"
        " beside it): it uses about one core. A second node is a second process; on this"
        f" {cores}-core machine it gets what the other core has left after HAProxy, PostgreSQL,"
        " Redis and the load generator — on hosts of their own each node brings its cores."
        " Revocation fan-out between nodes and guards is measured by `bench/fanout_bench.py`.",
        "",
        "Nodes' memory after the load: "
        + ", ".join(
            f"{name} VmRSS {rss:.0f} MB (peak {hwm:.0f} MB)" for name, (rss, hwm) in memory.items()
        )
        + ".",
        "",
        f"{seconds:.0f} s in all; load average after: {bench.loadavg()}.",
        "",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1 s warm-up + 2 s per scenario")
    parser.add_argument("--duration", type=int, help="seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds (default 3)")
    parser.add_argument("--connections", type=int, default=bench.CONNECTIONS)
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (bench.QUICK_DURATION if quick else bench.DURATION)
    args.warmup = args.warmup or (bench.QUICK_WARMUP if quick else bench.WARMUP)
    bench.ensure_wrk()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tessera-cluster-bench-") as temporary:
        results, memory = run(args, Path(temporary))
    text = "\n".join(report(results, memory, time.monotonic() - started))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if not any(item.error_count for item in results) else 1


if __name__ == "__main__":
    sys.exit(main())
