"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve: see
:mod:`tessera.idp.flows.readiness`), for a load balancer or an orchestrator. Neither is cached;
``/readyz`` answers 503 with the failing checks and ``Retry-After``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..flows.readiness import readiness
from ..threads import in_thread
from .answers import json_answer
from .requests import provider_of

router = APIRouter(tags=["operations"])
RETRY_AFTER = "5"  # seconds: a restarting database or Redis is usually back by then


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return _uncached(json_answer({"status": "alive"}))


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated, a signing key loaded, Redis reachable",
    responses={503: {"description": "Not ready: the failing checks, and Retry-After"}},
)
async def readyz(request: Request) -> Response:
    result = await in_thread(readiness, provider_of(request))
    if result.ready:
        return _uncached(json_answer({"status": "ready", "checks": result.checks}))
    response = json_answer({"status": "not ready", "checks": result.checks}, 503)
    response.headers["Retry-After"] = RETRY_AFTER
    return _uncached(response)


def _uncached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
