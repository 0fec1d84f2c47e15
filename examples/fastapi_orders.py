"""An orders API for many tenants, protected by Tessera (FastAPI).

Run it with one command:  .venv/bin/python examples/fastapi_orders.py

With TESSERA_ISSUER set (e.g. https://id.example), keys come from the issuer's JWKS by discovery
and TESSERA_AUDIENCE names this API. Without it, the example signs its own demo tokens with a
fresh ES256 key and prints ready-to-run curl commands. Open http://127.0.0.1:8000/docs to see
each route's scopes in OpenAPI.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Security

from tessera import jose
from tessera.guard import AsyncRemoteJwks, Guard, Principal
from tessera.guard.fastapi import FastAPIGuard

DEMO_ISSUER = "https://demo.tessera.invalid"
ISSUER = os.environ.get("TESSERA_ISSUER", DEMO_ISSUER)
AUDIENCE = os.environ.get("TESSERA_AUDIENCE", "orders")
DEMO_KEY = jose.Key.generate("ES256", kid="demo")

keys: Any = DEMO_KEY.public() if ISSUER == DEMO_ISSUER else AsyncRemoteJwks.discover(ISSUER)
guard = Guard(keys=keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], cache=4096)
app = FastAPI(title="Orders")
auth = FastAPIGuard(
    guard,
    app=app,
    token_url=f"{ISSUER}/oauth2/token",
    scopes={"orders:read": "Read orders", "orders:write": "Place orders"},
)
Reader = Annotated[Principal, Security(auth.require(tenant="tenant_id"), scopes=["orders:read"])]
Writer = Annotated[Principal, Security(auth.require(tenant="tenant_id"), scopes=["orders:write"])]
Admin = Annotated[
    Principal, Security(auth.require(roles=["admin"], tenant="tenant_id", sensitive=True))
]
ORDERS: dict[str, dict[str, dict[str, Any]]] = {}
NUMBERS = itertools.count(1)


@app.get("/tenants/{tenant_id}/orders")
async def list_orders(
    tenant_id: str,
    user: Reader,
) -> list[dict[str, Any]]:
    """Orders of the caller's own tenant."""
    return list(ORDERS.get(tenant_id, {}).values())


@app.post("/tenants/{tenant_id}/orders", status_code=201)
async def place_order(
    tenant_id: str,
    item: str,
    user: Writer,
) -> dict[str, Any]:
    """Place an order in the caller's tenant."""
    order = {"id": str(next(NUMBERS)), "item": item, "placed_by": user.sub}
    ORDERS.setdefault(tenant_id, {})[order["id"]] = order
    return order


@app.delete("/tenants/{tenant_id}/orders/{order_id}", status_code=204)
async def cancel_order(
    tenant_id: str,
    order_id: str,
    user: Admin,
) -> None:
    """Cancel an order: tenant admins only (a sensitive route)."""
    ORDERS.get(tenant_id, {}).pop(order_id, None)


def demo_token(scope: str, tenant: str = "acme", roles: list[str] | None = None) -> str:
    """A demo access token signed with the example's own key."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada",
        "tenant": tenant,
        "scope": scope,
        "roles": roles or [],
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    return jose.jwt.encode(claims, DEMO_KEY)


def main() -> None:
    """Serve on 127.0.0.1:8000 (printing demo tokens when no issuer is configured)."""
    base = "http://127.0.0.1:8000/tenants/acme/orders"
    if ISSUER == DEMO_ISSUER:
        write = demo_token("orders:read orders:write")
        print(f'curl -X POST -H "Authorization: Bearer {write}" "{base}?item=tea"')
        print(f'curl -H "Authorization: Bearer {write}" {base}')
        print(f'curl -H "Authorization: Bearer {demo_token("orders:read")}" '
              "http://127.0.0.1:8000/tenants/globex/orders   # 403: another tenant")  # fmt: skip
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))


if __name__ == "__main__":
    main()
