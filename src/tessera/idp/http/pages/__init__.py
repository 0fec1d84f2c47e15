"""The provider's pages: server-rendered HTML (Jinja2, every value escaped), no inline script or
style, and the headers that keep them from being framed, cached or leaking their URL.

>>> response = page("error.html", tenant_name="Acme <Corp>", message="<b>no</b>", status=400)
>>> b"Acme &lt;Corp&gt;" in response.body, b"&lt;b&gt;no&lt;/b&gt;" in response.body
(True, True)
>>> response.headers["x-frame-options"], response.headers["cache-control"]
('DENY', 'no-store')
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

router = APIRouter(include_in_schema=False)

ASSETS = {
    "tessera.css": "text/css; charset=utf-8",
    "landing.css": "text/css; charset=utf-8",
    "form_post.js": "text/javascript; charset=utf-8",
    "landing.js": "text/javascript; charset=utf-8",
}


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader(__package__ or "tessera.idp.http.pages", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )


def security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """Headers of every page: a CSP allowing only this origin's own script, style and form
    targets (plus ``form_targets``, the origins a form may post or redirect to), no framing,
    no caching, no referrer.

    >>> security_headers(["https://app.example"])["content-security-policy"].split("; ")[4]
    "form-action 'self' https://app.example"
    """
    form_action = " ".join(("'self'", *dict.fromkeys(form_targets)))
    return {
        "content-security-policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action {form_action}; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "pragma": "no-cache",
        "x-content-type-options": "nosniff",
    }


def page(
    template: str,
    *,
    status: int = 200,
    form_targets: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered with ``values`` (escaped), with :func:`security_headers`."""
    html = _templates().get_template(template).render(**values)
    return HTMLResponse(
        html, status_code=status, headers={**security_headers(form_targets), **(headers or {})}
    )


def landing_page(issuer: str) -> HTMLResponse:
    """``/``: links to discovery, JWKS and the API docs, and the first-party web login."""
    return page("landing.html", issuer=issuer)


@cache
def _asset(name: str) -> bytes:
    return files(__package__ or "tessera.idp.http.pages").joinpath("assets", name).read_bytes()


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """The pages' style sheets and scripts (nothing else is served from here)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404)
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"},
    )
