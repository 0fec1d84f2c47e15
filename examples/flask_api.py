"""A small notes API protected by Tessera (Flask).

Run it with one command:  .venv/bin/python examples/flask_api.py

With TESSERA_ISSUER set, keys come from the issuer's JWKS by discovery; without it the example
signs its own demo tokens and prints curl commands. Browsers may send the token as an HttpOnly
``access_token`` cookie instead; unsafe methods then need the ``X-CSRF-Token`` header to equal the
``csrf_token`` cookie.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from flask import Flask, request

from tessera import jose
from tessera.guard import Guard, RemoteJwks, Transport
from tessera.guard.flask import FlaskGuard, current_principal

DEMO_ISSUER = "https://demo.tessera.invalid"
ISSUER = os.environ.get("TESSERA_ISSUER", DEMO_ISSUER)
AUDIENCE = os.environ.get("TESSERA_AUDIENCE", "notes")
DEMO_KEY = jose.Key.generate("ES256", kid="demo")

keys: Any = DEMO_KEY.public() if ISSUER == DEMO_ISSUER else RemoteJwks.discover(ISSUER)
guard = Guard(keys=keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], cache=4096)
app = Flask(__name__)
auth = FlaskGuard(guard, app, transport=Transport(cookie="access_token"))
NOTES: dict[str, list[str]] = {}


@app.get("/notes")
@auth.required(scopes=["notes:read"])
def list_notes() -> dict[str, Any]:
    """The caller's notes."""
    return {"notes": NOTES.get(current_principal().sub or "", [])}


@app.post("/notes")
@auth.required(scopes=["notes:write"])
def add_note() -> tuple[dict[str, Any], int]:
    """Add a note for the caller."""
    text = (request.get_json(silent=True) or {}).get("text", "")
    NOTES.setdefault(current_principal().sub or "", []).append(str(text))
    return {"ok": True}, 201


@app.get("/admin/stats")
@auth.required(roles=["admin"], sensitive=True)
def stats() -> dict[str, Any]:
    """Admins only."""
    return {"users": len(NOTES)}


def demo_token(scope: str, roles: list[str] | None = None) -> str:
    """A demo access token signed with the example's own key."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada",
        "scope": scope,
        "roles": roles or [],
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    return jose.jwt.encode(claims, DEMO_KEY)


def main() -> None:
    """Serve on 127.0.0.1:5000 (printing demo tokens when no issuer is configured)."""
    if ISSUER == DEMO_ISSUER:
        token = demo_token("notes:read notes:write")
        print(f'curl -X POST -H "Authorization: Bearer {token}" -H "Content-Type: '
              f'application/json" -d \'{{"text": "hi"}}\' http://127.0.0.1:5000/notes')  # fmt: skip
        print(f'curl -H "Authorization: Bearer {token}" http://127.0.0.1:5000/notes')
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))


if __name__ == "__main__":
    main()
