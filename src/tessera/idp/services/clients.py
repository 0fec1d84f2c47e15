"""OAuth 2.0 clients: creation (the secret is shown once), and client authentication.

>>> split_scopes("b a  b")
('b', 'a')
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ...jose import b64
from ..errors import invalid_client
from ..store.models import Client
from .secrets import MasterKey, new_secret, same

SECRET_PURPOSE = "client-secret"


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just created, with its secret in clear — the only time it exists so."""

    client: Client
    secret: str | None


def split_scopes(text: str | None) -> tuple[str, ...]:
    """Space-separated scopes as an ordered tuple without duplicates."""
    return tuple(dict.fromkeys((text or "").split()))


def create_client(
    session: Session,
    master: MasterKey,
    *,
    tenant_id: str,
    name: str,
    grant_types: tuple[str, ...],
    audience: tuple[str, ...],
    allowed_scopes: tuple[str, ...] = (),
    default_scopes: tuple[str, ...] = (),
    first_party: bool = False,
    confidential: bool = True,
    client_id: str | None = None,
) -> NewClient:
    """Create a client; a confidential one gets a 256-bit secret stored only as a keyed hash."""
    if not audience:
        raise ValueError("a client needs at least one audience")
    if not set(default_scopes) <= set(allowed_scopes):
        raise ValueError("default scopes must be allowed scopes")
    secret = new_secret() if confidential else None
    client = Client(
        id=client_id or b64.encode_str(secrets.token_bytes(12)),
        tenant_id=tenant_id,
        name=name,
        secret_hash=master.keyed_hash(SECRET_PURPOSE, secret) if secret else None,
        grant_types=" ".join(grant_types),
        allowed_scopes=" ".join(allowed_scopes),
        default_scopes=" ".join(default_scopes),
        audience=" ".join(audience),
        first_party=first_party,
        created_at=int(time.time()),
    )
    session.add(client)
    session.flush()
    return NewClient(client, secret)


class ClientCache:
    """Clients read in the last ``ttl`` seconds, so a busy token endpoint does not read the same
    row on every grant. A change made on this node (a rotated secret) is seen at once through
    :meth:`forget`; one made on another node is seen within ``ttl`` seconds.

    >>> ClientCache(ttl=5).size
    0
    """

    def __init__(self, ttl: float = 5.0, capacity: int = 4096) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: dict[str, tuple[float, Client]] = {}

    @property
    def size(self) -> int:
        """How many clients are held."""
        return len(self._entries)

    def get(self, session: Session, client_id: str) -> Client | None:
        """The client (detached: read-only here), from memory while fresh, else the database."""
        now = time.monotonic()
        entry = self._entries.get(client_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        client = session.get(Client, client_id)
        if client is not None:
            session.expunge(client)
            if len(self._entries) >= self.capacity:
                self._entries.clear()
            self._entries[client_id] = (now + self.ttl, client)
        return client

    def forget(self, client_id: str) -> None:
        """Drop a client changed on this node."""
        self._entries.pop(client_id, None)


def authenticate_client(
    session: Session,
    master: MasterKey,
    client_id: str,
    secret: str | None,
    cache: ClientCache | None = None,
) -> Client:
    """The client whose id and secret these are; any mismatch is the same ``invalid_client``.

    A public client (no secret stored) authenticates by id alone and only where its grant
    allows it; a confidential client must present its secret.
    """
    client = (
        None
        if len(client_id) > 64
        else cache.get(session, client_id)
        if cache is not None
        else session.get(Client, client_id)
    )
    presented = master.keyed_hash(SECRET_PURPOSE, secret or "")
    if client is None:
        raise invalid_client()
    if client.secret_hash is None:
        if secret:
            raise invalid_client()
        return client
    if not secret or not same(presented, client.secret_hash):
        raise invalid_client()
    return client


def rotate_secret(session: Session, master: MasterKey, client: Client) -> str:
    """Give ``client`` a new secret (returned once); the old one stops working at once."""
    secret = new_secret()
    client.secret_hash = master.keyed_hash(SECRET_PURPOSE, secret)
    session.flush()
    return secret
