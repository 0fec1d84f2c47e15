"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWK Set."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...jose import json
from ..flows.authorization import ACR_VALUES, PROMPTS, RESPONSE_MODES
from ..flows.grants import SUPPORTED
from ..flows.userinfo import CLAIMS_SUPPORTED
from ..provider import Provider
from ..services.client_assertions import ASSERTION_ALGS
from ..services.id_tokens import ID_TOKEN_ALGS, OPENID_SCOPES
from ..services.pkce import METHOD
from .answers import OAuthRoute
from .requests import provider_of

router = APIRouter(tags=["discovery"], route_class=OAuthRoute)
# How a confidential client authenticates (RFC 6749 §2.3.1, RFC 7523 §2.2).
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def metadata(provider: Provider) -> dict[str, Any]:
    """The authorization server metadata; ``issuer`` is exactly the ``iss`` we sign."""
    issuer = provider.settings.issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "grant_types_supported": list(SUPPORTED),
        # A public client ("none") may use the token endpoint and revoke its own tokens; only a
        # client that proves who it is may introspect.
        "token_endpoint_auth_methods_supported": [*CONFIDENTIAL_AUTH_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": [*CONFIDENTIAL_AUTH_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "code_challenge_methods_supported": [METHOD],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": sorted(PROMPTS),
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "subject_types_supported": ["public"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "scopes_supported": list(OPENID_SCOPES),
        "claims_supported": list(CLAIMS_SUPPORTED),
        # The keyring makes each algorithm's first key when it is first asked for.
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
    }


def _json(body: Any, max_age: int) -> Response:
    return Response(
        json.dumps(body),
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


@router.get("/.well-known/jwks.json", summary="The provider's public signing keys (JWK Set)")
async def jwks(request: Request) -> Response:
    provider = provider_of(request)
    return _json(provider.keyring.jwks(), provider.settings.jwks_max_age)


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
async def openid_configuration(request: Request) -> Response:
    provider = provider_of(request)
    return _json(metadata(provider), 3600)


@router.get("/.well-known/oauth-authorization-server", summary="RFC 8414 metadata")
async def oauth_authorization_server(request: Request) -> Response:
    provider = provider_of(request)
    return _json(metadata(provider), 3600)
