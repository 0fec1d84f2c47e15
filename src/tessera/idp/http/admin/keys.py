"""``/admin/keys``: the provider's signing keys and their timeline, and forced rotation
(``admin:keys``, system tenant). Never any private material."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from ...errors import conflict
from ...services.keyring import KeyInfo
from ..answers import ProblemRoute
from ..requests import provider_of
from .auth import Admin, system_admin
from .fields import Body

router = APIRouter(route_class=ProblemRoute)

KeysAdmin = Annotated[Admin, Depends(system_admin("admin:keys"))]


class Rotation(Body):
    """``immediate`` (for a compromised key): the new key signs at once instead of after the
    prepublication period."""

    immediate: bool = False


class KeyOut(BaseModel):
    """One signing key's timeline and its state now (``next``, ``active``, ``retired``,
    ``expired``)."""

    kid: str
    alg: str
    published_at: int
    activates_at: int
    retires_at: int
    expires_at: int
    state: str


class KeyList(BaseModel):
    """Every stored key, newest first."""

    keys: list[KeyOut]


def describe_key(info: KeyInfo, now: float) -> dict[str, Any]:
    """What an admin sees of a key.

    >>> describe_key(KeyInfo("k1", "ES256", 0, 10, 20, 30), now=15)["state"]
    'active'
    """
    return {
        "kid": info.kid,
        "alg": info.alg,
        "published_at": info.published_at,
        "activates_at": info.activates_at,
        "retires_at": info.retires_at,
        "expires_at": info.expires_at,
        "state": info.state(now),
    }


@router.get("/keys", response_model=KeyList, summary="List signing keys (system admins)")
def list_keys(request: Request, admin: KeysAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    now = time.time()  # the keyring reads its table only if it has not yet
    return {"keys": [describe_key(info, now) for info in provider.keyring.keys(now)]}


@router.post(
    "/keys/rotate", response_model=KeyOut, summary="Rotate the signing key now (system admins)"
)
def rotate_keys(request: Request, body: Rotation, admin: KeysAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    now = time.time()
    kid = provider.keyring.rotate(now, immediate=body.immediate, context=admin.context)
    made = [info for info in provider.keyring.keys(now) if info.kid == kid]
    if not made:  # rotated away again by another admin in the same instant
        raise conflict("the key was replaced by another rotation")
    return describe_key(made[0], now)
