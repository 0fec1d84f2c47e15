"""Redirect URIs: which may be registered, and whether a requested one is a registered one.

A requested ``redirect_uri`` must equal a registered one, character for character (RFC 9700
§4.1.1) — no normalisation, no prefix, no wildcard. The one exception is RFC 8252 §7.3: a native
app that registered a loopback IP literal (``http://127.0.0.1/cb``, ``http://[::1]/cb``) may come
back on any port, since the operating system picks it at run time; everything but the port must
still be equal.

>>> matches("https://app.example/cb", ["https://app.example/cb"])
True
>>> matches("https://app.example/cb/", ["https://app.example/cb"])
False
>>> matches("http://127.0.0.1:53124/cb", ["http://127.0.0.1/cb"])
True
>>> registration_problem("https://app.example/cb#frag")
'a redirect URI has no fragment'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..store.models import URI_LENGTH

# The loopback form, read strictly: no user info, an IP literal (never a name that DNS could
# point elsewhere), an optional port, then path and query. A fragment is never part of it.
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?][^#]*)?"
)
# RFC 8252 §7.1: a private-use scheme is a reverse domain name (it holds a dot).
_PRIVATE_USE_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]"}


def _loopback(uri: str) -> tuple[str, str] | None:
    """``(host, path and query)`` of a loopback redirect URI with a valid port, else ``None``."""
    match = _LOOPBACK.fullmatch(uri)
    if match is None:
        return None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    return match["host"], match["rest"] or ""


def matches(requested: str, registered: Iterable[str]) -> bool:
    """Whether ``requested`` is one of the ``registered`` redirect URIs (see the module).

    >>> matches("https://APP.example/cb", ["https://app.example/cb"])
    False
    >>> matches("http://127.0.0.1:8080/cb?x=1", ["http://127.0.0.1/cb"])
    False
    """
    if len(requested) > URI_LENGTH:
        return False
    loopback = _loopback(requested)
    for uri in registered:
        if requested == uri:
            return True
        if loopback is not None and loopback == _loopback(uri):
            return True
    return False


def registration_problem(uri: str, *, web_only: bool = False) -> str | None:
    """Why ``uri`` may not be registered as a redirect URI, or ``None`` when it may.

    Allowed: ``https`` URIs; ``http`` only on a loopback host (a native app, or development);
    a private-use scheme for native apps (``com.example.app:/callback``) unless ``web_only``
    (a URI the provider itself calls). Never a fragment.

    >>> registration_problem("http://app.example/cb")
    'a redirect URI is https (http only on a loopback host)'
    >>> registration_problem("com.example.app:/oauth") is None
    True
    """
    if not uri or len(uri) > URI_LENGTH:
        return f"a redirect URI has 1 to {URI_LENGTH} characters"
    if not uri.isascii() or any(c.isspace() or ord(c) < 0x20 for c in uri):
        return "a redirect URI is printable ASCII without spaces"
    if "#" in uri:
        return "a redirect URI has no fragment"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "a redirect URI is an absolute URI"
    scheme = parts.scheme
    if scheme == "https":
        if not parts.hostname:
            return "an https redirect URI names a host"
    elif scheme == "http":
        host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
        if host not in _LOOPBACK_NAMES:
            return "a redirect URI is https (http only on a loopback host)"
    elif web_only:
        return "a redirect URI is https (http only on a loopback host)"
    elif not _PRIVATE_USE_SCHEME.fullmatch(scheme):
        return "a redirect URI is https, loopback http, or a reverse-domain private-use scheme"
    if parts.username is not None or parts.password is not None:
        return "a redirect URI has no user information"
    if uri != uri.strip() or uri.split(":", 1)[0] != scheme:
        return "a redirect URI's scheme is lower case"
    return None
