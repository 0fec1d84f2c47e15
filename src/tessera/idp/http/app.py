"""The FastAPI application of the identity provider.

>>> from tessera.idp.config import Settings
>>> app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
>>> print(*sorted(path[8:] for path in app.openapi()["paths"] if path.startswith("/oauth2")))
authorize introspect logout revoke token userinfo
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import __version__
from ..config import Settings
from ..flows.housekeeping import purge
from ..provider import Provider
from ..threads import use_threads
from . import admin, authorize, browser, health, logout, mfa, oauth, pages, userinfo, wellknown
from .answers import json_answer
from .edge import Edge
from .exact_routes import ExactRoutes, exact_routes
from .limits import ADMIN_PREFIX, Limits
from .metrics import RequestMeter, install_metrics
from .problems import http_problem, problem_response

log = logging.getLogger("tessera.idp")


def create_app(settings: Settings, provider: Provider | None = None) -> FastAPI:
    """Build the app; the provider starts (migrations, keys) when the app starts."""
    provider = provider or Provider(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        use_threads(settings.threads)  # the routes' blocking work (threads.in_thread)
        # FastAPI's own: the admin API's plain `def` routes run on anyio's worker threads.
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        provider.database.checkpoint_in_background()  # before start() connects
        provider.start()
        _freeze_what_lives_for_ever()
        workers = [
            threading.Thread(target=loop, args=(provider, stop), name=name, daemon=True)
            for loop, name in (
                (_housekeeping, "tessera-housekeeping"),
                (_fanout_repair, "tessera-fanout"),
                (_checkpoints, "tessera-checkpoints"),
            )
        ]
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=5)
            await provider.database.close_loop_connections()
            provider.close()

    app = FastAPI(
        title="Tessera identity provider",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks look up the global providers on every request (a tenth
        # of an SSO hop's time, measured); Tessera does not report through OpenTelemetry.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.provider = provider
    app.state.metrics = metrics = install_metrics(app, provider)
    limits = Limits(settings.max_header_bytes, settings.max_header_count, settings.max_body_bytes)
    app.add_middleware(Edge, limits=limits, meter=RequestMeter(metrics))
    # The busiest routes first: a request FastAPI matches is matched against the routes in
    # order, and the admin API's many come last.
    public = (
        userinfo.router,
        oauth.router,
        authorize.router,
        wellknown.router,
        health.router,
        logout.router,
        pages.router,
        browser.router,
    )
    for router in public:
        app.include_router(router)
    mfa.install(app, provider)  # with the guard of a person's own routes (userinfo's too)
    admin.install(app, provider)
    # The public routes with a fixed path skip FastAPI's matching (exact_routes.py).
    app.router.middleware_stack = ExactRoutes(app.router.middleware_stack, exact_routes(public))

    @app.exception_handler(StarletteHTTPException)
    async def framework_refusal(request: Request, error: StarletteHTTPException) -> Response:
        # What FastAPI and Starlette refuse before a route's own answers apply: an unknown
        # route (404), a method the route lacks (405), a body that cannot be parsed (400), a
        # body that is not JSON (415). Routes answer their domain errors themselves (answers.py).
        if request.url.path.startswith(ADMIN_PREFIX):
            return http_problem(error.status_code, error.headers)
        return await http_exception_handler(request, error)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, error: Exception) -> Response:
        # The database is away (restarting, unreachable, every connection busy): a moment's
        # outage, not the request's fault nor a bug. Never a 500, and nothing was half-written
        # (the transaction rolled back).
        log.warning("database unavailable (%s): answered 503", type(error).__name__)
        if request.url.path.startswith(ADMIN_PREFIX):
            response = problem_response("temporarily_unavailable", UNAVAILABLE, 503)
        else:
            response = json_answer(
                {"error": "temporarily_unavailable", "error_description": UNAVAILABLE}, 503
            )
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return pages.landing_page(settings.issuer)

    return app


# What a request gets while the database is away: 503, and when to try again (seconds).
UNAVAILABLE = "the service is briefly unavailable; try again shortly"
UNAVAILABLE_RETRY_AFTER = 5

# Key rotation is checked (and the key table re-read) this often: two cheap transactions.
# Purging runs every purge_interval.
KEYRING_CHECK_EVERY = 30.0


def _freeze_what_lives_for_ever() -> None:
    """Leave what the started app holds for its whole life (modules, the ORM's mappings, the
    routes, the keys) out of the garbage collector's full collections. Each full collection
    walks every object it tracks: with all of it, a pause of tens of milliseconds every few
    thousand requests — the client_credentials grant's p99 at 32 connections was 103–108 ms
    so, 15 ms frozen (and 3,061/2,833 → 3,445/3,450 req/s, SQLite, measured back to back).
    Collections of what requests make afterwards go on as before."""
    gc.collect()
    gc.freeze()


def _housekeeping(provider: Provider, stop: threading.Event) -> None:
    interval = provider.settings.purge_interval
    next_purge = time.monotonic() + interval
    while not stop.wait(min(KEYRING_CHECK_EVERY, interval)):
        try:
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + interval
                log.info("housekeeping purged %s", purge(provider))
            else:
                provider.keyring.ensure()
        except Exception:  # the next round tries again; one failure must not stop the loop
            log.exception("housekeeping failed")


# What a node owes Redis of its revocations (a write failed, or Redis restarted) is written from
# the database this often.
FANOUT_REPAIR_EVERY = 1.0


def _fanout_repair(provider: Provider, stop: threading.Event) -> None:
    fanout = provider.revocations.fanout
    if fanout is None:
        return
    while True:
        try:
            written = fanout.repair(provider.database)
            if written is not None:
                log.info("revocation fan-out: wrote the denylist's %d entries to Redis", written)
        except Exception:  # the database is away too: the next round tries again
            log.exception("revocation fan-out repair failed")
        if stop.wait(FANOUT_REPAIR_EVERY):
            return


# A SQLite file's write-ahead log is copied into the file this often, off the requests' path
# (Database.checkpoint_in_background): at 2,000 short writes/s, about the 1,000 pages after
# which SQLite would have done it in a commit.
CHECKPOINT_EVERY = 0.2


def _checkpoints(provider: Provider, stop: threading.Event) -> None:
    database = provider.database
    if not database.is_sqlite:
        return
    while not stop.wait(CHECKPOINT_EVERY):
        try:
            database.checkpoint()
        except Exception:  # busy or away: the next round tries again
            log.exception("SQLite checkpoint failed")
