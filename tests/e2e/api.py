"""An API nobody in the provider wrote: FastAPI behind ``tessera.guard``, which knows the provider
only by its issuer URL — the keys come by discovery (``/.well-known/...`` → ``jwks_uri``).

Served by uvicorn on 127.0.0.1 (an ephemeral port), like every server in these tests.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Security

from tessera.guard import AsyncRemoteJwks, Guard, Principal
from tessera.guard.fastapi import FastAPIGuard
from tessera.guard.revocation import RevocationList

from ..guard.servers import UvicornThread

AUDIENCE = "demo-api"


class ProtectedApi:
    """``GET /whoami`` (any valid token) and ``GET /write`` (scope ``demo:write``)."""

    def __init__(self, issuer: str, *, revocation: RevocationList | None = None) -> None:
        self.keys = AsyncRemoteJwks.discover(issuer)
        self.guard = Guard(
            keys=self.keys,
            issuer=issuer,
            audience=AUDIENCE,
            algorithms=["ES256"],
            typ="at+jwt",
            revocation=revocation,
        )
        app = FastAPI(title="Demo API")
        auth = FastAPIGuard(self.guard, app=app)

        anyone = Security(auth.require())
        writer = Security(auth.require(scopes=["demo:write"]))

        @app.get("/whoami")
        async def whoami(user: Principal = anyone) -> dict[str, Any]:
            return {
                "sub": user.sub,
                "client_id": user.client_id,
                "tenant": user.tenant,
                "scopes": sorted(user.scopes),
                "jti": user.jti,
            }

        @app.get("/write")
        async def write(user: Principal = writer) -> dict[str, Any]:
            return {"written_by": user.sub}

        self._server = UvicornThread(app)
        self.http: httpx.Client | None = None

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> ProtectedApi:
        self._server.start()
        self.http = httpx.Client(base_url=self.url, timeout=10)
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        self._server.stop()

    def get(self, path: str, token: str | None) -> httpx.Response:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.http.get(path, headers=headers)
