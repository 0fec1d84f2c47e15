"""The provider's one page: where things are, and a login form for the first-party web client.

>>> "Tessera identity provider" in landing_page("https://id.example")
True
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib.resources import files
from string import Template


@cache
def _template() -> Template:
    return Template(files(__package__).joinpath("index.html").read_text(encoding="utf-8"))


def landing_page(issuer: str) -> str:
    """HTML for ``/``: links to discovery, JWKS and the API docs, and a login form."""
    return _template().substitute(issuer=escape(issuer))
